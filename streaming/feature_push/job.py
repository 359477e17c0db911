"""The feature-push job: Kafka -> parse -> per-driver event-time windows -> micro-batches -> Feast /push.

PyFlink's DataStream API (apache-flink 2.2, streaming/requirements.txt) over Flink's Java Kafka connector
(flink-connector-kafka 5.0.0 in the image's lib/). Everything the job decides is plain Python in
events.py and push.py; this module only wires those into Flink operators. The FlinkDeployment runs it with
PythonDriver (`-py /opt/flink/usrlib/feature_push/job.py`); tests/test_streaming_flink.py runs feature_rows
on a local PyFlink mini-cluster against the plain-Python reference.

Graph: KafkaSource (committed offsets of the consumer group, else the latest) -> parse, invalid records
dropped -> event timestamps with bounded out-of-orderness -> key by driver -> tumbling event-time windows
aggregated by TripCounts -> one row per driver and window -> processing-time windows of flushSeconds over
all rows (one subtask: rows are few, one per active driver per window) -> PushClient in batches of
batchRows. Checkpoints (every minute, the FlinkDeployment's configuration) hold the Kafka offsets and the
window contents, so a restart replays whatever was not pushed: at least once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

# the job's package is beside this file (/opt/flink/usrlib/feature_push); PythonDriver runs the file as a script
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.common.time import Time
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaSource,
)
from pyflink.datastream.functions import (
    AggregateFunction,
    FlatMapFunction,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    RuntimeContext,
)
from pyflink.datastream.window import TumblingEventTimeWindows, TumblingProcessingTimeWindows

from feature_push.events import TripCounts, TripEvent, feature_row, parse
from feature_push.push import MicroBatcher, PushClient
from feature_push.settings import Settings


class Parse(FlatMapFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.malformed = runtime_context.get_metrics_group().counter("malformed")

    def flat_map(self, value: str) -> Iterator[TripEvent]:
        event = parse(value)
        if event is None:
            self.malformed.inc()
            return
        yield event


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: TripEvent, record_timestamp: int) -> int:
        return value.at_ms


class Count(AggregateFunction):
    def create_accumulator(self) -> TripCounts:
        return TripCounts()

    def add(self, value: TripEvent, accumulator: TripCounts) -> TripCounts:
        return accumulator.add(value)

    def get_result(self, accumulator: TripCounts) -> TripCounts:
        return accumulator

    def merge(self, a: TripCounts, b: TripCounts) -> TripCounts:
        return a.merge(b)


class ToRow(ProcessWindowFunction):
    def process(
        self, key: int, context: ProcessWindowFunction.Context, elements: Iterable[TripCounts]
    ) -> Iterator[dict]:
        end = context.window().end
        for counts in elements:
            yield feature_row(key, end, counts, int(time.time() * 1000))


class Push(ProcessAllWindowFunction):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self.settings
        self.client = PushClient(s.push_url, s.push_source, s.push_to)
        self.pushed = runtime_context.get_metrics_group().counter("pushed_rows")

    def process(self, context: ProcessAllWindowFunction.Context, elements: Iterable[dict]) -> list[dict]:
        rows = list(elements)
        MicroBatcher(self.client.push, self.settings.batch_rows, rows).flush()
        self.pushed.inc(len(rows))
        return []


def feature_rows(records: DataStream, s: Settings) -> DataStream:
    """Raw records (JSON text) -> one row per driver and event-time window (events.feature_row)."""
    watermarks = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_seconds(s.out_of_orderness_seconds)
    ).with_timestamp_assigner(EventTime())
    events = (
        records.flat_map(Parse(), output_type=Types.PICKLED_BYTE_ARRAY())
        .uid("parse")
        .assign_timestamps_and_watermarks(watermarks)
    )
    return (
        events.key_by(lambda e: e.driver_id, key_type=Types.LONG())
        .window(TumblingEventTimeWindows.of(Time.minutes(s.window_minutes)))
        .aggregate(Count(), window_function=ToRow(), output_type=Types.PICKLED_BYTE_ARRAY())
        .uid("driver-windows")
    )


def build(env: StreamExecutionEnvironment, s: Settings) -> None:
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(s.bootstrap_servers)
        .set_topics(s.topic)
        .set_group_id(s.group_id)
        .set_starting_offsets(KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.LATEST))
        .set_value_only_deserializer(SimpleStringSchema())
        .set_properties(s.kafka_properties)
        .build()
    )
    records = env.from_source(source, WatermarkStrategy.no_watermarks(), f"kafka:{s.topic}").uid("kafka-source")
    feature_rows(records, s).window_all(TumblingProcessingTimeWindows.of(Time.seconds(s.flush_seconds))).process(
        Push(s), output_type=Types.PICKLED_BYTE_ARRAY()
    ).uid("feast-push")


def main() -> None:
    settings = Settings.from_env()
    env = StreamExecutionEnvironment.get_execution_environment()
    build(env, settings)
    env.execute("feature-push")


if __name__ == "__main__":
    main()
