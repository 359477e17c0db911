"""The feature-push job's Flink wiring (streaming/feature_push/job.py), run for real on a local PyFlink
mini-cluster (apache-flink at the image's version, .venv-flink; Java from the machine): the records a
Kafka source would hand it go through the job's own parse, event-time timestamps, per-driver windows and
row function, and come out as exactly the rows the plain-Python reference (events.aggregate) computes.

Not run here: the Kafka source (its connector jar is in the image only) and the processing-time push stage
(a bounded input ends before a processing-time window fires); the push client is tested against a real
feature server in tests/test_streaming_job.py."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.tools import required_tool, venv_python

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "streaming"))

from feature_push.events import aggregate, parse  # noqa: E402

MINUTE = 60_000
START = int(datetime(2026, 12, 3, 14, 0, tzinfo=UTC).timestamp() * 1000)

RUN = """
import json, sys
sys.path.insert(0, "streaming")
from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from feature_push.job import feature_rows
from feature_push.settings import Settings

raw = json.loads(sys.argv[1])
settings = Settings(bootstrap_servers="", kafka_properties={}, topic="t", group_id="g", push_url="", push_source="p",
                    push_to="online", window_minutes=5, out_of_orderness_seconds=0, flush_seconds=1, batch_rows=10)
env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(2)
records = env.from_collection(raw, type_info=Types.STRING())
with feature_rows(records, settings).execute_and_collect() as rows:
    print(json.dumps([{k: v for k, v in r.items() if k != "created"} for r in rows]))
"""


def _event(driver: int, kind: str, at_ms: int, fare: float | None = None) -> str:
    doc = {"driver_id": driver, "event": kind, "event_time": at_ms}
    return json.dumps(doc | ({"fare": fare} if fare is not None else {}))


@pytest.mark.slow
def test_the_flink_pipeline_computes_the_reference_rows(tmp_path: Path) -> None:
    python = venv_python(".venv-flink", "streaming/requirements.txt")
    required_tool("java", "openjdk-17-jre-headless")
    raw = [
        _event(1, "offer", START + 1_000),
        _event(1, "accept", START + 2_000),
        _event(2, "offer", START + 3_000),
        "not an event",
        _event(1, "complete", START + 4 * MINUTE, fare=20.0),
        _event(2, "complete", START + 6 * MINUTE, fare=8.0),
        _event(1, "offer", START + 11 * MINUTE),
    ]
    done = subprocess.run(
        [python, "-c", RUN, json.dumps(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # Flink starts its Python workers as `python` (python.executable's default): the venv's, first on PATH
        env={"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [
        {k: v for k, v in r.items() if k != "created"}
        for r in aggregate([e for e in map(parse, raw) if e is not None], 5 * MINUTE, created_ms=0)
    ]
    key = lambda r: (r["event_timestamp"], r["driver_id"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert len(expected) == 4  # driver 1 in two windows, driver 2 in two: the windows really close
