"""The stream's transform, in plain Python so that it is tested without Flink (tests/test_streaming_job.py):
trip events as the producers write them, parsed and validated, counted per driver in event-time windows,
and turned into the rows of Feast's `driver_trip_stats` feature view (feature_repo/streaming.py).

An event is one JSON object per Kafka record:

    {"driver_id": 1001, "event": "offer" | "accept" | "complete",
     "event_time": "2026-12-03T14:00:05Z" (ISO 8601 with an offset) or 1764770405000 (epoch milliseconds),
     "fare": 12.5}                                        (on "complete" only; optional)

A record that does not parse or validate is dropped and counted (the job's `malformed` metric), never
retried: a poison record must not stop the stream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KINDS = ("offer", "accept", "complete")
# The feature view's columns in the order the push source's batch source (a Parquet file) holds them: the
# file offline store appends a pushed frame only when its column names equal the file's, in this order
# (feast v0.66.0 infra/offline_stores/dask.py offline_write_batch).
ENTITY, TIMESTAMP, CREATED = "driver_id", "event_timestamp", "created"
FEATURES = ("trips", "offers", "acceptance_rate", "avg_fare")
COLUMNS = (ENTITY, TIMESTAMP, CREATED, *FEATURES)


@dataclass(frozen=True)
class TripEvent:
    driver_id: int
    kind: str  # one of KINDS
    at_ms: int  # event time, epoch milliseconds (UTC)
    fare: float | None = None


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if at.tzinfo is None:  # a time without an offset is ambiguous: refused, not guessed
            return None
        return int(at.timestamp() * 1000)
    return None


def parse(raw: str | bytes) -> TripEvent | None:
    """The event in `raw`, or None when it is not a valid trip event."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    driver, kind, at_ms = doc.get("driver_id"), doc.get("event"), _epoch_ms(doc.get("event_time"))
    if isinstance(driver, bool) or not isinstance(driver, int) or driver < 0 or kind not in KINDS or at_ms is None:
        return None
    fare = doc.get("fare")
    if fare is not None:
        if isinstance(fare, bool) or not isinstance(fare, int | float) or not math.isfinite(fare) or fare < 0:
            return None
        fare = float(fare)
    return TripEvent(driver, kind, at_ms, fare if kind == "complete" else None)


@dataclass
class TripCounts:
    """The window accumulator (Flink's AggregateFunction keeps one per driver and window)."""

    offers: int = 0
    accepts: int = 0
    trips: int = 0
    fare_sum: float = 0.0
    fares: int = 0

    def add(self, event: TripEvent) -> TripCounts:
        if event.kind == "offer":
            self.offers += 1
        elif event.kind == "accept":
            self.accepts += 1
        else:
            self.trips += 1
            if event.fare is not None:
                self.fare_sum += event.fare
                self.fares += 1
        return self

    def merge(self, other: TripCounts) -> TripCounts:
        return TripCounts(
            self.offers + other.offers,
            self.accepts + other.accepts,
            self.trips + other.trips,
            self.fare_sum + other.fare_sum,
            self.fares + other.fares,
        )


def feature_row(driver_id: int, window_end_ms: int, counts: TripCounts, created_ms: int) -> dict[str, Any]:
    """One row of the feature view: the window's counts, stamped with the window's end (the time the values
    hold as of). The acceptance rate is of the window's offers, capped at 1 (an accept may belong to an
    offer of the previous window); 0 without offers, as the average fare is without fares."""
    rate = min(1.0, counts.accepts / counts.offers) if counts.offers else 0.0
    return {
        ENTITY: driver_id,
        TIMESTAMP: window_end_ms,
        CREATED: created_ms,
        "trips": counts.trips,
        "offers": counts.offers,
        "acceptance_rate": round(rate, 6),
        "avg_fare": round(counts.fare_sum / counts.fares, 6) if counts.fares else 0.0,
    }


def window_end(at_ms: int, window_ms: int) -> int:
    """The end of the tumbling window (epoch-aligned, as Flink's TumblingEventTimeWindows) holding `at_ms`."""
    return at_ms - at_ms % window_ms + window_ms


def aggregate(events: Iterable[TripEvent], window_ms: int, created_ms: int) -> list[dict[str, Any]]:
    """What the Flink job computes, for a finite set of events (tests; a backfill): one row per driver and
    window, in window then driver order."""
    counts: dict[tuple[int, int], TripCounts] = {}
    for event in events:
        key = (window_end(event.at_ms, window_ms), event.driver_id)
        counts.setdefault(key, TripCounts()).add(event)
    return [feature_row(driver, end, c, created_ms) for (end, driver), c in sorted(counts.items())]


def iso(ms: int) -> str:
    """Epoch milliseconds as the ISO 8601 UTC text the push request carries (pandas parses it as a tz-aware
    timestamp)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def push_frame(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows as /push's `df` (column -> values), the batch source's columns in its order, times as ISO text."""
    frame: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for row in rows:
        for column in COLUMNS:
            value = row[column]
            frame[column].append(iso(value) if column in (TIMESTAMP, CREATED) else value)
    return frame
