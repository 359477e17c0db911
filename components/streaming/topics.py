"""The feature-event topics, with their retention from config, made the way the data layer's KafkaEndpoint
says (`topics`), never guessed from the cloud: MSK topics (pulumi-aws `aws.msk.Topic`, the MSK topic API,
present in pulumi-aws 7.51.1), Managed Kafka topics (`gcp.managedkafka.Topic`), or Strimzi KafkaTopic
resources in `data` for the in-cluster cluster (its Topic Operator creates them). The cluster is the
endpoint's `cluster_id` (MSK cluster ARN / Managed Kafka cluster ID / the Kafka resource's name). Topics hold
events producers cannot resend: protected and retained in prod, like the cluster itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.contracts import KafkaEndpoint, KafkaTopicApi, Namespace
from components.data.in_cluster.strimzi import API_VERSION, CLUSTER_LABEL, topic_resource_name, topic_spec
from components.kube import PART_OF
from components.protection import stateful
from mlplatform.config import PlatformConfig
from mlplatform.config.streaming import TopicConfig

# Managed Kafka keeps every partition in three zones; Google recommends a replication factor of 3
# (pulumi-gcp managedkafka.Topic `replication_factor`)
GCP_REPLICATION = 3
MAX_REPLICATION = 3


def replication(cfg: PlatformConfig, api: KafkaTopicApi) -> tuple[int, int]:
    """(replication factor, min.insync.replicas): 3 on Managed Kafka, else one replica per broker up to 3 (MSK,
    Strimzi: dev's brokers hold one each), and writes acknowledged by all but one replica, so a broker can
    restart under load."""
    if api is KafkaTopicApi.MANAGED_KAFKA:
        factor = GCP_REPLICATION
    else:
        factor = min(MAX_REPLICATION, cfg.data.kafka.brokers or 1)
    return factor, max(1, factor - 1)


def topic_configs(cfg: PlatformConfig, topic: TopicConfig, api: KafkaTopicApi) -> dict[str, str]:
    """Kafka topic properties: time-based retention only (retention.bytes -1: the disk is sized for it)."""
    _, min_insync = replication(cfg, api)
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(topic.retention_ms),
        "retention.bytes": "-1",
        "min.insync.replicas": str(min_insync),
    }


def _msk(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint, t: TopicConfig
) -> aws.msk.Topic:
    factor, _ = replication(cfg, kafka.topics)
    return aws.msk.Topic(
        f"{name}-topic-{t.name}",
        name=t.name,
        cluster_arn=kafka.cluster_id,
        partition_count=t.partitions,
        replication_factor=factor,
        configs=json.dumps(topic_configs(cfg, t, kafka.topics), sort_keys=True),
        opts=stateful(cfg, parent),
    )


def _managed_kafka(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint, t: TopicConfig
) -> gcp.managedkafka.Topic:
    factor, _ = replication(cfg, kafka.topics)
    return gcp.managedkafka.Topic(
        f"{name}-topic-{t.name}",
        topic_id=t.name,
        cluster=kafka.cluster_id,
        location=cfg.region,
        project=cfg.gcp_project,
        partition_count=t.partitions,
        replication_factor=factor,
        configs=topic_configs(cfg, t, kafka.topics),
        opts=stateful(cfg, parent),
    )


def _strimzi(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint, t: TopicConfig
) -> k8s.apiextensions.CustomResource:
    """A KafkaTopic beside the Kafka resource (the Topic Operator watches its own namespace), bound to the
    cluster by the strimzi.io/cluster label; made from the endpoint's cluster_id, so after the cluster."""
    return k8s.apiextensions.CustomResource(
        f"{name}-topic-{t.name}",
        api_version=API_VERSION,
        kind="KafkaTopic",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=topic_resource_name(t.name),
            namespace=Namespace.DATA.value,
            labels=kafka.cluster_id.apply(lambda cluster: {**PART_OF, CLUSTER_LABEL: cluster}),
        ),
        spec=topic_spec(t, cfg.data.kafka.brokers or 1, topic_configs(cfg, t, kafka.topics)),
        opts=stateful(cfg, parent),
    )


MAKERS: dict[KafkaTopicApi, Callable[..., pulumi.CustomResource]] = {
    KafkaTopicApi.MSK: _msk,
    KafkaTopicApi.MANAGED_KAFKA: _managed_kafka,
    KafkaTopicApi.STRIMZI: _strimzi,
}


def feature_topics(
    parent: pulumi.Resource, name: str, cfg: PlatformConfig, kafka: KafkaEndpoint
) -> dict[str, pulumi.CustomResource]:
    """Every configured topic, by name."""
    return {t.name: MAKERS[kafka.topics](parent, name, cfg, kafka, t) for t in cfg.streaming.topics}
