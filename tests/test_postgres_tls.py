"""Every client of the platform PostgreSQL verifies it, in every namespace that has one.

Where the data layer has a CA (Cloud SQL reports its instance's; on AWS the RDS bundle a stack names in
data.postgres.caBundle), each client's own TLS setting names a file, and that file is the data layer's CA in
a ConfigMap the client's pod mounts there, in the pod's namespace: libpq's PGSSLROOTCERT (the bootstrap Job
in `data`, the MLflow and Airflow migration Jobs, the MLflow server), the Feast registry URL's sslrootcert
(every pod that loads feature_store.yaml: the feature server, apply and materialization, Airflow's pods,
Ray's in `training`), PgBouncer's server_tls_ca_file and Grafana's ca_cert_path (in `monitoring`). The
charts are rendered from the pinned packages with the planned values, so the mounts are the chart's.
Without a CA (an AWS stack that names no bundle) every client requires TLS and the plan warns.

The real clients run in tests/test_postgres_bootstrap.py, test_mlflow_server.py and test_airflow_migration.py.
"""

from __future__ import annotations

import configparser
import logging
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from components.lifecycle.feast import ENDPOINT as FEATURE_SERVER
from components.lifecycle.mlflow import ENDPOINT as MLFLOW
from mlplatform.config import ConfigError
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from tests.support.graph import helm_release
from tests.support.postgres import (
    RDS_CA_STACK,
    CertificateAuthority,
    managed_plan,
    managed_stack,
    namespace_config_maps,
    rds_ca_plan,
)

CHARTS = PROJECT_DIR.parent / "shared" / "charts"
VERIFIED = ("gcp-dev", "gcp-prod", RDS_CA_STACK)
MODES = {"gcp-dev": "verify-ca", "gcp-prod": "verify-ca", RDS_CA_STACK: "verify-full"}
Pod = tuple[str, dict[str, Any]]  # (what, pod spec)


@pytest.fixture(scope="module")
def rds_ca() -> Path:
    work = Path(tempfile.mkdtemp(prefix="mlplatform-rds-ca-", dir="/tmp"))
    return CertificateAuthority.create(work, "rds-ca").cert


@pytest.fixture(scope="module")
def docs(plan, rds_ca: Path) -> Callable[[str], PlanDocument]:
    """The verified stacks' plans, each synthesized when first asked for."""
    made: dict[str, PlanDocument] = {}

    def doc(stack: str) -> PlanDocument:
        if stack not in made:
            # dev stacks: with their database managed (Cloud SQL), whatever the profile defaults to
            if stack == RDS_CA_STACK:
                made[stack] = rds_ca_plan(rds_ca)
            else:
                made[stack] = plan(stack) if "prod" in stack else managed_stack(stack)
        return made[stack]

    return doc


def expected_ca(stack: str, rds_ca: Path) -> str:
    """The data layer's CA: the bundle file the stack names, or every CA Cloud SQL lists for the instance
    (instances.listServerCas, mocked: the one in use and the one added for the next rotation)."""
    from mlplatform.plan.mocks import mock_ca

    if stack == RDS_CA_STACK:
        return rds_ca.read_text()
    return "".join(mock_ca(f"mlplatform-postgres-server-ca-{k}") for k in (1, 2))


def rendered(doc: PlanDocument, release: str) -> list[dict[str, Any]]:
    pytest.importorskip("helm_python")
    from mlplatform.manifests import render_release

    reg = helm_release(doc, release)
    package = CHARTS / f"{reg.inputs['chart']}-{reg.inputs['version']}.tgz"
    if not package.is_file():
        pytest.skip(f"{package} absent (../shared/charts holds the pinned chart packages)")
    return render_release(reg, package).objects


