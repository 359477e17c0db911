"""Writes the example feature view's sample: hourly stats for five drivers over three days (fixed dates, so
every run writes the same rows). Not a feature definition (.feastignore keeps `feast apply` out of it).

    python sample_data.py driver_stats.parquet   # then copy it to <datasets>/feast/examples/ (README)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

DRIVERS = (1001, 1002, 1003, 1004, 1005)
START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 72


def rows() -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {k: [] for k in ("driver_id", "event_timestamp", "created")}
    columns |= {"conv_rate": [], "acc_rate": [], "avg_daily_trips": []}
    for hour in range(HOURS):
        at = START + timedelta(hours=hour)
        for i, driver in enumerate(DRIVERS):
            columns["driver_id"].append(driver)
            columns["event_timestamp"].append(at)
            columns["created"].append(at + timedelta(minutes=5))
            columns["conv_rate"].append(round(((hour * 7 + i * 13) % 100) / 100, 2))
            columns["acc_rate"].append(round(((hour * 3 + i * 29) % 100) / 100, 2))
            columns["avg_daily_trips"].append((hour * 11 + i * 17) % 1000)
    return columns


def main(path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created", pa.timestamp("us", tz="UTC")),
            ("conv_rate", pa.float32()),
            ("acc_rate", pa.float32()),
            ("avg_daily_trips", pa.int64()),
        ]
    )
    pq.write_table(pa.Table.from_pydict(rows(), schema=schema), path)


if __name__ == "__main__":
    main(sys.argv[1])
