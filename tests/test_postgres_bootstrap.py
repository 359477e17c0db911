"""The database bootstrap Job, as planned, run against a real PostgreSQL that forces TLS.

The Job's own script, SQL and CA (its ConfigMaps, laid out as the kubelet mounts them) and environment are
taken from the plan; only the Secret references are filled with test passwords, and the address is this
machine's: PGHOSTADDR makes libpq connect here while it checks the certificate against the planned PGHOST.
The server presents a certificate shaped like the managed service's own, issued by a test CA that stands
in for the RDS bundle the stack names (data.postgres.caBundle) or for the CA Cloud SQL reports.

This proves the SQL is idempotent, that each service owns exactly its own database, that rotating a
password takes effect on the next run, and that the Job authenticates the server: a certificate from
another CA is refused, and on RDS (verify-full) so is one from the right CA for another host.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.data.credentials import SERVICE_DATABASES
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from tests.support.postgres import (
    ADMIN,
    ADMIN_PASSWORD,
    RDS_CA_STACK,
    CertificateAuthority,
    LocalPostgres,
    ca_config_map,
    local_postgres,
    managed_stack,
    namespace_config_maps,
    rds_ca_plan,
    run_bootstrap_job,
    server_bin,
)

# Skipped on a workstation without the server; CI installs it, and there a missing server is a failure.
pytestmark = pytest.mark.skipif(
    server_bin() is None and not os.environ.get("CI"), reason="PostgreSQL server binaries not installed"
)

PASSWORDS = {s: f"{s}-Pw-0123456789abcdef" for s in SERVICE_DATABASES}
STACKS = (RDS_CA_STACK, "gcp-dev")
# What each managed service's certificate lets a client check (README, "Data layer"): the RDS endpoint's
# name, and for Cloud SQL's per-instance CA only the chain (its certificates name <project>:<instance>).
MODES = {RDS_CA_STACK: "verify-full", "gcp-dev": "verify-ca"}


@dataclass
class Tls:
    work: Path
    ca: CertificateAuthority  # the data layer's CA: the configured RDS bundle, or the CA Cloud SQL reports
    other_ca: CertificateAuthority
    synthesize: Callable[[str], PlanDocument]
    made: dict[str, PlanDocument] = field(default_factory=dict)

    def plan(self, stack: str) -> PlanDocument:
        """The stack's plan (with the test CA as its RDS bundle on RDS_CA_STACK), made when first asked for."""
        if stack not in self.made:
            # Cloud SQL on gcp-dev whatever its default mode
            self.made[stack] = rds_ca_plan(self.ca.cert) if stack == RDS_CA_STACK else managed_stack(stack)
        return self.made[stack]

    def names(self, stack: str) -> dict[str, str | None]:
        """The names a certificate shaped like the service's carries. RDS names the instance endpoint (RDS
        User Guide, "Using SSL with a PostgreSQL DB instance": the endpoint is the certificate's CN); Cloud
        SQL's per-instance CA names <project>:<instance> only (Google's own connectors check that CN by
        hand: cloud-sql-nodejs-connector src/socket.ts, "Legacy CA Mode")."""
        if stack == RDS_CA_STACK:
            host = self.plan(stack).outputs["postgresHost"]
            return {"common_name": host, "alt_names": f"DNS:{host}"}
        project = load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).gcp_project
        return {"common_name": f"{project}:mlplatform-postgres", "alt_names": None}

    def certificate(self, stack: str, ca: CertificateAuthority | None = None) -> tuple[Path, Path]:
        """A server certificate shaped like the service's, from the data layer's CA or `ca`."""
        issuer = ca or self.ca
        return issuer.issue(self.work, f"{stack}-{issuer.cert.stem}", **self.names(stack))


@pytest.fixture(scope="module")
def tls(plan) -> Tls:
    work = Path(tempfile.mkdtemp(prefix="mlplatform-pg-tls-", dir="/tmp"))
    ca, other = CertificateAuthority.create(work, "data-layer-ca"), CertificateAuthority.create(work, "other-ca")
    return Tls(work, ca, other, plan)


@pytest.fixture(scope="module")
def pg(tls: Tls) -> Iterator[LocalPostgres]:
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-pg-", dir="/tmp"))
    with local_postgres(workdir, tls.certificate("gcp-dev")) as server:
        yield server


