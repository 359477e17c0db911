"""The monitoring stack as planned: storage, retention and HA from config, Grafana's admin from a Secret the
program makes, the platform's alerts as a PrometheusRule validated against the operator's CRD, and the
host-level agents kept out of the restricted `monitoring` namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.contracts import Namespace
from components.guardrails import POD_SECURITY
from components.observability.alerts import rule_groups
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from tests.support.crds import spec_schema
from tests.support.graph import helm_release

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]  # local: the in-cluster wiring on kind
# where a workload identity is a cloud principal on its service account (local: an object-store key Secret,
# tests/test_local_object_store.py) and GPU pools are configured
CLOUD_STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]
BLOCK_STORAGE = {"aws": "gp3", "gcp": "standard-rwo", "local": "standard"}
ROOT = Path(__file__).resolve().parents[1]


def config(stack: str):
    return load_config(namespace_values(read_stack_file(ROOT, stack)), stack)


def kps(doc: PlanDocument):
    return helm_release(doc, "kube-prometheus-stack")


def stack_values(doc: PlanDocument) -> dict:
    return kps(doc).inputs["values"]


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_storage_retention_and_ha_follow_config(plan, stack: str) -> None:
    doc, cfg = plan(stack), config(stack).services.prometheus
    spec = stack_values(doc)["prometheus"]["prometheusSpec"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == BLOCK_STORAGE[doc.outputs["cloud"]]
    assert claim["resources"]["requests"]["storage"] == f"{cfg.storage_gb}Gi"
    assert (spec["retention"], spec["retentionSize"]) == (cfg.retention, f"{cfg.retention_size_gb}GB")
    assert spec["enableOTLPReceiver"] is True
    alertmanager = stack_values(doc)["alertmanager"]["alertmanagerSpec"]
    replicas = 2 if "prod" in stack else 1
    assert int(spec["replicas"]) == int(alertmanager["replicas"]) == replicas
    assert stack_values(doc)["prometheus"]["podDisruptionBudget"]["enabled"] == (replicas > 1)
    if doc.outputs["cloud"] == "aws":
        [gp3] = doc.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
        assert gp3.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_admin_comes_from_the_programs_secret(plan, stack: str) -> None:
    doc = plan(stack)
    admin = stack_values(doc)["grafana"]["admin"]
    secrets = {s.inputs["metadata"]["name"]: s for s in doc.by_type("kubernetes:core/v1:Secret")}
    secret = secrets[admin["existingSecret"]]
    assert secret.inputs["metadata"]["namespace"] == "monitoring" and secret.inputs["stringData"] == "[secret]"
    assert "adminPassword" not in stack_values(doc)["grafana"]
    assert doc.outputs["grafanaAdminSecret"] == admin["existingSecret"]


@pytest.mark.parametrize("stack", STACKS)
def test_host_agents_run_outside_the_restricted_monitoring_namespace(plan, stack: str) -> None:
    exporter = stack_values(plan(stack))["prometheus-node-exporter"]
    assert POD_SECURITY[Namespace(exporter["namespaceOverride"])] == "privileged"
    assert POD_SECURITY[Namespace.MONITORING] == "restricted"


@pytest.mark.parametrize("stack", STACKS)
def test_platform_alerts_are_the_configured_rules(plan, stack: str) -> None:
    doc = plan(stack)
    # (in-cluster PostgreSQL's own rule beside it: tests/test_postgres_monitoring.py)
    [rule] = [
        r for r in doc.by_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        if r.inputs["metadata"]["name"] == "mlplatform-alerts"
    ]  # fmt: skip
    thresholds = config(stack).services.prometheus.alerts
    assert json.loads(json.dumps(rule.inputs["spec"]["groups"]), parse_float=float) == json.loads(
        json.dumps(rule_groups(thresholds)), parse_float=float
    )
    assert kps(doc).urn in rule.dependencies  # its CRD and validating webhook first


def test_prometheus_rule_validates_against_its_crd(plan) -> None:
    import jsonschema

    schema = spec_schema("monitoring.coreos.com_prometheusrules.yaml", "v1")
    spec = json.loads(json.dumps(plan("prod").one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["spec"]))
    jsonschema.validate(spec, schema)
    spec["groups"][0]["rules"][0]["fro"] = "5m"  # misspelt: the API server would drop it silently
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


@pytest.mark.parametrize("stack", STACKS)
def test_every_scrape_is_a_pod_monitor_and_a_flow_that_agree(plan, stack: str) -> None:
    from components.guardrails import CNPG_SCRAPE, CNPG_SCRAPE_FLOW, FLOWS, SCRAPES

    doc = plan(stack)
    # in-cluster PostgreSQL's instances too, only where it runs (tests/test_postgres_monitoring.py)
    in_cluster = bool(doc.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster"))
    scrapes = SCRAPES + ((CNPG_SCRAPE,) if in_cluster else ())
    monitors = {
        m.inputs["metadata"]["name"]: m
        for kind in ("PodMonitor", "ServiceMonitor")
        for m in doc.by_type(f"kubernetes:monitoring.coreos.com/v1:{kind}")
    }
    assert set(monitors) == {t.name for t in scrapes}
    flows = {f.name: f for f in (*FLOWS, CNPG_SCRAPE_FLOW)}
    for target in scrapes:
        spec = monitors[target.name].inputs["spec"]
        flow = flows[f"scrape-{target.name}"]
        assert spec["namespaceSelector"]["matchNames"] == [flow.to.value]
        assert flow.sources == (Namespace.MONITORING,) and flow.port == target.number
        if target.service is None:  # the pods themselves
            assert spec["selector"]["matchLabels"] == flow.pod_labels
            # an annotated target has no port name: tests/test_connections.py follows its relabelings
            assert spec["podMetricsEndpoints"][0].get("port") == (None if target.annotated else target.port)
        else:  # through the Service that declares the port; the flow still admits the pods behind it
            assert spec["selector"]["matchLabels"] == dict(target.service)
            assert spec["endpoints"][0]["port"] == target.port
        assert kps(doc).urn in monitors[target.name].dependencies  # the operator's CRDs first
    # no scrape by port-name convention is left in any baseline
    for policy in doc.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        for rule in policy.inputs["spec"].get("ingress") or []:
            assert not any(isinstance(p.get("port"), str) for p in rule.get("ports", [])), policy.name


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_monitors_validate_against_their_crds(plan, kind: str) -> None:
    import jsonschema

    schema = spec_schema(f"monitoring.coreos.com_{kind.lower()}s.yaml", "v1")
    monitors = plan("gcp-prod").by_type(f"kubernetes:monitoring.coreos.com/v1:{kind}")
    assert monitors
    for monitor in monitors:
        jsonschema.validate(json.loads(json.dumps(monitor.inputs["spec"])), schema)


def test_alerts_go_nowhere_unless_a_receiver_secret_is_configured(plan) -> None:
    from mlplatform.config import read_stack_file
    from mlplatform.plan.synth import synthesize

    am = stack_values(plan("dev"))["alertmanager"]
    assert [r["name"] for r in am["config"]["receivers"]] == ["null"] and am["alertmanagerSpec"]["secrets"] == []
    receiver = {"kind": "slack", "secretName": "slack-alerts", "secretKey": "api-url"}
    stack = read_stack_file(ROOT, "dev") | {"mlplatform:services": {"prometheus": {"alertReceiver": receiver}}}
    am = stack_values(synthesize("dev-receiver", config_map=stack))["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["slack-alerts"]
    [platform] = [r for r in am["config"]["receivers"] if r["name"] == "platform"]
    assert platform["slack_configs"][0]["api_url_file"] == "/etc/alertmanager/secrets/slack-alerts/api-url"


def loki(doc: PlanDocument) -> dict:
    """The Loki release's inputs (name, namespace, values)."""
    return helm_release(doc, "loki").inputs


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_loki_keeps_logs_in_the_logs_bucket_as_its_identity(plan, stack: str) -> None:
    from components import workloads

    doc, cfg = plan(stack), config(stack)
    release = loki(doc)
    values = release["values"]
    assert release["namespace"] == Namespace.MONITORING.value and values["deploymentMode"] == "Monolithic"
    storage = values["loki"]["storage"]
    scheme, bucket = doc.outputs["buckets"]["logs"].split("://")
    assert storage["type"] == {"s3": "s3", "gs": "gcs"}[scheme]
    assert storage["bucketNames"]["chunks"] == bucket
    [schema] = values["loki"]["schemaConfig"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", storage["type"])
    # no static keys: the chart's service account is the one bound to the Loki identity
    assert values["serviceAccount"] == {"create": False, "name": workloads.LOKI.service_account}
    accounts = {
        (sa.inputs["metadata"]["namespace"], sa.inputs["metadata"]["name"]): sa.inputs["metadata"].get("annotations")
        for sa in doc.by_type("kubernetes:core/v1:ServiceAccount")
    }
    annotations = accounts[(Namespace.MONITORING.value, workloads.LOKI.service_account)]
    assert {"eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"} & set(annotations)
    assert all(k not in json.dumps(storage).lower() for k in ("secretaccesskey", "accesskeyid", "service_account"))
    # retention by the compactor, at the platform's log retention
    assert values["loki"]["compactor"] == {"retention_enabled": True, "delete_request_store": storage["type"]}
    assert values["loki"]["limits_config"]["retention_period"] == f"{cfg.storage.log_retention_days * 24}h"
    replicas = cfg.services.loki.replicas
    assert values["singleBinary"]["replicas"] == replicas == (3 if "prod" in stack else 1)
    assert values["loki"]["commonConfig"]["replication_factor"] == min(replicas, 3)
    assert bool(values["singleBinary"]["topologySpreadConstraints"]) == ("prod" in stack)
    assert values["singleBinary"]["persistence"]["size"] == f"{cfg.services.loki.storage_gb}Gi"


@pytest.mark.parametrize("stack", ["dev", "gcp-dev"])
def test_the_logs_bucket_outlives_lokis_retention(plan, stack: str) -> None:
    """Loki's retention docs: an object-store lifecycle shorter than the retention deletes chunks the index
    still points to."""
    doc, days = plan(stack), config(stack).storage.log_retention_days
    if stack.startswith("gcp"):
        [bucket] = [b for b in doc.by_type("gcp:storage/bucket:Bucket") if b.name.endswith("-logs")]
        expiry = [r["condition"]["age"] for r in bucket.inputs["lifecycleRules"] if r["condition"].get("age")]
    else:
        [rules] = [
            r.inputs["rules"]
            for r in doc.by_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
            if r.name.endswith("-logs")
        ]
        expiry = [r["expiration"]["days"] for r in rules if r.get("expiration")]
    assert expiry and min(expiry) > days


@pytest.mark.parametrize("stack", STACKS)
def test_alloy_ships_every_pods_logs_to_loki_from_the_agents_namespace(plan, stack: str) -> None:
    from components.guardrails import API_ONLY_CLIENTS, FLOWS, LOKI_HTTP_PORT, LOKI_PODS

    doc = plan(stack)
    [alloy] = [c for c in doc.by_type("kubernetes:helm.sh/v4:Chart") if c.name.endswith("-alloy")]
    namespace = Namespace(alloy.inputs["namespace"])
    assert POD_SECURITY[namespace] == "privileged" and namespace is not Namespace.MONITORING
    values = alloy.inputs["values"]
    assert values["controller"]["type"] == "daemonset" and values["alloy"]["mounts"]["varlog"] is True
    assert values["controller"]["tolerations"] == [{"operator": "Exists"}]  # GPU nodes too
    pipeline = values["alloy"]["configMap"]["content"]
    release = loki(doc)
    push = f"http://{release['name']}.{release['namespace']}.svc.cluster.local:{LOKI_HTTP_PORT}/loki/api/v1/push"
    assert f'url = "{push}"' in pipeline
    for label in ("namespace", "pod", "container"):
        assert f'target_label  = "{label}"' in pipeline
    # the flow table admits exactly this: the agents' namespace to Loki's pods on its HTTP port
    [push_flow] = [f for f in FLOWS if f.name == "logs-push"]
    assert (push_flow.to, push_flow.sources, push_flow.port) == (Namespace.MONITORING, (namespace,), LOKI_HTTP_PORT)
    assert push_flow.pod_labels == LOKI_PODS
    # discovery reads pods through the API server, the agents' only HTTPS destination
    assert namespace in API_ONLY_CLIENTS
    rbac = values["rbac"]["rules"] + values["rbac"]["clusterRules"]
    assert not any("secrets" in r["resources"] or "configmaps" in r["resources"] for r in rbac)


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_gpu_metrics_come_from_every_gpu_pool(plan, stack: str) -> None:
    """EKS: the DCGM exporter on every GPU node, placed by the pool contracts' label and taints. GKE: the
    cluster's managed DCGM package (the exporter chart cannot load GKE's driver on COS)."""
    from components.contracts import GPU_PRESENT_LABEL

    doc, cfg = plan(stack), config(stack)
    charts = [c for c in doc.by_type("kubernetes:helm.sh/v4:Chart") if c.name.endswith("-dcgm-exporter")]
    assert cfg.cluster.gpu_pools
    if stack.startswith("gcp"):
        assert not charts
        monitoring = doc.one("gcp:container/cluster:Cluster").inputs["monitoringConfig"]
        assert "DCGM" in monitoring["enableComponents"] and monitoring["managedPrometheus"]["enabled"] is True
        return
    [chart] = charts
    assert POD_SECURITY[Namespace(chart.inputs["namespace"])] == "privileged"
    values = chart.inputs["values"]
    [term] = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]
    # every GPU pool's taint is tolerated: the same tolerations the device plugin gets from the contracts
    plugin = next(c for c in doc.resources if c.name.endswith("nvidia-device-plugin") and "values" in c.inputs)
    assert values["tolerations"] == plugin.inputs["values"]["tolerations"] and values["tolerations"]
    assert values["serviceMonitor"]["enabled"] is False  # scraped by the declared `dcgm` target instead


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_drift_job_reads_the_datasets_bucket_and_pushes_where_prometheus_scrapes(plan, stack: str) -> None:
    from components import workloads
    from components.guardrails import PUSHGATEWAY_PODS, PUSHGATEWAY_PORT, SCRAPES

    doc, cfg = plan(stack), config(stack)
    drift = cfg.services.evidently.drift
    job = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-drift-job").inputs
    assert job["metadata"]["namespace"] == Namespace.MONITORING.value and job["spec"]["schedule"] == drift.schedule
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # its own identity: the service account bound to a cloud principal that may read the datasets bucket
    assert pod["serviceAccountName"] == workloads.DRIFT.service_account
    [account] = [
        sa.inputs["metadata"]
        for sa in doc.by_type("kubernetes:core/v1:ServiceAccount")
        if sa.inputs["metadata"]["name"] == workloads.DRIFT.service_account
    ]
    assert account["namespace"] == Namespace.MONITORING.value and account.get("annotations")
    assert [(g.purpose.value, g.access.value) for g in workloads.DRIFT.grants] == [("datasets", "read")]
    # the fetch step copies exactly the configured samples from that bucket
    [fetch] = pod["initContainers"]
    scheme, bucket = doc.outputs["buckets"]["datasets"].split("://")
    args = fetch["args"]
    assert args[args.index("--store") + 1] == {"s3": "s3", "gs": "gcs"}[scheme]
    assert args[args.index("--bucket") + 1] == bucket
    assert {a.split("=", 1)[1] for a in args if "=" in a} == {drift.reference, drift.current}
    # the drift step pushes to the Pushgateway's Service, with the alert's own threshold
    [compute] = pod["containers"]
    args = compute["args"]
    release = helm_release(doc, "prometheus-pushgateway")
    url = f"http://{release.inputs['name']}.{release.inputs['namespace']}.svc:{PUSHGATEWAY_PORT}"
    assert args[args.index("--pushgateway") + 1] == url
    assert float(args[args.index("--drift-share") + 1]) == cfg.services.prometheus.alerts.drift_share
    assert compute["image"].endswith(f"evidently-service:{cfg.services.evidently.version}")
    [scrape] = [t for t in SCRAPES if t.name == "pushgateway"]
    assert scrape.honor_labels and dict(scrape.selector) == PUSHGATEWAY_PODS
    monitor = doc.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "mlplatform-prometheus-scrape-pushgateway")
    assert monitor.inputs["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True
    # the code that runs is the code tests/test_drift_job.py runs
    code = doc.one("kubernetes:core/v1:ConfigMap", "mlplatform-drift-code").inputs["data"]
    for script in ("fetch_inputs.py", "compute_drift.py"):
        assert code[script] == (ROOT / "jobs" / "drift" / script).read_text()


# --- Grafana as its chart renders it (kube-prometheus-stack 88.5.3, grafana-community subchart 12.11.1) -------

KPS_PACKAGE = "kube-prometheus-stack-88.5.3.tgz"
SECRET_KEY_REF = "secretKeyRef"


def rendered_kps(doc: PlanDocument) -> list[dict]:
    """kube-prometheus-stack rendered from the pinned package with exactly the plan's values."""
    pytest.importorskip("helm_python")
    from mlplatform.manifests import render_release

    package = ROOT.parent / "shared" / "charts" / KPS_PACKAGE
    if not package.exists():
        pytest.skip(f"{package} is not present (../shared holds the pinned charts)")
    return render_release(kps(doc), package).objects


def grafana_deployment(objects: list[dict]) -> dict:
    [deployment] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-grafana")]
    return deployment


def grafana_ini(objects: list[dict]) -> dict[str, dict[str, str]]:
    """The rendered grafana.ini (the chart's ConfigMap named like the Deployment), section -> key -> value."""
    import configparser

    name = grafana_deployment(objects)["metadata"]["name"]
    [cm] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(cm["data"]["grafana.ini"])
    return {s: dict(ini[s]) for s in ini.sections()}


def postgres_server(doc: PlanDocument) -> dict[str, str]:
    """PGHOST and PGPORT of the bootstrap Job: the server in which it creates every service's database."""
    job = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    env = job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if e["name"] in ("PGHOST", "PGPORT")}


