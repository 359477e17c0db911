"""What the platform's NetworkPolicies must know about a kind cluster (components/contracts.py ClusterNetwork).

kind's nodes are containers on the `kind` docker network (cluster.nodeCidrs: 172.18.0.0/16 by default); the
API server is a static pod on the host network of the control-plane node, so it calls the admission
webhooks from a node address.

NetworkPolicy is enforced: since kind v0.24.0 the default CNI, kindnet, ships "out-of-the-box support for
network policy via sigs.k8s.io/kube-network-policies" (kubernetes-sigs/kind release notes v0.24.0, PR
kubernetes-sigs/kind#3612 "Kindnet network policies"; the node image's DaemonSet kube-network-policies in
kube-system: kubernetes-sigs/kind pkg/build/nodeimage/const_network_policy.go @ 2b256c4). It evaluates
each new connection's addresses against the policies (nfqueue, in user space), so an ipBlock of the node
network matches a host-network peer (kubelet, node-exporter, the API server) by address, as the AWS VPC
CNI does.

Nothing to block and no node-local endpoint to admit: pods on a laptop's cluster get no cloud credentials
from a metadata server (the object store's and data services' credentials are Kubernetes Secrets).

kind's CoreDNS (kubeadm's default Corefile, `prometheus :9153`) serves Prometheus metrics on 9153, and its
API server (kubeadm's default bind port) listens on 6443 on the control-plane node: the `kubernetes`
Service's endpoint, which pods reach after DNAT and Prometheus scrapes.
"""

from __future__ import annotations

from components.contracts import ClusterNetwork

COREDNS_METRICS_PORT = 9153
KUBEADM_API_SERVER_PORT = 6443


def cluster_network(node_cidrs: list[str]) -> ClusterNetwork:
    """The ClusterNetwork of a local cluster whose nodes (and so its API server) sit in `node_cidrs`. The
    data services run in the cluster, reached as pods: no data_service_cidrs."""
    cidrs = tuple(node_cidrs)
    return ClusterNetwork(
        metadata_endpoints=(),
        blocked_cidrs=(),
        control_plane_cidrs=cidrs,
        data_service_cidrs=(),
        node_cidrs=cidrs,
        nodes_match_ip_blocks=True,
        dns_metrics_port=COREDNS_METRICS_PORT,
        api_server_port=KUBEADM_API_SERVER_PORT,
    )
