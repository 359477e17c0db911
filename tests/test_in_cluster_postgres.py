"""PostgreSQL in the cluster (CloudNativePG), planned on dev (AWS) and gcp-dev with `data.postgres.mode:
in-cluster`, checked as the API server, admission, the CNI and real PostgreSQL clients would meet it.

- The Cluster validates strictly against the pinned chart's CRD (unknown fields are pruned silently by the
  API server, so a misspelt field would deploy as a default).
- Every pod the layer makes or makes happen passes `data`'s Pod Security level: the bootstrap Job (planned),
  the operator's Deployment (built from the chart's template and defaults with the planned values; no package
  of the chart is shared to render it) and the Cluster's instance pods, built from the planned spec as the
  operator builds them (cloudnative-pg v1.30.0 pkg/specs/pods.go createClusterPodSpec, containers.go
  GetSecurityContext, pods.go GetPodSecurityContext; the initdb/join Jobs' pods take the same contexts,
  pkg/specs/jobs.go).
- A real PostgreSQL started with the plan's own server certificate and key runs the planned bootstrap Job,
  which verifies it (verify-full) by the host name the plan gives; clients then connect with verify-full
  against the plan's CA by every Service name the certificate carries.
- The stack's NetworkPolicies admit exactly the flows CloudNativePG needs and the clients use.
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.contracts import Namespace
from components.data.credentials import SERVICE_DATABASES
from components.data.in_cluster.cnpg import ADMIN_SECRET, SERVER_TLS_SECRET, server_dns_names
from components.guardrails import CNPG_INSTANCE_PODS, CNPG_OPERATOR_PODS, NAME_LABEL, POD_SECURITY
from mlplatform.chartkeys import load_tree, unknown_keys
from mlplatform.config.loader import deep_merge, read_stack_file
from mlplatform.connections import connections
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from mlplatform.podsecurity import check_pod, missing_requests
from tests.support.crds import plain, spec_schema
from tests.support.plan_tls import ServerCertificate, server_certificate
from tests.support.postgres import (
    ADMIN,
    CertificateAuthority,
    LocalPostgres,
    ca_config_map,
    local_postgres,
    namespace_config_maps,
    run_bootstrap_job,
    server_bin,
)

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
JOB = "kubernetes:batch/v1:Job"
UPSTREAM_CHART = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "charts" / "cloudnative-pg"
# dev as its profile makes it (one instance, unprotected); gcp-dev as a production-like database: three
# instances and deletion protection
OVERRIDES = {
    "dev": {"postgres": {"mode": "in-cluster"}},
    "gcp-dev": {"postgres": {"mode": "in-cluster", "highAvailability": True, "deletionProtection": True}},
}
STACKS = tuple(OVERRIDES)
_plans: dict[str, PlanDocument] = {}


def in_cluster_plan(stack: str) -> PlanDocument:
    """`stack` with data.postgres.mode in-cluster (the profile supplies the in-cluster keys), planned once."""
    if stack not in _plans:
        config = read_stack_file(PROJECT_DIR, stack)
        data = deep_merge(config.get("mlplatform:data") or {}, OVERRIDES[stack])
        _plans[stack] = synthesize(f"{stack}-pg-in-cluster", config_map={**config, "mlplatform:data": data})
    return _plans[stack]


@pytest.fixture(scope="module", params=STACKS)
def doc(request: pytest.FixtureRequest) -> PlanDocument:
    return in_cluster_plan(request.param)


@functools.cache
def cluster_schema() -> dict[str, Any]:
    """The Cluster CRD's spec at v1 (chart 0.29.0), strict; parsed once (half a megabyte of YAML)."""
    return spec_schema("postgresql.cnpg.io_clusters.yaml", "v1")


def _cluster(doc: PlanDocument) -> dict[str, Any]:
    return plain(doc.one(CLUSTER).inputs)


# -- the Cluster as the API server receives it -----------------------------------------------------------


def test_the_cluster_validates_strictly_against_the_pinned_crd(doc: PlanDocument) -> None:
    cluster = _cluster(doc)
    assert (cluster["apiVersion"], cluster["kind"]) == ("postgresql.cnpg.io/v1", "Cluster")
    assert cluster["metadata"]["namespace"] == Namespace.DATA.value
    jsonschema.validate(cluster["spec"], cluster_schema())


