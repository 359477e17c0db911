"""GKE node pools from the pool contracts (labels, taints, GPUs with GKE's own sharing), run as a dedicated
least-privilege node service account."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.cluster.pools import configured_pools
from components.contracts import NodePoolContract
from components.environment import ClusterArgs
from mlplatform.config import NodePoolConfig

# What a node's own identity needs and nothing more: the role GKE documents for node service accounts
# (logs, metrics, metadata) plus pulling images from Artifact Registry. Workloads never use it (they run as
# their own Google service accounts through Workload Identity).
# https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster#use_least_privilege_sa
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")


@dataclass(frozen=True)
class GkePools:
    system: NodePoolContract
    cpu: NodePoolContract
    gpu: tuple[NodePoolContract, ...]
    resources: list[pulumi.Resource]  # the node pools, which the Kubernetes provider waits for


def node_service_account(
    parent: pulumi.Resource, name: str, cfg: ClusterArgs
) -> tuple[gcp.serviceaccount.Account, list[pulumi.Resource]]:
    """A dedicated node service account with NODE_ROLES (not the default compute account, which holds
    Editor on the project in many organisations)."""
    account = gcp.serviceaccount.Account(
        f"{name}-nodes",
        account_id=f"{name}-nodes"[:30],
        display_name=f"{name} GKE nodes",
        opts=pulumi.ResourceOptions(parent=parent),
    )
    grants: list[pulumi.Resource] = [
        gcp.projects.IAMMember(
            f"{name}-nodes-{role.rsplit('.', 1)[-1]}",
            project=cfg.gcp_project,
            role=role,
            member=account.email.apply(lambda e: f"serviceAccount:{e}"),
            opts=pulumi.ResourceOptions(parent=account),
        )
        for role in NODE_ROLES
    ]
    return account, grants


def gpu_sharing(pool: NodePoolConfig) -> dict[str, object]:
    """GKE's own GPU sharing on the node pool: time-sharing clients per GPU, or a MIG partition size."""
    sharing = getattr(pool, "sharing", None)
    if sharing is None:
        return {}
    if sharing.strategy == "mig":
        return {"gpu_partition_size": sharing.partition}
    return {
        "gpu_sharing_config": gcp.container.NodePoolNodeConfigGuestAcceleratorGpuSharingConfigArgs(
            gpu_sharing_strategy="TIME_SHARING", max_shared_clients_per_gpu=sharing.replicas
        )
    }


def _accelerators(
    pool: NodePoolConfig, contract: NodePoolContract
) -> list[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs] | None:
    if not contract.is_gpu:
        return None
    return [
        gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=contract.accelerator,
            count=contract.gpus_per_node,
            **gpu_sharing(pool),
            gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                gpu_driver_version="LATEST"
            ),
        )
    ]


def node_pool(
    parent: pulumi.Resource,
    name: str,
    cluster: gcp.container.Cluster,
    pool: NodePoolConfig,
    contract: NodePoolContract,
    account: gcp.serviceaccount.Account,
    grants: list[pulumi.Resource],
) -> gcp.container.NodePool:
    return gcp.container.NodePool(
        f"{name}-{pool.name}",
        cluster=cluster.id,
        location=cluster.location,
        autoscaling=gcp.container.NodePoolAutoscalingArgs(
            total_min_node_count=pool.min_nodes, total_max_node_count=pool.max_nodes
        ),
        management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
        node_config=gcp.container.NodePoolNodeConfigArgs(
            machine_type=pool.machine_type,
            disk_size_gb=pool.disk_size_gb,
            spot=pool.spot,
            labels=dict(contract.labels),
            taints=[
                gcp.container.NodePoolNodeConfigTaintArgs(key=t.key, value=t.value, effect=t.api_effect)
                for t in contract.taints
            ],
            guest_accelerators=_accelerators(pool, contract),
            workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_integrity_monitoring=True
            ),
            # the node's own least-privilege identity; the scope is Google's recommended one, with access
            # decided by IAM roles
            service_account=account.email,
            oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=grants),
    )


def node_pools(
    parent: pulumi.Resource,
    name: str,
    cfg: ClusterArgs,
    cluster: gcp.container.Cluster,
    account: gcp.serviceaccount.Account,
    grants: list[pulumi.Resource],
) -> GkePools:
    """One node pool per configured pool (system, cpu, then the GPU pools), in that order."""
    created, contracts = [], []
    for pool, contract in configured_pools(cfg):
        created.append(node_pool(parent, name, cluster, pool, contract, account, grants))
        contracts.append(contract)
    system, cpu, *gpus = contracts
    return GkePools(system, cpu, tuple(gpus), created)
