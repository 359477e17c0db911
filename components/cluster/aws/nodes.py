"""EKS managed node groups: system (on-demand), CPU workloads, and GPU pools that scale to zero.

Labels and taints come from the pool contracts in components.contracts, never spelled here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cluster.aws.eks import ControlPlane
from components.cluster.aws.iam import role_with_policies, service_trust
from components.cluster.aws.network import AwsNetwork
from components.cluster.pools import configured_pools
from components.contracts import NodePoolContract
from components.environment import ClusterArgs
from mlplatform.config import NodePoolConfig

NODE_POLICIES = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
]


@dataclass(frozen=True)
class NodePools:
    system: NodePoolContract
    cpu: NodePoolContract
    gpu: tuple[NodePoolContract, ...]
    resources: list[pulumi.Resource]


def node_groups(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: ClusterArgs,
    eks: ControlPlane,
    net: AwsNetwork,
    depends_on: list[pulumi.Resource],
) -> NodePools:
    role = role_with_policies(
        f"{name}-nodes", trust=service_trust("ec2.amazonaws.com"), managed=NODE_POLICIES, parent=parent
    )
    created: list[pulumi.Resource] = []

    def group(pool: NodePoolConfig, contract: NodePoolContract, ami_type: str) -> None:
        # A launch template only for the root volume: gp3 ($0.08/GB-month) instead of the gp2 ($0.10) a node
        # group's disk_size gives, encrypted. IMDSv2 is required with a hop limit of 2, as on the node groups
        # EKS templates itself: kube-system's add-ons read the instance metadata; the platform's namespaces
        # are cut off from it by their NetworkPolicies (ClusterNetwork.blocked_cidrs).
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool.name}-nodes",
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",  # the AL2023 AMIs' root device
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=pool.disk_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
            ),
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        created.append(
            aws.eks.NodeGroup(
                f"{name}-{pool.name}",
                cluster_name=eks.cluster.name,
                # the kubelet follows the control plane's minor: an upgrade of cluster.kubernetesVersion
                # upgrades the control plane first (the node groups depend on it), then the nodes
                version=eks.cluster.version,
                node_role_arn=role.role.arn,
                subnet_ids=net.private_subnet_ids,
                instance_types=[pool.machine_type],
                capacity_type="SPOT" if pool.spot else "ON_DEMAND",
                ami_type=ami_type,
                launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=pool.min_nodes, max_size=pool.max_nodes, desired_size=pool.min_nodes
                ),
                labels=dict(contract.labels),
                taints=[
                    aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.api_effect) for t in contract.taints
                ],
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
                tags={f"k8s.io/cluster-autoscaler/node-template/label/{k}": v for k, v in contract.labels.items()},
                # The autoscaler owns the current size; Pulumi owns the bounds.
                opts=pulumi.ResourceOptions(
                    parent=parent,
                    depends_on=[*role.ready, *depends_on],
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            )
        )

    contracts = []
    for pool, contract in configured_pools(cfg):
        group(pool, contract, "AL2023_x86_64_NVIDIA" if contract.is_gpu else "AL2023_x86_64_STANDARD")
        contracts.append(contract)
    system, cpu, *gpus = contracts
    return NodePools(system, cpu, tuple(gpus), created)
