"""Data layer: PostgreSQL for MLflow/Feast/Airflow metadata, Redis for online features, Kafka for events."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ClusterOutputs, DataOutputs, Namespace, PlatformNamespaces
from components.data import aws, gcp
from components.environment import DataArgs
from mlplatform.config import Cloud

DataAdapter = Callable[[pulumi.ComponentResource, str, DataArgs, ClusterOutputs, k8s.core.v1.Namespace], DataOutputs]
ADAPTERS: dict[Cloud, DataAdapter] = {Cloud.AWS: aws.build, Cloud.GCP: gcp.build}


class Data(pulumi.ComponentResource):
    outputs: DataOutputs

    def __init__(
        self,
        name: str,
        config: DataArgs,
        cluster: ClusterOutputs,
        namespaces: PlatformNamespaces,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:data:Data", name, None, opts)
        self.outputs = ADAPTERS[config.cloud](self, name, config, cluster, namespaces[Namespace.DATA])
        self.register_outputs({"postgresHost": self.outputs.postgres.host, "redisHost": self.outputs.redis.host})
