"""Data layer: PostgreSQL for MLflow/Feast/Airflow metadata, Redis for online features, Kafka for events.

Each service is the cloud's managed one or runs in the cluster (`data.<service>.mode`); both hand the same
endpoint contract on, so no layer above knows which it got.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ClusterOutputs, DataOutputs, Namespace, PlatformNamespaces, WorkloadSpec
from components.data import aws, gcp
from components.data.in_cluster import InClusterArgs
from components.data.in_cluster.kafka import StrimziKafka
from components.data.in_cluster.postgres import CloudNativePostgres
from components.data.in_cluster.redis import Valkey
from components.data.in_cluster.tls import PlatformCa
from components.data.services import ManagedServices
from components.environment import DataArgs
from mlplatform.config import Cloud

ManagedAdapter = Callable[
    [pulumi.ComponentResource, str, DataArgs, ClusterOutputs, k8s.core.v1.Namespace], ManagedServices
]
MANAGED: dict[Cloud, ManagedAdapter] = {Cloud.AWS: aws.build, Cloud.GCP: gcp.build}


class Data(pulumi.ComponentResource):
    outputs: DataOutputs

    def __init__(
        self,
        name: str,
        config: DataArgs,
        cluster: ClusterOutputs,
        namespaces: PlatformNamespaces,
        workloads: tuple[WorkloadSpec, ...],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:data:Data", name, None, opts)
        ns = namespaces[Namespace.DATA]
        adapter = MANAGED.get(config.cloud)
        managed = adapter(self, name, config, cluster, ns) if adapter is not None else ManagedServices()
        in_cluster = config.data.in_cluster()
        # in-cluster services live on the Kubernetes provider, which a cloud stack's data layer does not
        # default to (its managed services use the cloud's)
        kube = pulumi.ResourceOptions(parent=self, providers=[cluster.kubernetes_provider])
        ca = PlatformCa(f"{name}-data", opts=kube) if in_cluster else None
        args = InClusterArgs(config, cluster, ns, ca, workloads) if ca is not None else None
        postgres, redis, kafka = managed.postgres, managed.redis, managed.kafka
        # what a later layer attaches to the in-cluster database (its backups, after the storage layer)
        self.ca = ca
        self.cloudnative_pg: CloudNativePostgres | None = None
        if "postgres" in in_cluster and args is not None:
            self.cloudnative_pg = CloudNativePostgres(f"{name}-postgres", args, opts=kube)
            postgres = self.cloudnative_pg.endpoint
        if "redis" in in_cluster and args is not None:
            redis = Valkey(f"{name}-redis", args, opts=kube).endpoint
        if "kafka" in in_cluster and args is not None:
            kafka = StrimziKafka(f"{name}-kafka", args, opts=kube).endpoint
        if postgres is None or redis is None:
            raise ValueError(f"no PostgreSQL or Redis built for {config.cloud.value}: {in_cluster=}")
        self.outputs = DataOutputs(postgres=postgres, redis=redis, kafka=kafka)
        self.register_outputs({"postgresHost": self.outputs.postgres.host, "redisHost": self.outputs.redis.host})
