"""The drift job for real: Evidently 0.7.23 (in its own venv, .venv-drift, as .ci/run makes it) computes
drift on data generated here, one sample drifted and one not, and pushes to a real Pushgateway (Debian's
prometheus-pushgateway); the test reads the series back from the Pushgateway's /metrics."""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.tools import required_tool

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "jobs" / "drift" / "compute_drift.py"
ROWS_REFERENCE, ROWS_CURRENT = 600, 400


def drift_python() -> str:
    python = Path(os.environ.get("DRIFT_PYTHON", ROOT / ".venv-drift" / "bin" / "python"))
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing: .ci/run makes it from jobs/drift/requirements.txt")
        pytest.skip(
            f"no drift venv at {python} (python3 -m venv .venv-drift && pip install -r jobs/drift/requirements.txt)"
        )
    return str(python)


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = required_tool("prometheus-pushgateway", "prometheus-pushgateway")
    url = f"http://127.0.0.1:{free_port()}"
    log = (tmp_path_factory.mktemp("pushgateway") / "log").open("w")
    process = subprocess.Popen([binary, f"--web.listen-address={url.removeprefix('http://')}"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"the Pushgateway did not become ready at {url}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def write_sample(path: Path, rows: int, shift: float, seed: int) -> None:
    """Two numeric features and a categorical one; `shift` moves `amount` and the category mix."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["amount", "age", "channel", "request_id"])
        for i in range(rows):
            channel = "web" if rng.random() < (0.3 + 0.5 * (shift > 0)) else "app"
            out.writerow([rng.gauss(100 + 40 * shift, 15), rng.gauss(40, 8), channel, f"req-{seed}-{i}"])


def run_job(python: str, pushgateway: str, dataset: str, reference: Path, current: Path) -> None:
    subprocess.run(
        [python, str(JOB), "--reference", str(reference), "--current", str(current), "--dataset", dataset,
         "--pushgateway", pushgateway, "--drift-share", "0.5", "--columns", "amount,age,channel"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def pushed(pushgateway: str) -> dict[tuple[str, frozenset], float]:
    """The Pushgateway's /metrics as {(name, labels): value} for the job's series."""
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    series = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(mlplatform_drift_\w+)\{(.*)\} (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
            series[(match.group(1), labels)] = float(match.group(3))
    return series


def value(series: dict, name: str, **labels: str) -> float:
    wanted = {("job", "mlplatform-drift"), *labels.items()}
    found = [v for (n, ls), v in series.items() if n == name and wanted <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_drift_job_pushes_what_evidently_computes(pushgateway: str, tmp_path: Path) -> None:
    python = drift_python()
    reference = tmp_path / "reference.csv"
    write_sample(reference, ROWS_REFERENCE, 0.0, seed=1)
    for dataset, shift, seed in (("stable", 0.0, 2), ("drifted", 1.0, 3)):
        current = tmp_path / f"{dataset}.csv"
        write_sample(current, ROWS_CURRENT, shift, seed)
        started = time.time()
        run_job(python, pushgateway, dataset, reference, current)

    series = pushed(pushgateway)
    # the drifted sample: amount and channel moved, age did not
    assert value(series, "mlplatform_drift_share", dataset="drifted") == pytest.approx(2 / 3)
    assert value(series, "mlplatform_drift_columns_drifted", dataset="drifted") == 2
    assert value(series, "mlplatform_drift_dataset_drifted", dataset="drifted") == 1
    assert value(series, "mlplatform_drift_feature_drifted", dataset="drifted", feature="amount") == 1
    assert value(series, "mlplatform_drift_feature_drifted", dataset="drifted", feature="channel") == 1
    assert value(series, "mlplatform_drift_feature_drifted", dataset="drifted", feature="age") == 0
    # the stable sample: nothing drifted
    assert value(series, "mlplatform_drift_share", dataset="stable") == 0
    assert value(series, "mlplatform_drift_dataset_drifted", dataset="stable") == 0
    # only the compared columns, with their test's score; the sizes of both samples
    features = {dict(ls)["feature"] for (n, ls), _ in series.items() if n == "mlplatform_drift_feature_score"}
    assert features == {"amount", "age", "channel"}
    for dataset in ("stable", "drifted"):
        assert value(series, "mlplatform_drift_rows", dataset=dataset, sample="reference") == ROWS_REFERENCE
        assert value(series, "mlplatform_drift_rows", dataset=dataset, sample="current") == ROWS_CURRENT
    assert value(series, "mlplatform_drift_last_success_timestamp_seconds", dataset="drifted") >= started - 1
