"""Streaming layer: feature events on Kafka -> a Flink job -> Feast's /push -> online and offline stores.

Feast's own Kafka ingestion is experimental and Spark-only (docs/reference/data-sources/kafka.md, feast
v0.66.0): Flink owns the transform, Feast is the sink. The layer makes, in this order:
- the feature-event topics (MSK / Managed Kafka topic resources under the cloud provider, or Strimzi
  KafkaTopics for in-cluster Kafka: as the endpoint says; retention from config);
- the Flink Kubernetes Operator in `flink-operator` (chart 1.15.0; its webhook after cert-manager);
- the job's image (streaming/) and its FlinkDeployment in `streaming`, as the streaming workload's identity
  (components/workloads.py STREAMING), after the topics and the operator.

Created only with `streaming.enabled` (on in prod); config validation ensures Kafka and Feast exist then.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import workloads
from components.contracts import (
    BucketPurpose,
    ClusterOutputs,
    DataOutputs,
    Namespace,
    PlatformNamespaces,
    SeedObject,
    ServiceEndpoint,
    StorageOutputs,
)
from components.lifecycle.feast import FEATURE_REPO
from components.lifecycle.kafka import granted
from components.placement import Placement
from components.streaming.image import job_image
from components.streaming.job import FeaturePush, FeaturePushArgs
from components.streaming.operator import FlinkOperator, FlinkOperatorArgs
from components.streaming.topics import feature_topics
from mlplatform.config import HaProfile, PlatformConfig
from mlplatform.config.models import Sizing
from mlplatform.pins import FLINK_OPERATOR

# The push source's batch source (feature_repo/streaming.py): an empty Parquet file with the feature view's
# columns, uploaded by the storage layer, since Feast's file offline store appends only to an existing file.
STREAM_DATA = SeedObject(
    BucketPurpose.DATASETS,
    "feast/streaming/driver_trip_stats.parquet",
    FEATURE_REPO / "data" / "driver_trip_stats.parquet",
)


@dataclass(frozen=True)
class StreamingArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    data: DataOutputs
    feature_server: ServiceEndpoint  # the lifecycle layer's Feast feature server
    cert_manager: pulumi.Resource | None  # the serving layer's cert-manager release (None: no webhook)
    cfg: PlatformConfig


@dataclass(frozen=True)
class StreamingOutputs:
    topics: tuple[str, ...]
    job: str  # namespace/name of the FlinkDeployment


class Streaming(pulumi.ComponentResource):
    """Give it the cloud provider and the cluster's Kubernetes provider (`providers=[...]`): topics are cloud
    resources, the rest lives in the cluster."""

    outputs: StreamingOutputs

    def __init__(self, name: str, args: StreamingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:streaming:Streaming", name, None, opts)
        cfg, child = args.cfg, pulumi.ResourceOptions(parent=self)
        kafka = args.data.kafka
        if kafka is None:
            raise ValueError("streaming needs Kafka (config validation requires data.kafka.enabled)")
        placement = Placement(
            args.cluster.cpu_pool,
            spread=cfg.ha is HaProfile.MULTI_ZONE,
            small=cfg.services.sizing is Sizing.SMALL,
        )
        streaming_ns = args.namespaces[Namespace.STREAMING]
        topics = feature_topics(self, name, cfg, kafka)
        operator = FlinkOperator(
            f"{name}-flink-operator",
            FlinkOperatorArgs(
                namespace=args.namespaces[Namespace.FLINK_OPERATOR], watched=Namespace.STREAMING.value,
                job_service_account=workloads.STREAMING.service_account, pin=FLINK_OPERATOR, placement=placement,
                provider=args.cluster.kubernetes_provider, cert_manager=args.cert_manager,
            ),
            opts=child,
        )  # fmt: skip
        image = job_image(self, name, args.storage.registry)
        job = FeaturePush(
            f"{name}-feature-push",
            FeaturePushArgs(
                namespace=streaming_ns, identity=args.storage.identity(workloads.STREAMING),
                kafka=granted(workloads.STREAMING, kafka),
                feature_server=args.feature_server, datasets=args.storage.buckets[BucketPurpose.DATASETS],
                image=image.ref, config=cfg.streaming, placement=placement, topics=tuple(topics.values()),
                operator=operator.release,
            ),
            opts=child,
        )  # fmt: skip
        self.outputs = StreamingOutputs(tuple(topics), f"{Namespace.STREAMING.value}/feature-push")
        self.register_outputs({"topics": list(topics), "job": self.outputs.job, "deployment": job.deployment.id})
