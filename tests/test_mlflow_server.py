"""MLflow as it would run: the pinned chart rendered with the plan's values, then the pinned MLflow server
started with exactly the Deployment's arguments and environment (its ConfigMap, its env and the Secrets it
loads) against a real PostgreSQL that, like RDS, requires TLS, after the program's migration Job has run.
The plan is an AWS stack's that names its RDS CA bundle (here a test CA's, which issued the server's
certificate for the planned RDS endpoint): both the Job and the server verify the database (verify-full,
the CA mounted from the program's ConfigMap as the kubelet mounts it), and one from another CA is refused.

What this sees that the plan cannot: a Secret the pods need that only a skipped Helm hook would make, a
migration that does not reach the database, Host headers the server rejects (Prometheus scrapes by pod IP,
`kubectl port-forward` sends localhost) and a worker count that does not fit the memory limit.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.lifecycle.mlflow import ENDPOINT, FLASK_SECRET, FLASK_SECRET_KEY
from mlplatform.pins import MLFLOW
from tests.support.graph import helm_release
from tests.support.kubelet import container_env, in_root, lay_out_mounts
from tests.support.net import free_port
from tests.support.postgres import (
    ADMIN,
    ADMIN_PASSWORD,
    CertificateAuthority,
    ca_config_map,
    local_postgres,
    namespace_config_maps,
    rds_ca_plan,
    server_bin,
)
from tests.support.tools import required_tool, venv_python

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT.parent / "shared" / "charts" / f"mlflow-{MLFLOW.version}.tgz"
REQUIREMENTS = "tests/venvs/mlflow.txt"
HOOK = "helm.sh/hook"
POD_IP_HOST = "10.16.3.7:5000"  # how Prometheus addresses a pod (GKE's pod range; EKS pods sit in 10.0.0.0/16)

pytestmark = pytest.mark.slow


def test_the_test_venv_runs_the_pinned_mlflow() -> None:
    pins = dict(line.split("==") for line in (ROOT / REQUIREMENTS).read_text().splitlines() if "==" in line)
    assert pins["mlflow"] == MLFLOW.app_version


@dataclass(frozen=True)
class Verified:
    """An AWS plan with its RDS CA bundle (a test CA), and the certificates a server may present."""

    doc: Any
    work: Path
    certificate: tuple[Path, Path]  # the test CA's, for the planned RDS endpoint
    impostor: tuple[Path, Path]  # another CA's, for the same name


@pytest.fixture(scope="module")
def verified() -> Verified:
    work = Path(tempfile.mkdtemp(prefix="mlplatform-mlflow-tls-", dir="/tmp"))
    ca, other = CertificateAuthority.create(work, "rds-ca"), CertificateAuthority.create(work, "other-ca")
    doc = rds_ca_plan(ca.cert)
    host = doc.outputs["postgresHost"]
    certificate = ca.issue(work, "rds", common_name=host, alt_names=f"DNS:{host}")
    return Verified(doc, work, certificate, other.issue(work, "impostor", common_name=host, alt_names=f"DNS:{host}"))


@pytest.fixture(scope="module")
def rendered(verified) -> list[dict[str, Any]]:
    if not CHART.is_file():
        pytest.skip(f"{CHART} absent (../shared/charts holds the pinned chart packages)")
    import helm_python

    reg = helm_release(verified.doc, ENDPOINT.name)
    files = helm_python.Chart.load(str(CHART)).render(
        reg.inputs.get("values") or {}, name=ENDPOINT.name, namespace="mlplatform", is_install=True
    )
    return [
        doc
        for path, text in sorted(files.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc.get("kind")
    ]


def applied(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a helm.v4.Chart applies: every rendered object but the hooks (pulumi-kubernetes
    provider/pkg/provider/helm/v4/chart.go renders with hooks disabled; pulumi/pulumi-kubernetes#3284)."""
    return [o for o in objects if HOOK not in ((o.get("metadata") or {}).get("annotations") or {})]


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == "Deployment"]
    return found


def test_every_secret_and_config_map_the_pods_load_is_applied(verified, rendered) -> None:
    """A non-optional envFrom or secretKeyRef to an object only a hook makes leaves the pod in
    CreateContainerConfigError: each must be applied by the chart or declared by the program."""
    program = {
        (r.type.rsplit(":", 1)[-1], (r.inputs.get("metadata") or {}).get("name"))
        for r in verified.doc.resources
        if r.type in ("kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap")
    }
    chart = {(o["kind"], o["metadata"]["name"]) for o in applied(rendered)}
    spec = deployment(rendered)["spec"]["template"]["spec"]
    missing = []
    for container in spec.get("initContainers", []) + spec["containers"]:
        for source in container.get("envFrom", []):
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                ref = source.get(key)
                if ref and not ref.get("optional") and (kind, ref["name"]) not in program | chart:
                    missing.append(f"{container['name']}: {kind} {ref['name']}")
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref and not ref.get("optional") and ("Secret", ref["name"]) not in program | chart:
                missing.append(f"{container['name']}: Secret {ref['name']} ({env['name']})")
    assert not missing, f"loaded by the pods but never applied (a skipped hook?): {missing}"


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not become healthy:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def status(url: str, path: str, host: str) -> int:
    request = urllib.request.Request(f"{url}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (what the container's cgroup is charged)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/statm").read_text().split()
            total += int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        todo += [int(c) for c in children]
    return total


