"""The feature-push job's own code, run for real where it can be without Flink: its transform on sample
events, and its push client against a real `feast serve` (Feast 0.66, .venv-feast) over a local
redis-server, with the platform's feature repository (feature_repo/features.py and streaming.py) applied,
asserting that what was pushed is then served online and appended to the offline batch source."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import feast_serving as fs
from tests.support.net import free_port, request
from tests.support.tools import required_tool, venv_python

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "streaming"))

from feature_push.events import (  # noqa: E402
    COLUMNS,
    FEATURES,
    TripCounts,
    aggregate,
    feature_row,
    parse,
    push_frame,
    window_end,
)
from feature_push.push import MicroBatcher, PushClient, PushError  # noqa: E402
from feature_push.settings import Settings  # noqa: E402

MINUTE = 60_000
START = int(datetime(2026, 12, 3, 14, 0, tzinfo=UTC).timestamp() * 1000)  # a 5-minute boundary
VIEW = "driver_trip_stats"


def _event(driver: int, kind: str, at_ms: int, fare: float | None = None) -> bytes:
    doc = {"driver_id": driver, "event": kind, "event_time": at_ms}
    if fare is not None:
        doc["fare"] = fare
    return json.dumps(doc).encode()


# -- the transform -------------------------------------------------------------------------------------


def test_parse_accepts_both_time_forms_and_refuses_what_is_not_an_event() -> None:
    iso = parse(b'{"driver_id": 7, "event": "complete", "event_time": "2026-12-03T14:00:05Z", "fare": 12}')
    assert iso is not None and iso.at_ms == int(datetime(2026, 12, 3, 14, 0, 5, tzinfo=UTC).timestamp() * 1000)
    assert iso.fare == 12.0
    assert parse(_event(7, "offer", START, fare=3.0)).fare is None  # a fare counts on trips only
    bad = [
        b"not json",
        b"[1, 2]",
        b'{"driver_id": "7", "event": "offer", "event_time": 1}',
        b'{"driver_id": true, "event": "offer", "event_time": 1}',
        b'{"driver_id": 7, "event": "cancel", "event_time": 1}',
        b'{"driver_id": 7, "event": "offer", "event_time": "2026-12-03T14:00:05"}',  # no offset: ambiguous
        b'{"driver_id": 7, "event": "offer"}',
        b'{"driver_id": 7, "event": "complete", "event_time": 1, "fare": -1}',
        b'{"driver_id": 7, "event": "complete", "event_time": 1, "fare": NaN}',
        b"\xff\xfe",
    ]
    assert [parse(raw) for raw in bad] == [None] * len(bad)


def test_windows_count_per_driver_and_the_rows_carry_the_window_end() -> None:
    start = START
    raw = [
        _event(1, "offer", start + 1_000),
        _event(1, "offer", start + 2_000),
        _event(1, "accept", start + 3_000),
        _event(1, "complete", start + 4 * MINUTE, fare=10.0),
        _event(1, "complete", start + 4 * MINUTE + 1, fare=20.0),
        _event(2, "offer", start + 10_000),
        b"garbage",
        _event(1, "offer", start + 5 * MINUTE),  # the next window starts exactly at its boundary
    ]
    events = [e for e in map(parse, raw) if e is not None]
    rows = aggregate(events, 5 * MINUTE, created_ms=start + 6 * MINUTE)
    assert [(r["driver_id"], r["event_timestamp"]) for r in rows] == [
        (1, start + 5 * MINUTE),
        (2, start + 5 * MINUTE),
        (1, start + 10 * MINUTE),
    ]
    first = rows[0]
    assert (first["trips"], first["offers"], first["acceptance_rate"], first["avg_fare"]) == (2, 2, 0.5, 15.0)
    assert (rows[1]["trips"], rows[1]["acceptance_rate"], rows[1]["avg_fare"]) == (0, 0.0, 0.0)
    assert window_end(start + 5 * MINUTE - 1, 5 * MINUTE) == start + 5 * MINUTE
    # Flink merges partial accumulators (session merging, two-phase aggregation): the merge of the parts
    # gives the row of the whole
    a = TripCounts().add(events[0]).add(events[3])
    b = TripCounts().add(events[1]).add(events[2]).add(events[4])
    assert feature_row(1, 0, a.merge(b), 0) == feature_row(1, 0, TripCounts(2, 1, 2, 30.0, 2), 0) | {}
    # more accepts than offers in one window (an offer of the window before): the rate stays a rate
    assert feature_row(1, 0, TripCounts(offers=1, accepts=3), 0)["acceptance_rate"] == 1.0


def test_the_push_frame_is_the_batch_sources_columns_in_order() -> None:
    rows = aggregate([parse(_event(3, "offer", START))], 5 * MINUTE, created_ms=START + 5 * MINUTE)
    frame = push_frame(rows)
    assert tuple(frame) == COLUMNS
    assert frame["event_timestamp"] == ["2026-12-03T14:05:00.000+00:00"]
    assert set(FEATURES) < set(COLUMNS)


def test_the_micro_batcher_sends_at_most_max_rows_and_keeps_what_failed() -> None:
    sent: list[int] = []
    batcher = MicroBatcher(lambda b: sent.append(len(b)), max_rows=3)
    for i in range(7):
        batcher.add({"i": i})
    assert sent == [3, 3] and len(batcher.pending) == 1
    batcher.flush()
    assert sent == [3, 3, 1] and batcher.pending == []

    def fail(batch: list) -> None:
        raise PushError("down")

    failing = MicroBatcher(fail, max_rows=10, pending=[{"i": 1}, {"i": 2}])
    with pytest.raises(PushError):
        failing.flush()
    assert len(failing.pending) == 2  # Flink restarts from the checkpoint; nothing is dropped silently


def test_settings_refuse_unknown_and_missing_keys() -> None:
    own = {"topic": "t", "group_id": "g", "push_url": "http://x", "push_source": "p", "push_to": "online",
           "window_minutes": 5, "out_of_orderness_seconds": 30, "flush_seconds": 10, "batch_rows": 500}  # fmt: skip
    env = {"KAFKA_BOOTSTRAP_SERVERS": "b:9098", "FEATURE_PUSH": json.dumps(own), "KAFKA_PROPERTIES": "{}"}
    assert Settings.from_env(env).topic == "t"
    with pytest.raises(ValueError, match="unknown"):
        Settings.from_env(env | {"FEATURE_PUSH": json.dumps(own | {"topics": "t"})})


def test_the_push_client_gives_up_on_a_refusal_and_retries_what_may_pass(tmp_path: Path) -> None:
    """Against a port nobody listens on: every attempt fails, the backoff doubles, the batch raises."""
    waits: list[float] = []
    client = PushClient(f"http://127.0.0.1:{free_port()}", "p", attempts=3, backoff_seconds=0.1, sleep=waits.append)
    with pytest.raises(PushError, match="3 times"):
        client.push([feature_row(1, 0, TripCounts(), 0)])
    assert waits == [0.1, 0.2]


# -- the push client against a real feature server ---------------------------------------------------------


def _store_yaml(work: Path, redis_port: int) -> dict:
    return {"project": "mlplatform", "provider": "local", "registry": str(work / "registry.db"),
            "entity_key_serialization_version": 3,
            "online_store": {"type": "redis", "connection_string": f"127.0.0.1:{redis_port}"},
            "offline_store": {"type": "file"}}  # fmt: skip


@pytest.mark.slow
def test_pushed_windows_are_served_online_and_appended_offline(tmp_path: Path) -> None:
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    required_tool("redis-server", "redis-server")
    feast = str(Path(python).parent / "feast")
    # the platform's feature repository as `feast apply` reads it, its sources under a local "bucket" seeded
    # as the storage layer seeds the real one
    datasets, repo = tmp_path / "datasets", tmp_path / "repo"
    repo.mkdir()
    for name in ("features.py", "streaming.py", ".feastignore"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    for key, source in (("feast/examples/driver_stats.parquet", "driver_stats.parquet"),
                        ("feast/streaming/driver_trip_stats.parquet", "driver_trip_stats.parquet")):  # fmt: skip
        (datasets / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "feature_repo" / "data" / source, datasets / key)
    env = {"DATASETS_URI": str(datasets)}
    now = int(time.time() * 1000)
    start = now - now % (5 * MINUTE) - 10 * MINUTE  # two closed windows before now
    raw = [_event(d, k, start + i * 7_000, fare=12.5 + d if k == "complete" else None)
           for d in (1001, 1002, 1003) for i, k in enumerate(("offer", "offer", "accept", "complete"))]  # fmt: skip
    raw += [_event(1001, "complete", start + 5 * MINUTE + 1_000, fare=30.0)]  # 1001's newer window
    rows = aggregate([e for e in map(parse, raw) if e is not None], 5 * MINUTE, created_ms=now)
    latest = {r["driver_id"]: r for r in rows}  # the newest window per driver: what Redis keeps

    with fs.redis(tmp_path) as redis_port:
        (repo / "feature_store.yaml").write_text(json.dumps(_store_yaml(tmp_path, redis_port)))
        done = subprocess.run([feast, "apply"], cwd=repo, capture_output=True, text=True, timeout=300,
                              env={**fs.os.environ, "HOME": str(tmp_path), "FEAST_USAGE": "False", **env})  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        port = free_port()
        args = ["serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log"]
        with fs.feature_server(python, repo, args, port, env=env) as url:
            client = PushClient(url, "driver_trips_push", "online_and_offline", attempts=2)
            # two micro-batches, the newer window last, as the job's processing-time windows send them
            MicroBatcher(client.push, max_rows=3, pending=list(rows)).flush()
            assert (client.pushed_batches, client.pushed_rows) == (2, len(rows))
            status, body = request(
                f"{url}/get-online-features",
                {"features": [f"{VIEW}:{f}" for f in FEATURES], "entities": {"driver_id": sorted(latest)}},
            )
            assert status == 200, body
            # Feast answers a malformed push with 500 too (feature_server.py raises ValueError), the status a
            # failing Redis gives: retried, then raised with the server's own words for the job's log
            waits: list[float] = []
            bad = PushClient(url, "driver_trips_push", "nowhere", attempts=3, sleep=waits.append)
            with pytest.raises(PushError, match=r"HTTP 500: .*not a supported push format"):
                bad.push(rows[:1])
            assert waits == [0.5, 1.0]

    names = body["metadata"]["feature_names"]
    served = {
        int(driver): {n: r["values"][i] for n, r in zip(names, body["results"], strict=True) if n != "driver_id"}
        for i, driver in enumerate(body["results"][names.index("driver_id")]["values"])
    }
    expected = {d: {f: r[f] for f in FEATURES} for d, r in latest.items()}
    assert served == expected
    assert all(r["statuses"][i] == "PRESENT" for r in body["results"] for i in range(len(latest)))
    # the offline copy: every pushed row appended to the batch source, none lost between the two batches
    offline = subprocess.run(
        [python, "-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); "
         "print(t.num_rows, sorted(t.column('driver_id').to_pylist()))",
         str(datasets / "feast/streaming/driver_trip_stats.parquet")],
        capture_output=True, text=True, check=True,
    ).stdout.split(" ", 1)  # fmt: skip
    assert int(offline[0]) == len(rows)
    assert json.loads(offline[1]) == sorted(r["driver_id"] for r in rows)
