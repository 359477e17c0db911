"""Every platform namespace with its guard rails, in one component the stack composition makes before the
layers: Pod Security labels, default-deny NetworkPolicies plus the allows of components/guardrails.py, and
`training`'s GPU quota and default requests. Layers receive the namespaces and never make one, so where a
namespace's policies live is never a question of which layer came first."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ClusterOutputs, Namespace, PlatformNamespaces
from components.guardrails import network_policies, pod_security_labels, training_limits
from components.kube import PART_OF


@dataclass(frozen=True)
class NamespacesArgs:
    cluster: ClusterOutputs  # the Kubernetes minor (Pod Security version), network facts, GPU pools


class Namespaces(pulumi.ComponentResource):
    outputs: PlatformNamespaces

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:platform:Namespaces", name, None, opts)
        cluster = args.cluster
        made: dict[Namespace, k8s.core.v1.Namespace] = {}
        for ns in Namespace:
            prefix = f"{name}-{ns.value}"
            made[ns] = k8s.core.v1.Namespace(
                prefix,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=ns.value, labels={**PART_OF, **pod_security_labels(ns, cluster.kubernetes_version)}
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            network_policies(self, prefix, ns, made[ns], cluster.network)
        training_limits(self, f"{name}-{Namespace.TRAINING.value}", made[Namespace.TRAINING], cluster.gpu_pools)
        self.outputs = made
        self.register_outputs({ns.value: n.metadata.name for ns, n in made.items()})
