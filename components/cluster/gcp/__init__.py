"""GKE adapter: VPC with pod/service ranges, Cloud NAT, private GKE with Workload Identity, node pools."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.cluster.kubeconfig import exec_kubeconfig
from components.cluster.pools import configured_pools
from components.contracts import ClusterOutputs, NodePoolContract
from mlplatform.config import HaProfile, NodePoolConfig, PlatformConfig, Profile

RBAC_GROUP = "rbac.authorization.k8s.io"
NODE_CIDR, POD_CIDR, SERVICE_CIDR, MASTER_CIDR = "10.10.0.0/20", "10.16.0.0/14", "10.20.0.0/20", "172.16.0.32/28"


@dataclass(frozen=True)
class GcpClusterFacts:
    """What the GCP storage and data adapters need: the Workload Identity pool and the VPC."""

    workload_pool: str  # <project>.svc.id.goog
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]


def build(parent: pulumi.ComponentResource, name: str, cfg: PlatformConfig) -> ClusterOutputs:
    child = pulumi.ResourceOptions(parent=parent)
    vpc = gcp.compute.Network(f"{name}-vpc", auto_create_subnetworks=False, opts=child)
    subnet = gcp.compute.Subnetwork(
        f"{name}-nodes",
        network=vpc.id,
        region=cfg.region,
        ip_cidr_range=NODE_CIDR,
        private_ip_google_access=True,
        secondary_ip_ranges=[
            gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="pods", ip_cidr_range=POD_CIDR),
            gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="services", ip_cidr_range=SERVICE_CIDR),
        ],
        opts=child,
    )
    router = gcp.compute.Router(f"{name}-router", network=vpc.id, region=cfg.region, opts=child)
    gcp.compute.RouterNat(
        f"{name}-nat",
        router=router.name,
        region=cfg.region,
        nat_ip_allocate_option="AUTO_ONLY",
        source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
        opts=child,
    )
    regional = cfg.ha is HaProfile.MULTI_ZONE
    workload_pool = f"{cfg.gcp_project}.svc.id.goog"
    cluster = gcp.container.Cluster(
        f"{name}-gke",
        location=cfg.region if regional else cfg.zones[0],
        node_locations=cfg.zones if regional else None,
        network=vpc.id,
        subnetwork=subnet.id,
        min_master_version=cfg.cluster.kubernetes_version,
        remove_default_node_pool=True,
        initial_node_count=1,
        deletion_protection=cfg.profile is Profile.PROD,
        datapath_provider="ADVANCED_DATAPATH",
        ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
            cluster_secondary_range_name="pods", services_secondary_range_name="services"
        ),
        private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
            enable_private_nodes=True,
            enable_private_endpoint=cfg.cluster.private_endpoint,
            master_ipv4_cidr_block=MASTER_CIDR,
        ),
        master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
            cidr_blocks=[
                gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=c, display_name=c)
                for c in cfg.cluster.public_access_cidrs
            ]
        ),
        workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=workload_pool),
        enable_shielded_nodes=True,
        release_channel=gcp.container.ClusterReleaseChannelArgs(channel=cfg.cluster.release_channel),
        # Dataplane V2 (ADVANCED_DATAPATH above) enforces NetworkPolicies; no separate Calico add-on.
        maintenance_policy=gcp.container.ClusterMaintenancePolicyArgs(
            recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
                start_time="2024-01-06T03:00:00Z", end_time="2024-01-06T07:00:00Z", recurrence="FREQ=WEEKLY;BYDAY=SA,SU"
            )
        ),
        opts=child,
    )
    created: list[pulumi.Resource] = []

    def node_pool(pool: NodePoolConfig, contract: NodePoolContract) -> None:
        accel = (
            [
                gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                    type=contract.accelerator,
                    count=contract.gpus_per_node,
                    gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                        gpu_driver_version="LATEST"
                    ),
                )
            ]
            if contract.is_gpu
            else None
        )
        created.append(
            gcp.container.NodePool(
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
                    guest_accelerators=accel,
                    workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"
                    ),
                    shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                        enable_secure_boot=True, enable_integrity_monitoring=True
                    ),
                    oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                ),
                opts=child,
            )
        )

    contracts = []
    for pool, contract in configured_pools(cfg):
        node_pool(pool, contract)
        contracts.append(contract)
    system, cpu, *gpus = contracts

    kubeconfig = exec_kubeconfig(
        cluster.name,
        cluster.endpoint.apply(lambda e: f"https://{e}"),
        cluster.master_auth.cluster_ca_certificate,
        command="gke-gcloud-auth-plugin",
        args=[],
    )
    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=created),
    )
    _admin_bindings(parent, name, cfg, provider)
    return ClusterOutputs(
        name=cluster.name,
        kubernetes_provider=provider,
        system_pool=system,
        cpu_pool=cpu,
        kubernetes_version=cfg.cluster.kubernetes_version,
        gpu_pools=tuple(gpus),
        cloud_facts=GcpClusterFacts(workload_pool, vpc.id, subnet.id),
    )


def _admin_bindings(parent: pulumi.Resource, name: str, cfg: PlatformConfig, provider: k8s.Provider) -> None:
    """cluster-admin for each configured principal, by Kubernetes RBAC on the Google identity (GKE maps the
    account's email to the Kubernetes user name). A project-level IAM role would reach every cluster."""
    if not cfg.cluster.admin_principals:
        return
    subjects = [
        k8s.rbac.v1.SubjectArgs(kind="User", name=member.split(":", 1)[1], api_group=RBAC_GROUP)
        for member in cfg.cluster.admin_principals
    ]
    k8s.rbac.v1.ClusterRoleBinding(
        f"{name}-platform-admins",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="mlplatform-platform-admins"),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="ClusterRole", name="cluster-admin"),
        subjects=subjects,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
