"""NetworkPolicies as each cluster's CNI enforces them: does a connection pass both ends' policies?

Reads the plan's `NetworkPolicy` and `Namespace` registrations and decides one TCP connection (a source pod,
node or outside address to a destination pod and port) the way the CNI under the stack would:

- Kubernetes semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/): a pod
  selected by a policy of a type is isolated for it; an isolated pod admits what any rule of any selecting
  policy allows; a connection needs both the source's egress and the destination's ingress. "Traffic to and
  from the node where a Pod is running is always allowed" (ibid., the IP blocks exception), which is what
  kubelet probes rely on.
- GKE Dataplane V2 (Cilium): policies are identity-based; an `ipBlock` matches only addresses outside the
  cluster, never a pod or a node ("CIDR rules do not apply to traffic where both sides of the connection are
  either managed by Cilium or use an IP belonging to a node in the cluster",
  https://docs.cilium.io/en/stable/security/policy/language/#ip-cidr-based). So in-cluster peers must be
  selectors, and traffic that arrives SNATed to another node's address matches nothing.
- EKS VPC CNI with its network policy agent: policies compile to eBPF address rules; pods carry VPC
  addresses, so an `ipBlock` over the VPC matches pods and nodes too. The agent always admits its own node's
  address (aws/aws-network-policy-agent#65: "Network Policy Agent by default allows unrestricted access
  to/from Node IP").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlplatform.plan.document import PlanDocument

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
NS_NAME_LABEL = "kubernetes.io/metadata.name"  # the API server sets it on every namespace


class Cni(StrEnum):
    CILIUM = "gke-dataplane-v2"
    VPC_CNI = "eks-vpc-cni"
    # kind's kindnet with kube-network-policies: each new connection's addresses checked against the policies
    # (components/cluster/local/network.py), so an ipBlock matches a pod or a node by address, as the VPC CNI
    KINDNET = "kind-kindnet"

    @property
    def ip_blocks_match_cluster_addresses(self) -> bool:
        """Whether an ipBlock selects a pod or node by its address (Cilium gives both identities instead)."""
        return self is not Cni.CILIUM


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    ip: str  # its address on this cluster (a VPC address on EKS, the pod range on GKE)


@dataclass(frozen=True)
class Node:
    """A node's own address: the destination pod's node (kubelet) or another one (SNAT of a Service)."""

    ip: str
    local: bool


@dataclass(frozen=True)
class Outside:
    """An address outside the cluster: a client, a load balancer's proxy, the control plane."""

    ip: str
    what: str


Source = Pod | Node | Outside


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; an empty selector selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _in_block(ip: str, block: Mapping[str, Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    if addr not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(addr in ipaddress.ip_network(e) for e in block.get("except") or [])


def _port_ok(rule: Mapping[str, Any], port: int, protocol: str = "TCP") -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        value = p["port"]
        if isinstance(value, str) and not value.isdigit():
            continue  # a named port: the platform's connections are by number (render checks names)
        low, high = int(value), int(p.get("endPort", value))
        if low <= port <= high:
            return True
    return False


class PolicySet:
    """The stack's NetworkPolicies and namespace labels, evaluated under one CNI."""

    def __init__(self, doc: PlanDocument, cni: Cni) -> None:
        self.cni = cni
        self.policies = [r.inputs for r in doc.by_type(NETPOL)]
        self.namespaces: dict[str, dict[str, str]] = {}
        for r in doc.by_type(NAMESPACE):
            name = r.inputs["metadata"]["name"]
            self.namespaces[name] = {**(r.inputs["metadata"].get("labels") or {}), NS_NAME_LABEL: name}

    def _ns_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name, {NS_NAME_LABEL: name})

    def _selecting(self, pod: Pod, kind: str) -> list[Mapping[str, Any]]:
        return [
            p["spec"]
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and kind in (p["spec"].get("policyTypes") or ["Ingress"])
            and selects(p["spec"].get("podSelector"), pod.labels)
        ]

    def _peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Source) -> bool:
        """Whether a `from`/`to` peer of a policy in `policy_ns` matches the other end of the connection."""
        if "ipBlock" in peer:
            if isinstance(other, Outside):
                return _in_block(other.ip, peer["ipBlock"])
            # Cilium: pods and nodes have identities, CIDR rules never select them; the VPC CNI matches by IP
            return self.cni.ip_blocks_match_cluster_addresses and _in_block(other.ip, peer["ipBlock"])
        if not isinstance(other, Pod):  # selectors select pods only (never a node or an outside address)
            return False
        ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
        ns_ok = (
            selects(ns_sel, self._ns_labels(other.namespace)) if ns_sel is not None else other.namespace == policy_ns
        )
        return ns_ok and selects(pod_sel, other.labels)

    def _allows(self, pod: Pod, kind: str, other: Source | Outside, port: int) -> Verdict:
        policies = self._selecting(pod, kind)
        if not policies:
            return Verdict(True, f"{kind.lower()} of {pod.namespace} pod not isolated")
        key = "ingress" if kind == "Ingress" else "egress"
        peers = "from" if kind == "Ingress" else "to"
        for spec in policies:
            for rule in spec.get(key) or []:
                if not _port_ok(rule, port):
                    continue
                if peers not in rule or any(self._peer_matches(p, pod.namespace, other) for p in rule[peers]):
                    return Verdict(True, f"{kind.lower()} rule in {pod.namespace}")
        return Verdict(False, f"no {kind.lower()} rule in {pod.namespace} admits {_describe(other)} on {port}")

    def decide(self, source: Source, to: Pod | Node | Outside, port: int) -> Verdict:
        """Egress at the source (when a pod) and ingress at the destination (when a pod) must both allow. A
        node (host network) is not subject to NetworkPolicies; another node's address is matched by an ipBlock
        on the VPC CNI only."""
        if isinstance(source, Node) and source.local:
            return Verdict(True, "from the pod's own node: always allowed")
        if isinstance(source, Pod):
            out = self._allows(source, "Egress", to, port)
            if not out.allowed:
                return out
        if not isinstance(to, Pod):
            return Verdict(True, "to a node or outside address: no NetworkPolicy at that end")
        return self._allows(to, "Ingress", source, port)


def _describe(other: Source) -> str:
    if isinstance(other, Pod):
        return f"pod {other.namespace}/{dict(other.labels)}"
    if isinstance(other, Node):
        return f"{'local' if other.local else 'remote'} node {other.ip}"
    return f"{other.what} {other.ip}"


def firewall_allows(doc: PlanDocument, source_ip: str, port: int, built_in: Iterable[int]) -> bool:
    """A GCE VPC firewall decision for TCP from `source_ip` to the nodes: a port GKE's own rule opens, or an
    ingress `gcp.compute.Firewall` of the plan whose source ranges hold the address and which allows it."""
    if port in set(built_in):
        return True
    for fw in doc.by_type("gcp:compute/firewall:Firewall"):
        spec = fw.inputs
        if spec.get("direction", "INGRESS") != "INGRESS" or spec.get("disabled"):
            continue
        if not any(ipaddress.ip_address(source_ip) in ipaddress.ip_network(r) for r in spec.get("sourceRanges") or []):
            continue
        for allow in spec.get("allows") or []:
            if allow.get("protocol") not in ("tcp", "all"):
                continue
            for p in allow.get("ports") or ["0-65535"]:
                low, _, high = str(p).partition("-")
                if int(low) <= port <= int(high or low):
                    return True
    return False