def workload(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    return found["spec"]["template"]["spec"]


def planned_pods(doc: PlanDocument) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, what, pod spec) of every Job, CronJob and RayCluster group the program plans itself."""
    pods = []
    for job in doc.by_type("kubernetes:batch/v1:Job"):
        pods.append((job.inputs["metadata"]["namespace"], job.name, job.inputs["spec"]["template"]["spec"]))
    for cron in doc.by_type("kubernetes:batch/v1:CronJob"):
        spec = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        pods.append((cron.inputs["metadata"]["namespace"], cron.name, spec))
    for ray in doc.by_type("kubernetes:ray.io/v1:RayCluster"):
        groups = [ray.inputs["spec"]["headGroupSpec"], *ray.inputs["spec"].get("workerGroupSpecs", [])]
        pods += [(ray.inputs["metadata"]["namespace"], ray.name, g["template"]["spec"]) for g in groups]
    return pods


def mounted_file(namespace_maps: dict[str, dict[str, str]], pod: dict[str, Any], container: dict, path: str) -> str:
    """The text the container reads at `path`, from the ConfigMap volume mounted over its directory."""
    directory, key = path.rsplit("/", 1)
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"].rstrip("/") == directory]
    assert mounts, f"{container['name']}: nothing mounted at {directory} for {path}"
    [volume] = [v for v in pod.get("volumes", []) if v["name"] == mounts[0]["name"]]
    assert "configMap" in volume, f"{container['name']}: {directory} is not a ConfigMap volume"
    return namespace_maps[volume["configMap"]["name"]][key]


def feast_registry(doc: PlanDocument, namespace: str) -> dict[str, str]:
    """The sslmode and sslrootcert of the registry URL in the namespace's feature_store.yaml."""
    store = yaml.safe_load(namespace_config_maps(doc, namespace)["feast-store"]["feature_store.yaml"])
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(store["registry"]["path"]).query))