def test_a_misspelt_cluster_field_is_refused() -> None:
    """The strict schema is what catches a field the API server would prune: the planned spec with one
    field misspelt at the top and one inside a nested object."""
    spec = _cluster(in_cluster_plan("dev"))["spec"]
    schema = cluster_schema()
    for broken in ({**spec, "instance": 1}, {**spec, "certificates": {"serverTlsSecret": SERVER_TLS_SECRET}}):
        with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
            jsonschema.validate(broken, schema)


def test_the_cluster_follows_the_config(doc: PlanDocument) -> None:
    spec = _cluster(doc)["spec"]
    from mlplatform.config import load_config, namespace_values

    config = read_stack_file(PROJECT_DIR, doc.stack.removesuffix("-pg-in-cluster"))
    data = deep_merge(config.get("mlplatform:data") or {}, OVERRIDES[doc.stack.removesuffix("-pg-in-cluster")])
    pg = load_config(namespace_values({**config, "mlplatform:data": data}), doc.stack).data.postgres
    assert spec["instances"] == pg.instances
    assert spec["storage"]["size"] == f"{pg.storage_gb}Gi"
    assert pg.in_cluster is not None
    requests, limits = spec["resources"]["requests"], spec["resources"]["limits"]
    assert requests["cpu"] == f"{round(pg.in_cluster.cpu * 1000)}m"
    assert requests["memory"] == limits["memory"] == f"{round(pg.in_cluster.memory_gb * 1024)}Mi"
    # the operand's major is the configured one, pinned to a minor (no floating tag)
    tag = spec["imageName"].rsplit(":", 1)[1]
    assert tag.split(".")[0] == pg.version and tag.split("-")[0].count(".") == 1
    # no superuser over the network; the bootstrap admin is a managed role, CREATEROLE and CREATEDB only,
    # whose password Secret the plan makes in `data` as basic-auth
    assert spec["enableSuperuserAccess"] is False
    [role] = spec["managed"]["roles"]
    assert role["name"] == ADMIN and role["createrole"] and role["createdb"] and role["login"]
    assert not role.get("superuser") and role["passwordSecret"]["name"] == ADMIN_SECRET
    [admin] = [
        s.inputs for s in doc.by_type("kubernetes:core/v1:Secret") if s.inputs["metadata"].get("name") == ADMIN_SECRET
    ]
    assert admin["type"] == "kubernetes.io/basic-auth" and admin["metadata"]["namespace"] == "data"
    # TLS: the platform CA's server Secret, kubernetes.io/tls with ca.crt beside, reloaded on change
    assert spec["certificates"] == {"serverTLSSecret": SERVER_TLS_SECRET, "serverCASecret": SERVER_TLS_SECRET}
    [tls] = [
        s.inputs
        for s in doc.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"].get("name") == SERVER_TLS_SECRET
    ]
    assert tls["type"] == "kubernetes.io/tls" and tls["metadata"]["labels"]["cnpg.io/reload"] == "true"
    assert "hostnossl all all all reject" in spec["postgresql"]["pg_hba"]


def test_placement_and_protection_follow_the_pool_contract_and_config(doc: PlanDocument) -> None:
    registration = doc.one(CLUSTER)
    spec = plain(registration.inputs)["spec"]
    operator = doc.one(RELEASE, "mlplatform-postgres-operator").inputs["values"]
    assert spec["affinity"]["nodeSelector"] == operator["nodeSelector"] == {"mlplatform.io/pool": "cpu"}
    protected = OVERRIDES[doc.stack.removesuffix("-pg-in-cluster")]["postgres"].get("deletionProtection", False)
    # data.postgres.deletionProtection: Pulumi refuses to delete the Cluster and keeps it if it leaves the program
    assert registration.protect is protected and registration.retain_on_delete is protected
    if spec["instances"] == 1:
        assert spec["enablePDB"] is False and "topologySpreadConstraints" not in spec
        return
    # instances apart: the operator's anti-affinity per node, a spread over zones, its disruption budgets
    assert spec["instances"] == 3 and spec["enablePDB"] is True
    assert spec["affinity"]["enablePodAntiAffinity"] and spec["affinity"]["podAntiAffinityType"] == "preferred"
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == {"cnpg.io/cluster": "postgres"}


def test_the_operator_release_is_pinned_and_its_values_are_the_charts(doc: PlanDocument) -> None:
    release = doc.one(RELEASE, "mlplatform-postgres-operator").inputs
    assert (release["chart"], release["version"], release["namespace"]) == ("cloudnative-pg", "0.29.0", "data")
    assert release["timeout"] > 0
    assert unknown_keys(release["values"], load_tree("cloudnative-pg", "0.29.0")) == []
    if not (UPSTREAM_CHART / "values.schema.json").exists():
        pytest.skip("no upstream copy of the chart")
    defaults = yaml.safe_load((UPSTREAM_CHART / "values.yaml").read_text())
    schema = yaml.safe_load((UPSTREAM_CHART / "values.schema.json").read_text())
    jsonschema.validate(deep_merge(defaults, release["values"]), schema)


