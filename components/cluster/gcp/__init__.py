"""GKE adapter: VPC with pod/service ranges, Cloud NAT, private GKE with Workload Identity, node pools."""

from __future__ import annotations

from datetime import datetime, timedelta

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.cluster.kubeconfig import exec_kubeconfig
from components.cluster.pools import configured_pools
from components.contracts import (
    WEBHOOK_PORTS,
    ClusterNetwork,
    ClusterOutputs,
    GcpClusterFacts,
    LoadBalancerProfile,
    NodeLocalEndpoint,
    NodePoolContract,
    PodPeer,
)
from components.environment import ClusterArgs
from mlplatform.config import ClusterConfig, HaProfile, MaintenanceWindowConfig, NodePoolConfig, Profile

RBAC_GROUP = "rbac.authorization.k8s.io"
NODE_CIDR, POD_CIDR, SERVICE_CIDR, MASTER_CIDR = "10.10.0.0/20", "10.16.0.0/14", "10.20.0.0/20", "172.16.0.32/28"
# What a node's own identity needs and nothing more: the role GKE documents for node service accounts
# (logs, metrics, metadata) plus pulling images from Artifact Registry. Workloads never use it (they run as
# their own Google service accounts through Workload Identity).
# https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster#use_least_privilege_sa
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
# With Workload Identity, pods get Google tokens from the GKE metadata server on their node; under Dataplane
# V2 NetworkPolicies apply to that traffic, so it is allowed explicitly. Webhooks are called from the
# private cluster's control-plane range.
# https://cloud.google.com/kubernetes-engine/docs/how-to/network-policy#network-policy-and-workload-identity
PSA_PREFIX = 20  # the private service access range for Cloud SQL and Memorystore
GKE_METADATA = (
    NodeLocalEndpoint("169.254.169.254/32", 80, "GKE metadata server: Workload Identity tokens"),
    NodeLocalEndpoint("169.254.169.252/32", 988, "GKE metadata server on Dataplane V2 nodes"),
)
# GKE's built-in service controller makes a passthrough Network Load Balancer (L4) for a LoadBalancer
# Service: internal by annotation, external backed by a regional backend service (`l4-rbs`, Google's
# recommended external passthrough LB). L4, because Istio's gateway already does TLS and HTTP routing; an
# L7 Google LB in front would terminate and re-route twice.
# https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer
GKE_LOAD_BALANCER = LoadBalancerProfile(
    internal_annotations={"networking.gke.io/load-balancer-type": "Internal"},
    external_annotations={"cloud.google.com/l4-rbs": "enabled"},
)
# How the API server reaches admission webhooks on GKE. Through the konnectivity agents in kube-system
# (tigera/operator#5212: "On AKS and GKE the API server reaches in-cluster webhooks through konnectivity agent
# pods ... GKE uses `k8s-app`"): admitted by selector, since under Dataplane V2 an ipBlock never matches a
# pod. Where the control plane calls directly, from MASTER_CIDR through the VPC firewall, which GKE opens
# for it on 443 and 10250 only ("Adding firewall rules for specific use cases",
# https://cloud.google.com/kubernetes-engine/docs/how-to/private-clusters#add_firewall_rules; Istio's
# private-cluster guide opens 15017 the same way): the other webhook ports get a rule of their own.
KONNECTIVITY_AGENTS = PodPeer("kube-system", {"k8s-app": "konnectivity-agent"})
GKE_CONTROL_PLANE_PORTS = (443, 10250)
WEBHOOK_FIREWALL_PORTS = tuple(p for p in WEBHOOK_PORTS if p not in GKE_CONTROL_PLANE_PORTS)
WINDOW_ANCHOR = datetime(2024, 1, 6)  # a Saturday; the recurrence, not the date, picks the days


def build(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs) -> ClusterOutputs:
    child = pulumi.ResourceOptions(parent=parent)
    vpc = gcp.compute.Network(f"{name}-vpc", auto_create_subnetworks=False, opts=child)
    # the range Google's managed services (Cloud SQL, Memorystore) take their private addresses from
    psa_range = gcp.compute.GlobalAddress(
        f"{name}-psa",
        purpose="VPC_PEERING",
        address_type="INTERNAL",
        prefix_length=PSA_PREFIX,
        network=vpc.id,
        opts=child,
    )
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
        opts=child,
    )
    node_sa, node_grants = node_service_account(parent, name, cfg)
    gcp.compute.Firewall(
        f"{name}-webhooks",
        network=vpc.id,
        direction="INGRESS",
        source_ranges=[MASTER_CIDR],
        # the nodes (and the pod ranges aliased on them) by their service account
        target_service_accounts=[node_sa.email],
        allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(p) for p in WEBHOOK_FIREWALL_PORTS])],
        description="GKE control plane to admission webhooks (istiod, Knative, KServe)",
        opts=child,
    )
    created: list[pulumi.Resource] = []

    def node_pool(pool: NodePoolConfig, contract: NodePoolContract) -> None:
        accel = (
            [
                gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                    type=contract.accelerator,
                    count=contract.gpus_per_node,
                    **gpu_sharing(pool),
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
                    # the node's own least-privilege identity; the scope is Google's recommended one, with
                    # access decided by IAM roles
                    service_account=node_sa.email,
                    oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                ),
                opts=pulumi.ResourceOptions(parent=parent, depends_on=node_grants),
            )
        )

    contracts = []
    for pool, contract in configured_pools(cfg):
        node_pool(pool, contract)
        contracts.append(contract)
    system, cpu, *gpus = contracts

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
        opts=pulumi.ResourceOptions(parent=parent, depends_on=created),
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
        system_pool=system,
        cpu_pool=cpu,
        kubernetes_version=cfg.cluster.kubernetes_version,
        load_balancer=GKE_LOAD_BALANCER,
        # GKE's built-in pd-balanced class (Persistent Disk CSI driver, zonal, binds on first consumer)
        block_storage_class="standard-rwo",
        managed_gpu_metrics=bool(cfg.cluster.gpu_pools),
        network=ClusterNetwork(
            metadata_endpoints=GKE_METADATA,
            blocked_cidrs=(),
            control_plane_cidrs=(MASTER_CIDR,),
            data_service_cidrs=(pulumi.Output.concat(psa_range.address, f"/{PSA_PREFIX}"), NODE_CIDR),
            node_cidrs=(NODE_CIDR,),
            nodes_match_ip_blocks=False,  # Dataplane V2: nodes are Cilium's remote-node identity
            webhook_proxies=(KONNECTIVITY_AGENTS,),
            # GKE runs kube-dns (kubedns, dnsmasq, sidecar), which serves no metrics on CoreDNS's 9153
            dns_metrics_port=None,
        ),
        gpu_pools=tuple(gpus),
        cloud_facts=GcpClusterFacts(
            cluster.workload_identity_config.apply(lambda c: c.workload_pool), vpc.id, subnet.id, psa_range.name
        ),
    )


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


class ClusterAdmins(pulumi.ComponentResource):
    """cluster-admin for each configured principal, by Kubernetes RBAC on the Google identity (GKE maps the
    account's email to the Kubernetes user name). A project-level IAM role would reach every cluster."""

    def __init__(self, name: str, principals: list[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:cluster:ClusterAdmins", name, None, opts)
        subjects = [
            k8s.rbac.v1.SubjectArgs(kind="User", name=member.split(":", 1)[1], api_group=RBAC_GROUP)
            for member in principals
        ]
        k8s.rbac.v1.ClusterRoleBinding(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlplatform-platform-admins"),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="ClusterRole", name="cluster-admin"),
            subjects=subjects,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