@pytest.mark.parametrize("stack", STACKS)
def test_a_replicated_grafana_shares_one_database(plan, stack: str) -> None:
    """Each Grafana replica with its own SQLite file (grafana/grafana conf/defaults.ini: `[database] type =
    sqlite3` under the data path, here an emptyDir) has its own users and sessions: a login made on one
    pod is unknown to the other, so users are logged out at random. Every replica must use one server
    database, here the platform's PostgreSQL, as the other services do."""
    doc = plan(stack)
    objects = rendered_kps(doc)
    replicas = int(grafana_deployment(objects)["spec"].get("replicas", 1))
    assert replicas == config(stack).services.prometheus.replicas
    database = grafana_ini(objects).get("database", {})
    if replicas > 1:
        assert database.get("type", "sqlite3") in ("postgres", "mysql"), f"{replicas} replicas, one SQLite each"
    # the platform's PostgreSQL (where the bootstrap Job makes the databases), over TLS as the other
    # services connect, in Grafana's own database
    pg = postgres_server(doc)
    assert database["type"] == "postgres" and database["host"] == f"{pg['PGHOST']}:{pg['PGPORT']}"
    # verified against Cloud SQL's CA; the AWS stacks name no RDS bundle (tests/test_postgres_tls.py)
    # in-cluster (data.postgres.mode): verify-full, the platform CA's certificate naming the Service clients use
    managed = {"gcp": "verify-ca", "aws": "require"}.get(doc.outputs["cloud"])
    expected = "verify-full" if config(stack).data.postgres.mode.value == "in-cluster" else managed
    assert database["ssl_mode"] == expected
    assert database["name"] == "grafana"
    assert not {"user", "password", "url"} & database.keys(), "credentials never in grafana.ini"


