"""Backups of in-cluster PostgreSQL (components/data/in_cluster/backups.py), on the stacks whose PostgreSQL runs in
the cluster (dev, gcp-dev, local) and against those where it is managed (prod, gcp-prod):

- the ObjectStore validates strictly against its CRD at the pinned plugin (committed: tests/support/upstream_crds),
  the ScheduledBackup and the Cluster as patched (spec.plugins, serviceAccountTemplate) against the shared
  CloudNativePG CRDs, so no field is pruned silently;
- one identity writes the backups bucket and nothing else, bound to the service account CloudNativePG makes for
  the Cluster (IRSA, Workload Identity, a SeaweedFS key), and the ObjectStore uses exactly it;
- the operator <-> plugin mTLS pair, issued by the plan from the platform's CA, completes a real TLS 1.3 handshake
  under the operator's rules (it trusts the server Secret's tls.crt and checks the name `barman-cloud`; the plugin
  trusts the client Secret's tls.crt), and fails with a wrong name or a server certificate used as a client's;
- the pods the plugin adds (its Deployment, the sidecar it injects) pass `data`'s Pod Security level, and their
  requests are in plan's idle requests;
- the flows (operator -> plugin, plugin -> API server, instances -> object store) pass the stack's policies;
- the policy pack's backup rule covers the Cluster;
- the chart's cert-manager Issuer is dropped by the post-renderer Helm runs.
"""

from __future__ import annotations

import copy
import functools
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.contracts import Access, BucketGrant, BucketPurpose, Namespace, bucket_purposes
from components.data.in_cluster import backups
from components.guardrails import BARMAN_CLOUD_PODS, CNPG_INSTANCE_PODS, CNPG_OPERATOR_PODS, POD_SECURITY
from components.storage.local import identities_file
from components.workloads import POSTGRES_BACKUP_KEY, postgres_backup_workloads
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.connections import barman_connections, connections
from mlplatform.estimate.requests import barman_sidecars, idle_requests
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from mlplatform.podsecurity import check_pod, missing_requests
from policy.engine import evaluate, stack_from_plan
from policy.rules import all_rules
from tests.support.crds import PROJECT_CRDS, plain, spec_schema
from tests.support.plan_tls import server_certificate

IN_CLUSTER = ("dev", "gcp-dev", "local")
MANAGED = ("prod", "gcp-prod")
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
PATCH = "kubernetes:postgresql.cnpg.io/v1:ClusterPatch"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
SCHEDULED = "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT.parent / "shared" / "charts" / "plugin-barman-cloud-0.7.0.tgz"


@pytest.fixture(scope="module", params=IN_CLUSTER)
def doc(request: pytest.FixtureRequest, plan: Any) -> PlanDocument:
    return plan(request.param)


@functools.cache
def object_store_schema() -> dict[str, Any]:
    return spec_schema("barmancloud.cnpg.io_objectstores.yaml", "v1", directory=PROJECT_CRDS)


@functools.cache
def cluster_schema() -> dict[str, Any]:
    return spec_schema("postgresql.cnpg.io_clusters.yaml", "v1")


def _spec(doc: PlanDocument, type_: str) -> dict[str, Any]:
    return plain(doc.one(type_).inputs)["spec"]


# -- the custom resources as the API server receives them ---------------------------------------------------


def test_the_object_store_validates_strictly_against_the_pinned_crd(doc: PlanDocument) -> None:
    store = plain(doc.one(OBJECT_STORE).inputs)
    assert (store["metadata"]["name"], store["metadata"]["namespace"]) == (backups.OBJECT_STORE, "data")
    jsonschema.validate(store["spec"], object_store_schema())


def test_a_misspelt_object_store_field_is_refused(plan: Any) -> None:
    spec = _spec(plan("dev"), OBJECT_STORE)
    schema = object_store_schema()
    broken = copy.deepcopy(spec)
    broken["configuration"]["s3Credentials"] = {"inheritFromIamRole": True}
    for wrong in (broken, {**spec, "retention": "14d"}):
        with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
            jsonschema.validate(wrong, schema)
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate({**spec, "retentionPolicy": "14 days"}, schema)


