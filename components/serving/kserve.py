"""KServe's identity in `model-serving`: the service account predictors and the storage initializer run as,
bound to the cloud identity that reads the artifacts bucket (read-only). The KServe, Knative and Istio
charts join this component with the serving issue."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import WorkloadIdentity
from components.kube import identity_service_account


@dataclass(frozen=True)
class KServeArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity


@dataclass(frozen=True)
class KServeOutputs:
    model_pull_service_account: k8s.core.v1.ServiceAccount


class KServe(pulumi.ComponentResource):
    outputs: KServeOutputs

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:KServe", name, None, opts)
        account = identity_service_account(self, f"{name}-model-pull-account", args.identity, args.namespace)
        self.outputs = KServeOutputs(account)
        self.register_outputs({"modelPullServiceAccount": account.metadata.name})
