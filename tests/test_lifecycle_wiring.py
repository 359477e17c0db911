"""The lifecycle layer is wired to what the other layers created, on every stack: each chart's backend is
the data layer's endpoint, each service account a chart runs as is the one bound to a cloud identity, Ray
reports to the MLflow URI, and no credential or unpinned image reaches a Helm values document or a spec."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import workloads
from components.contracts import GPU_RESOURCE, POOL_LABEL
from components.guardrails import FLOWS, NAME_LABEL
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import REDACTED, Registration, mock_password
from mlplatform.plan.synth import PROJECT_DIR
from tests.support.crds import plain, spec_schema
from tests.support.graph import depends

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind
# libpq's sslmode per stack: Cloud SQL's certificate is verified against the instance's CA (it names no
# address: verify-ca); the AWS stacks name no RDS bundle, so TLS without verification (tests/test_postgres_tls.py)
SSL_MODE = {"dev": "require", "prod": "require", "gcp-dev": "verify-ca", "gcp-prod": "verify-ca"}


def ssl_mode(stack: str) -> str:
    """libpq's sslmode for the stack's PostgreSQL: in the cluster (data.postgres.mode, local and dev by default)
    verify-full, the platform CA's certificate naming the Service clients use; managed as SSL_MODE says."""
    cfg = load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack)
    return "verify-full" if cfg.data.postgres.mode.value == "in-cluster" else SSL_MODE[stack]


CLOUD_STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")  # a workload identity is a cloud principal (local: a key)
IDENTITY_ANNOTATIONS = {"eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"}
DIGEST_ANNOTATION = "annotations.mlplatform.io/inputs-sha256"


def chart(doc: PlanDocument, name: str) -> dict[str, Any]:
    found = [r for r in doc.resources if r.type.startswith("kubernetes:helm.sh/") and r.name == f"mlplatform-{name}"]
    assert len(found) == 1, f"{doc.stack}: {name}"
    return found[0].inputs["values"]


def release(doc: PlanDocument, name: str) -> Registration:
    return next(r for r in doc.resources if r.type.startswith("kubernetes:helm.sh/") and r.name == f"mlplatform-{name}")


def ray_spec(doc: PlanDocument) -> dict[str, Any]:
    return doc.one("kubernetes:ray.io/v1:RayCluster", "mlplatform-kuberay-cluster").inputs["spec"]


def identity_accounts(doc: PlanDocument) -> dict[str, dict[str, str]]:
    """name -> annotations of every service account that carries a cloud identity."""
    return {
        sa.inputs["metadata"]["name"]: sa.inputs["metadata"].get("annotations", {})
        for sa in doc.by_type("kubernetes:core/v1:ServiceAccount")
    }


def feature_store(doc: PlanDocument) -> dict[str, Any]:
    encoded = chart(doc, "feast")["feature_store_yaml_base64"]
    return yaml.safe_load(base64.b64decode(encoded))


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def workload_documents(doc: PlanDocument) -> Iterator[tuple[str, Any]]:
    """Every Helm values document and every directly declared pod-bearing spec."""
    for r in doc.resources:
        if r.type.startswith("kubernetes:helm.sh/"):
            yield r.name, r.inputs.get("values", {})
        elif r.type in ("kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job", "kubernetes:ray.io/v1:RayCluster"):
            yield r.name, r.inputs.get("spec", {})


