"""Accidental loss: stateful resources in prod survive a mistaken delete or a removed line of code."""

from __future__ import annotations

from collections.abc import Iterable

from policy.rules import resource_rule
from policy.view import Context, Resource

# what holds data or keys: losing one loses data (components/protection.py `stateful` gives them both
# protect and retainOnDelete in prod)
STATEFUL = (
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:msk/cluster:Cluster",
    "aws:msk/topic:Topic",
    "aws:kms/key:Key",
    "gcp:storage/bucket:Bucket",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:redis/instance:Instance",
    "gcp:managedkafka/cluster:Cluster",
    "gcp:managedkafka/topic:Topic",
    "gcp:kms/cryptoKey:CryptoKey",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
    "kubernetes:kafka.strimzi.io/v1:Kafka",
    "kubernetes:kafka.strimzi.io/v1:KafkaNodePool",
    "kubernetes:kafka.strimzi.io/v1:KafkaTopic",
    "kubernetes:core/v1:PersistentVolumeClaim",
)


@resource_rule("stateful-protected", "Prod resources holding data are protected or retained on delete", *STATEFUL)
def stateful_protected(res: Resource, ctx: Context) -> Iterable[str]:
    """`protect` makes `pulumi destroy` or a replacement stop instead of deleting, `retainOnDelete` leaves
    the cloud resource behind when it leaves the program (Pulumi docs, resource options "protect" and
    "retainOnDelete"). Under the CLI only `protect` is visible (the analyzer protocol does not carry
    retainOnDelete), which the program sets on each of these in prod."""
    if ctx.prod and not res.protect and not res.retain_on_delete:
        yield "neither protect nor retainOnDelete"
