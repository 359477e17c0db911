"""Feast's online path run for real, for the transformer's test and the serving-latency benchmark: a local
redis-server, a small feature repository (a Parquet file source, one entity, one feature view) applied and
materialized with the pinned Feast (.venv-feast), and `feast serve` with the given arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.net import free_port

PROJECT = "serving_test"
VIEW = "driver_hourly_stats"
FEATURES = [f"{VIEW}:conv_rate", f"{VIEW}:acc_rate", f"{VIEW}:avg_daily_trips"]
JOIN_KEY = "driver_id"
DRIVERS = list(range(1001, 1001 + 200))  # 200 drivers: enough for 100-row reads of distinct keys


def latest_row(driver: int) -> dict[str, Any]:
    """The newest row the repository's Parquet holds for a driver: what materialization puts online."""
    return {"conv_rate": round((driver % 17) / 17, 6), "acc_rate": round((driver % 5) / 5, 6),
            "avg_daily_trips": driver % 23}  # fmt: skip


def wait_until(check, what: str, process: subprocess.Popen | None, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """Stops a process started in its own session, with its children (Gunicorn's workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def redis(work: Path, extra: Sequence[str] = (), tls: bool = False) -> Iterator[int]:
    """redis-server on a free port, persistence off (as the tuning guide runs it: `save ""`); with `tls`, the
    port speaks TLS only (`extra` names the certificate and key)."""
    port, log = free_port(), work / "redis.log"
    ports = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    process = subprocess.Popen(
        ["redis-server", *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work), *extra],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: "Ready to accept connections" in log.read_text(), "redis-server", process, log)
        yield port
    finally:
        stop(process)


WRITE_DATA = """
import sys
from datetime import datetime, timedelta, timezone
import pandas as pd
path, drivers, latest = sys.argv[1], [int(d) for d in sys.argv[2].split(",")], __import__("json").loads(sys.argv[3])
now = datetime.now(timezone.utc).replace(microsecond=0)
rows = []
for d in drivers:
    rows.append({"driver_id": d, "event_timestamp": now - timedelta(days=2), "conv_rate": 0.99, "acc_rate": 0.01,
                 "avg_daily_trips": 999, "created": now - timedelta(days=2)})
    rows.append({"driver_id": d, "event_timestamp": now - timedelta(hours=1), **latest[str(d)],
                 "created": now - timedelta(hours=1)})
pd.DataFrame(rows).to_parquet(path)
"""

FEATURES_PY = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path={parquet!r}, timestamp_field="event_timestamp", created_timestamp_column="created")
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=3650),
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="acc_rate", dtype=Float64),
            Field(name="avg_daily_trips", dtype=Int64)],
    source=source,
    online=True,
)
"""


def feature_repo(python: str, work: Path, store: dict[str, Any]) -> Path:
    """A feature repository under `work/repo` with `store` as its feature_store.yaml (`project` PROJECT
    unless `store` names one), applied and materialized with `python`'s Feast. Returns its directory."""
    repo = work / "repo"
    repo.mkdir(parents=True)
    parquet = work / "driver_stats.parquet"
    latest = {str(d): latest_row(d) for d in DRIVERS}
    run(python, ["-c", WRITE_DATA, str(parquet), ",".join(map(str, DRIVERS)), json.dumps(latest)], work)
    (repo / "feature_store.yaml").write_text(json.dumps({"project": PROJECT, **store}))
    (repo / "features.py").write_text(textwrap.dedent(FEATURES_PY.format(parquet=str(parquet))))
    feast = str(Path(python).parent / "feast")
    run(feast, ["apply"], repo)
    run(feast, ["materialize", "2000-01-01T00:00:00", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())], repo)
    return repo


def run(program: str, args: Sequence[str], cwd: Path) -> str:
    env = {**os.environ, "HOME": str(cwd), "FEAST_USAGE": "False"}
    done = subprocess.run([program, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


@contextmanager
def feature_server(python: str, repo: Path, args: Sequence[str], port: int, env: dict[str, str] | None = None):
    """`feast <args>` (a `serve` command line) in the repository, answering on 127.0.0.1:`port`; yields its
    URL once /health answers."""
    log = repo.parent / f"feast-serve-{port}.log"
    feast = str(Path(python).parent / "feast")
    environ = {**os.environ, "HOME": str(repo.parent), "FEAST_USAGE": "False", **(env or {})}
    with log.open("w") as out:
        process = subprocess.Popen(
            [feast, *args], cwd=repo, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, "feast serve",
                   process, log, 120)  # fmt: skip
        yield url
    finally:
        stop(process)
