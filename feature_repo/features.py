"""The platform's example feature definitions: `feast apply` (the feast-apply Job that `pulumi up` runs when
this directory changes, components/lifecycle/feast.py) registers them in the SQL registry, the hourly
materialization loads them into Redis, and the feature server serves them.

One entity, one feature view over a Parquet dataset in the datasets bucket, a push source on the same view
for the streaming path (a stream job or a service POSTs rows to the feature server's /push), and a feature
service. Replace or extend them with your own; every `*.py` here (but those in .feastignore) is read by
`feast apply`.

DATASETS_URI (s3://<bucket> or gs://<bucket>) is set by the Job from the storage layer's datasets bucket;
the sample's rows are made by sample_data.py (README, "Feast").
"""

from __future__ import annotations

import os
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float32, Int64

DATASETS_URI = os.environ["DATASETS_URI"].rstrip("/")
SAMPLE_PATH = "feast/examples/driver_stats.parquet"  # under the datasets bucket

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64, description="A driver, by id.")

driver_stats_source = FileSource(
    name="driver_stats_source",
    path=f"{DATASETS_URI}/{SAMPLE_PATH}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

# Rows pushed here (POST /push on the feature server) go to the online store and, with `to: online_and_offline`,
# are appended to the batch source.
driver_stats_push = PushSource(name="driver_stats_push", batch_source=driver_stats_source)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    # materialize-incremental's first run starts at now - ttl: long enough to reach the sample's fixed dates
    ttl=timedelta(days=3650),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_push,
    tags={"example": "true"},
)

driver_activity = FeatureService(name="driver_activity", features=[driver_hourly_stats])
