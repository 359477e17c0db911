"""Loki's identity in `monitoring`: the service account bound to the cloud identity that writes chunks and
index to the logs bucket. The Loki chart joins this component with the observability issue."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import WorkloadIdentity
from components.kube import identity_service_account


@dataclass(frozen=True)
class LokiArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity


@dataclass(frozen=True)
class LokiOutputs:
    service_account: k8s.core.v1.ServiceAccount


class Loki(pulumi.ComponentResource):
    outputs: LokiOutputs

    def __init__(self, name: str, args: LokiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Loki", name, None, opts)
        account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        self.outputs = LokiOutputs(account)
        self.register_outputs({"serviceAccount": account.metadata.name})
