"""Feast as the platform runs it: the planned feast-apply Job and feast-materialize CronJob containers, run
with the pinned Feast (.venv-feast, the feature-server image's versions) exactly as planned (command,
environment, the ConfigMap volumes laid out as the kubelet lays them out), against a real PostgreSQL that
requires TLS (the SQL registry), a real Redis with TLS and AUTH (the online store) and an S3 and STS
endpoint that checks every signature (moto, tests/support/moto_aws.py). Only addresses change: the YAML's
hosts point at this machine, and AWS_ENDPOINT_URL at moto.

The pods' AWS credentials are IRSA's: EKS's pod identity webhook gives a pod whose service account carries
`eks.amazonaws.com/role-arn` the variables AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (and the region),
nothing else; here too. So a materialization that fills Redis read the Parquet through the web-identity
exchange, and a role without the bucket grant is refused: nothing reads anonymously or with static keys.

What this sees that the plan cannot: a feature repository `feast apply` cannot import from the kubelet's
`..data` layout, a YAML the library does not read, a materialization that "succeeds" with nothing to
materialize, an offline store that cannot sign with the workload identity.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.pins import FEAST_FEATURE_SERVER
from tests.support.kubelet import mount_config_map
from tests.support.net import free_port, loopback_certificate
from tests.support.postgres import ADMIN, ADMIN_PASSWORD, LocalPostgres, local_postgres, server_bin
from tests.support.tools import required_tool, venv_python

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = "tests/venvs/feast.txt"
REDIS_PASSWORD = "redis-Pw-1234567890"
FEAST_PASSWORD = "feast-Pw-1"
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
IRSA_TOKEN = "var/run/secrets/eks.amazonaws.com/serviceaccount/token"  # where the webhook mounts it

pytestmark = pytest.mark.slow


def test_the_test_venv_runs_the_pinned_feast() -> None:
    [feast] = [line for line in (ROOT / REQUIREMENTS).read_text().splitlines() if line.startswith("feast[")]
    assert feast.split("==")[1] == FEAST_FEATURE_SERVER.app_version


def sample() -> Any:
    spec = importlib.util.spec_from_file_location("sample_data", ROOT / "feature_repo" / "sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Servers:
    python: str
    work: Path
    postgres: LocalPostgres
    redis_port: int
    redis_ca: Path
    aws: dict[str, str]  # url, role, denied_role


def wait_for(check, what: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def tls_redis(work: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """redis-server with TLS only and AUTH, like ElastiCache with in-transit encryption and an auth token."""
    cert, key = loopback_certificate(work)
    port, log = free_port(), work / "redis.log"
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-auth-clients", "no", "--requirepass", REDIS_PASSWORD,
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for(lambda: "Ready to accept connections" in log.read_text(), "redis-server", process, log)
    return process, port, cert


@pytest.fixture(scope="module")
def dev():
    """dev with its data services managed (RDS, ElastiCache, MSK): the shape this test's local servers stand
    for. dev's in-cluster services (its profile's default) have their own real-server tests
    (tests/test_in_cluster_{postgres,redis,kafka}.py)."""
    from tests.support.managed import managed_stack

    return managed_stack("dev")


@pytest.fixture(scope="module")
def servers(dev) -> Iterator[Servers]:
    python = venv_python(".venv-feast", REQUIREMENTS)
    required_tool("psql", "postgresql")
    required_tool("redis-server", "redis-server")
    required_tool("openssl", "openssl")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-feast-", dir="/tmp"))
    cleanup = [work]
    parquet = work / "driver_stats.parquet"
    subprocess.run([python, str(ROOT / "feature_repo" / "sample_data.py"), str(parquet)], check=True, timeout=60)
    repo = repo_config_map(dev)["data"]
    [key] = re.findall(r'^SAMPLE_PATH = "([^"]+)"', repo["features.py"], re.M)
    bucket = datasets_uri(dev).removeprefix("s3://")
    # every other file the plan seeds into the datasets bucket, from the file the seed uploads
    seeded = [
        f"{o.inputs['key']}={ROOT / o.inputs['source']['path']}"
        for o in dev.by_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if o.inputs["key"] != key
    ]
    aws = subprocess.Popen(
        [python, str(ROOT / "tests" / "support" / "moto_aws.py"), bucket, f"{key}={parquet}", *seeded],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=(work / "moto.log").open("w"), text=True,
    )  # fmt: skip
    redis, redis_port, redis_ca = tls_redis(work)
    try:
        # a directory the postgres OS user can reach (mkdtemp's are private to their owner)
        pg_dir = Path(tempfile.mkdtemp(prefix="mlplatform-feast-pg-", dir="/tmp"))
        cleanup.append(pg_dir)
        with local_postgres(pg_dir) as pg:
            # the registry's database and owner, as the bootstrap Job makes them
            role = f"CREATE ROLE feast LOGIN PASSWORD '{FEAST_PASSWORD}'"
            for sql in (role, f"GRANT feast TO {ADMIN}", "CREATE DATABASE feast OWNER feast"):
                assert pg.psql(sql, user=ADMIN, password=ADMIN_PASSWORD).returncode == 0
            line = aws.stdout.readline()
            assert line, (work / "moto.log").read_text()[-2000:]
            yield Servers(python, work, pg, redis_port, redis_ca, json.loads(line))
    finally:
        os.killpg(redis.pid, signal.SIGTERM)
        aws.stdin.close()
        aws.wait(timeout=30)
        redis.wait(timeout=30)
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)


def planned(dev, type_: str, name: str) -> dict[str, Any]:
    return dev.one(type_, name).inputs


def repo_config_map(dev) -> dict[str, Any]:
    return planned(dev, "kubernetes:core/v1:ConfigMap", "mlplatform-feast-repo")


def apply_pod(dev) -> dict[str, Any]:
    return planned(dev, "kubernetes:batch/v1:Job", "mlplatform-feast-apply")["spec"]["template"]["spec"]


def materialize_pod(dev) -> dict[str, Any]:
    cron = planned(dev, "kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize")
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def datasets_uri(dev) -> str:
    [uri] = [e["value"] for e in apply_pod(dev)["containers"][0]["env"] if e["name"] == "DATASETS_URI"]
    assert uri == dev.outputs["buckets"]["datasets"]
    return uri


def local_addresses(dev, servers: Servers, text: str) -> str:
    """The YAML's hosts, and only they, moved to this machine."""
    store = yaml.safe_load(planned(dev, "kubernetes:core/v1:ConfigMap", "mlplatform-feast-store")["data"][
        "feature_store.yaml"])  # fmt: skip
    [pg] = re.findall(r"@([^/@]+)/", store["registry"]["path"])
    redis = store["online_store"]["connection_string"].split(",")[0]
    assert pg.split(":")[0] == dev.outputs["postgresHost"] and redis.split(":")[0] == dev.outputs["redisHost"]
    return text.replace(pg, f"127.0.0.1:{servers.postgres.port}").replace(redis, f"127.0.0.1:{servers.redis_port}")


