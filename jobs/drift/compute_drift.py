"""Data drift of recent inference inputs against the reference (training) data, pushed to the Prometheus
Pushgateway for the platform's alerts and dashboards.

Runs in the `evidently/evidently-service` image (Evidently 0.7, pandas 3.0) as the drift CronJob's main
container, after fetch_inputs.py has copied both files from the datasets bucket. Standard library plus
Evidently and pandas only: Evidently has no Prometheus exporter, so the numbers are written in the text
exposition format and PUT to the Pushgateway (replacing the dataset's previous push).

Series (grouping key job="mlplatform-drift", dataset=<name>):
  mlplatform_drift_share                      share of compared columns that drifted
  mlplatform_drift_columns_drifted            how many drifted
  mlplatform_drift_dataset_drifted            1 when the share reaches --drift-share
  mlplatform_drift_feature_score{feature,method}   each column's test statistic (p-value or distance)
  mlplatform_drift_feature_drifted{feature}   1 when that column drifted
  mlplatform_drift_rows{sample}               rows in the reference and current samples
  mlplatform_drift_last_success_timestamp_seconds
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

JOB = "mlplatform-drift"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        # statistical tests report a p-value (drift when it is small); distances drift when they are large
        return self.score < self.threshold if "p_value" in self.method else self.score >= self.threshold


@dataclass(frozen=True)
class DriftResult:
    share: float
    drifted_columns: int
    features: tuple[FeatureDrift, ...]
    reference_rows: int
    current_rows: int


def read_table(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """CSV, or JSON lines (one inference record per line); only the compared columns."""
    import pandas as pd

    if path.suffix == ".csv":
        frame = pd.read_csv(path)
    elif path.suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True)
    else:
        raise SystemExit(f"{path}: unsupported format {path.suffix!r} (use .csv or .jsonl)")
    if columns:
        missing = sorted(set(columns) - set(frame.columns))
        if missing:
            raise SystemExit(f"{path}: columns {missing} not found; it has {sorted(frame.columns)}")
        frame = frame[columns]
    return frame


def compute_drift(reference: pd.DataFrame, current: pd.DataFrame, drift_share: float) -> DriftResult:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(current_data=current, reference_data=reference)
    share, count, features = math.nan, 0, []
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            share, count = float(value["share"]), int(value["count"])
        elif kind == "ValueDrift":
            features.append(FeatureDrift(config["column"], config["method"], float(value), float(config["threshold"])))
    if math.isnan(share):
        raise RuntimeError("Evidently's report has no DriftedColumnsCount metric")
    return DriftResult(share, count, tuple(features), len(reference), len(current))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(result: DriftResult, drift_share: float, now: float) -> str:
    """The Prometheus text format of one run (the grouping key's labels are added by the Pushgateway)."""
    lines = [
        "# TYPE mlplatform_drift_share gauge",
        f"mlplatform_drift_share {result.share}",
        "# TYPE mlplatform_drift_columns_drifted gauge",
        f"mlplatform_drift_columns_drifted {result.drifted_columns}",
        "# TYPE mlplatform_drift_dataset_drifted gauge",
        f"mlplatform_drift_dataset_drifted {int(result.share >= drift_share)}",
        "# TYPE mlplatform_drift_feature_score gauge",
        *(
            f'mlplatform_drift_feature_score{{feature="{_label(f.feature)}",method="{_label(f.method)}"}} {f.score}'
            for f in result.features
        ),
        "# TYPE mlplatform_drift_feature_drifted gauge",
        *(
            f'mlplatform_drift_feature_drifted{{feature="{_label(f.feature)}"}} {int(f.drifted)}'
            for f in result.features
        ),
        "# TYPE mlplatform_drift_rows gauge",
        f'mlplatform_drift_rows{{sample="reference"}} {result.reference_rows}',
        f'mlplatform_drift_rows{{sample="current"}} {result.current_rows}',
        "# TYPE mlplatform_drift_last_success_timestamp_seconds gauge",
        f"mlplatform_drift_last_success_timestamp_seconds {now}",
    ]
    return "\n".join(lines) + "\n"


def push(pushgateway: str, dataset: str, body: str, timeout: float = 30) -> None:
    """PUT replaces every series of this job and dataset, so a column dropped from the data disappears."""
    url = f"{pushgateway.rstrip('/')}/metrics/job/{JOB}/dataset/{urllib.parse.quote(dataset, safe='')}"
    request = urllib.request.Request(
        url, data=body.encode(), method="PUT", headers={"Content-Type": "text/plain; version=0.0.4"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status not in (200, 202):
            raise RuntimeError(f"Pushgateway answered {response.status} for {url}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--current", type=Path, required=True)
    p.add_argument("--dataset", required=True, help="the dataset's name, a label of every series")
    p.add_argument("--pushgateway", required=True, help="e.g. http://pushgateway.monitoring.svc:9091")
    p.add_argument("--drift-share", type=float, default=0.5, help="share of drifted columns that is dataset drift")
    p.add_argument("--columns", default="", help="comma-separated columns to compare (default: all)")
    args = p.parse_args(argv)
    columns = [c for c in args.columns.split(",") if c] or None
    reference, current = read_table(args.reference, columns), read_table(args.current, columns)
    result = compute_drift(reference, current, args.drift_share)
    push(args.pushgateway, args.dataset, exposition(result, args.drift_share, time.time()))
    print(
        f"dataset {args.dataset}: {result.drifted_columns} of {len(result.features)} columns drifted "
        f"(share {result.share:.2f}); pushed to {args.pushgateway}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
