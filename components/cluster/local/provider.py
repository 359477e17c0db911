"""The Kubernetes provider of a local stack: the deployer's own kubeconfig, at the configured context.

No kubeconfig is built or stored: the provider reads the user's default one ($KUBECONFIG, else
~/.kube/config, as kubectl does) and selects `cluster.kubeconfigContext` (kind names it
kind-<cluster name>), so credentials stay where `kind create cluster` wrote them and out of the state."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s


def kubernetes_provider(parent: pulumi.Resource, name: str, context: str) -> k8s.Provider:
    return k8s.Provider(
        f"{name}-k8s",
        context=context,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