@pytest.mark.parametrize("stack", VERIFIED)
def test_every_planned_database_client_verifies_the_server(docs, rds_ca: Path, stack: str) -> None:
    """The program's own pods: libpq variables, or a Feast client (the YAML's registry URL)."""
    doc, ca = docs(stack), expected_ca(stack, rds_ca)
    checked = set()
    for namespace, what, pod in planned_pods(doc):
        maps = namespace_config_maps(doc, namespace)
        for container in pod["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "PGHOST" in env or "PGSSLMODE" in env:
                assert env["PGSSLMODE"] == MODES[stack], what
                assert mounted_file(maps, pod, container, env["PGSSLROOTCERT"]) == ca, what
                checked.add(what)
            if "FEAST_FS_YAML_FILE_PATH" in env:
                registry = feast_registry(doc, namespace)
                assert registry["sslmode"] == MODES[stack], what
                assert mounted_file(maps, pod, container, registry["sslrootcert"]) == ca, what
                checked.add(what)
    expected = {"mlplatform-postgres-bootstrap", "mlplatform-mlflow-db-upgrade", "mlplatform-airflow-db-migrate",
                "mlplatform-feast-apply", "mlplatform-feast-materialize", "mlplatform-kuberay-cluster"}  # fmt: skip
    assert expected <= checked


@pytest.mark.parametrize("stack", VERIFIED)
def test_every_charted_database_client_verifies_the_server(docs, rds_ca: Path, stack: str) -> None:
    """The charts' pods, as the pinned charts render the planned values: MLflow's server (libpq), the
    feature server and Airflow's components (Feast's registry), PgBouncer (server_tls_*) and Grafana."""
    doc, ca = docs(stack), expected_ca(stack, rds_ca)
    mlplatform = namespace_config_maps(doc, "mlplatform")

    pod = workload(rendered(doc, MLFLOW.name), "Deployment", MLFLOW.name)
    [server] = pod["containers"]
    env = {e["name"]: e.get("value") for e in server.get("env", [])}
    assert env["PGSSLMODE"] == MODES[stack]
    assert mounted_file(mlplatform, pod, server, env["PGSSLROOTCERT"]) == ca

    registry = feast_registry(doc, "mlplatform")
    pod = workload(rendered(doc, FEATURE_SERVER.name), "Deployment", FEATURE_SERVER.name)
    assert mounted_file(mlplatform, pod, pod["containers"][0], registry["sslrootcert"]) == ca

    airflow = rendered(doc, "airflow")
    for component in ("scheduler", "api-server", "triggerer", "dag-processor"):
        pod = workload(airflow, "Deployment", component)
        [container] = [c for c in pod["containers"] if c["name"] == component]
        assert mounted_file(mlplatform, pod, container, registry["sslrootcert"]) == ca, component
    # PgBouncer: the ini the program writes (its Secret is redacted in the plan; the same function makes it)
    from components.lifecycle.airflow import pgbouncer_ini

    endpoint = SimpleNamespace(ssl_mode=MODES[stack], ca_certificate="(the CA)")
    cred = SimpleNamespace(database="airflow", username="airflow")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(pgbouncer_ini("db.internal", 5432, endpoint, cred))
    assert ini["pgbouncer"]["server_tls_sslmode"] == MODES[stack]
    pod = workload(airflow, "Deployment", "pgbouncer")
    [pgbouncer] = [c for c in pod["containers"] if c["name"] == "pgbouncer"]
    assert mounted_file(mlplatform, pod, pgbouncer, ini["pgbouncer"]["server_tls_ca_file"]) == ca

    objects = rendered(doc, "kube-prometheus-stack")
    pod = workload(objects, "Deployment", "-grafana")
    [grafana] = [c for c in pod["containers"] if c["name"] == "grafana"]
    [cm] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-grafana")]
    grafana_ini = configparser.ConfigParser(interpolation=None)
    grafana_ini.read_string(cm["data"]["grafana.ini"])
    database = grafana_ini["database"]
    assert database["ssl_mode"] == MODES[stack]
    assert mounted_file(namespace_config_maps(doc, "monitoring"), pod, grafana, database["ca_cert_path"]) == ca


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_without_an_rds_bundle_clients_require_tls_and_mount_no_ca(plan, stack: str) -> None:
    doc = plan(stack) if stack == "prod" else managed_stack(stack)  # dev: with RDS, whatever its default mode
    assert not [c for c in doc.by_type("kubernetes:core/v1:ConfigMap") if "postgres-ca" in str(c.inputs["metadata"])]
    for _, what, pod in planned_pods(doc):
        for container in pod["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "PGSSLMODE" in env:
                assert env["PGSSLMODE"] == "require" and "PGSSLROOTCERT" not in env, what
    assert feast_registry(doc, "mlplatform") == {"sslmode": "require"}


def test_the_plan_warns_when_clients_cannot_verify_rds(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        managed_plan("dev")  # with RDS, whatever dev's default mode
    [warning] = [r.getMessage() for r in caplog.records if "caBundle" in r.getMessage()]
    assert "sslmode=require" in warning
    assert "https://truststore.pki.rds.amazonaws.com/us-east-1/us-east-1-bundle.pem" in warning


def test_memorystore_clients_get_every_ca_the_instance_lists() -> None:
    """Memorystore publishes the next CA five years before the current one expires; both are trusted."""
    from mlplatform.plan.mocks import mock_ca
    from tests.support.managed import managed_stack

    gcp_dev = managed_stack("gcp-dev", ("redis",))
    bundle = namespace_config_maps(gcp_dev, "mlplatform")["feast-redis-ca"]["ca.crt"]
    assert bundle == "".join(mock_ca(f"mlplatform-redis-ca-{k}") for k in (1, 2))


# -- data.postgres.caBundle is checked when the config loads -------------------------------------------------


def stack_with_bundle(stack: str, bundle: str) -> dict[str, Any]:
    from mlplatform.config import read_stack_file

    # with the database managed (RDS on aws), whatever the profile's default mode
    postgres = {"mode": "managed", "caBundle": bundle}
    return read_stack_file(PROJECT_DIR, stack) | {"mlplatform:data": {"postgres": postgres}}


def problem(stack: str, bundle: str) -> str:
    with pytest.raises(ConfigError) as e:
        synthesize(f"{stack}-bad-bundle", config_map=stack_with_bundle(stack, bundle))
    return e.value.render()


def test_a_bundle_that_is_not_a_file_fails_the_config(tmp_path: Path) -> None:
    assert "no such file" in problem("dev", str(tmp_path / "missing.pem"))


def test_a_bundle_without_certificates_fails_the_config(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<html>403 Forbidden</html>")
    assert "no PEM certificate" in problem("dev", str(tmp_path / "page.html"))


def test_a_server_certificate_is_not_a_ca_bundle(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, "ca")
    leaf, _ = ca.issue(tmp_path, "leaf", common_name="db.example.com", alt_names="DNS:db.example.com")
    assert "not CAs" in problem("dev", str(leaf))


def test_an_expired_bundle_fails(tmp_path: Path) -> None:
    from mlplatform.config.certificates import ca_bundle_problems

    ca = CertificateAuthority.create(tmp_path, "ca")
    assert ca_bundle_problems(str(ca.cert)) == []
    in_three_days = float(subprocess.run(["date", "-d", "+3 days", "+%s"], capture_output=True, text=True).stdout)
    assert "expired" in ca_bundle_problems(str(ca.cert), now=in_three_days)[0]


def test_gcp_takes_no_bundle(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, "ca")
    assert "not used on gcp" in problem("gcp-dev", str(ca.cert))
