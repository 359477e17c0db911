"""What the platform's NetworkPolicies must know about a kind cluster (components/contracts.py ClusterNetwork).

kind's nodes are containers on the `kind` docker network (cluster.nodeCidrs: 172.18.0.0/16 by default); the
API server is a static pod on the host network of the control-plane node, so it calls the admission
webhooks from a node address.

NetworkPolicy is enforced: since kind v0.24.0 the default CNI's daemon, kindnetd (the `kindnet` DaemonSet
in kube-system), runs sigs.k8s.io/kube-network-policies' controller in-process (kubernetes-sigs/kind
images/kindnetd/cmd/kindnetd/main.go @ v0.24.0 and v0.31.0, the release whose default node image is
kindest/node:v1.35.0; kube-network-policies v0.8.0 there). There is no separate DaemonSet: enforcement comes
with the node image's kindnet manifest, so any node image built by kind v0.24.0 or later enforces. How it
evaluates (kube-network-policies pkg/networkpolicy/controller.go @ v0.8.0), which the policies rely on:
- in an nftables chain on the POSTROUTING hook just before SNAT, so after kube-proxy's DNAT: a pod's call to
  the `kubernetes` Service is judged by the endpoint's address and port (the control-plane node, 6443);
- only new connections to or from a pod address, in user space (nfqueue, fail-open), so an ipBlock matches
  any address, a pod's or a node's, as the AWS VPC CNI does;
- packets from sockets of the node's root user are accepted unevaluated (kubelet probes, and on a one-node
  cluster the API server's webhook calls), and so is UDP to port 53 (its DNS race workaround), so a DNS
  rule is only checked for TCP.

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