def memory_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]i)?", quantity).groups()
    return int(number) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[unit]


def migration_env(verified: Verified, root: Path, secret: dict[str, str], port: int) -> dict[str, str]:
    """The migration Job's container environment as the kubelet gives it (its CA ConfigMap mounted under
    `root`), connecting to this machine's server on `port` while libpq verifies the planned host name."""
    [job] = [r for r in verified.doc.resources if r.type == "kubernetes:batch/v1:Job" and "mlflow" in r.name]
    spec = job.inputs["spec"]["template"]["spec"]
    [migrate] = spec["containers"]
    env = container_env(migrate, secret)
    assert env["PGSSLMODE"] == "verify-full", "the Job verifies the RDS endpoint it sends the password to"
    mounts = migrate.get("volumeMounts", [])
    ca = ca_config_map(spec.get("volumes", []), mounts, env["PGSSLROOTCERT"])
    assert namespace_config_maps(verified.doc, "mlplatform")[ca]["ca.crt"] == rds_bundle(verified)
    lay_out_mounts(root, spec.get("volumes", []), mounts, namespace_config_maps(verified.doc, "mlplatform"))
    return in_root(env, root, mounts) | {"PGHOSTADDR": "127.0.0.1", "PGPORT": str(port), "PATH": os.environ["PATH"]}


def rds_bundle(verified: Verified) -> str:
    return (verified.work / "rds-ca.crt").read_text()


def database_secret(verified: Verified) -> dict[str, str]:
    """What the `mlflow-postgres` Secret holds on the planned stack (test password)."""
    host = verified.doc.outputs["postgresHost"]
    return {"host": host, "port": "5432", "database": "mlflow", "username": "mlflow", "password": "mlflow-Pw-1"}