@pytest.mark.parametrize("stack", STACKS)
def test_replicated_grafana_alerts_as_one(plan, stack: str) -> None:
    """Without peers every replica runs its own alert scheduler and Alertmanager (a Grafana-managed rule
    notifies once per replica): the replicas gossip through a headless Service the chart renders, on the
    port their pods declare."""
    objects = rendered_kps(plan(stack))
    deployment = grafana_deployment(objects)
    if int(deployment["spec"].get("replicas", 1)) < 2:
        pytest.skip("one Grafana replica: nothing to agree with")
    alerting = grafana_ini(objects).get("unified_alerting", {})
    host, port = alerting["ha_peers"].rsplit(":", 1)
    name, namespace = host.split(".")[:2]
    [service] = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name]
    assert namespace == service["metadata"]["namespace"] and service["spec"]["clusterIP"] == "None"
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [grafana] = [c for c in pod["spec"]["containers"] if c["name"] == "grafana"]
    assert int(port) in {p["containerPort"] for p in grafana["ports"]}
    assert alerting["ha_listen_address"].startswith("${POD_IP}") and "POD_IP" in {e["name"] for e in grafana["env"]}


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_connects_as_its_own_role_from_a_secret(plan, stack: str) -> None:
    """User and password reach Grafana as GF_DATABASE_* variables from the `grafana-postgres` Secret (never a
    literal in the values); the Secret holds Grafana's generated password; the bootstrap Job creates the
    role and database, and the release waits for it."""
    doc = plan(stack)
    [grafana] = [c for c in grafana_deployment(rendered_kps(doc))["spec"]["template"]["spec"]["containers"]
                 if c["name"] == "grafana"]  # fmt: skip
    env = {e["name"]: e for e in grafana.get("env", [])}
    refs = {name: env[name]["valueFrom"][SECRET_KEY_REF] for name in ("GF_DATABASE_USER", "GF_DATABASE_PASSWORD")}
    assert {r["name"] for r in refs.values()} == {"grafana-postgres"}
    assert (refs["GF_DATABASE_USER"]["key"], refs["GF_DATABASE_PASSWORD"]["key"]) == ("username", "password")
    secret = doc.one("kubernetes:core/v1:Secret", "mlplatform-prometheus-grafana-db-secret")
    meta = secret.inputs["metadata"]
    assert (meta["name"], meta["namespace"]) == ("grafana-postgres", "monitoring")
    # the managed adapters' mlplatform-grafana-db, in-cluster PostgreSQL's mlplatform-postgres-grafana-db
    [password] = [r for r in doc.by_type("random:index/randomPassword:RandomPassword") if r.name.endswith("grafana-db")]
    assert password.urn in secret.dependencies
    job = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    script = job.inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "-v svc=grafana " in script
    assert job.urn in kps(doc).dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_reaches_postgresql_and_no_other_data_service(plan, stack: str) -> None:
    """The flow table lets `monitoring` reach the data services' PostgreSQL port only, decided with the
    stack's CNI semantics (mlplatform/netpol.py) for a Grafana pod as the chart labels it."""
    import ipaddress

    from components.cluster.aws.network import VPC_CIDR
    from components.guardrails import DATA_PORTS
    from mlplatform.connections import addresses
    from mlplatform.netpol import Outside, Pod, PolicySet

    doc = plan(stack)
    addrs = addresses(doc)
    labels = grafana_deployment(rendered_kps(doc))["spec"]["template"]["metadata"]["labels"]
    grafana = Pod("monitoring", labels, addrs.pod)
    host = doc.outputs["postgresHost"]
    server: Pod | Outside
    if config(stack).data.postgres.mode.value == "in-cluster":  # a CloudNativePG instance pod in `data`
        from components.guardrails import CNPG_INSTANCE_PODS

        server = Pod(Namespace.DATA.value, CNPG_INSTANCE_PODS, addrs.pod)
    else:
        try:  # Cloud SQL's private address
            ip = str(ipaddress.ip_address(host))
        except ValueError:  # RDS: a name for an address in the VPC's private subnets
            ip = str(ipaddress.ip_network(VPC_CIDR)[-100])
        server = Outside(ip, "PostgreSQL")
    port = int(postgres_server(doc)["PGPORT"])
    policies = PolicySet(doc, addrs.cni)
    verdict = policies.decide(grafana, server, port)
    assert verdict.allowed, verdict.why
    for other in set(DATA_PORTS) - {port}:
        assert not policies.decide(grafana, server, other).allowed, other


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_reads_only_configmaps_in_monitoring(plan, stack: str) -> None:
    """The dashboard and data source sidecars list ConfigMaps in `monitoring` only, and Grafana's service
    account is bound to nothing more: no ClusterRole binding (the chart's default grants ConfigMaps and
    Secrets in every namespace), RoleBindings in `monitoring` only, to a Role without Secrets."""
    doc = plan(stack)
    objects = rendered_kps(doc)
    pod = grafana_deployment(objects)["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]

    def binds_grafana(o: dict) -> bool:
        return any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in o.get("subjects") or [])

    assert not [o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding" and binds_grafana(o)]
    bindings = [o for o in objects if o["kind"] == "RoleBinding" and binds_grafana(o)]
    assert bindings and {b["metadata"]["namespace"] for b in bindings} == {"monitoring"}
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): o.get("rules") or [] for o in objects
             if o["kind"] == "Role"}  # fmt: skip
    for role in doc.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role"):
        meta = role.inputs["metadata"]
        roles[(meta["namespace"], meta["name"])] = role.inputs.get("rules") or []
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        rules = roles[("monitoring", binding["roleRef"]["name"])]
        granted = {r for rule in rules for r in rule.get("resources") or []}
        assert granted and not granted & {"secrets", "*"}, granted
    sidecars = [c for c in pod["containers"] if c["name"].startswith("grafana-sc-")]
    assert {c["name"] for c in sidecars} >= {"grafana-sc-dashboard", "grafana-sc-datasources"}
    for sidecar in sidecars:
        env = {e["name"]: e.get("value") for e in sidecar.get("env", [])}
        # k8s-sidecar: NAMESPACE unset is its own namespace; RESOURCE configmap lists no Secrets
        assert env.get("NAMESPACE", "monitoring") == "monitoring" and env["RESOURCE"] == "configmap", sidecar["name"]
    # nothing the sidecars should load lies elsewhere: the chart's and the platform's dashboards
    dashboards = [o["metadata"]["namespace"] for o in objects if o["kind"] == "ConfigMap"
                  and {"grafana_dashboard", "grafana_datasource"} & set(o["metadata"].get("labels") or {})]  # fmt: skip
    dashboards += [
        c.inputs["metadata"]["namespace"]
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if "grafana_dashboard" in (c.inputs["metadata"].get("labels") or {})
    ]
    assert dashboards and set(dashboards) == {"monitoring"}
