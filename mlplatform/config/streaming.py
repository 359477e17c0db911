"""The streaming feature path: `mlplatform:streaming` in `Pulumi.<stack>.yaml`.

Feature events arrive on Kafka topics the platform declares (with their retention); a Flink job
(streaming/feature_push, run by the Flink Kubernetes Operator) aggregates them per entity in event-time
windows and POSTs the rows in micro-batches to the Feast feature server's /push. On by default in prod, off
in dev (the operator, a JobManager and TaskManagers cost a node's worth of CPU and memory).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from mlplatform.config.strict import STRICT

# Kafka's legal topic names (kafka Topic.java: [a-zA-Z0-9._-], at most 249), lower case here, and without
# `.` so that a name never collides with another in Kafka's metrics (which map `.` to `_`); Managed Kafka's
# topic IDs take the same
TOPIC_NAME = r"^[a-z0-9][a-z0-9_-]{0,248}$"


class Strict(BaseModel):
    model_config = STRICT


class TopicConfig(Strict):
    """A feature-event topic: created by `pulumi up` before the job that reads it (MSK / Managed Kafka topic
    resources). Partitions can grow later, never shrink (Kafka); retention is how long events stay
    replayable (a job restarted from an older savepoint, or a new job backfilling from the earliest offset)."""

    name: Annotated[str, Field(pattern=TOPIC_NAME)]
    partitions: Annotated[int, Field(ge=1, le=1000)] = 6
    retention_hours: Annotated[int, Field(ge=1, le=8760)] = 168  # a week

    @property
    def retention_ms(self) -> int:
        return self.retention_hours * 3_600_000


class StreamingConfig(Strict):
    """Whether the streaming path is installed, its topics, and how the feature-push job aggregates and
    pushes. `sourceTopic` must be one of `topics`."""

    enabled: bool = False
    topics: list[TopicConfig] = [TopicConfig(name="driver-trips")]
    source_topic: Annotated[str, Field(pattern=TOPIC_NAME)] = "driver-trips"
    # event-time tumbling windows per driver, and how late an event may arrive and still count
    window_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    out_of_orderness_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    # a push is sent every flushSeconds, or sooner once batchRows rows wait
    flush_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    batch_rows: Annotated[int, Field(ge=1, le=10_000)] = 500
    parallelism: Annotated[int, Field(ge=1, le=64)] = 2
    # Feast's /push `to`: online_and_offline also appends the rows to the push source's batch source
    push_to: Literal["online", "online_and_offline"] = "online_and_offline"

    @model_validator(mode="after")
    def _topics(self) -> Self:
        names = [t.name for t in self.topics]
        if len(set(names)) != len(names):
            raise ValueError(f"topics repeat a name: {names}")
        if self.source_topic not in names:
            raise ValueError(f"sourceTopic {self.source_topic!r} is not one of topics {names}")
        return self

    def topic(self, name: str) -> TopicConfig:
        return next(t for t in self.topics if t.name == name)
