"""The GKE control plane: private nodes, Workload Identity, Dataplane V2 (NetworkPolicy enforcement), shielded
nodes, a release channel, the default pool removed, the DNS-based endpoint, maintenance and monitoring."""

from __future__ import annotations

from datetime import datetime, timedelta

import pulumi
import pulumi_gcp as gcp

from components.cluster.gcp.network import MASTER_CIDR, GkeNetwork
from components.environment import ClusterArgs
from mlplatform.config import ClusterConfig, HaProfile, MaintenanceWindowConfig, Profile

WINDOW_ANCHOR = datetime(2024, 1, 6)  # a Saturday; the recurrence, not the date, picks the days


def control_plane(parent: pulumi.Resource, name: str, cfg: ClusterArgs, net: GkeNetwork) -> gcp.container.Cluster:
    """Zonal in dev, regional over the configured zones with multi-zone HA."""
    regional = cfg.ha is HaProfile.MULTI_ZONE
    workload_pool = f"{cfg.gcp_project}.svc.id.goog"
    return gcp.container.Cluster(
        f"{name}-gke",
        location=cfg.region if regional else cfg.zones[0],
        node_locations=cfg.zones if regional else None,
        network=net.vpc.id,
        subnetwork=net.subnet.id,
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
        maintenance_policy=maintenance_policy(cfg.cluster.maintenance_window),
        monitoring_config=monitoring_config(cfg.cluster),
        # The program's Kubernetes provider (and kubectl) reach the API through the DNS-based endpoint:
        # authorised by IAM, not by source IP, so a private-endpoint cluster is deployable from anywhere.
        # https://cloud.google.com/kubernetes-engine/docs/concepts/network-isolation#dns-based_endpoint
        control_plane_endpoints_config=gcp.container.ClusterControlPlaneEndpointsConfigArgs(
            dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                allow_external_traffic=True
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def monitoring_config(cluster: ClusterConfig) -> gcp.container.ClusterMonitoringConfigArgs:
    """GKE's managed DCGM package on clusters with GPU pools: GKE runs and upgrades the exporter on the GPU
    nodes and sends DCGM_FI_* metrics to Cloud Monitoring (its GPU dashboards and PromQL), which needs
    Managed Service for Prometheus (managed collection). Chosen over NVIDIA's dcgm-exporter chart, whose
    embedded DCGM cannot load the driver GKE installs on Container-Optimized OS (dcgm-exporter#448, #484):
    Google's self-managed recipe needs a separate nv-hostengine DaemonSet on host ports instead.
    https://cloud.google.com/kubernetes-engine/docs/how-to/dcgm-metrics (GKE 1.30.1-gke.1204000 or later;
    every minor the platform supports is newer)."""
    components = ["SYSTEM_COMPONENTS", *(["DCGM"] if cluster.gpu_pools else [])]
    return gcp.container.ClusterMonitoringConfigArgs(
        enable_components=components,
        managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True),
    )


def maintenance_policy(window: MaintenanceWindowConfig | None) -> gcp.container.ClusterMaintenancePolicyArgs | None:
    """The config's weekly window as GKE's recurring window (config has checked GKE's availability rule)."""
    if window is None:
        return None
    hour, minute = (int(x) for x in window.start_time.split(":"))
    start = WINDOW_ANCHOR + timedelta(hours=hour, minutes=minute)
    end = start + timedelta(hours=window.duration_hours)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return gcp.container.ClusterMaintenancePolicyArgs(
        recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
            start_time=start.strftime(stamp), end_time=end.strftime(stamp), recurrence=window.recurrence
        )
    )
