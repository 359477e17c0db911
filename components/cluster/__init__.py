"""Cluster layer: network, Kubernetes control plane, node pools, and the provider in-cluster layers use."""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.cluster import aws, gcp, local
from components.contracts import ClusterOutputs
from components.environment import ClusterArgs
from mlplatform.config import Cloud

ClusterAdapter = Callable[[pulumi.ComponentResource, str, ClusterArgs], ClusterOutputs]
ADAPTERS: dict[Cloud, ClusterAdapter] = {Cloud.AWS: aws.build, Cloud.GCP: gcp.build, Cloud.LOCAL: local.build}


class Cluster(pulumi.ComponentResource):
    """EKS or GKE with system, CPU and GPU pools, or an existing local cluster described by config (kind).
    Consumers read `outputs`, never the cloud resources."""

    outputs: ClusterOutputs

    def __init__(self, name: str, config: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:cluster:Cluster", name, None, opts)
        self.outputs = ADAPTERS[config.cloud](self, name, config)
        self.register_outputs({"clusterName": self.outputs.name})