def _run_job(
    doc: PlanDocument,
    pg: LocalPostgres,
    passwords: dict[str, str],
    *,
    provider_ca: Path | None = None,
    override: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The planned Job against `pg` (tests/support/postgres.py run_bootstrap_job), after checking it verifies
    the server it sends the admin password to."""
    [container] = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap").inputs["spec"]["template"][
        "spec"
    ]["containers"]
    mode = next(e["value"] for e in container["env"] if e["name"] == "PGSSLMODE")
    assert mode == MODES[doc.stack], "the Job verifies the server it sends the admin password to"
    return run_bootstrap_job(doc, pg, passwords, provider_ca=provider_ca, override=override)


def run_job(tls: Tls, stack: str, pg: LocalPostgres, passwords: dict[str, str]) -> None:
    doc = tls.plan(stack)
    done = _run_job(doc, pg, passwords, provider_ca=tls.ca.cert if stack == "gcp-dev" else None)
    assert done.returncode == 0, done.stderr


def test_without_a_ca_the_job_encrypts_as_its_admin() -> None:
    """An AWS stack that names no RDS bundle: TLS required, the server not authenticated (plan warns)."""
    dev = managed_stack("dev")
    job = dev.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    values = {v["name"]: v.get("value") for v in job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert values["PGSSLMODE"] == "require" and "PGSSLROOTCERT" not in values
    assert values["PGUSER"] == dev.one("aws:rds/instance:Instance", "mlplatform-postgres").inputs["username"]
    assert values["PGHOST"] == dev.outputs["postgresHost"]
    assert job.inputs["metadata"]["namespace"] == "data"


@pytest.mark.parametrize("stack", STACKS)
def test_the_job_verifies_the_server_against_the_data_layers_ca(tls: Tls, stack: str) -> None:
    doc = tls.plan(stack)
    job = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap").inputs["spec"]["template"]["spec"]
    [container] = job["containers"]
    values = {v["name"]: v.get("value") for v in container["env"]}
    assert values["PGSSLMODE"] == MODES[stack]
    name = ca_config_map(job["volumes"], container["volumeMounts"], values["PGSSLROOTCERT"])
    bundle = namespace_config_maps(doc, "data")[name]["ca.crt"]
    if stack == RDS_CA_STACK:
        assert bundle == tls.ca.cert.read_text(), "the bundle the stack names, as it is in the repository"


@pytest.mark.parametrize("stack", STACKS)
def test_bootstrap_creates_owned_isolated_databases_idempotently(tls: Tls, pg: LocalPostgres, stack: str) -> None:
    """The same Job on RDS and on Cloud SQL (where API-made users would all join cloudsqlsuperuser)."""
    pg.present(tls.certificate(stack))
    run_job(tls, stack, pg, PASSWORDS)
    run_job(tls, stack, pg, PASSWORDS)  # a re-run (e.g. a replaced Job) must succeed and change nothing
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


def test_rotated_password_takes_effect_on_rerun(tls: Tls, pg: LocalPostgres) -> None:
    pg.present(tls.certificate(RDS_CA_STACK))
    rotated = PASSWORDS | {"feast": "feast-Rotated-987654321"}
    run_job(tls, RDS_CA_STACK, pg, rotated)
    assert pg.psql("SELECT 1", user="feast", password=rotated["feast"], database="feast").returncode == 0
    assert pg.psql("SELECT 1", user="feast", password=PASSWORDS["feast"], database="feast").returncode != 0


@pytest.mark.parametrize("stack", STACKS)
def test_a_server_certificate_from_another_ca_is_refused(tls: Tls, pg: LocalPostgres, stack: str) -> None:
    """Someone who answers at the database's address with a certificate the data layer's CA did not issue
    (same names) gets no connection, so never the admin password."""
    pg.present(tls.certificate(stack, tls.other_ca))
    done = _run_job(tls.plan(stack), pg, PASSWORDS, provider_ca=tls.ca.cert if stack == "gcp-dev" else None)
    assert done.returncode != 0
    assert "certificate verify failed" in done.stderr, done.stderr


def test_on_rds_a_certificate_for_another_instance_is_refused(tls: Tls, pg: LocalPostgres) -> None:
    """verify-full: a certificate the RDS CA issued to another instance (any RDS customer's) does not do."""
    other = "someone-elses-db.c9akciq32.us-east-1.rds.amazonaws.com"
    pg.present(tls.ca.issue(tls.work, "rds-other", common_name=other, alt_names=f"DNS:{other}"))
    done = _run_job(tls.plan(RDS_CA_STACK), pg, PASSWORDS)
    assert done.returncode != 0
    assert "does not match host name" in done.stderr, done.stderr


def test_a_cloud_sql_certificate_cannot_be_checked_against_its_address(tls: Tls, pg: LocalPostgres) -> None:
    """Why Cloud SQL's mode is verify-ca: verify-full compares the instance's private IP (what the Job
    connects to) with the certificate's names, and the per-instance CA's certificate names none of it."""
    pg.present(tls.certificate("gcp-dev"))
    done = _run_job(tls.plan("gcp-dev"), pg, PASSWORDS, provider_ca=tls.ca.cert, override={"PGSSLMODE": "verify-full"})
    assert done.returncode != 0
    assert "does not match host name" in done.stderr, done.stderr