def test_the_patched_cluster_and_the_scheduled_backup_validate_against_the_cnpg_crds(doc: PlanDocument) -> None:
    """The Cluster as the API server holds it after both applies (the data layer's fields and the patch's, each
    with its own field manager), and the ScheduledBackup, strictly."""
    cluster, patch = _spec(doc, CLUSTER), _spec(doc, PATCH)
    assert not set(cluster) & set(patch), "the patch would take fields over from the data layer"
    jsonschema.validate({**cluster, **patch}, cluster_schema())
    patched = doc.one(PATCH).inputs
    assert (patched["kind"], patched["metadata"]["name"]) == ("Cluster", doc.one(CLUSTER).inputs["metadata"]["name"])
    jsonschema.validate(_spec(doc, SCHEDULED), spec_schema("postgresql.cnpg.io_scheduledbackups.yaml", "v1"))


def test_a_misspelt_plugin_entry_is_refused(plan: Any) -> None:
    patch = _spec(plan("dev"), PATCH)
    wrong = copy.deepcopy(patch)
    wrong["plugins"][0]["isWalArchiver"] = wrong["plugins"][0].pop("isWALArchiver")
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        jsonschema.validate({**_spec(plan("dev"), CLUSTER), **wrong}, cluster_schema())


def _data_config(stack: str) -> Any:
    return load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).data


def test_wal_is_archived_daily_backups_are_scheduled_and_kept_as_configured(doc: PlanDocument) -> None:
    pg = _data_config(doc.stack).postgres
    [entry] = _spec(doc, PATCH)["plugins"]
    assert entry == {
        "name": "barman-cloud.cloudnative-pg.io",
        "isWALArchiver": True,
        "parameters": {"barmanObjectName": backups.OBJECT_STORE},
    }
    store = _spec(doc, OBJECT_STORE)
    assert store["retentionPolicy"] == f"{pg.backup_retention_days}d"
    scheduled = _spec(doc, SCHEDULED)
    assert scheduled["method"] == "plugin" and scheduled["pluginConfiguration"] == {"name": entry["name"]}
    assert scheduled["cluster"]["name"] == doc.one(CLUSTER).inputs["metadata"]["name"]
    # six fields, seconds first: once a day at a fixed time
    seconds, minutes, hours, *rest = scheduled["schedule"].split()
    assert len(rest) == 3 and all(f.isdigit() for f in (seconds, minutes, hours)) and rest == ["*", "*", "*"]


# -- identity: exactly one writer of exactly one bucket -------------------------------------------------------


def test_only_in_cluster_postgres_gets_a_backups_bucket_and_identity(plan: Any) -> None:
    for stack in IN_CLUSTER + MANAGED:
        doc = plan(stack)
        has = bool(doc.by_type(OBJECT_STORE))
        assert has is (stack in IN_CLUSTER), stack
        assert ("backups" in doc.outputs["buckets"]) is has, stack
        assert (POSTGRES_BACKUP_KEY in doc.outputs["workloadIdentities"]) is has, stack
    grants = {w.key: w.grants for w in postgres_backup_workloads(_data_config("dev"))}
    assert grants == {POSTGRES_BACKUP_KEY: (BucketGrant(BucketPurpose.BACKUPS, Access.READ_WRITE),)}
    assert postgres_backup_workloads(_data_config("prod")) == ()
    assert BucketPurpose.BACKUPS not in bucket_purposes([])