@pytest.fixture(scope="module")
def server(
    verified, rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The migration Job's command, then the Deployment's server, each with the environment and volumes the
    kubelet would give it; only addresses (database, listen port, artifact store) point at this machine."""
    python = venv_python(".venv-mlflow", REQUIREMENTS)
    required_tool("psql", "postgresql")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    work = tmp_path_factory.mktemp("mlflow")
    # a directory the postgres OS user can reach (pytest's base temp directory is private to root)
    pg_dir = Path(tempfile.mkdtemp(prefix="mlplatform-mlflow-pg-", dir="/tmp"))
    with local_postgres(pg_dir, verified.certificate) as pg:
        role = "CREATE ROLE mlflow LOGIN PASSWORD 'mlflow-Pw-1'"
        for sql in (role, f"GRANT mlflow TO {ADMIN}", "CREATE DATABASE mlflow OWNER mlflow"):
            assert pg.psql(sql, user=ADMIN, password=ADMIN_PASSWORD).returncode == 0
        secret = database_secret(verified)

        [job] = [r for r in verified.doc.resources if r.type == "kubernetes:batch/v1:Job" and "mlflow" in r.name]
        [migrate] = job.inputs["spec"]["template"]["spec"]["containers"]
        job_env = migration_env(verified, work / "job", secret, pg.port)
        command = [python if migrate["command"][0] == "python" else migrate["command"][0], *migrate["command"][1:]]
        done = subprocess.run(command, env=job_env, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode()[-3000:]

        # the same Job against a server whose certificate another CA issued: refused before any SQL
        pg.present(verified.impostor)
        refused = subprocess.run(["psql", "-tAc", "SELECT 1"], env=job_env, capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "certificate verify failed" in refused.stderr, refused.stderr
        pg.present(verified.certificate)

        objects = {(o["kind"], o["metadata"]["name"]): o for o in applied(rendered)}
        [container] = deployment(rendered)["spec"]["template"]["spec"]["containers"]
        env: dict[str, str] = {"PATH": f"{Path(python).parent}:{os.environ['PATH']}", "HOME": str(work)}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env |= objects[("ConfigMap", source["configMapRef"]["name"])]["data"]
            elif source["secretRef"]["name"] == FLASK_SECRET:
                env[FLASK_SECRET_KEY] = base64.b64encode(os.urandom(32)).decode()  # the program's Secret
            else:
                applied_secret = objects[("Secret", source["secretRef"]["name"])]
                env |= {k: base64.b64decode(v).decode() for k, v in (applied_secret.get("data") or {}).items()}
        env |= container_env(container, secret)
        assert env["PGHOST"] == secret["host"] and env["PGSSLMODE"] == "verify-full", "the server verifies RDS"
        # this machine's server; PGHOST stays the planned endpoint, the name libpq checks
        env |= {"PGHOSTADDR": "127.0.0.1", "PGPORT": str(pg.port)}
        port = free_port()
        args = []
        for arg in container["args"]:
            arg = arg.replace("/tmp/", f"{work}/")  # the chart's emptyDir on /tmp
            arg = re.sub(r"^--port=\d+$", f"--port={port}", arg)
            arg = re.sub(r"^--host=.*$", "--host=127.0.0.1", arg)
            arg = re.sub(r"^--artifacts-destination=.*$", f"--artifacts-destination={work / 'artifacts'}", arg)
            args.append(arg)
        mounts = container.get("volumeMounts", [])
        for mount in mounts:
            if mount["mountPath"] == "/tmp":
                env["TMPDIR"] = str(work)
        # the program's ConfigMaps (the database CA) mounted as the kubelet mounts them
        pod_volumes = deployment(rendered)["spec"]["template"]["spec"].get("volumes", [])
        root, others = work / "pod", [m for m in mounts if m["mountPath"] != "/tmp"]
        lay_out_mounts(root, pod_volumes, others, namespace_config_maps(verified.doc, "mlplatform"))
        env = in_root(env, root, others)
        assert Path(env["PGSSLROOTCERT"]).read_text() == rds_bundle(verified)
        log = work / "server.log"
        process = subprocess.Popen(
            [str(Path(python).parent / container["command"][0]), *args],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log)
            yield url, process, work / "artifacts"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_scrapes_port_forwards_and_in_cluster_clients_are_served(server) -> None:
    url, *_ = server
    api = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert status(url, "/metrics", POD_IP_HOST) == 200, "Prometheus scrapes the pod by its IP"
    assert status(url, api, f"localhost:{ENDPOINT.port}") == 200, "kubectl port-forward"
    assert status(url, api, "[::1]") == status(url, api, f"[::1]:{ENDPOINT.port}") == 200, "IPv6 loopback"
    assert status(url, api, ENDPOINT.host) == 200, "in-cluster clients by the Service's name"
    assert status(url, api, f"{ENDPOINT.host}:{ENDPOINT.port}") == 200


def test_dns_rebinding_protection_stays_on(server) -> None:
    url, *_ = server
    assert status(url, "/api/2.0/mlflow/experiments/search?max_results=1", "mlflow.attacker.example") == 403


def test_the_server_fits_its_memory_limit(server, rendered) -> None:
    _, process, _ = server
    time.sleep(3)  # every worker has imported MLflow
    [container] = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    limit = memory_bytes(container["resources"]["limits"]["memory"])
    used = tree_rss_bytes(process.pid)
    # half the limit left for requests, uploads proxied through the server and the Prometheus registry
    assert used < limit / 2, f"server and workers use {used >> 20} MiB idle, limit {limit >> 20} MiB"


# Logs a scikit-learn model the way the README tells users to (MLflow 3, through the tracking server's
# artifact proxy), registers it, promotes it by alias, and resolves both the alias and the version with
# the platform's client code, against the server's local artifacts destination and a bucket destination.
REGISTER_AND_RESOLVE = """
import json, sys
import mlflow
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from mlplatform_client.models import storage_uri

url, local_destination = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(url)
mlflow.set_experiment("churn")
with mlflow.start_run():
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn")
client = MlflowClient(url)
client.set_registered_model_alias("churn", "champion", info.registered_model_version)
print(json.dumps({
    "source": client.get_model_version("churn", str(info.registered_model_version)).source,
    "by_alias": storage_uri(client, "churn", local_destination, alias="champion"),
    "by_version": storage_uri(client, "churn", local_destination, version=str(info.registered_model_version)),
    "in_bucket": storage_uri(client, "churn", "s3://mlplatform-dev-artifacts/mlflow", alias="champion"),
}))
"""


def test_a_registered_version_resolves_to_the_files_kserve_loads(server) -> None:
    """MLflow 3 registers `models:/m-<id>`, which no storage initializer reads: the client code turns the
    alias or version into the bucket path where the model's MLmodel actually is."""
    import json

    url, _, destination = server
    python = venv_python(".venv-mlflow", REQUIREMENTS)
    done = subprocess.run(
        [python, "-c", REGISTER_AND_RESOLVE, url, str(destination)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_ENABLE_LOGGED_MODEL_SIGNATURE_WARNINGS": "false"},
        capture_output=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    found = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert found["source"].startswith("models:/m-"), "MLflow 3 records the logged model, not a path"
    assert found["by_alias"] == found["by_version"]
    model_dir = Path(found["by_alias"])
    assert (model_dir / "MLmodel").is_file(), f"no MLmodel where the storage URI points: {model_dir}"
    assert "sklearn" in (model_dir / "MLmodel").read_text()
    relative = model_dir.relative_to(destination).as_posix()
    assert found["in_bucket"] == f"s3://mlplatform-dev-artifacts/mlflow/{relative}"
