"""EKS managed add-ons (pinned), the cluster autoscaler and the NVIDIA device plugin.

Autoscaling: the cluster autoscaler over EKS managed node groups, not Karpenter. The node pools stay the
declarative, config-validated objects the rest of the platform reads (the GPU contract is a node group's
labels and taints); min/max in config are the autoscaler's bounds; scale-from-zero works because the
autoscaler reads a managed group's labels and taints through eks:DescribeNodegroup. Karpenter would bin-pack
better across instance types, but moves pool definitions into in-cluster CRDs and needs an interruption
queue and event rules; a later issue can add it behind the same pool contracts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.cluster.aws.eks import ControlPlane
from components.cluster.aws.iam import irsa_role
from components.contracts import GPU_RESOURCE, NodePoolContract, gpu_node_placement
from components.environment import ClusterArgs
from components.kube import pinned_release
from mlplatform.pins import (
    CLUSTER_AUTOSCALER,
    CLUSTER_AUTOSCALER_IMAGE,
    CLUSTER_AUTOSCALER_TAGS,
    EKS_ADDON_VERSIONS,
    NVIDIA_DEVICE_PLUGIN,
)

KUBE_SYSTEM = "kube-system"
EBS_CSI_SA = "ebs-csi-controller-sa"
AUTOSCALER_SA = "cluster-autoscaler"

# Nodes need these to become Ready (aws-node reaches the API through kube-proxy's Service rules). On a minor
# upgrade they move with the control plane, then the node groups (which depend on them) roll their kubelets.
BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
AFTER_NODES = ("coredns", "aws-ebs-csi-driver")  # these run as pods, so they need nodes

# The VPC CNI enforces Kubernetes NetworkPolicies only when its network policy agent is turned on; without
# this every default-deny and flow of components/guardrails.py would be accepted and ignored.
# https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html
ADDON_CONFIGURATION: dict[str, dict[str, str]] = {"vpc-cni": {"enableNetworkPolicy": "true"}}


def _addon(
    parent: pulumi.Resource,
    name: str,
    cfg: ClusterArgs,
    eks: ControlPlane,
    addon: str,
    depends_on: Sequence[pulumi.Resource],
    role_arn: pulumi.Input[str] | None = None,
) -> aws.eks.Addon:
    return aws.eks.Addon(
        f"{name}-{addon}",
        cluster_name=eks.cluster.name,
        addon_name=addon,
        addon_version=EKS_ADDON_VERSIONS[cfg.cluster.kubernetes_version][addon],
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="PRESERVE",
        configuration_values=json.dumps(ADDON_CONFIGURATION[addon]) if addon in ADDON_CONFIGURATION else None,
        service_account_role_arn=role_arn,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def addons_before_nodes(parent: pulumi.Resource, name: str, cfg: ClusterArgs, eks: ControlPlane) -> list[aws.eks.Addon]:
    return [_addon(parent, name, cfg, eks, a, [eks.cluster]) for a in BEFORE_NODES]


def addons_after_nodes(
    parent: pulumi.Resource, name: str, cfg: ClusterArgs, eks: ControlPlane, nodes: Sequence[pulumi.Resource]
) -> list[aws.eks.Addon]:
    ebs_role = irsa_role(f"{name}-ebs-csi", eks.oidc_provider, KUBE_SYSTEM, EBS_CSI_SA, parent=parent)
    ebs_policy = aws.iam.RolePolicyAttachment(
        f"{name}-ebs-csi",
        role=ebs_role.name,
        policy_arn="arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
        opts=pulumi.ResourceOptions(parent=ebs_role),
    )
    roles = {"aws-ebs-csi-driver": ebs_role.arn}
    # the driver's controller assumes the role as soon as it starts: its policy must already be attached
    ready = {"aws-ebs-csi-driver": [ebs_policy]}
    return [_addon(parent, name, cfg, eks, a, [*nodes, *ready.get(a, [])], role_arn=roles.get(a)) for a in AFTER_NODES]


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler's IRSA role (scaling only this cluster's groups) and its release."""

    def __init__(
        self,
        name: str,
        cfg: ClusterArgs,
        eks: ControlPlane,
        provider: k8s.Provider,
        system_pool: NodePoolContract,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:cluster:ClusterAutoscaler", name, None, opts)
        self.release = _cluster_autoscaler(self, name, cfg, eks, provider, system_pool)
        self.register_outputs({})


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The device plugin DaemonSet on the GPU pools (by their contracts), advertising nvidia.com/gpu."""

    def __init__(
        self,
        name: str,
        provider: k8s.Provider,
        gpu_pools: Sequence[NodePoolContract],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:cluster:NvidiaDevicePlugin", name, None, opts)
        # helm.v3.Release: one DaemonSet, no hooks; pinned chart, values checked against upstream's keys
        self.release = pinned_release(
            self,
            name,
            NVIDIA_DEVICE_PLUGIN,
            KUBE_SYSTEM,
            device_plugin_values(gpu_pools),
            provider,
            # a DaemonSet on GPU nodes only; GPU pools start at zero nodes, so there is nothing to wait for
            timeout_seconds=300,
        )
        self.register_outputs({})


def _cluster_autoscaler(
    parent: pulumi.Resource,
    release_name: str,
    cfg: ClusterArgs,
    eks: ControlPlane,
    provider: k8s.Provider,
    system_pool: NodePoolContract,
) -> k8s.helm.v3.Release:
    """helm.v3.Release: a single Deployment with no hooks or CRDs; Release keeps Helm's own history, so
    `helm rollback` stays available to operators during an incident."""
    name = release_name.removesuffix("-cluster-autoscaler")
    role = irsa_role(f"{name}-autoscaler", eks.oidc_provider, KUBE_SYSTEM, AUTOSCALER_SA, parent=parent)
    aws.iam.RolePolicy(
        f"{name}-autoscaler",
        role=role.id,
        policy=eks.cluster.name.apply(_autoscaler_policy),
        opts=pulumi.ResourceOptions(parent=role),
    )
    values = {
        "autoDiscovery": {"clusterName": eks.cluster.name},
        "awsRegion": cfg.region,
        "cloudProvider": "aws",
        "image": {
            "repository": CLUSTER_AUTOSCALER_IMAGE,
            "tag": CLUSTER_AUTOSCALER_TAGS[cfg.cluster.kubernetes_version],
        },
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": AUTOSCALER_SA,
                "annotations": {"eks.amazonaws.com/role-arn": role.arn},
            }
        },
        "extraArgs": {
            "balance-similar-node-groups": True,
            "expander": "least-waste",
            "skip-nodes-with-system-pods": False,
            "scale-down-unneeded-time": "5m",
        },
        "nodeSelector": system_pool.node_selector(),
        "tolerations": system_pool.tolerations(),
        # the chart's commented example: ~300 MiB holds the cache of a cluster of up to ~100 nodes; memory
        # limit with headroom, no CPU limit (a throttled autoscaler reacts late)
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
    }
    # on the system pool, which always has a node: only the image pull to wait for
    return pinned_release(parent, release_name, CLUSTER_AUTOSCALER, KUBE_SYSTEM, values, provider, timeout_seconds=300)


def _autoscaler_policy(cluster_name: str) -> str:
    owned = {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Describe",
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                },
                {
                    "Sid": "ScaleOwnGroups",
                    "Effect": "Allow",
                    "Resource": "*",
                    "Condition": owned,
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                },
            ],
        }
    )


NO_SHARING = "no-sharing"


def device_plugin_config(gpu_pools: Sequence[NodePoolContract]) -> dict[str, object]:
    """Time-slicing per pool: a named configuration per sharing pool, selected by the node label the pool
    contract carries; every other GPU node gets the plain default (without one, the plugin's `single`
    fallback would apply a lone sharing configuration to every GPU node)."""
    shared = [p for p in gpu_pools if p.device_plugin_config is not None]
    if not shared:
        return {}
    configs = {NO_SHARING: yaml.safe_dump({"version": "v1"})}
    for pool in shared:
        slicing = {"resources": [{"name": GPU_RESOURCE, "replicas": pool.shares_per_gpu}]}
        configs[pool.device_plugin_config] = yaml.safe_dump({"version": "v1", "sharing": {"timeSlicing": slicing}})
    return {"config": {"map": configs, "default": NO_SHARING}}


def device_plugin_values(gpu_pools: Sequence[NodePoolContract]) -> dict:
    """Schedules the plugin on GPU nodes only (by the contract's label), tolerating the contract's taints."""
    return {
        **gpu_node_placement(gpu_pools),
        "priorityClassName": "system-node-critical",
        **device_plugin_config(gpu_pools),
        # every container of the chart (plugin, MPS daemon and its init) takes these: a gRPC server that
        # lists a handful of devices uses a few tens of MiB
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }
