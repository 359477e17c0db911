"""GKE adapter: VPC with pod/service ranges, Cloud NAT, private GKE with Workload Identity, node pools, laid out
as the EKS adapter is: one module per concern (network, gke, nodes, admins), composed here."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.gcp.admins import ClusterAdmins
from components.cluster.gcp.gke import control_plane
from components.cluster.gcp.network import (
    KONNECTIVITY_AGENTS,
    MASTER_CIDR,
    NODE_CIDR,
    POD_CIDR,
    cluster_network,
    network,
    webhook_firewall,
)
from components.cluster.gcp.nodes import NODE_ROLES, node_pools, node_service_account
from components.cluster.kubeconfig import exec_kubeconfig
from components.contracts import ClusterOutputs, GcpClusterFacts, LoadBalancerProfile
from components.environment import ClusterArgs

__all__ = ["KONNECTIVITY_AGENTS", "MASTER_CIDR", "NODE_CIDR", "NODE_ROLES", "POD_CIDR", "build"]

# GKE's built-in service controller makes a passthrough Network Load Balancer (L4) for a LoadBalancer
# Service: internal by annotation, external backed by a regional backend service (`l4-rbs`, Google's
# recommended external passthrough LB). L4, because Istio's gateway already does TLS and HTTP routing; an
# L7 Google LB in front would terminate and re-route twice.
# https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer
GKE_LOAD_BALANCER = LoadBalancerProfile(
    internal_annotations={"networking.gke.io/load-balancer-type": "Internal"},
    external_annotations={"cloud.google.com/l4-rbs": "enabled"},
)


def build(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs) -> ClusterOutputs:
    net = network(parent, name, cfg)
    cluster = control_plane(parent, name, cfg, net)
    node_account, node_grants = node_service_account(parent, name, cfg)
    webhook_firewall(parent, name, net, node_account)
    pools = node_pools(parent, name, cfg, cluster, node_account, node_grants)
    # The DNS endpoint serves a publicly trusted certificate, so the kubeconfig carries no CA.
    kubeconfig = exec_kubeconfig(
        cluster.name,
        cluster.control_plane_endpoints_config.apply(lambda c: f"https://{c.dns_endpoint_config.endpoint}"),
        None,
        command="gke-gcloud-auth-plugin",
        args=[],
    )
    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=pools.resources),
    )
    if cfg.cluster.admin_principals:
        ClusterAdmins(
            f"{name}-platform-admins",
            cfg.cluster.admin_principals,
            opts=pulumi.ResourceOptions(parent=parent, provider=provider),
        )
    return ClusterOutputs(
        name=cluster.name,
        kubernetes_provider=provider,
        system_pool=pools.system,
        cpu_pool=pools.cpu,
        kubernetes_version=cfg.cluster.kubernetes_version,
        load_balancer=GKE_LOAD_BALANCER,
        # GKE's built-in pd-balanced class (Persistent Disk CSI driver, zonal, binds on first consumer)
        block_storage_class="standard-rwo",
        managed_gpu_metrics=bool(cfg.cluster.gpu_pools),
        network=cluster_network(net),
        gpu_pools=pools.gpu,
        cloud_facts=GcpClusterFacts(
            cluster.workload_identity_config.apply(lambda c: c.workload_pool),
            net.vpc.id,
            net.subnet.id,
            net.psa_range.name,
        ),
    )
