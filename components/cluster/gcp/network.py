"""The GKE cluster's network: a VPC with the nodes' subnet and its pod and service ranges, Cloud NAT, the
private service access range for Google's managed services, and what the platform's NetworkPolicies need
to know about how traffic reaches pods on GKE."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.contracts import WEBHOOK_PORTS, ClusterNetwork, NodeLocalEndpoint, PodPeer
from components.environment import ClusterArgs

NODE_CIDR, POD_CIDR, SERVICE_CIDR, MASTER_CIDR = "10.10.0.0/20", "10.16.0.0/14", "10.20.0.0/20", "172.16.0.32/28"
PSA_PREFIX = 20  # the private service access range for Cloud SQL and Memorystore
# With Workload Identity, pods get Google tokens from the GKE metadata server on their node; under Dataplane
# V2 NetworkPolicies apply to that traffic, so it is allowed explicitly. Webhooks are called from the
# private cluster's control-plane range.
# https://cloud.google.com/kubernetes-engine/docs/how-to/network-policy#network-policy-and-workload-identity
GKE_METADATA = (
    NodeLocalEndpoint("169.254.169.254/32", 80, "GKE metadata server: Workload Identity tokens"),
    NodeLocalEndpoint("169.254.169.252/32", 988, "GKE metadata server on Dataplane V2 nodes"),
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


@dataclass(frozen=True)
class GkeNetwork:
    vpc: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    psa_range: gcp.compute.GlobalAddress  # where Google's managed services take their private addresses


def network(parent: pulumi.Resource, name: str, cfg: ClusterArgs) -> GkeNetwork:
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
    return GkeNetwork(vpc, subnet, psa_range)


def webhook_firewall(
    parent: pulumi.Resource, name: str, net: GkeNetwork, node_account: gcp.serviceaccount.Account
) -> gcp.compute.Firewall:
    """The control plane's calls to admission webhooks on the ports GKE does not open for it."""
    return gcp.compute.Firewall(
        f"{name}-webhooks",
        network=net.vpc.id,
        direction="INGRESS",
        source_ranges=[MASTER_CIDR],
        # the nodes (and the pod ranges aliased on them) by their service account
        target_service_accounts=[node_account.email],
        allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(p) for p in WEBHOOK_FIREWALL_PORTS])],
        description="GKE control plane to admission webhooks (istiod, Knative, KServe)",
        opts=pulumi.ResourceOptions(parent=parent),
    )


def cluster_network(net: GkeNetwork) -> ClusterNetwork:
    """How traffic reaches pods on GKE, for the platform's NetworkPolicies."""
    return ClusterNetwork(
        metadata_endpoints=GKE_METADATA,
        blocked_cidrs=(),
        control_plane_cidrs=(MASTER_CIDR,),
        data_service_cidrs=(pulumi.Output.concat(net.psa_range.address, f"/{PSA_PREFIX}"), NODE_CIDR),
        node_cidrs=(NODE_CIDR,),
        nodes_match_ip_blocks=False,  # Dataplane V2: nodes are Cilium's remote-node identity
        webhook_proxies=(KONNECTIVITY_AGENTS,),
        # GKE runs kube-dns (kubedns, dnsmasq, sidecar), which serves no metrics on CoreDNS's 9153
        dns_metrics_port=None,
    )
