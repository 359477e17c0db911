"""The database bootstrap Job, as planned, run against a real PostgreSQL that forces TLS.

The Job's own script, SQL (from its ConfigMap) and environment are taken from the dev plan; only the
Secret references are filled with test passwords. This proves the SQL is idempotent, that each service
owns exactly its own database, and that rotating a password takes effect on the next run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.data.credentials import SERVICE_DATABASES
from mlplatform.plan.document import PlanDocument
from tests.support.postgres import ADMIN, ADMIN_PASSWORD, LocalPostgres, local_postgres, server_bin

# Skipped on a workstation without the server; CI installs it, and there a missing server is a failure.
pytestmark = pytest.mark.skipif(
    server_bin() is None and not os.environ.get("CI"), reason="PostgreSQL server binaries not installed"
)

PASSWORDS = {s: f"{s}-Pw-0123456789abcdef" for s in SERVICE_DATABASES}


@pytest.fixture(scope="module")
def pg() -> Iterator[LocalPostgres]:
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-pg-", dir="/tmp"))
    with local_postgres(workdir) as server:
        yield server


def _run_job(doc: PlanDocument, pg: LocalPostgres, passwords: dict[str, str], workdir: Path) -> None:
    """Run the planned Job's container command locally, its /sql mount pointing at the planned ConfigMap."""
    registration = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    job = registration.inputs["spec"]["template"]["spec"]
    [container] = job["containers"]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "sql")
    # the ConfigMap the Job mounts is the one it was built from (the only ConfigMap it depends on)
    [configmap] = [c for c in doc.by_type("kubernetes:core/v1:ConfigMap") if c.urn in registration.dependencies]
    for key, text in configmap.inputs["data"].items():
        (workdir / key).write_text(text)
    secret_values = {"ADMIN_PASSWORD": ADMIN_PASSWORD} | {f"{s.upper()}_PASSWORD": p for s, p in passwords.items()}
    env = {"PATH": os.environ["PATH"]}
    for var in container["env"]:
        if "valueFrom" in var:
            env[var["name"]] = secret_values[var["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[var["name"]] = var["value"]
    env |= {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "HOME": str(workdir)}  # the RDS address is a stand-in
    shell, flag, script = container["command"]
    result = subprocess.run(
        [shell, flag, script.replace(f"{mount}/", f"{workdir}/")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_job_targets_the_planned_instance_as_its_admin_over_tls(dev: PlanDocument) -> None:
    job = dev.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    values = {v["name"]: v.get("value") for v in job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert values["PGSSLMODE"] == "require"
    assert values["PGUSER"] == dev.one("aws:rds/instance:Instance", "mlplatform-postgres").inputs["username"]
    assert values["PGHOST"] == dev.outputs["postgresHost"]
    assert job.inputs["metadata"]["namespace"] == "data"


@pytest.mark.parametrize("stack", ["dev", "gcp-dev"])
def test_bootstrap_creates_owned_isolated_databases_idempotently(plan, stack: str, pg: LocalPostgres) -> None:
    """The same Job on RDS and on Cloud SQL (where API-made users would all join cloudsqlsuperuser)."""
    doc = plan(stack)
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-job-"))
    _run_job(doc, pg, PASSWORDS, workdir)
    _run_job(doc, pg, PASSWORDS, workdir)  # a re-run (e.g. a replaced Job) must succeed and change nothing
    memberships = pg.psql(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        f"WHERE r.rolname IN ({', '.join(repr(s) for s in SERVICE_DATABASES)})",
        user=ADMIN,
        password=ADMIN_PASSWORD,
    )
    assert memberships.returncode == 0 and memberships.stdout.split() == []  # no service inherits another role

    owners = pg.psql(
        "SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database WHERE NOT datistemplate",
        user=ADMIN,
        password=ADMIN_PASSWORD,
    )
    assert {f"{s}:{s}" for s in SERVICE_DATABASES} <= set(owners.stdout.split())
    for service, password in PASSWORDS.items():
        own = pg.psql(
            "CREATE TABLE t(id int); DROP TABLE t; SELECT 1", user=service, password=password, database=service
        )
        assert own.returncode == 0, own.stderr
        other = next(s for s in SERVICE_DATABASES if s != service)
        denied = pg.psql("SELECT 1", user=service, password=password, database=other)
        assert denied.returncode != 0 and "permission denied" in denied.stderr
        plain = pg.psql("SELECT 1", user=service, password=password, database=service, sslmode="disable")
        assert plain.returncode != 0  # the server, like RDS with rds.force_ssl, refuses non-TLS clients


def test_rotated_password_takes_effect_on_rerun(dev: PlanDocument, pg: LocalPostgres) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-job-"))
    rotated = PASSWORDS | {"feast": "feast-Rotated-987654321"}
    _run_job(dev, pg, rotated, workdir)
    assert pg.psql("SELECT 1", user="feast", password=rotated["feast"], database="feast").returncode == 0
    assert pg.psql("SELECT 1", user="feast", password=PASSWORDS["feast"], database="feast").returncode != 0
