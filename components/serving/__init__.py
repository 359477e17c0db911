"""Serving layer: KServe (Knative/Istio), ModelMesh, InferenceGraph, Feast feature server in the path.

Consumes only typed outputs of the infra and lifecycle layers; no cloud-specific branching.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.contracts import ClusterOutputs, Namespace, PlatformNamespaces, StorageOutputs
from components.serving.kserve import KServe, KServeArgs
from mlplatform.config import ServicesConfig


@dataclass(frozen=True)
class ServingArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    services: ServicesConfig


@dataclass(frozen=True)
class ServingOutputs:
    namespace: pulumi.Output[str]
    model_pull_service_account: k8s.core.v1.ServiceAccount


class Serving(pulumi.ComponentResource):
    outputs: ServingOutputs

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Serving", name, None, opts)
        ns = args.namespaces[Namespace.SERVING]
        kserve = KServe(
            f"{name}-kserve",
            KServeArgs(ns, args.storage.identity(workloads.KSERVE)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.outputs = ServingOutputs(
            namespace=ns.metadata.name, model_pull_service_account=kserve.outputs.model_pull_service_account
        )
        self.register_outputs({"namespace": ns.metadata.name})
