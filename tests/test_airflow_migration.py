"""Airflow's schema migration as it would run: the program's migration Job (its command, environment and
volumes: the `airflow-postgres` Secret's libpq variables and the database CA mounted as the kubelet mounts
it) executed by the pinned Airflow (its own venv, .venv-airflow) against a real PostgreSQL that, like RDS
and Cloud SQL, requires TLS; then the check the chart's `wait-for-airflow-migrations` init containers make
passes, so the release's pods can start. The plan is an AWS stack's that names its RDS CA bundle (a test
CA's, which issued the server's certificate for the planned RDS endpoint), so the Job verifies the server
(verify-full); one from another CA is refused.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.graph import helm_release
from tests.support.kubelet import container_env, in_root, lay_out_mounts
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

REQUIREMENTS = "tests/venvs/airflow.txt"
PASSWORD = "airflow-Pw-1"

pytestmark = pytest.mark.slow


def migration_pod(doc) -> tuple[dict[str, Any], dict[str, Any]]:
    [job] = [r for r in doc.by_type("kubernetes:batch/v1:Job") if r.name.endswith("airflow-db-migrate")]
    spec = job.inputs["spec"]["template"]["spec"]
    [container] = spec["containers"]
    return spec, container


def job_env(doc, root: Path, port: int) -> dict[str, str]:
    """The container's environment as the kubelet gives it: the Secret's credentials and address (test
    password), the planned values, the CA ConfigMap under `root`; connecting to this machine's `port`
    while libpq checks the planned host name."""
    spec, container = migration_pod(doc)
    secret = {"host": doc.outputs["postgresHost"], "port": "5432", "database": "airflow", "username": "airflow",
              "password": PASSWORD}  # fmt: skip
    env = container_env(container, secret)
    assert env["PGSSLMODE"] == "verify-full", "the Job verifies the RDS endpoint it sends the password to"
    mounts, volumes = container.get("volumeMounts", []), spec.get("volumes", [])
    config_maps = namespace_config_maps(doc, "mlplatform")
    ca = ca_config_map(volumes, mounts, env["PGSSLROOTCERT"])
    lay_out_mounts(root, volumes, mounts, config_maps)
    env = in_root(env, root, mounts)
    assert Path(env["PGSSLROOTCERT"]).read_text() == config_maps[ca]["ca.crt"]
    return env | {"PGHOSTADDR": "127.0.0.1", "PGPORT": str(port)}


def test_the_migration_job_migrates_over_verified_tls_and_the_pods_wait_check_passes() -> None:
    python = venv_python(".venv-airflow", REQUIREMENTS)
    required_tool("psql", "postgresql")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    # directories the postgres OS user can reach (as in tests/test_mlflow_server.py)
    tls = Path(tempfile.mkdtemp(prefix="mlplatform-airflow-tls-", dir="/tmp"))
    ca, other = CertificateAuthority.create(tls, "rds-ca"), CertificateAuthority.create(tls, "other-ca")
    doc = rds_ca_plan(ca.cert)
    host = doc.outputs["postgresHost"]
    with (
        tempfile.TemporaryDirectory(prefix="mlplatform-airflow-") as work,
        local_postgres(Path(tempfile.mkdtemp(prefix="mlplatform-airflow-pg-", dir="/tmp")),
                       ca.issue(tls, "rds", common_name=host, alt_names=f"DNS:{host}")) as pg,
    ):  # fmt: skip
        for sql in (f"CREATE ROLE airflow LOGIN PASSWORD '{PASSWORD}'", f"GRANT airflow TO {ADMIN}",
                        "CREATE DATABASE airflow OWNER airflow"):  # fmt: skip
            assert pg.psql(sql, user=ADMIN, password=ADMIN_PASSWORD).returncode == 0
        env = job_env(doc, Path(work) / "pod", pg.port)
        env |= {"PATH": f"{Path(python).parent}:{os.environ['PATH']}", "AIRFLOW_HOME": f"{work}/home"}
        _, container = migration_pod(doc)
        done = subprocess.run(container["args"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        # what the chart's init containers run before the scheduler, API server and processors start, with
        # their configuration: the chart's airflow.cfg sets the auth manager, whose tables (FAB's) the check
        # requires too (airflow 3.1.7 utils/db.py check_migrations through RunDBManager)
        check = ["airflow", "db", "check-migrations", "--migration-wait-timeout", "10"]
        components = {
            f"AIRFLOW__CORE__{key.upper()}": str(value)
            for key, value in helm_release(doc, "airflow").inputs["values"]["config"]["core"].items()
        }
        waited = subprocess.run(check, env=env | components, capture_output=True, text=True, timeout=120)
        assert waited.returncode == 0, waited.stderr[-3000:]
        tables = pg.psql("SELECT count(*) FROM alembic_version", user="airflow", password=PASSWORD,
                             database="airflow")  # fmt: skip
        assert tables.stdout.strip() == "1"

        # the Job's libpq variables against a server whose certificate another CA issued: refused
        pg.present(other.issue(tls, "impostor", common_name=host, alt_names=f"DNS:{host}"))
        refused = subprocess.run(["psql", "-tAc", "SELECT 1"], env=env, capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "certificate verify failed" in refused.stderr, refused.stderr
