"""Local adapter: any Kubernetes cluster a kubeconfig context reaches (kind, README "Local quickstart").

The cluster exists before `pulumi up` and the program creates no cloud resource: this adapter only
describes it to the in-cluster layers, laid out as the EKS and GKE adapters are (one module per concern):
the provider (provider.py), the network facts NetworkPolicies need (network.py), how a LoadBalancer Service
gets an address (load_balancer.py) and the StorageClass volumes use (storage_class.py). Pools select the
nodes that already carry their configured nodeLabels (components/cluster/pools.py)."""

from __future__ import annotations

import pulumi

from components.cluster.local.load_balancer import LOCAL_LOAD_BALANCER
from components.cluster.local.network import cluster_network
from components.cluster.local.provider import kubernetes_provider
from components.cluster.local.storage_class import KIND_STORAGE_CLASS
from components.cluster.pools import configured_pools
from components.contracts import ClusterOutputs, LocalClusterFacts
from components.environment import ClusterArgs

__all__ = ["KIND_STORAGE_CLASS", "LOCAL_LOAD_BALANCER", "build"]


def build(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs) -> ClusterOutputs:
    c = cfg.cluster
    if c.kubeconfig_context is None or c.node_cidrs is None or c.registry is None:  # required on local (config)
        raise ValueError("cloud local needs cluster.kubeconfigContext, cluster.nodeCidrs and cluster.registry")
    provider = kubernetes_provider(parent, name, c.kubeconfig_context)
    contracts = [contract for _, contract in configured_pools(cfg)]
    system, cpu, *gpu = contracts
    context = pulumi.Output.from_input(c.kubeconfig_context)
    return ClusterOutputs(
        name=context,
        kubernetes_provider=provider,
        system_pool=system,
        cpu_pool=cpu,
        gpu_pools=tuple(gpu),
        kubernetes_version=c.kubernetes_version,
        network=cluster_network(c.node_cidrs),
        load_balancer=LOCAL_LOAD_BALANCER,
        block_storage_class=KIND_STORAGE_CLASS,
        # no cloud collects GPU metrics: the DCGM exporter runs on the GPU nodes, as on EKS
        managed_gpu_metrics=False,
        cloud_facts=LocalClusterFacts(kubeconfig_context=c.kubeconfig_context, registry=c.registry),
    )