def run_pod(
    dev, servers: Servers, pod: dict[str, Any], *, role: str | None = None, command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The pod's one container, on this machine: its ConfigMap volumes laid out by the kubelet's rules under
    a fresh root, its env with Secret values and absolute paths moved under that root, plus what EKS's
    webhook adds for the service account's IRSA role."""
    [container] = pod["containers"]
    root = Path(tempfile.mkdtemp(dir=servers.work))
    config_maps = {
        c.inputs["metadata"]["name"]: c.inputs.get("data") or {}
        for c in dev.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("namespace") == "mlplatform"
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = {k: local_addresses(dev, servers, v) for k, v in config_maps[volume["configMap"]["name"]].items()}
            target.parent.mkdir(parents=True, exist_ok=True)
            target.mkdir()
            mount_config_map(target, data, volume["configMap"].get("items"))
        else:
            assert "emptyDir" in volume, volume
            target.mkdir(parents=True)
    db, redis = (
        dev.one("kubernetes:core/v1:Secret", f"mlplatform-feast-{s}-secret").inputs["metadata"]["name"]
        for s in ("db", "redis")
    )
    secrets = {(db, "username"): "feast", (db, "password"): FEAST_PASSWORD, (redis, "password"): REDIS_PASSWORD}
    env: dict[str, str] = {}
    for e in container["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            value = str(e["value"])
            env[e["name"]] = f"{root}{value}" if value.startswith("/") else value
    # IRSA (the service account's annotation is the role; moto's role stands in for it)
    [account] = [
        a.inputs
        for a in dev.by_type("kubernetes:core/v1:ServiceAccount")
        if a.inputs["metadata"]["name"] == pod["serviceAccountName"]
        and a.inputs["metadata"]["namespace"] == "mlplatform"
    ]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    token = root / IRSA_TOKEN
    token.parent.mkdir(parents=True)
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWxwbGF0Zm9ybTpmZWFzdCJ9.c2ln")
    region = dev.outputs.get("region", "us-east-1")
    env |= {
        "AWS_ROLE_ARN": role or servers.aws["role"],
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        # this machine's stand-ins: moto for S3 and STS, the test CA in the trust store, no instance metadata
        "AWS_ENDPOINT_URL": servers.aws["url"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "SSL_CERT_FILE": str(servers.redis_ca),
        "PATH": f"{Path(servers.python).parent}:{os.environ['PATH']}",
    }
    argv = command or container["command"]
    argv = [servers.python if argv[0] == "python" else str(Path(servers.python).parent / argv[0]), *argv[1:]]
    argv = [f"{root}{a}" if a.startswith("/etc/") else a for a in argv]
    return subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, timeout=120)


def test_materialization_fails_while_the_registry_is_empty(dev, servers) -> None:
    """Feast's own materialize-incremental prints "Materializing 0 feature views" and exits 0 on an empty
    registry; the platform's CronJob fails instead, so KubeJobFailed fires."""
    done = run_pod(dev, servers, materialize_pod(dev))
    assert done.returncode != 0, done.stdout
    assert "no online feature view" in done.stderr, done.stderr[-3000:]


@pytest.fixture(scope="module")
def applied(dev, servers) -> subprocess.CompletedProcess[str]:
    done = run_pod(dev, servers, apply_pod(dev))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def test_the_apply_job_registers_the_feature_repository_from_its_config_map(servers, applied) -> None:
    """parse_repo imported features.py through the kubelet's links (and only it: .feastignore keeps
    sample_data.py out); what it defines is in the SQL registry's tables (infra/registry/sql.py)."""
    registered = {}
    tables = {"entities": "entity", "feature_views": "feature_view", "feature_services": "feature_service"}
    for table, column in ({**tables, "data_sources": "data_source"}).items():
        done = servers.postgres.psql(
            f"SELECT {column}_name FROM {table} WHERE project_id = 'mlplatform' ORDER BY 1",
            user="feast", password=FEAST_PASSWORD, database="feast",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        registered[table] = done.stdout.split()
    assert registered == {
        "entities": ["__dummy", "driver"],  # Feast's own, for entityless views (feature_view.py DUMMY_ENTITY)
        "feature_views": ["driver_hourly_stats", "driver_trip_stats"],
        "feature_services": ["driver_activity"],
        "data_sources": ["driver_stats_push", "driver_stats_source", "driver_trip_stats_source", "driver_trips_push"],
    }


READ = """\
import json
import pandas as pd
from feast import FeatureStore

features = {features!r}
store = FeatureStore()
entities = pd.DataFrame(
    {{"driver_id": [1001, 1003],
     "event_timestamp": pd.to_datetime(["2026-01-01T10:30:00Z", "2026-01-02T05:30:00Z"], utc=True)}}
)
historical = store.get_historical_features(entity_df=entities, features=features).to_df()
out = {{"historical": historical.sort_values("driver_id").to_dict("records")}}
if {online}:
    out["online"] = store.get_online_features(features=features, entity_rows=[{{"driver_id": 1001}}]).to_dict()
print(json.dumps(out, default=str))
"""


def expected(driver: int, hour: int) -> dict[str, Any]:
    """The sample's row for `driver` at START + `hour`, as sample_data.py writes it."""
    data = sample()
    rows, at = data.rows(), data.START + timedelta(hours=hour)
    stamps = zip(rows["driver_id"], rows["event_timestamp"], strict=True)
    [i] = [i for i, (d, t) in enumerate(stamps) if d == driver and t == at]
    return {k: rows[k][i] for k in ("conv_rate", "acc_rate", "avg_daily_trips")}


@pytest.fixture(scope="module")
def materialized(dev, servers, applied) -> subprocess.CompletedProcess[str]:
    done = run_pod(dev, servers, materialize_pod(dev))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def test_the_cronjob_materializes_the_applied_view(materialized) -> None:
    assert "driver_hourly_stats" in materialized.stdout


def test_the_bucket_is_read_through_the_web_identity_and_redis_serves_the_view(dev, servers, materialized) -> None:
    # the library as Ray and Airflow tasks use it (FeatureStore(), the mounted YAML): the offline store's
    # point-in-time join from the bucket, and the online read of what the CronJob materialized
    read = READ.format(features=FEATURES, online=True)
    done = run_pod(dev, servers, materialize_pod(dev), command=["python", "-c", read])
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    last = sample().HOURS - 1
    online = {k: v[0] for k, v in out["online"].items() if k != "driver_id"}
    assert online == pytest.approx(expected(1001, last), rel=1e-6)
    historical = [{k: r[k] for k in ("conv_rate", "acc_rate", "avg_daily_trips")} for r in out["historical"]]
    assert historical == [pytest.approx(expected(1001, 10), rel=1e-6), pytest.approx(expected(1003, 29), rel=1e-6)]


def test_a_role_without_the_bucket_grant_is_refused(dev, servers, applied) -> None:
    """The reads sign with the role the web identity assumed: with a role that may not read the bucket, the
    offline store fails (no anonymous or static-key fallback)."""
    read = READ.format(features=FEATURES, online=False)
    done = run_pod(dev, servers, materialize_pod(dev), role=servers.aws["denied_role"], command=["python", "-c", read])
    assert done.returncode != 0
    assert re.search(r"AccessDenied|Forbidden|PermissionError", done.stderr), done.stderr[-3000:]
