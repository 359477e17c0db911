"""Observability layer: Prometheus, Grafana, Loki (logs bucket), Evidently drift monitoring, alert rules.

Consumes only typed outputs of the infra layers; no cloud-specific branching.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.contracts import BucketPurpose, ClusterOutputs, Namespace, PlatformNamespaces, StorageOutputs
from components.observability.loki import Loki, LokiArgs
from mlplatform.config import ServicesConfig


@dataclass(frozen=True)
class ObservabilityArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    services: ServicesConfig


@dataclass(frozen=True)
class ObservabilityOutputs:
    namespace: pulumi.Output[str]
    loki_service_account: k8s.core.v1.ServiceAccount
    logs_bucket: pulumi.Output[str]


class Observability(pulumi.ComponentResource):
    outputs: ObservabilityOutputs

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Observability", name, None, opts)
        ns = args.namespaces[Namespace.MONITORING]
        loki = Loki(
            f"{name}-loki",
            LokiArgs(ns, args.storage.identity(workloads.LOKI)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        sa = loki.outputs.service_account
        self.outputs = ObservabilityOutputs(
            namespace=ns.metadata.name,
            loki_service_account=sa,
            logs_bucket=args.storage.buckets[BucketPurpose.LOGS].name,
        )
        self.register_outputs({"namespace": ns.metadata.name})