def test_aws_backups_use_irsa_bound_to_the_clusters_service_account(plan: Any) -> None:
    import json

    doc = plan("dev")
    bucket = doc.outputs["buckets"]["backups"]
    store = _spec(doc, OBJECT_STORE)["configuration"]
    assert store["destinationPath"] == bucket and store["s3Credentials"] == {"inheritFromIAMRole": True}
    assert "endpointURL" not in store  # S3's own HTTPS endpoint
    role = doc.one("aws:iam/role:Role", f"mlplatform-{POSTGRES_BACKUP_KEY}")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = [v for s in trust["Statement"] for k, v in s["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:data:postgres"]  # CloudNativePG names the account after the Cluster
    policy = json.loads(doc.one("aws:iam/rolePolicy:RolePolicy", f"mlplatform-{POSTGRES_BACKUP_KEY}").inputs["policy"])
    arn = "arn:aws:s3:::" + bucket.removeprefix("s3://")
    resources = {r for s in policy["Statement"] if s["Sid"] != "BucketKey" for r in [s["Resource"]]}
    assert resources == {arn, f"{arn}/*"}
    annotations = _spec(doc, PATCH)["serviceAccountTemplate"]["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": doc.outputs["workloadIdentities"][POSTGRES_BACKUP_KEY]}


def test_gcp_backups_use_workload_identity_on_the_backups_bucket_only(plan: Any) -> None:
    doc = plan("gcp-dev")
    store = _spec(doc, OBJECT_STORE)["configuration"]
    assert store["googleCredentials"] == {"gkeEnvironment": True}
    assert store["destinationPath"] == doc.outputs["buckets"]["backups"]
    email = doc.outputs["workloadIdentities"][POSTGRES_BACKUP_KEY]
    member = f"serviceAccount:{email}"
    grants = [
        r.inputs for r in doc.by_type("gcp:storage/bucketIAMMember:BucketIAMMember") if r.inputs["member"] == member
    ]
    bucket = doc.outputs["buckets"]["backups"].removeprefix("gs://")
    # objects, and the bucket's metadata barman-cloud checks before archiving (storage.buckets.get, in no
    # object role: barman 3.19.1 google_cloud_storage.py test_connectivity), on this bucket alone
    assert sorted((g["bucket"], g["role"]) for g in grants) == sorted(
        [(bucket, "roles/storage.objectUser"), (bucket, "roles/storage.legacyBucketReader")]
    )
    binding = doc.one("gcp:serviceaccount/iAMMember:IAMMember", f"mlplatform-{POSTGRES_BACKUP_KEY}-workload-identity")
    assert binding.inputs["member"].endswith("[data/postgres]")
    annotations = _spec(doc, PATCH)["serviceAccountTemplate"]["metadata"]["annotations"]
    assert annotations == {"iam.gke.io/gcp-service-account": email}


def test_local_backups_use_a_store_key_limited_to_the_backups_bucket(plan: Any) -> None:
    doc = plan("local")
    store = _spec(doc, OBJECT_STORE)["configuration"]
    assert store["destinationPath"] == doc.outputs["buckets"]["backups"]
    assert store["endpointURL"] == "http://seaweedfs.data.svc.cluster.local:8333"
    refs = store["s3Credentials"]
    [name] = {refs["accessKeyId"]["name"], refs["secretAccessKey"]["name"]}
    [secret] = [s.inputs for s in doc.by_type(SECRET) if s.inputs["metadata"]["name"] == name]
    assert secret["metadata"]["namespace"] == "data"  # the ObjectStore's, which the sidecar reads it from
    assert "serviceAccountTemplate" not in _spec(doc, PATCH)  # no identity provider to annotate for
    # the store's identities file: the backup key may read, list and write the backups bucket, nothing else
    [spec] = postgres_backup_workloads(_data_config("local"))
    names = {p: f"mlplatform-{p.value}" for p in BucketPurpose}
    identities = yaml.safe_load(identities_file({spec.key: ("AK", "SK")}, {spec.key: spec.grants}, names))
    [identity] = identities["identities"]
    assert identity["actions"] == [f"{a}:mlplatform-backups" for a in ("Read", "List", "Write")]


# -- the operator <-> plugin mTLS pair, from the plan's CA ----------------------------------------------------


def _pair(doc: PlanDocument) -> tuple[Any, Any]:
    return (
        server_certificate(doc, "mlplatform-postgres-backups-server-tls"),
        server_certificate(doc, "mlplatform-postgres-backups-client-tls"),
    )


def _eku(pem: str) -> list[Any]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_the_plugin_certificates_are_the_platform_cas_with_the_names_and_usages_the_operator_checks(
    plan: Any,
) -> None:
    doc = plan("dev")
    server, client = _pair(doc)
    assert server.dns_names[0] == "barman-cloud" and "barman-cloud.data.svc" in server.dns_names
    assert _eku(server.cert_pem) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _eku(client.cert_pem) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    data_ca = server_certificate(doc, "mlplatform-postgres-server-tls").ca_pem
    assert server.ca_pem == client.ca_pem == data_ca
    secrets = {s.inputs["metadata"]["name"]: s.inputs for s in doc.by_type(SECRET)}
    for name in (backups.SERVER_SECRET, backups.CLIENT_SECRET):
        assert secrets[name]["type"] == "kubernetes.io/tls" and secrets[name]["metadata"]["namespace"] == "data"
    values = doc.one(RELEASE, "mlplatform-postgres-backups-plugin").inputs["values"]
    assert values["certificate"] == {"createClientCertificate": False, "createServerCertificate": False}


def _handshake(server: Any, client: Any, *, server_name: str, present: Any) -> str | None:
    """The plugin's gRPC TLS server (its server pair; client certificates required, trusted as the client
    Secret's tls.crt) and the operator's client (trusts exactly the server Secret's tls.crt, verifies
    `server_name`, presents `present`'s pair, TLS 1.3 only: cloudnative-pg v1.30.0 internal/controller/
    plugin_controller.go). Go's x509 accepts a leaf found in the trust pool itself; OpenSSL does so with
    X509_V_FLAG_PARTIAL_CHAIN. None when the handshake completes, else the error."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = {}
        for label, pair in (("server", server), ("client", client), ("present", present)):
            files[label] = pair.write(d, label)
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.minimum_version = ssl.TLSVersion.TLSv1_3
        srv.load_cert_chain(*files["server"])
        srv.load_verify_locations(files["client"][0])
        srv.verify_mode = ssl.CERT_REQUIRED
        srv.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cli.minimum_version = ssl.TLSVersion.TLSv1_3
        cli.load_verify_locations(files["server"][0])
        cli.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        cli.load_cert_chain(*files["present"])
        listener = socket.create_server(("127.0.0.1", 0))
        errors: list[str] = []

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with srv.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError) as e:
                errors.append(f"server: {e}")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname()) as raw,
                cli.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                tls.sendall(b"x")
        except (ssl.SSLError, OSError) as e:
            errors.append(f"client: {e}")
        thread.join(5)
        listener.close()
        return "; ".join(errors) or None


def test_the_operator_and_the_plugin_complete_mutual_tls_with_the_planned_secrets(plan: Any) -> None:
    server, client = _pair(plan("dev"))
    assert _handshake(server, client, server_name="barman-cloud", present=client) is None
    # another name than the Service's: the operator refuses the server
    assert "client" in (_handshake(server, client, server_name="barman-cloud.other", present=client) or "")
    # the server certificate (serverAuth only) presented as the operator's: the plugin refuses it
    assert _handshake(server, client, server_name="barman-cloud", present=server) is not None


# -- Pod Security and requests -------------------------------------------------------------------------------


def sidecar_pod(cluster_spec: dict[str, Any], store_spec: dict[str, Any]) -> dict[str, Any]:
    """The instance pod's sidecar as the plugin injects it (plugin-barman-cloud v0.13.0 internal/cnpgi/operator/
    lifecycle.go reconcilePodSpec: an init container with restartPolicy Always, this securityContext, the
    ObjectStore's instanceSidecarConfiguration.resources), in a pod with CloudNativePG's pod context (the
    operator's default: runAsNonRoot, RuntimeDefault; cloudnative-pg v1.30.0 pkg/specs/pods.go)."""
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 26},
        "initContainers": [
            {
                "name": "plugin-barman-cloud",
                "restartPolicy": "Always",
                "resources": (store_spec.get("instanceSidecarConfiguration") or {}).get("resources") or {},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "runAsNonRoot": True,
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "containers": [],
        "nodeSelector": (cluster_spec.get("affinity") or {}).get("nodeSelector"),
    }


def test_the_injected_sidecar_passes_the_data_namespaces_pod_security_and_has_requests(doc: PlanDocument) -> None:
    level = POD_SECURITY[Namespace.DATA]
    pod = sidecar_pod(_spec(doc, CLUSTER), _spec(doc, OBJECT_STORE))
    assert check_pod(pod, level, "sidecar") == [] and missing_requests(pod, "sidecar") == []


def test_a_sidecar_without_requests_is_caught(plan: Any) -> None:
    store = _spec(plan("dev"), OBJECT_STORE)
    store.pop("instanceSidecarConfiguration")
    assert missing_requests(sidecar_pod(_spec(plan("dev"), CLUSTER), store), "sidecar") != []


def test_the_plugin_and_its_sidecars_are_in_the_idle_requests(doc: PlanDocument) -> None:
    found = idle_requests(doc)
    instances = _spec(doc, CLUSTER)["instances"]
    [sidecar] = list(barman_sidecars(doc))
    assert sidecar.replicas == instances and (sidecar.cpu, sidecar.memory_gib) == (0.05, 0.0625)
    plugin = [r for r in found if r.source == "mlplatform-postgres-backups-plugin"]
    assert [(r.cpu, r.memory_gib, r.namespace) for r in plugin] == [(0.01, 0.03125, "data")]
    assert sidecar in found


def test_no_sidecar_is_counted_without_an_archiver(plan: Any) -> None:
    doc = copy.deepcopy(plan("dev"))
    doc.one(PATCH).inputs["spec"]["plugins"] = []
    assert list(barman_sidecars(doc)) == []


def _rendered(doc: PlanDocument) -> list[dict[str, Any]]:
    pytest.importorskip("helm_python")
    if not PACKAGE.exists():
        pytest.skip(f"AWAITING_PACKAGE: {PACKAGE} (tests/test_render_stacks.py AWAITING_PACKAGE)")
    from mlplatform.manifests import render_release

    return render_release(doc.one(RELEASE, "mlplatform-postgres-backups-plugin"), PACKAGE).objects


def test_the_plugin_chart_renders_restricted_without_cert_manager(doc: PlanDocument) -> None:
    objects = _rendered(doc)
    assert not [o for o in objects if o["apiVersion"].startswith("cert-manager.io/")]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert check_pod(pod, POD_SECURITY[Namespace.DATA], "plugin") == [] and missing_requests(pod, "plugin") == []
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in BARMAN_CLOUD_PODS.items())
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert service["metadata"]["name"] == backups.BARMAN_CLOUD_SERVICE
    annotations = service["metadata"]["annotations"]
    assert (annotations["cnpg.io/pluginServerSecret"], annotations["cnpg.io/pluginClientSecret"]) == (
        backups.SERVER_SECRET,
        backups.CLIENT_SECRET,
    )


# -- the post-renderer --------------------------------------------------------------------------------------


def test_the_post_renderer_drops_the_cert_manager_issuer_and_nothing_else() -> None:
    script = PROJECT / backups.POSTRENDER
    assert script.exists() and script.stat().st_mode & 0o111, "Helm runs it as an executable"
    manifests = (
        "---\n# Source: plugin-barman-cloud/templates/certificate-issuer.yaml\napiVersion: cert-manager.io/v1\n"
        "kind: Issuer\nmetadata:\n  name: plugin-barman-cloud-selfsigned-issuer\nspec:\n  selfSigned: {}\n"
        "---\napiVersion: cert-manager.io/v1\nkind: Certificate\nspec:\n  issuerRef:\n    kind: Issuer\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: barman-cloud\n"
    )
    out = subprocess.run([str(script)], input=manifests, capture_output=True, text=True, check=True, cwd=PROJECT)
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert kinds == ["Certificate", "Service"]  # an issuerRef's `kind: Issuer` is not a document's


# -- connections ---------------------------------------------------------------------------------------------


def test_every_backup_connection_passes_the_policies(doc: PlanDocument) -> None:
    addrs, found = connections(doc)
    mine = barman_connections(doc, addrs)
    names = {c.name for c in mine}
    assert {"cnpg operator -> barman-cloud plugin:9090", "barman-cloud plugin -> API server"} <= names
    assert any(n.startswith("postgres backups -> ") for n in names)
    policies = PolicySet(doc, addrs.cni)
    failures = [f"{c.name}: {v.why}" for c in found if not (v := policies.decide(c.source, c.to, c.port)).allowed]
    assert failures == []


def test_only_the_instances_and_the_plugin_get_the_egress_backups_need(plan: Any) -> None:
    doc = plan("dev")
    addrs, _ = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    storage = Outside("52.216.8.1", "S3")
    instance = Pod("data", {**CNPG_INSTANCE_PODS, "cnpg.io/instanceRole": "primary"}, addrs.pod)
    assert policies.decide(instance, storage, 443).allowed
    assert not policies.decide(instance, storage, 80).allowed
    # the rest of `data` (the operator, the bootstrap Job) still reaches no HTTPS outside the cluster
    operator = Pod("data", CNPG_OPERATOR_PODS, addrs.pod)
    assert not policies.decide(operator, storage, 443).allowed
    bootstrap = Pod("data", {"app.kubernetes.io/name": "postgres-bootstrap"}, addrs.pod)
    assert not policies.decide(bootstrap, storage, 443).allowed
    plugin = Pod("data", BARMAN_CLOUD_PODS, addrs.pod)
    assert policies.decide(plugin, Outside(addrs.control_plane, "API"), addrs.api_port).allowed
    assert not policies.decide(plugin, storage, 443).allowed


# -- the policy pack ----------------------------------------------------------------------------------------


RULE = {r.name: r for r in all_rules()}["database-backups-in-cluster"]


def _findings(doc: PlanDocument, profile: str) -> list[Any]:
    return evaluate(stack_from_plan(doc, {"mlplatform:profile": profile}), [RULE])


def test_the_policy_pack_accepts_the_planned_backups_and_catches_weakened_ones(plan: Any) -> None:
    doc = plan("dev")
    assert _findings(doc, "dev") == []
    # as a prod stack would plan it: two weeks kept
    prod_like = copy.deepcopy(doc)
    prod_like.one(OBJECT_STORE).inputs["spec"]["retentionPolicy"] = "2w"
    assert _findings(prod_like, "prod") == []
    short = copy.deepcopy(prod_like)
    short.one(OBJECT_STORE).inputs["spec"]["retentionPolicy"] = "7d"
    assert [f.message for f in _findings(short, "prod")] == ["retentionPolicy '7d' keeps less than 14 days"]
    unscheduled = copy.deepcopy(prod_like)
    unscheduled.resources.remove(unscheduled.one(SCHEDULED))
    assert "ScheduledBackup" in _findings(unscheduled, "prod")[0].message
    no_archiver = copy.deepcopy(prod_like)
    no_archiver.one(PATCH).inputs["spec"]["plugins"][0]["isWALArchiver"] = False
    assert "archives its WAL" in _findings(no_archiver, "prod")[0].message
    dangling = copy.deepcopy(doc)
    dangling.resources.remove(dangling.one(OBJECT_STORE))
    assert "does not make" in _findings(dangling, "dev")[0].message  # on every stack


# -- for real: barman-cloud (the sidecar's version) archives WAL and backs up a real PostgreSQL to S3 -----------


def barman_args(configuration: dict[str, Any], *, wal: bool) -> list[str]:
    """barman-cloud-wal-archive's / barman-cloud-backup's options as the plugin builds them from the ObjectStore's
    configuration (cloudnative-pg/barman-cloud @ bd68198, the version plugin-barman-cloud v0.13.0's go.mod pins:
    pkg/archiver/command.go BarmanCloudWalArchiveOptions, pkg/backup/backup.go GetBarmanCloudBackupOptions,
    pkg/command/commandbuilder.go appendCloudProviderOptions), before the destination and the server name."""
    section = configuration["wal" if wal else "data"]
    options = [] if wal else ["--user", "postgres", "--name", "scheduled-1"]
    if section.get("compression"):
        options.append(f"--{section['compression']}")
    if configuration.get("endpointURL"):
        options += ["--endpoint-url", configuration["endpointURL"]]
    if "s3Credentials" in configuration:
        options += ["--cloud-provider", "aws-s3"]
    elif "googleCredentials" in configuration:
        options += ["--cloud-provider", "google-cloud-storage"]
    return options


def check_args(configuration: dict[str, Any]) -> list[str]:
    """barman-cloud-check-wal-archive's options, which the plugin runs before a new Cluster's first WAL segment
    (while PGDATA holds CloudNativePG's empty-archive check file): the endpoint and the cloud provider only
    (cloudnative-pg/barman-cloud @ bd68198 pkg/archiver/archiver.go BarmanCloudCheckWalArchiveOptions;
    plugin-barman-cloud v0.13.0 internal/cnpgi/common/wal.go, check.go CheckBackupDestination)."""
    return [o for o in barman_args(configuration, wal=True) if not o.startswith(("--gzip", "--bzip2", "--lz4"))]


@pytest.mark.slow
def test_barman_cloud_archives_wal_and_backs_up_to_the_planned_bucket_as_the_planned_role(
    plan: Any, tmp_path: Path
) -> None:
    """dev (AWS): the plan's ObjectStore configuration (destination, compression, IRSA), the plan's IAM role policy
    enforced by moto, the web identity exchange at STS, and barman-cloud 3.19.1 against a real PostgreSQL: a WAL
    segment is archived and a base backup taken under the Cluster's server name; the same as a role without the
    policy is refused."""
    import json
    import os

    from tests.support.postgres import local_postgres, server_bin
    from tests.support.tools import venv_python

    python = venv_python(".venv-barman", "tests/venvs/barman.txt")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries")
    doc = plan("dev")
    configuration = _spec(doc, OBJECT_STORE)["configuration"]
    assert configuration["s3Credentials"] == {"inheritFromIAMRole": True}
    bucket = configuration["destinationPath"].removeprefix("s3://")
    server_name = doc.one(CLUSTER).inputs["metadata"]["name"]  # barman's server name: the Cluster's by default
    policy = tmp_path / "policy.json"
    policy.write_text(doc.one("aws:iam/rolePolicy:RolePolicy", f"mlplatform-{POSTGRES_BACKUP_KEY}").inputs["policy"])
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGF0YTpwb3N0Z3JlcyJ9.c2ln")
    bin_dir = Path(python).parent
    # its own directory under /tmp: local_postgres hands it to the `postgres` user (pytest's tmp_path is root's)
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-barman-pg-", dir="/tmp"))
    moto = subprocess.Popen(
        [python, str(PROJECT / "tests" / "support" / "moto_backups.py"), bucket, str(policy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert moto.stdout is not None
        served = json.loads(moto.stdout.readline())

        def irsa(role: str) -> dict[str, str]:
            """What EKS's pod identity webhook gives the pod's containers (AWS_ROLE_ARN, the projected token,
            the region), with S3 and STS at moto."""
            return {
                "PATH": os.environ["PATH"],
                "AWS_ROLE_ARN": role,
                "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": served["url"],
                "AWS_ENDPOINT_URL_STS": served["url"],
                "AWS_EC2_METADATA_DISABLED": "true",
                "HOME": str(tmp_path),
            }

        with local_postgres(workdir) as pg:
            sock = workdir / "sock"
            as_postgres = ["psql", "-h", str(sock), "-p", str(pg.port), "-U", "postgres", "-tAc"]
            segment = subprocess.run(
                [*as_postgres, "SELECT pg_walfile_name(pg_current_wal_lsn()); SELECT pg_switch_wal();"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.split()[0]  # fmt: skip
            wal = pg.data / "pg_wal" / segment
            # the first archive of a new Cluster: the plugin checks the destination holds no WAL for the server
            # name yet, which needs the bucket's existence and listing (S3 HeadBucket, ListObjectsV2)
            check = [str(bin_dir / "barman-cloud-check-wal-archive"), *check_args(configuration)]
            check += [configuration["destinationPath"], server_name]
            for role, ok in ((served["denied_role"], False), (served["role"], True)):
                checked = subprocess.run(check, env=irsa(role), capture_output=True, text=True, timeout=120)
                assert (checked.returncode == 0) is ok, checked.stderr[-2000:]
            archive = [str(bin_dir / "barman-cloud-wal-archive"), *barman_args(configuration, wal=True)]
            archive += [configuration["destinationPath"], server_name, str(wal)]
            denied = subprocess.run(archive, env=irsa(served["denied_role"]), capture_output=True, text=True,
                                    timeout=120)  # fmt: skip
            assert denied.returncode != 0, "a role without the backups grant archived WAL"
            done = subprocess.run(archive, env=irsa(served["role"]), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            # a Cluster made anew under the same name (the bucket outlives it) finds a used archive: its WAL
            # archiving stops until the old WAL is moved or the server name changes (README)
            reused = subprocess.run(check, env=irsa(served["role"]), capture_output=True, text=True, timeout=120)
            assert reused.returncode != 0 and "Expected empty archive" in reused.stderr, reused.stderr[-2000:]
            original = wal.read_bytes()
            backup = [str(bin_dir / "barman-cloud-backup"), *barman_args(configuration, wal=False)]
            backup += ["--host", str(sock), "--port", str(pg.port)]
            backup += [configuration["destinationPath"], server_name]
            taken = subprocess.run(backup, env=irsa(served["role"]), capture_output=True, text=True, timeout=300)
            assert taken.returncode == 0, taken.stderr[-2000:]
        listing = subprocess.run(
            [str(bin_dir / "barman-cloud-backup-list"), "--format", "json", "--cloud-provider", "aws-s3",
             configuration["destinationPath"], server_name],
            env=irsa(served["role"]), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listing.returncode == 0, listing.stderr[-2000:]
        [listed] = json.loads(listing.stdout)["backups_list"]
        assert listed["backup_name"] == "scheduled-1" and listed["status"] == "DONE"
        check = subprocess.run(
            [str(bin_dir / "barman-cloud-wal-restore"), "--cloud-provider", "aws-s3", configuration["destinationPath"],
             server_name, segment, str(tmp_path / "restored")],
            env=irsa(served["role"]), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr[-2000:]
        assert (tmp_path / "restored").read_bytes() == original  # what was archived is what comes back
    finally:
        if moto.stdin is not None:
            moto.stdin.close()
        moto.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-n", "0"]))
