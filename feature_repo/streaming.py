"""The streaming feature path's definitions: the rows the feature-push Flink job (streaming/feature_push)
computes from the `driver-trips` topic, per driver and event-time window, and POSTs to the feature server's
/push under the push source `driver_trips_push`.

With `to: online_and_offline` (config streaming.pushTo, the default) the feature server writes the rows to
Redis and appends them to the push source's batch source, a Parquet file in the datasets bucket that the
storage layer seeds empty (STREAM_DATA, components/streaming/__init__.py): Feast's file offline store appends
only to an existing file whose columns equal the pushed frame's, in order (feast v0.66.0
infra/offline_stores/dask.py offline_write_batch). The column order is streaming/feature_push/events.py
COLUMNS; a test keeps the seed, this view and the job equal.
"""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field, FileSource, PushSource
from feast.types import Float64, Int64
from features import DATASETS_URI, driver

STREAM_PATH = "feast/streaming/driver_trip_stats.parquet"  # under the datasets bucket

driver_trip_stats_source = FileSource(
    name="driver_trip_stats_source",
    path=f"{DATASETS_URI}/{STREAM_PATH}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_trips_push = PushSource(name="driver_trips_push", batch_source=driver_trip_stats_source)

driver_trip_stats = FeatureView(
    name="driver_trip_stats",
    entities=[driver],
    # a window's counts describe the last minutes only: an hour without events and they are not served
    ttl=timedelta(hours=1),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="trips", dtype=Int64),
        Field(name="offers", dtype=Int64),
        Field(name="acceptance_rate", dtype=Float64),
        Field(name="avg_fare", dtype=Float64),
    ],
    online=True,
    source=driver_trips_push,
    tags={"example": "true", "streaming": "true"},
)