@pytest.mark.parametrize("stack", STACKS)
def test_mlflow_backend_is_the_data_layers_database(plan, stack: str) -> None:
    doc = plan(stack)
    values = chart(doc, "mlflow")
    backend = values["backendStore"]
    assert backend["postgres"]["enabled"] is True
    assert backend["postgres"]["host"] == doc.outputs["postgresHost"]
    assert backend["postgres"]["database"] == "mlflow"
    secret_name = backend["existingDatabaseSecret"]["name"]
    secret = next(s for s in doc.by_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] == secret_name)
    assert secret.name == "mlplatform-mlflow-db-secret"
    assert values["extraEnvVars"]["PGSSLMODE"] == ssl_mode(stack)
    assert values["artifactRoot"]["proxiedArtifactStorage"] is True
    assert values["artifactRoot"]["defaultArtifactsDestination"].startswith(doc.outputs["buckets"]["artifacts"] + "/")
    assert values["replicaCount"] == (2 if "prod" in stack else 1)
    if "prod" in stack:
        zone_terms = values["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert {t["podAffinityTerm"]["topologyKey"] for t in zone_terms} >= {"topology.kubernetes.io/zone"}


@pytest.mark.parametrize("stack", STACKS)
def test_releases_wait_for_their_database(plan, stack: str) -> None:
    """Each database client starts after its role and database exist: the bootstrap Job, on both clouds."""
    doc = plan(stack)
    ready = {doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap").urn}
    for name in ("mlflow", "feast", "airflow"):
        assert ready <= set(release(doc, name).dependencies), name


@pytest.mark.parametrize("stack", STACKS)
def test_feast_stores_are_the_data_and_storage_layers(plan, stack: str) -> None:
    doc = plan(stack)
    store = feature_store(doc)
    registry = store["registry"]
    assert registry["registry_type"] == "sql"
    assert f"@{doc.outputs['postgresHost']}:5432/feast?sslmode={ssl_mode(stack)}" in registry["path"]
    assert "${FEAST_REGISTRY_PASSWORD}" in registry["path"]
    online = store["online_store"]
    assert online["type"] == "redis"
    assert online["connection_string"].split(":")[0] == doc.outputs["redisHost"]
    assert "ssl=true" in online["connection_string"].split(",")
    assert "password=${FEAST_REDIS_PASSWORD}" in online["connection_string"].split(",")
    assert online["redis_type"] == ("redis_cluster" if stack == "prod" else "redis")
    # the Dask store, whose reads sign with the workload identity (components/lifecycle/feast.py)
    assert store["offline_store"] == {"type": "file"}
    # every ${VAR} the YAML needs is set from a Secret in the feature server
    env = {e["name"]: e for e in chart(doc, "feast")["extraEnvs"]}
    for var in re.findall(r"\$\{(\w+)\}", yaml.safe_dump(store)):
        assert "secretKeyRef" in env[var]["valueFrom"], var
    assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == doc.outputs["kafkaBootstrapServers"]


def test_memorystore_ca_is_mounted_where_the_yaml_expects_it(gcp_dev: PlanDocument) -> None:
    ca_opt = next(
        o for o in feature_store(gcp_dev)["online_store"]["connection_string"].split(",") if "ssl_ca_certs" in o
    )
    ca_path = Path(ca_opt.split("=", 1)[1])
    cm = gcp_dev.one("kubernetes:core/v1:ConfigMap", "mlplatform-feast-redis-ca")
    assert ca_path.name in cm.inputs["data"]
    for values in (chart(gcp_dev, "feast"), chart(gcp_dev, "airflow")):
        volume = next(
            v for v in values["volumes"] if v.get("configMap", {}).get("name") == cm.inputs["metadata"]["name"]
        )
        mount = next(m for m in values["volumeMounts"] if m["name"] == volume["name"])
        assert mount["mountPath"] == str(ca_path.parent)


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_charts_run_as_the_identity_bound_service_accounts(plan, stack: str) -> None:
    doc = plan(stack)
    accounts = identity_accounts(doc)

    def bound(name: str, spec: Any) -> None:
        assert name == spec.service_account, (name, spec.key)
        assert set(accounts[name]) & IDENTITY_ANNOTATIONS, f"{name} carries no cloud identity"

    bound(chart(doc, "mlflow")["serviceAccount"]["name"], workloads.MLFLOW)
    assert chart(doc, "mlflow")["serviceAccount"]["create"] is False
    bound(chart(doc, "feast")["serviceAccount"]["name"], workloads.FEAST)
    airflow = chart(doc, "airflow")
    for component in ("scheduler", "apiServer", "triggerer", "dagProcessor", "workers"):
        assert airflow[component]["serviceAccount"]["create"] is False, component
        bound(airflow[component]["serviceAccount"]["name"], workloads.AIRFLOW)
    spec = ray_spec(doc)
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        bound(group["template"]["spec"]["serviceAccountName"], workloads.RAY)
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").inputs["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]
    bound(cron["serviceAccountName"], workloads.FEAST)
    assert airflow["env"] and {"name": "AIRFLOW_VAR_TRAINING_SERVICE_ACCOUNT", "value": "training"} in airflow["env"]
    bound("training", workloads.TRAINING)


@pytest.mark.parametrize("stack", STACKS)
def test_ray_reports_to_mlflow_and_lands_on_the_gpu_pools(plan, stack: str) -> None:
    doc = plan(stack)
    spec = ray_spec(doc)
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        [container] = group["template"]["spec"]["containers"]
        assert {"name": "MLFLOW_TRACKING_URI", "value": doc.outputs["mlflowTrackingUri"]} in container["env"]
    gpu_groups = {g["groupName"]: g for g in spec["workerGroupSpecs"] if g["groupName"] != "cpu"}
    assert set(gpu_groups) == set(doc.outputs["gpuPools"])
    # the contract as the cluster layer applied it to the nodes (EKS node groups or GKE node pools)
    for name, group in gpu_groups.items():
        pod = group["template"]["spec"]
        node_labels, node_taints = _node_pool_contract(doc, name)
        assert pod["nodeSelector"].items() <= node_labels.items()
        assert pod["nodeSelector"][POOL_LABEL] == name
        for taint in node_taints:
            assert {**taint, "operator": "Equal"} in pod["tolerations"]
        [container] = pod["containers"]
        assert container["resources"]["limits"][GPU_RESOURCE] == container["resources"]["requests"][GPU_RESOURCE]
        assert group["minReplicas"] == 0


def _node_pool_contract(doc: PlanDocument, pool: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Labels and taints (Kubernetes spelling) of the pool's nodes as the cloud API is told."""
    effects = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
    if doc.stack.startswith("gcp"):
        node_pool = doc.one("gcp:container/nodePool:NodePool", f"mlplatform-{pool}").inputs["nodeConfig"]
        return node_pool["labels"], [{**t, "effect": effects[t["effect"]]} for t in node_pool.get("taints", [])]
    group = doc.one("aws:eks/nodeGroup:NodeGroup", f"mlplatform-{pool}").inputs
    return group["labels"], [{**t, "effect": effects[t["effect"]]} for t in group.get("taints", [])]


@pytest.mark.parametrize("stack", STACKS)
def test_chart_pods_carry_the_labels_and_ports_their_network_policies_admit(plan, stack: str) -> None:
    doc = plan(stack)
    flows = {f.name: f for f in FLOWS}
    mlflow = chart(doc, "mlflow")
    assert mlflow["nameOverride"] == flows["mlflow"].app  # the chart's app.kubernetes.io/name
    assert mlflow["service"]["containerPort"] == flows["mlflow"].port
    feast = chart(doc, "feast")
    assert feast["nameOverride"] == flows["feature-server"].app and feast["feast_mode"] == "online"
    assert doc.outputs["mlflowTrackingUri"] == f"http://{mlflow['fullnameOverride']}.mlplatform.svc.cluster.local:80"
    head_ports = {
        p["containerPort"] for p in ray_spec(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert {flows["ray-jobs"].port, flows["ray-client"].port} <= head_ports
    assert all(f.app == "kuberay" for f in FLOWS if f.name.startswith("ray-"))  # KubeRay's label on Ray pods
    policies = {p.inputs["metadata"]["name"]: p for p in doc.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert policies["allow-mlflow-in"].inputs["spec"]["podSelector"]["matchLabels"] == {
        NAME_LABEL: mlflow["nameOverride"]
    }


# The MLflow chart has no existing-Secret option for its Flask key and re-randomises it at every client-side
# render (components/lifecycle/mlflow.py says why the value is passed); it must arrive as a Pulumi secret.
SECRETS_IN_VALUES_BY_DESIGN = {("mlplatform-mlflow", "flaskServerSecretKey")}


CREDENTIAL_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|CONNECTION)", re.I)


def generated_passwords(doc: PlanDocument) -> list[str]:
    """The value each generated password has in this plan (the mocks make every one distinct)."""
    return [
        mock_password(p.name, int(p.inputs["length"]))
        for p in doc.by_type("random:index/randomPassword:RandomPassword")
    ]


def credential_problems(name: str, document: Any, passwords: list[str]) -> list[str]:
    """Where a document carries a credential instead of a reference to a Secret."""
    problems = []
    for path, value in leaves(document):
        if path.endswith(DIGEST_ANNOTATION):
            continue  # a sha256 over the bootstrap passwords, kept secret in state; not a credential
        if (name, path) in SECRETS_IN_VALUES_BY_DESIGN:
            if value != REDACTED:
                problems.append(f"{name}: {path} must stay a Pulumi secret")
            continue
        if value == REDACTED or (isinstance(value, str) and any(p in value for p in passwords)):
            problems.append(f"{name}: {path}")
    for env in _env_lists(document):
        for var in env:
            if "value" in var and CREDENTIAL_NAME.search(str(var.get("name", ""))):
                problems.append(f"{name}: env {var['name']} is a literal")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_no_credential_in_values_or_specs(plan, stack: str) -> None:
    """Secrets reach pods only by reference: no redacted secret, no generated password and no literal value
    under a credential-looking name in any values document or directly declared spec."""
    doc = plan(stack)
    passwords = generated_passwords(doc)
    assert len(set(passwords)) == len(passwords) > 3
    assert [p for name, d in workload_documents(doc) for p in credential_problems(name, d, passwords)] == []


def _env_lists(document: Any) -> Iterator[list[dict[str, Any]]]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("env", "extraEnvs") and isinstance(value, list):
                yield value
            else:
                yield from _env_lists(value)
    elif isinstance(document, list):
        for item in document:
            yield from _env_lists(item)


def test_credential_check_catches_a_password_in_values(dev: PlanDocument) -> None:
    """The check above fires on each way a credential could leak into a chart's values."""
    passwords = generated_passwords(dev)
    values = json.loads(json.dumps(chart(dev, "mlflow")))
    values["backendStore"]["postgres"]["password"] = f"pw={passwords[1]}"
    values["extraEnvVars"] = {}
    values["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    values["flaskServerSecretKey"] = "plaintext"
    assert sorted(credential_problems("mlplatform-mlflow", values, passwords)) == [
        "mlplatform-mlflow: backendStore.postgres.password",
        "mlplatform-mlflow: env DB_PASSWORD is a literal",
        "mlplatform-mlflow: flaskServerSecretKey must stay a Pulumi secret",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned(plan, stack: str) -> None:
    doc = plan(stack)
    problems = []
    for name, document in workload_documents(doc):
        for path, value in leaves(document):
            if path.endswith(".image") or path == "image":
                tag = str(value).rsplit("/", 1)[-1].partition(":")[2]
                if not tag or tag == "latest":
                    problems.append(f"{name}: {path} = {value}")
            if (path.endswith("image.tag") or path.endswith("defaultAirflowTag")) and value in ("", None, "latest"):
                problems.append(f"{name}: {path} = {value!r}")
    assert problems == []
    # the charts whose default tag is "" (= appVersion) are pinned explicitly, to the snapshot's appVersion
    assert chart(doc, "mlflow")["image"]["tag"] and chart(doc, "feast")["image"]["tag"]


@pytest.mark.parametrize("stack", STACKS)
def test_airflow_is_wired_to_the_platform(plan, stack: str) -> None:
    doc = plan(stack)
    values = chart(doc, "airflow")
    assert values["executor"] == "KubernetesExecutor"
    assert values["pgbouncer"]["enabled"] is True
    assert values["postgresql"]["enabled"] is False
    secrets = {s.inputs["metadata"]["name"] for s in doc.by_type("kubernetes:core/v1:Secret")}
    for ref in (
        values["data"]["metadataSecretName"],
        values["pgbouncer"]["configSecretName"],
        values["pgbouncer"]["metricsExporterSidecar"]["statsSecretName"],
        values["fernetKeySecretName"],
        values["apiSecretKeySecretName"],
        values["jwtSecretName"],
        *(s["secretName"] for s in values["secret"]),
    ):
        assert ref in secrets, ref
    assert values["createUserJob"]["enabled"] is False  # its default user has the password "admin"
    assert values["config"]["logging"]["remote_base_log_folder"].startswith(doc.outputs["buckets"]["logs"] + "/")
    # no remote DAG source unless the stack names one: the platform's DAGs come from its own ConfigMap
    assert values["dags"]["gitSync"]["enabled"] is False
    [dag_map] = [c for c in doc.by_type("kubernetes:core/v1:ConfigMap") if c.name == "mlplatform-airflow-platform-dags"]
    [volume] = [
        v
        for v in values["volumes"]
        if "configMap" in v and v["configMap"]["name"] == dag_map.inputs["metadata"]["name"]
    ]
    assert any(m["name"] == volume["name"] and m["readOnly"] for m in values["volumeMounts"])
    # the chart's migration would deadlock a waiting install as a hook and block upgrades as a Job: the
    # program's own Job migrates, before the release
    assert values["migrateDatabaseJob"] == {"enabled": False}
    [migrate] = [r for r in doc.by_type("kubernetes:batch/v1:Job") if r.name.endswith("airflow-db-migrate")]
    [airflow] = [r for r in doc.by_type("kubernetes:helm.sh/v3:Release") if r.inputs.get("name") == "airflow"]
    assert migrate.urn in airflow.dependencies
    env = {e["name"]: e.get("value") for e in values["env"]}
    assert env["AIRFLOW_VAR_MLFLOW_TRACKING_URI"] == doc.outputs["mlflowTrackingUri"]
    assert env["AIRFLOW_VAR_RAY_ADDRESS"] == doc.outputs["rayDashboardUrl"]
    assert json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])["extra"]["namespace"] == "training"
    expected_schedulers = 2 if "prod" in stack else 1
    assert values["scheduler"]["replicas"] == expected_schedulers
    assert bool(values["scheduler"]["topologySpreadConstraints"]) == ("prod" in stack)
    # the brokers reach task pods through an optional ConfigMap made once Kafka exists, so the release does
    # not wait the 25-30 minutes Kafka takes to create; `extraEnv`, since the chart's `env` renders only values
    assert all("value" in e for e in values["env"])
    [brokers] = [e for e in yaml.safe_load(values["extraEnv"]) if e["name"] == "KAFKA_BOOTSTRAP_SERVERS"]
    ref = brokers["valueFrom"]["configMapKeyRef"]
    assert ref["optional"] is True
    [kafka_map] = [
        c for c in doc.by_type("kubernetes:core/v1:ConfigMap") if c.inputs["metadata"].get("name") == ref["name"]
    ]
    assert kafka_map.inputs["metadata"]["namespace"] == "mlplatform"
    assert kafka_map.inputs["data"][ref["key"]] == doc.outputs["kafkaBootstrapServers"]
    managed = [r for r in doc.resources if r.type in ("aws:msk/cluster:Cluster", "gcp:managedkafka/cluster:Cluster")]
    if managed:
        # a managed cluster's brokers are known once it exists: the ConfigMap waits for it
        [kafka] = managed
        assert kafka.urn in kafka_map.dependencies
    else:
        # in the cluster the address is the bootstrap Service Strimzi makes for the Kafka resource,
        # `<cluster>-kafka-bootstrap.<namespace>.svc` (internal listener), known before Kafka runs
        [kafka] = doc.by_type("kubernetes:kafka.strimzi.io/v1:Kafka")
        meta = kafka.inputs["metadata"]
        [listener] = kafka.inputs["spec"]["kafka"]["listeners"]
        bootstrap = f"{meta['name']}-kafka-bootstrap.{meta['namespace']}.svc:{int(listener['port'])}"
        assert doc.outputs["kafkaBootstrapServers"] == bootstrap
    assert not depends(doc, release(doc, "airflow"), kafka)


@pytest.mark.parametrize("stack", STACKS)
def test_reference_dags_use_only_what_airflow_is_given(plan, stack: str) -> None:
    """The DAGs Airflow is given (the platform's ConfigMap) read Airflow variables and connections the
    platform actually sets."""
    doc = plan(stack)
    values = chart(doc, "airflow")
    provided = {e["name"] for e in values["env"]}
    [dag_map] = [c for c in doc.by_type("kubernetes:core/v1:ConfigMap") if c.name == "mlplatform-airflow-platform-dags"]
    shipped = dag_map.inputs["data"]
    on_disk = Path(__file__).resolve().parents[1] / "dags"
    # every DAG file at the top; the packages the DAGs import beside them (`<package>.<module>.py` keys)
    assert {n for n in shipped if n.endswith(".py") and n.count(".") == 1} == {p.name for p in on_disk.glob("*.py")}
    text = "\n".join(shipped.values())
    used_vars = set(re.findall(r"var\.value\.(\w+)", text)) | set(re.findall(r'Variable\.get\("(\w+)"', text))
    used_conns = set(re.findall(r'conn_id="(\w+)"', text))
    assert used_vars and used_conns
    assert {f"AIRFLOW_VAR_{v.upper()}" for v in used_vars} <= provided
    assert {f"AIRFLOW_CONN_{c.upper()}" for c in used_conns} <= provided


def test_raycluster_validates_against_the_kuberay_crd(plan) -> None:
    import jsonschema

    strict = spec_schema("ray.io_rayclusters.yaml", "v1")
    for stack in STACKS:
        spec = plain(ray_spec(plan(stack)))
        jsonschema.validate(spec, strict)
    spec["workerGroupSpecs"][-1]["maxReplica"] = 3  # misspelt: the API server would drop it silently
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, strict)


@pytest.mark.parametrize("stack", STACKS)
def test_the_ray_autoscaler_owns_the_worker_counts(plan, stack: str) -> None:
    """A replica count the program sends is re-applied (server-side apply, forced) on every update of the
    RayCluster, scaling away the workers the autoscaler started: with in-tree autoscaling none is sent, and
    the CRD's default starts each group at its minimum."""
    spec = ray_spec(plan(stack))
    assert spec["enableInTreeAutoscaling"] is True
    crd = spec_schema("ray.io_rayclusters.yaml", "v1")["properties"]["workerGroupSpecs"]["items"]["properties"]
    for group in spec["workerGroupSpecs"]:
        assert "replicas" not in group, group["groupName"]
        assert crd["replicas"]["default"] <= group["minReplicas"]


def test_pgbouncer_rolls_when_what_it_reads_at_start_changes(plan, tmp_path: Path) -> None:
    """PgBouncer reads its ini, users and the database CA only at start (the chart mounts the first two with
    subPath; PgBouncer loads server_tls_ca_file in sbuf_tls_setup): a new CA must change its pod template."""
    from tests.support.postgres import CertificateAuthority, rds_ca_plan

    def checksum(doc: PlanDocument) -> str:
        return chart(doc, "airflow")["pgbouncer"]["podAnnotations"]["checksum/pgbouncer-config"]

    first = rds_ca_plan(CertificateAuthority.create(tmp_path, "rds-ca-1").cert)
    second = rds_ca_plan(CertificateAuthority.create(tmp_path, "rds-ca-2").cert)
    assert checksum(first) != checksum(second) and checksum(first) != checksum(plan("dev"))
