"""The feature-event topics as cloud resources, with their retention from config: MSK topics (pulumi-aws
`aws.msk.Topic`, the MSK topic API, present in pulumi-aws 7.51.1) on AWS, Managed Kafka topics
(`gcp.managedkafka.Topic`) on GCP. The cloud is named by the stack's config; the cluster by the data layer's
KafkaEndpoint (MSK cluster ARN / Managed Kafka cluster ID). Topics hold events producers cannot resend:
protected and retained in prod, like the cluster itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.contracts import KafkaEndpoint
from components.protection import stateful
from mlplatform.config import Cloud, PlatformConfig
from mlplatform.config.streaming import TopicConfig

# Managed Kafka keeps every partition in three zones; Google recommends a replication factor of 3
# (pulumi-gcp managedkafka.Topic `replication_factor`)
GCP_REPLICATION = 3
MAX_REPLICATION = 3


def replication(cfg: PlatformConfig) -> tuple[int, int]:
    """(replication factor, min.insync.replicas): one replica per broker up to 3 on MSK (dev's two brokers
    hold two), and writes acknowledged by all but one replica, so a broker can restart under load."""
    factor = GCP_REPLICATION if cfg.cloud is Cloud.GCP else min(MAX_REPLICATION, cfg.data.kafka.brokers or 1)
    return factor, max(1, factor - 1)


def topic_configs(cfg: PlatformConfig, topic: TopicConfig) -> dict[str, str]:
    """Kafka topic properties: time-based retention only (retention.bytes -1: the disk is sized for it)."""
    _, min_insync = replication(cfg)
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(topic.retention_ms),
        "retention.bytes": "-1",
        "min.insync.replicas": str(min_insync),
    }


def _msk(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint, t: TopicConfig
) -> aws.msk.Topic:
    factor, _ = replication(cfg)
    return aws.msk.Topic(
        f"{name}-topic-{t.name}",
        name=t.name,
        cluster_arn=kafka.cluster_id,
        partition_count=t.partitions,
        replication_factor=factor,
        configs=json.dumps(topic_configs(cfg, t), sort_keys=True),
        opts=stateful(cfg, parent),
    )


def _managed_kafka(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint, t: TopicConfig
) -> gcp.managedkafka.Topic:
    factor, _ = replication(cfg)
    return gcp.managedkafka.Topic(
        f"{name}-topic-{t.name}",
        topic_id=t.name,
        cluster=kafka.cluster_id,
        location=cfg.region,
        project=cfg.gcp_project,
        partition_count=t.partitions,
        replication_factor=factor,
        configs=topic_configs(cfg, t),
        opts=stateful(cfg, parent),
    )


MAKERS: dict[Cloud, Callable[..., pulumi.CustomResource]] = {Cloud.AWS: _msk, Cloud.GCP: _managed_kafka}


def feature_topics(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint
) -> dict[str, pulumi.CustomResource]:
    """Every configured topic, by name."""
    return {t.name: MAKERS[cfg.cloud](parent, name, cfg, kafka, t) for t in cfg.streaming.topics}
