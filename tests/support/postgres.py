"""A throwaway local PostgreSQL server that, like RDS, forces TLS and whose admin is not a superuser.

Uses the Debian `postgresql` package's binaries (CI installs them). The server runs as the `postgres` OS
user when the tests run as root (initdb refuses root), listens on 127.0.0.1 only, and is stopped at exit.

Its certificate is either self-signed (CN=localhost) or one a test CA issued (`CertificateAuthority`), shaped
like the managed services' own, so that clients which verify the server (sslmode verify-ca / verify-full,
the CA mounted where the pod mounts it) are tested against the names they would check; `present` swaps the
served certificate (PostgreSQL reloads it on SIGHUP) to show that one from another CA is refused.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.kubelet import container_env, in_root, lay_out_mounts

ADMIN = "platform_admin"
ADMIN_PASSWORD = "admin-Pw-1234567890"


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, text=True, timeout=60).stdout


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA for tests: a self-signed root (basicConstraints CA:TRUE) that issues server certificates."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> CertificateAuthority:
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/O=tests/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(key), "-out", str(cert))  # fmt: skip
        return cls(cert, key)

    def issue(self, directory: Path, name: str, *, common_name: str, alt_names: str | None) -> tuple[Path, Path]:
        """A server certificate for `common_name`; `alt_names` is the subjectAltName extension (e.g.
        `DNS:host` or `IP:10.0.0.3`), or None for a certificate that names its server in the CN only."""
        cert, key, csr, ext = (directory / f"{name}.{s}" for s in ("crt", "key", "csr", "ext"))
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}", "-keyout", str(key),
                 "-out", str(csr))  # fmt: skip
        extensions = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
                      "extendedKeyUsage=serverAuth"]  # fmt: skip
        ext.write_text("\n".join(extensions + ([f"subjectAltName={alt_names}"] if alt_names else [])) + "\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
                 "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
        return cert, key


@dataclass(frozen=True)
class LocalPostgres:
    port: int
    data: Path

    def env(self, user: str, password: str, database: str = "postgres", sslmode: str = "require") -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGPASSWORD": password,
            "PGDATABASE": database,
            "PGSSLMODE": sslmode,
            "PGCONNECT_TIMEOUT": "5",
        }

    def psql(self, sql: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def present(self, certificate: tuple[Path, Path]) -> None:
        """Serve `certificate` (cert, key) to new connections: PostgreSQL 10+ reloads its TLS files on SIGHUP."""
        _install_certificate(self.data, certificate)
        bindir = server_bin()
        assert bindir is not None
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(self.data), "reload"]), check=True,
                       capture_output=True, timeout=30)  # fmt: skip
        wanted = _fingerprint(certificate[0].read_text())
        deadline = time.monotonic() + 10
        while self.served_fingerprint() != wanted:
            assert time.monotonic() < deadline, "the server did not pick up the new certificate"
            time.sleep(0.1)

    def served_fingerprint(self) -> str:
        """The SHA-256 fingerprint of the certificate the server presents now (PostgreSQL's STARTTLS)."""
        shown = subprocess.run(
            ["openssl", "s_client", "-starttls", "postgres", "-connect", f"127.0.0.1:{self.port}", "-showcerts"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
        if begin not in shown.stdout:
            return ""
        pem = shown.stdout[shown.stdout.index(begin) : shown.stdout.index(end) + len(end)] + "\n"
        return _fingerprint(pem)


def _fingerprint(pem: str) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem, capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()  # fmt: skip


def _install_certificate(data: Path, certificate: tuple[Path, Path]) -> None:
    for source, target in zip(certificate, (data / "server.crt", data / "server.key"), strict=True):
        shutil.copyfile(source, target)
        target.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(target, "postgres", "postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def local_postgres(workdir: Path, certificate: tuple[Path, Path] | None = None) -> Iterator[LocalPostgres]:
    """The server; `certificate` (cert, key) is what it presents, a self-signed CN=localhost one by default."""
    bindir = server_bin()
    assert bindir is not None
    data, sock = workdir / "data", workdir / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        for p in (data, sock):
            shutil.chown(p, "postgres")
    run = lambda cmd: subprocess.run(_as_owner(cmd), check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=reject"])
    if certificate is None:
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")])  # fmt: skip
    else:
        _install_certificate(data, certificate)
    (data / "pg_hba.conf").write_text(
        "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n"
    )
    port = _free_port()
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} -c ssl=on"
    run([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60", "-l", str(workdir / "log"), "start"])
    try:
        # Like the RDS master user: may create roles and databases, but is not a superuser.
        run(["psql", "-h", str(sock), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
             f"CREATE ROLE {ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '{ADMIN_PASSWORD}'"])  # fmt: skip
        yield LocalPostgres(port, data)
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), timeout=60)


# -- the platform's database clients, run here as the kubelet would run them ---------------------------------

RDS_CA_STACK = "dev-rds-ca"  # the dev stack (RDS) with data.postgres.caBundle set to a test CA


def managed_plan(stack: str, name: str | None = None, **postgres: str) -> Any:
    """`stack`'s plan with its PostgreSQL managed (RDS on aws, Cloud SQL on gcp) whatever the profile's default
    mode, and `postgres` keys merged into data.postgres: the managed database's tests run on it. Planned anew
    on each call (the plan's warnings are logged each time); `name` is the plan's stack name."""
    from tests.support import managed

    return managed.managed_plan(stack, ("postgres",), name, {"postgres": postgres})


def managed_stack(stack: str) -> Any:
    """managed_plan(stack), planned once per test process (tests/support/managed.py for the other services)."""
    from tests.support import managed

    return managed.managed_stack(stack, ("postgres",))


def rds_ca_plan(ca_bundle: Path) -> Any:
    """The dev stack's plan with RDS and `data.postgres.caBundle` naming `ca_bundle`: what an AWS stack plans
    once its operator has put the region's RDS bundle in the repository and named it (README, "Data layer")."""
    return managed_plan("dev", RDS_CA_STACK, caBundle=str(ca_bundle))


def namespace_config_maps(doc: Any, namespace: str) -> dict[str, dict[str, str]]:
    """The ConfigMaps the plan makes in `namespace`, by name, with their data."""
    return {
        c.inputs["metadata"]["name"]: dict(c.inputs.get("data") or {})
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("namespace") == namespace and c.inputs["metadata"].get("name")
    }


def ca_config_map(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], root_cert: str) -> str:
    """The name of the ConfigMap mounted where `root_cert` (the planned PGSSLROOTCERT / sslrootcert) is."""
    directory = root_cert.rsplit("/", 1)[0]
    [mount] = [m for m in mounts if m["mountPath"].rstrip("/") == directory]
    [volume] = [v for v in volumes if v["name"] == mount["name"]]
    return volume["configMap"]["name"]


def run_bootstrap_job(
    doc: Any,
    pg: LocalPostgres,
    passwords: dict[str, str],
    *,
    provider_ca: Path | None = None,
    override: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The planned bootstrap Job's container command against this machine's server `pg`: its env (Secret
    values from `passwords`), its volumes laid out as the kubelet mounts them under a fresh root (the plan's
    own SQL and CA ConfigMaps). PGHOSTADDR makes libpq connect here while it verifies PGHOST, the host the
    plan gives, against the certificate. `provider_ca`: the CA the cloud reports (mocked in the plan)."""
    job = doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    spec = job.inputs["spec"]["template"]["spec"]
    [container] = spec["containers"]
    volumes, mounts = spec["volumes"], container["volumeMounts"]
    config_maps = namespace_config_maps(doc, "data")
    # the SQL's ConfigMap is auto-named: the one the Job depends on that carries bootstrap.sql
    [sql] = [
        c.inputs["data"]
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.urn in job.dependencies and "bootstrap.sql" in (c.inputs.get("data") or {})
    ]
    config_maps[next(v for v in volumes if v["name"] == "sql")["configMap"]["name"]] = sql
    secret = {"ADMIN_PASSWORD": ADMIN_PASSWORD} | {f"{s.upper()}_PASSWORD": p for s, p in passwords.items()}
    env = {"PATH": os.environ["PATH"]} | container_env(container, secret)
    if provider_ca is not None:
        config_maps[ca_config_map(volumes, mounts, env["PGSSLROOTCERT"])] = {"ca.crt": provider_ca.read_text()}
    root = Path(tempfile.mkdtemp(prefix="mlplatform-job-", dir="/tmp"))
    lay_out_mounts(root, volumes, mounts, config_maps)
    env = in_root(env, root, mounts) | {"PGHOSTADDR": "127.0.0.1", "PGPORT": str(pg.port)} | (override or {})
    shell, flag, script = container["command"]
    sql_mount = next(m["mountPath"] for m in mounts if m["name"] == "sql")
    script = script.replace(f"{sql_mount}/", f"{root}{sql_mount}/")
    return subprocess.run([shell, flag, script], env=env, capture_output=True, text=True, timeout=60)
