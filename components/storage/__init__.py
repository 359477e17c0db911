"""Storage layer: buckets for artifacts, datasets/offline features and logs, and one cloud identity per
platform workload, created next to exactly the bucket (and Kafka) grants that workload needs. On `cloud: local`
the buckets are in an in-cluster S3-compatible store and each identity is a static key (components/storage/
local.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi

from components.contracts import (
    Bucket,
    ClusterOutputs,
    KafkaEndpoint,
    PlatformNamespaces,
    SeedObject,
    StorageOutputs,
    WorkloadSpec,
)
from components.environment import StorageArgs
from components.storage import aws, gcp, local
from mlplatform.config import Cloud

StorageAdapter = Callable[
    [pulumi.ComponentResource, str, StorageArgs, ClusterOutputs, Sequence[WorkloadSpec], KafkaEndpoint | None],
    StorageOutputs,
]
ADAPTERS: dict[Cloud, StorageAdapter] = {Cloud.AWS: aws.build, Cloud.GCP: gcp.build}
Seeder = Callable[[pulumi.Resource, str, Bucket, SeedObject], pulumi.CustomResource]
SEEDERS: dict[Cloud, Seeder] = {Cloud.AWS: aws.seed, Cloud.GCP: gcp.seed}


class Storage(pulumi.ComponentResource):
    outputs: StorageOutputs

    def __init__(
        self,
        name: str,
        config: StorageArgs,
        cluster: ClusterOutputs,
        workloads: Sequence[WorkloadSpec],
        kafka: KafkaEndpoint | None = None,
        seeds: Sequence[SeedObject] = (),
        namespaces: PlatformNamespaces | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`namespaces`: where the local store and the workloads' key Secrets go (unused on AWS and GCP, whose
        storage is the cloud's)."""
        super().__init__("mlplatform:storage:Storage", name, None, opts)
        if config.cloud is Cloud.LOCAL:
            # the store itself, its keys and the seeding Job are Kubernetes objects in the cluster
            self.outputs = local.build(self, name, config, cluster, workloads, kafka, seeds, namespaces)
        else:
            self.outputs = ADAPTERS[config.cloud](self, name, config, cluster, workloads, kafka)
            for obj in seeds:
                SEEDERS[config.cloud](self, name, self.outputs.buckets[obj.purpose], obj)
        self.register_outputs({p.value: b.uri for p, b in self.outputs.buckets.items()})
