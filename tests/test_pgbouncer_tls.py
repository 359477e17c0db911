"""Airflow's PgBouncer as it would run: the program's pgbouncer.ini and users.txt (`pgbouncer_files` makes
them; the plan redacts the Secret that carries them, so the test calls the same function with the planned
endpoint's TLS settings) and the CA from the ConfigMap the rendered PgBouncer pod mounts, laid out as the
kubelet mounts it, in a real PgBouncer (Debian's `pgbouncer`, 1.18; the chart's image has 1.23.1, same
`server_tls_*` keywords since 1.7; keywords newer than the local one, none of them TLS's, are left out:
NEWER_KEYWORDS) in front of a real PostgreSQL presenting a Cloud SQL-shaped certificate.
Airflow's components connect as the chart's metadata connection does (to PgBouncer, sslmode=disable): they
get the database through the verified connection, and nothing when the server's certificate comes from
another CA. Only addresses change (the instance's private IP becomes this machine's; verify-ca checks no
name).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.lifecycle.airflow import PGBOUNCER_DB, RELEASE, pgbouncer_ini
from mlplatform.plan.synth import PROJECT_DIR
from tests.support.graph import helm_release
from tests.support.kubelet import lay_out_mounts
from tests.support.net import free_port
from tests.support.postgres import (
    ADMIN,
    ADMIN_PASSWORD,
    CertificateAuthority,
    LocalPostgres,
    local_postgres,
    namespace_config_maps,
    server_bin,
)
from tests.support.tools import required_tool

PASSWORD = "airflow-Pw-1"
# Keywords of the program's pgbouncer.ini that the image's PgBouncer (1.23.1) knows and an older local one
# rejects ("unknown parameter"), with the version that added them; none is about TLS, so a local PgBouncer
# older than one of them runs the configuration without that line (and only that line).
NEWER_KEYWORDS = {"max_prepared_statements": (1, 21)}

pytestmark = pytest.mark.slow


def pgbouncer_pod(doc) -> dict:
    pytest.importorskip("helm_python")
    from mlplatform.manifests import render_release

    reg = helm_release(doc, RELEASE)
    package = PROJECT_DIR.parent / "shared" / "charts" / f"{reg.inputs['chart']}-{reg.inputs['version']}.tgz"
    if not package.is_file():
        pytest.skip(f"{package} absent (../shared/charts holds the pinned chart packages)")
    [deployment] = [
        o
        for o in render_release(reg, package).objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-pgbouncer")
    ]
    return deployment["spec"]["template"]["spec"]


def local_version() -> tuple[int, int]:
    first = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True, check=True).stdout.split()
    major, minor = first[1].split(".")[:2]
    return int(major), int(minor)


def for_local_pgbouncer(ini: str) -> str:
    version = local_version()
    unknown = {k for k, since in NEWER_KEYWORDS.items() if version < since}
    return "\n".join(line for line in ini.splitlines() if line.split("=", 1)[0].strip() not in unknown) + "\n"


def run_pgbouncer(
    doc, pg: LocalPostgres, work: Path, provider_ca: Path, *, wait: float = 60
) -> subprocess.CompletedProcess[str] | None:
    """PgBouncer with the program's configuration, then one query through it as Airflow's pods send it;
    None when no answer came within `wait` seconds (PgBouncer keeps a client waiting while it retries)."""
    pod = pgbouncer_pod(doc)
    [container] = [c for c in pod["containers"] if c["name"] == "pgbouncer"]
    endpoint = SimpleNamespace(ssl_mode="verify-ca", ca_certificate="(Cloud SQL's CA)")
    cred = SimpleNamespace(database="airflow", username="airflow")
    ini = pgbouncer_ini(doc.outputs["postgresHost"], pg.port, endpoint, cred)
    ini_path = next(line.split("=", 1)[1].strip() for line in ini.splitlines() if line.startswith("server_tls_ca"))
    # the CA ConfigMap (the provider's CA, mocked in the plan, is the test server's) as the kubelet mounts it
    root = Path(tempfile.mkdtemp(prefix="pod-", dir=work))
    config_maps = namespace_config_maps(doc, "mlplatform")
    mounts = [m for m in container["volumeMounts"] if ini_path.startswith(m["mountPath"].rstrip("/") + "/")]
    [volume] = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]]
    config_maps[volume["configMap"]["name"]] = {ini_path.rsplit("/", 1)[1]: provider_ca.read_text()}
    lay_out_mounts(root, pod["volumes"], mounts, config_maps)
    port = free_port()
    ini = (
        ini.replace(f"host={doc.outputs['postgresHost']}", "host=127.0.0.1")  # the instance's address: this one
        .replace(ini_path, f"{root}{ini_path}")
        .replace("auth_file = /etc/pgbouncer/users.txt", f"auth_file = {work}/users.txt")
        .replace("listen_addr = *", "listen_addr = 127.0.0.1")
        .replace(f"listen_port = {6543}", f"listen_port = {port}")
        .replace("[pgbouncer]", f"[pgbouncer]\nunix_socket_dir = {work}\nlogfile = {work}/pgbouncer.log")
    )
    (work / "pgbouncer.ini").write_text(for_local_pgbouncer(ini))
    (work / "users.txt").write_text(f'"airflow" "{PASSWORD}"\n')
    as_owner = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: as the postgres OS user, like the server
        as_owner = ["runuser", "-u", "postgres", "--"]
        for path in (work.parent, work, *work.rglob("*")):
            shutil.chown(path, "postgres")
    log = work / "pgbouncer.log"
    output = (work / "pgbouncer.out").open("w")
    bouncer = subprocess.Popen([*as_owner, "pgbouncer", str(work / "pgbouncer.ini")], stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not (log.exists() and "process up" in log.read_text(errors="replace")):
            started = bouncer.poll() is None and time.monotonic() < deadline
            assert started, (work / "pgbouncer.out").read_text() + (log.read_text() if log.exists() else "")
            time.sleep(0.1)
        # Airflow's metadata connection: to PgBouncer's alias, without TLS inside the pod network
        url = f"postgresql://airflow:{PASSWORD}@127.0.0.1:{port}/{PGBOUNCER_DB}?sslmode=disable&connect_timeout=10"
        env = {"PATH": os.environ["PATH"]}
        try:
            return subprocess.run(["psql", url, "-tAc", "SELECT current_user"], env=env, capture_output=True,
                                  text=True, timeout=wait)  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=30)


def test_pgbouncer_verifies_cloud_sql_and_serves_airflow(gcp_dev) -> None:
    required_tool("pgbouncer", "pgbouncer")
    required_tool("psql", "postgresql")
    if server_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-pgbouncer-", dir="/tmp"))
    ca, other = CertificateAuthority.create(work, "instance-ca"), CertificateAuthority.create(work, "other-ca")
    shaped = {"common_name": "my-project:mlplatform-postgres", "alt_names": None}  # Cloud SQL's per-instance CA
    with local_postgres(Path(tempfile.mkdtemp(prefix="mlplatform-pgb-pg-", dir="/tmp")),
                        ca.issue(work, "cloudsql", **shaped)) as pg:  # fmt: skip
        for sql in (f"CREATE ROLE airflow LOGIN PASSWORD '{PASSWORD}'", f"GRANT airflow TO {ADMIN}",
                    "CREATE DATABASE airflow OWNER airflow"):  # fmt: skip
            assert pg.psql(sql, user=ADMIN, password=ADMIN_PASSWORD).returncode == 0
        served = run_pgbouncer(gcp_dev, pg, Path(tempfile.mkdtemp(dir=work)), ca.cert)
        assert served.returncode == 0 and served.stdout.strip() == "airflow", served.stderr
        pg.present(other.issue(work, "impostor", **shaped))
        run = Path(tempfile.mkdtemp(dir=work))
        refused = run_pgbouncer(gcp_dev, pg, run, ca.cert, wait=4)
        assert refused is None or refused.returncode != 0, refused.stdout
        assert "certificate verify failed" in (run / "pgbouncer.log").read_text()