# -- Pod Security in `data` -------------------------------------------------------------------------------

# cloudnative-pg v1.30.0 api/v1 (GetPostgresUID/GID: 26 unless spec.postgresUID/GID), pkg/specs/containers.go
# GetSecurityContext (the default container context; a field the Cluster leaves nil keeps the default)
CNPG_UID = 26


def _merged(defined: Mapping[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    """GetSecurityContext / GetPodSecurityContext: the Cluster's context, each field it leaves unset taken
    from the operator's default."""
    return default if defined is None else {**default, **{k: v for k, v in defined.items() if v is not None}}


def cnpg_instance_pod(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An instance pod as createClusterPodSpec makes it from a Cluster spec (the fields Pod Security and the
    requests check read): the bootstrap-controller init container and the postgres container, both with the
    Cluster's resources and GetSecurityContext; GetPodSecurityContext; the pgdata claim, the scratch-data
    emptyDir (or spec.ephemeralVolumeSource) and the shm emptyDir (pkg/specs/volumes.go
    createPostgresVolumes); the projected volume when spec.projectedVolumeTemplate is set."""
    seccomp = spec.get("seccompProfile") or {"type": "RuntimeDefault"}  # api/v1 GetSeccompProfile
    uid, gid = spec.get("postgresUID", CNPG_UID), spec.get("postgresGID", CNPG_UID)
    pod_context = _merged(
        spec.get("podSecurityContext"),
        {"seccompProfile": seccomp, "runAsUser": uid, "runAsGroup": gid, "runAsNonRoot": True, "fsGroup": gid},
    )
    container_context = _merged(
        spec.get("securityContext"),
        {
            "seccompProfile": seccomp,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
    )
    scratch = {"ephemeral": spec["ephemeralVolumeSource"]} if spec.get("ephemeralVolumeSource") else {"emptyDir": {}}
    volumes = [
        {"name": "pgdata", "persistentVolumeClaim": {"claimName": "postgres-1"}},
        {"name": "scratch-data", **scratch},
        {"name": "shm", "emptyDir": {"medium": "Memory"}},
    ]
    if spec.get("projectedVolumeTemplate"):
        volumes.append({"name": "projected", "projected": spec["projectedVolumeTemplate"]})
    resources = spec.get("resources") or {}
    affinity = spec.get("affinity") or {}
    return {
        "initContainers": [
            {"name": "bootstrap-controller", "resources": resources, "securityContext": container_context}
        ],
        "containers": [
            {
                "name": "postgres",
                "resources": resources,
                "securityContext": container_context,
                "ports": [{"containerPort": p} for p in (5432, 9187, 8000)],
            }
        ],
        "securityContext": pod_context,
        "volumes": volumes,
        "nodeSelector": affinity.get("nodeSelector"),
        "tolerations": affinity.get("tolerations"),
    }


def operator_pod(values: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's pod as cloudnative-pg 0.29.0 templates/deployment.yaml writes it from the chart's
    defaults (values.yaml) overlaid with the release's values: its security contexts, resources, node
    selector, tolerations and its two volumes (an emptyDir and the webhook certificate Secret)."""
    merged = deep_merge(yaml.safe_load((UPSTREAM_CHART / "values.yaml").read_text()), dict(values))
    return {
        "securityContext": merged["podSecurityContext"],
        "containers": [
            {
                "name": "manager",
                "resources": merged["resources"],
                "securityContext": merged["containerSecurityContext"],
                "ports": [{"containerPort": 8080}, {"containerPort": merged["webhook"]["port"]}],
            }
        ],
        "volumes": [
            {"name": "scratch-data", "emptyDir": {}},
            {"name": "webhook-certificates", "secret": {"secretName": "cnpg-webhook-cert"}},
        ],
        "nodeSelector": merged["nodeSelector"],
        "tolerations": merged["tolerations"],
    }


def _pods(doc: PlanDocument) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "instance", cnpg_instance_pod(_cluster(doc)["spec"])
    job = doc.one(JOB, "mlplatform-postgres-bootstrap").inputs
    assert job["metadata"]["namespace"] == "data"
    yield "bootstrap job", plain(job["spec"]["template"]["spec"])
    if UPSTREAM_CHART.exists():
        yield "operator", operator_pod(doc.one(RELEASE, "mlplatform-postgres-operator").inputs["values"])


def test_every_pod_passes_the_data_namespaces_pod_security_level(doc: PlanDocument) -> None:
    level = POD_SECURITY[Namespace.DATA]
    assert level == "restricted"
    found = []
    for what, pod in _pods(doc):
        found += check_pod(pod, level, what) + missing_requests(pod, what)
    assert found == [], [str(v) for v in found]


def test_a_cluster_that_loosens_its_pods_is_caught() -> None:
    """The instance pod is built from the planned spec, so a Cluster spec that overrides the operator's
    restricted defaults is found here before admission rejects its pods."""
    spec = copy.deepcopy(_cluster(in_cluster_plan("dev"))["spec"])
    spec["seccompProfile"] = {"type": "Unconfined"}
    spec["securityContext"] = {"allowPrivilegeEscalation": True}
    found = {(v.container, v.field) for v in check_pod(cnpg_instance_pod(spec), "restricted", "instance")}
    assert (None, "securityContext.seccompProfile.type") in found
    for name in ("postgres", "bootstrap-controller"):
        kind = "containers" if name == "postgres" else "initContainers"
        assert (name, f"{kind}[0].securityContext.allowPrivilegeEscalation") in found
        assert (name, f"{kind}[0].securityContext.seccompProfile.type") in found


# -- NetworkPolicies --------------------------------------------------------------------------------------


def test_every_upstream_connection_passes_the_policies_with_postgres_in_the_cluster(doc: PlanDocument) -> None:
    """The shared connection table on this plan: it includes the API server calling the operator's webhook
    on 9443 (cloudnative-pg values.yaml webhook.port)."""
    addrs, found = connections(doc)
    assert any("data/cloudnative-pg:9443" in c.name for c in found)
    policies = PolicySet(doc, addrs.cni)
    failures = [f"{c.name}: {v.why}" for c in found if not (v := policies.decide(c.source, c.to, c.port)).allowed]
    assert failures == []


def test_cloudnative_pg_flows(doc: PlanDocument) -> None:
    addrs, _ = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    primary = Pod("data", {**CNPG_INSTANCE_PODS, "cnpg.io/instanceName": "postgres-1", "role": "primary"}, addrs.pod)
    replica = Pod("data", {**CNPG_INSTANCE_PODS, "cnpg.io/instanceName": "postgres-2", "role": "replica"}, addrs.pod)
    initdb = Pod("data", {"cnpg.io/cluster": "postgres", "cnpg.io/jobRole": "initdb"}, addrs.pod)
    operator = Pod("data", CNPG_OPERATOR_PODS, addrs.pod)
    job = Pod("data", {NAME_LABEL: "postgres-bootstrap"}, addrs.pod)
    api = Outside(addrs.control_plane, "API server")
    clients = [
        Pod("mlplatform", {NAME_LABEL: "mlflow"}, addrs.pod),
        Pod("mlplatform", {"tier": "airflow", "release": "airflow", "component": "pgbouncer"}, addrs.pod),
        Pod("monitoring", {NAME_LABEL: "grafana"}, addrs.pod),
        Pod("training", {"ray.io/node-type": "head"}, addrs.pod),
        job,
    ]
    allowed = [(c, primary, 5432) for c in clients] + [
        (operator, primary, 8000),  # the instance manager's status port
        (replica, primary, 5432),  # streaming replication
        (primary, replica, 8000),
        (operator, api, 443),
        (primary, api, 443),
        (initdb, api, 443),
    ]
    for source, to, port in allowed:
        verdict = policies.decide(source, to, port)
        assert verdict.allowed, f"{source} -> {to}:{port}: {verdict.why}"
    denied = [
        (Pod("model-serving", {"component": "predictor"}, addrs.pod), primary, 5432),
        (Pod("streaming", {}, addrs.pod), primary, 5432),
        (Pod("mlplatform", {NAME_LABEL: "mlflow"}, addrs.pod), operator, 9443),
        (job, api, 443),  # the bootstrap Job talks to PostgreSQL only
        (Pod("mlplatform", {NAME_LABEL: "mlflow"}, addrs.pod), primary, 8000),
    ]
    for source, to, port in denied:
        assert not policies.decide(source, to, port).allowed, f"{source} -> {to}:{port}"


# -- a real PostgreSQL with the plan's certificate ----------------------------------------------------------

needs_server = pytest.mark.skipif(
    server_bin() is None and not os.environ.get("CI"), reason="PostgreSQL server binaries not installed"
)
PASSWORDS = {s: f"{s}-Pw-0123456789abcdef" for s in SERVICE_DATABASES}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[PlanDocument, ServerCertificate, LocalPostgres, Path]]:
    doc = in_cluster_plan("dev")
    certificate = server_certificate(doc, "mlplatform-postgres-server-tls")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-cnpg-", dir="/tmp"))
    files = certificate.write(work, "server")
    # its own directory: local_postgres hands it to the `postgres` user
    with local_postgres(Path(tempfile.mkdtemp(prefix="mlplatform-cnpg-pg-", dir="/tmp")), files) as server:
        yield doc, certificate, server, work


def run_job(doc: PlanDocument, pg: LocalPostgres, **override: str) -> subprocess.CompletedProcess[str]:
    """The planned bootstrap Job against `pg`, verifying the host the plan gives against its certificate
    (tests/support/postgres.py run_bootstrap_job)."""
    return run_bootstrap_job(doc, pg, PASSWORDS, override=override)


def _psql(pg: LocalPostgres, ca: Path, host: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
    env = pg.env(user, password, database=user, sslmode="verify-full") | {
        "PGHOST": host,
        "PGHOSTADDR": "127.0.0.1",
        "PGSSLROOTCERT": str(ca),
    }
    return subprocess.run(["psql", "-tAc", "SELECT current_user"], env=env, capture_output=True, text=True, timeout=30)


@needs_server
@pytest.mark.slow
def test_the_bootstrap_job_verifies_the_plans_server_and_creates_isolated_databases(served) -> None:
    doc, certificate, pg, _ = served
    job = doc.one(JOB, "mlplatform-postgres-bootstrap").inputs["spec"]["template"]["spec"]
    [container] = job["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PGSSLMODE"] == "verify-full" and env["PGHOST"] == doc.outputs["postgresHost"]
    assert env["PGUSER"] == ADMIN
    # the Job trusts the plan's CA (its ConfigMap), the CA that signed the server's certificate
    ca_map = ca_config_map(job["volumes"], container["volumeMounts"], env["PGSSLROOTCERT"])
    assert namespace_config_maps(doc, "data")[ca_map]["ca.crt"] == certificate.ca_pem
    for _ in range(2):  # idempotent: a replaced Job re-runs it
        done = run_job(doc, pg)
        assert done.returncode == 0, done.stderr
    for service, password in PASSWORDS.items():
        own = pg.psql("SELECT 1", user=service, password=password, database=service)
        assert own.returncode == 0, own.stderr
        other = next(s for s in SERVICE_DATABASES if s != service)
        assert pg.psql("SELECT 1", user=service, password=password, database=other).returncode != 0


@needs_server
@pytest.mark.slow
def test_clients_verify_the_server_by_every_service_name_in_its_certificate(served) -> None:
    doc, certificate, pg, work = served
    ca = work / "plan-ca.crt"
    ca.write_text(certificate.ca_pem)
    assert certificate.dns_names == server_dns_names("data")
    assert doc.outputs["postgresHost"] == certificate.dns_names[0]
    assert run_job(doc, pg).returncode == 0
    for host in ("postgres-rw.data.svc.cluster.local", "postgres-rw.data.svc", "postgres-rw.data", "postgres-rw"):
        done = _psql(pg, ca, host, "mlflow", PASSWORDS["mlflow"])
        assert done.returncode == 0 and done.stdout.strip() == "mlflow", done.stderr
    # a name the certificate does not carry (the Cluster's name alone) is refused by verify-full
    wrong = _psql(pg, ca, "postgres.data.svc.cluster.local", "mlflow", PASSWORDS["mlflow"])
    assert wrong.returncode != 0 and "does not match host name" in wrong.stderr, wrong.stderr


@needs_server
@pytest.mark.slow
def test_a_server_certificate_from_another_ca_is_refused(served) -> None:
    """Someone answering at the Service's address with the right names but not the platform CA's
    certificate gets no connection, so never the admin password."""
    doc, certificate, pg, work = served
    other = CertificateAuthority.create(work, "other-ca")
    names = ",".join(f"DNS:{n}" for n in certificate.dns_names)
    pg.present(other.issue(work, "impostor", common_name=certificate.dns_names[0], alt_names=names))
    try:
        done = run_job(doc, pg)
        assert done.returncode != 0 and "certificate verify failed" in done.stderr, done.stderr
    finally:
        pg.present(certificate.write(work, "server-again"))
