"""Airflow's schema migration as it would run: the program's migration Job (its command and environment,
the `airflow-postgres` Secret's libpq variables) executed by the pinned Airflow (its own venv,
.venv-airflow) against a real PostgreSQL that, like RDS and Cloud SQL, requires TLS; then the check the
chart's `wait-for-airflow-migrations` init containers make passes, so the release's pods can start.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.postgres import ADMIN, ADMIN_PASSWORD, local_postgres, server_bin
from tests.support.tools import required_tool, venv_python

REQUIREMENTS = "tests/venvs/airflow.txt"
PASSWORD = "airflow-Pw-1"

pytestmark = pytest.mark.slow


def migration_container(doc) -> dict:
    [job] = [r for r in doc.by_type("kubernetes:batch/v1:Job") if r.name.endswith("airflow-db-migrate")]
    [container] = job.inputs["spec"]["template"]["spec"]["containers"]
    return container


def test_the_migration_job_migrates_over_tls_and_the_pods_wait_check_passes(dev) -> None:
    python = venv_python(".venv-airflow", REQUIREMENTS)
    required_tool("psql", "postgresql")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    container = migration_container(dev)
    # a directory the postgres OS user can reach (as in tests/test_mlflow_server.py)
    with (
        tempfile.TemporaryDirectory(prefix="mlplatform-airflow-") as work,
        local_postgres(Path(tempfile.mkdtemp(prefix="mlplatform-airflow-pg-", dir="/tmp"))) as pg,
    ):
        for sql in (f"CREATE ROLE airflow LOGIN PASSWORD '{PASSWORD}'", f"GRANT airflow TO {ADMIN}",
                        "CREATE DATABASE airflow OWNER airflow"):  # fmt: skip
            assert pg.psql(sql, user=ADMIN, password=ADMIN_PASSWORD).returncode == 0
        database = pg.env("airflow", PASSWORD, "airflow")  # every key the airflow-postgres Secret holds
        env = {e["name"]: database[e["name"]] for e in container["env"] if "valueFrom" in e}
        env |= {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert env["PGSSLMODE"] == "require"
        env |= {"PATH": f"{Path(python).parent}:{os.environ['PATH']}", "AIRFLOW_HOME": f"{work}/home"}
        done = subprocess.run(container["args"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        # what the chart's init containers run before the scheduler, API server and processors start
        check = ["airflow", "db", "check-migrations", "--migration-wait-timeout", "10"]
        waited = subprocess.run(check, env=env, capture_output=True, text=True, timeout=120)
        assert waited.returncode == 0, waited.stderr[-3000:]
        tables = pg.psql("SELECT count(*) FROM alembic_version", user="airflow", password=PASSWORD,
                             database="airflow")  # fmt: skip
        assert tables.stdout.strip() == "1"
