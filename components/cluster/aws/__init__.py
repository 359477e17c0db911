"""EKS adapter: VPC, control plane, add-ons, managed node groups, autoscaler, GPU device plugin, provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.aws.addons import (
    ClusterAutoscaler,
    NvidiaDevicePlugin,
    addons_after_nodes,
    addons_before_nodes,
)
from components.cluster.aws.eks import control_plane
from components.cluster.aws.load_balancer import LoadBalancerController
from components.cluster.aws.network import VPC_CIDR, network
from components.cluster.aws.nodes import node_groups
from components.cluster.aws.storage_class import BlockStorage
from components.cluster.kubeconfig import exec_kubeconfig
from components.contracts import AwsClusterFacts, ClusterNetwork, ClusterOutputs
from components.environment import ClusterArgs

# Pods get AWS credentials through IRSA (STS over HTTPS), never from the instance metadata service, whose
# node-role credentials every pod could otherwise borrow. The control plane calls webhooks from its ENIs in
# the VPC's subnets (the VPC CNI's policy agent matches them by address). The EKS CoreDNS add-on's Corefile
# serves Prometheus metrics on 9153 (`prometheus :9153`).
EKS_NETWORK = ClusterNetwork(
    metadata_endpoints=(),
    blocked_cidrs=("169.254.169.254/32",),
    control_plane_cidrs=(str(VPC_CIDR),),
    data_service_cidrs=(str(VPC_CIDR),),
    node_cidrs=(str(VPC_CIDR),),
    dns_metrics_port=9153,
)


def build(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs) -> ClusterOutputs:
    net = network(parent, name, cfg)
    eks = control_plane(parent, name, cfg, net)
    before = addons_before_nodes(parent, name, cfg, eks)
    pools = node_groups(parent, name, cfg, eks, net, depends_on=before)
    after = addons_after_nodes(parent, name, cfg, eks, pools.resources)
    kubeconfig = exec_kubeconfig(
        eks.cluster.name,
        eks.cluster.endpoint,
        eks.cluster.certificate_authority.data,
        command="aws",
        args=eks.cluster.name.apply(lambda n: ["eks", "get-token", "--cluster-name", n, "--region", cfg.region]),
    )
    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*pools.resources, *after]),
    )
    child = pulumi.ResourceOptions(parent=parent)
    ClusterAutoscaler(f"{name}-cluster-autoscaler", cfg, eks, provider, pools.system, opts=child)
    storage = BlockStorage(
        f"{name}-block-storage", provider, opts=pulumi.ResourceOptions(parent=parent, depends_on=after)
    )
    load_balancers = LoadBalancerController(
        f"{name}-load-balancer-controller", cfg, eks, net.vpc.id, provider, pools.system, opts=child
    )
    if pools.gpu:
        NvidiaDevicePlugin(f"{name}-nvidia-device-plugin", provider, pools.gpu, opts=child)
    return ClusterOutputs(
        name=eks.cluster.name,
        kubernetes_provider=provider,
        system_pool=pools.system,
        cpu_pool=pools.cpu,
        kubernetes_version=cfg.cluster.kubernetes_version,
        network=EKS_NETWORK,
        load_balancer=load_balancers.profile,
        block_storage_class=storage.class_name,
        managed_gpu_metrics=False,  # the DCGM exporter chart runs on the GPU nodes
        gpu_pools=pools.gpu,
        cloud_facts=AwsClusterFacts(
            cluster_name=eks.cluster.name,
            oidc_provider_arn=eks.oidc_provider.arn,
            oidc_issuer=eks.oidc_provider.url,
            vpc_id=net.vpc.id,
            private_subnet_ids=net.private_subnet_ids,
            cluster_security_group_id=eks.cluster.vpc_config.cluster_security_group_id,
        ),
    )
