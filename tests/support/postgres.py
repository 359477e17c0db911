"""A throwaway local PostgreSQL server that, like RDS, forces TLS and whose admin is not a superuser.

Uses the Debian `postgresql` package's binaries (CI installs them). The server runs as the `postgres` OS
user when the tests run as root (initdb refuses root), listens on 127.0.0.1 only, and is stopped at exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ADMIN = "platform_admin"
ADMIN_PASSWORD = "admin-Pw-1234567890"


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class LocalPostgres:
    port: int

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def local_postgres(workdir: Path) -> Iterator[LocalPostgres]:
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
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")])  # fmt: skip
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
        yield LocalPostgres(port)
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), timeout=60)
