"""What a stack costs per month while idle, priced from its plan with the dated list prices in prices.py.

Two figures:
- **minimum**: what runs with nothing deployed on it: control plane, NAT, every node pool at its minimum
  (spot where spot), node and volume disks, databases with their standbys and replicas, caches, brokers,
  load balancers, keys;
- **with the platform's pods placed**: the CPU and memory requests of the platform's own pods (read from the
  plan's Helm values and pod specs) placed on the pools their node selectors name, so a pool whose minimum
  is zero still counts the nodes the platform's services really need.

Data transfer, request charges and storage that grows with use (buckets, logs, backups) are not idle
costs and are left out. Every line says what it prices; a type the table does not know is reported.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from components.contracts import POOL_LABEL
from mlplatform.estimate import prices
from mlplatform.estimate.prices import HOURS_PER_MONTH, SPOT_SHARE, NoPrice
from mlplatform.estimate.requests import PodRequest, idle_requests, mappings
from mlplatform.estimate.requests import gib as _gib
from mlplatform.estimate.support import Phase, support_status
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration

Rendered = Mapping[str, Sequence[Mapping[str, Any]]]  # a Helm release's resource name -> its rendered objects


@dataclass(frozen=True)
class CostLine:
    layer: str
    service: str
    item: str
    monthly: float


@dataclass(frozen=True)
class PoolUse:
    pool: str
    machine_type: str
    minimum: int
    needed: int  # nodes the placed pods need (at least the minimum)
    cpu: float
    memory_gib: float


@dataclass
class CostReport:
    region: str
    lines: list[CostLine] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    pools: list[PoolUse] = field(default_factory=list)
    placed_extra: list[CostLine] = field(default_factory=list)  # nodes added by placing the pods

    @property
    def minimum(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def with_pods(self) -> float:
        return self.minimum + sum(line.monthly for line in self.placed_extra)

    def by(self, key: str, lines: list[CostLine] | None = None) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for line in self.lines if lines is None else lines:
            totals[getattr(line, key)] += line.monthly
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def describe(self) -> str:
        out = [
            f"Idle cost per month ({self.region}, list prices of {prices.PRICE_DATE}, 730 h): "
            f"${self.minimum:,.0f} minimum, ${self.with_pods:,.0f} with the platform's pods placed; per layer "
            "and service, pods placed:"
        ]
        for layer, total in self.by("layer", self.lines + self.placed_extra).items():
            services = self.by("service", [x for x in self.lines + self.placed_extra if x.layer == layer])
            top = ", ".join(f"{s} ${v:,.0f}" for s, v in list(services.items())[:6])
            out.append(f"  {layer:<14} ${total:>8,.0f}   {top}")
        for pool in self.pools:
            out.append(
                f"  pool {pool.pool}: {pool.minimum} node(s) minimum, {pool.needed} with the platform's pods "
                f"({pool.cpu:.1f} vCPU, {pool.memory_gib:.1f} GiB requested; {pool.machine_type})"
            )
        out += [f"  not priced: {m}" for m in self.missing]
        return "\n".join(out)


def _layer_and_service(doc: PlanDocument, r: Registration, index: Mapping[str, Registration]) -> tuple[str, str]:
    chain = [r]
    while chain[-1].parent in index and chain[-1].parent != doc.stack_urn:
        chain.append(index[chain[-1].parent])
    layer = chain[-1]
    layer_name = layer.type.split(":")[1] if layer.type.startswith("mlplatform:") else "stack"
    service = chain[-2] if len(chain) > 1 else r
    name = service.type.split(":")[-1] if service.type.startswith("mlplatform:") else service.name
    return layer_name, name


def _monthly(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH


def _num(value: Any, default: float = 0) -> float:
    return float(value) if value is not None else default


@dataclass(frozen=True)
class NodePool:
    """A node pool as the plan declares it, on either cloud."""

    name: str  # the pool label's value
    machine_type: str
    minimum: int
    spot: bool
    disk_gb: float
    disk: str  # the price table's disk kind: gp2, gp3 or pd-balanced
    resource: Registration


def node_pools(doc: PlanDocument) -> dict[str, NodePool]:
    """EKS node groups (root volume from their launch template, else disk_size on gp2, EKS's 20 GB when
    unset) and GKE node pools (pd-balanced boot disks), by pool name."""
    index = {r.urn: r for r in doc.resources}
    pools: list[NodePool] = []
    for r in doc.by_type("aws:eks/nodeGroup:NodeGroup"):
        i = r.inputs
        templates = [index[d] for d in r.dependencies if index[d].type == "aws:ec2/launchTemplate:LaunchTemplate"]
        ebs = templates[0].inputs["blockDeviceMappings"][0]["ebs"] if templates else {}
        gb = _num(ebs.get("volumeSize") or i.get("diskSize"), 20)
        minimum = int(_num(i["scalingConfig"]["minSize"]))
        spot = i.get("capacityType") == "SPOT"
        kind = str(ebs.get("volumeType", "gp2"))
        pools.append(NodePool(i["labels"][POOL_LABEL], i["instanceTypes"][0], minimum, spot, gb, kind, r))
    for r in doc.by_type("gcp:container/nodePool:NodePool"):
        node = r.inputs["nodeConfig"]
        minimum = int(_num(r.inputs["autoscaling"].get("totalMinNodeCount")))
        gb = _num(node.get("diskSizeGb"), 100)
        name = node["labels"][POOL_LABEL]
        pools.append(NodePool(name, node["machineType"], minimum, bool(node.get("spot")), gb, "pd-balanced", r))
    return {p.name: p for p in pools}


class _Pricer:
    def __init__(self, doc: PlanDocument, region: str, on: date) -> None:
        self.doc, self.region, self.on = doc, region, on
        self.index = {r.urn: r for r in doc.resources}
        self.by_name = {r.name: r for r in doc.resources}
        self.pools = {p.resource.urn: p for p in node_pools(doc).values()}

    def lines(self, r: Registration) -> Iterator[tuple[str, float]]:
        region, t, i = self.region, r.type, r.inputs
        if t == "aws:eks/cluster:Cluster":
            phase = support_status("aws", str(i["version"]), self.on).phase
            key = "eks-cluster-hour" if phase is Phase.STANDARD else "eks-cluster-extended-hour"
            yield f"EKS control plane ({phase} support)", _monthly(prices.rate(region, key))
        elif t == "gcp:container/cluster:Cluster":
            phase = support_status("gcp", str(i["minMasterVersion"]), self.on).phase
            key = "gke-cluster-hour" if phase is Phase.STANDARD else "gke-cluster-extended-hour"
            yield f"GKE cluster management ({phase} support)", _monthly(prices.rate(region, key))
        elif t == "aws:ec2/natGateway:NatGateway":
            yield "NAT gateway", _monthly(prices.rate(region, "nat-gateway-hour"))
        elif t == "aws:ec2/vpcEndpoint:VpcEndpoint" and i.get("vpcEndpointType") == "Interface":
            azs = len(i.get("subnetIds") or [])
            yield f"interface endpoint x {azs} AZ", azs * _monthly(prices.rate(region, "interface-endpoint-az-hour"))
        elif r.urn in self.pools:
            pool = self.pools[r.urn]
            yield from self.nodes(pool, pool.minimum)
        elif t == "aws:rds/instance:Instance":
            source = self.by_name.get(str(i.get("replicateSourceDb") or ""))
            storage = _num(i.get("allocatedStorage") or (source.inputs.get("allocatedStorage") if source else 0))
            copies = 2 if i.get("multiAz") else 1
            what = "replica" if source else ("Multi-AZ" if copies == 2 else "single-AZ")
            yield (
                f"RDS {i['instanceClass']} {what}",
                copies * _monthly(prices.instance_class(region, i["instanceClass"])),
            )
            yield f"RDS {storage:g} GB storage", copies * storage * prices.rate(region, "rds-gp2-gb-month")
        elif t == "aws:elasticache/replicationGroup:ReplicationGroup":
            nodes = int(_num(i.get("numNodeGroups"), 1) * (1 + _num(i.get("replicasPerNodeGroup"))))
            yield (
                f"ElastiCache {nodes} x {i['nodeType']}",
                nodes * _monthly(prices.instance_class(region, i["nodeType"])),
            )
        elif t == "aws:msk/cluster:Cluster":
            info, brokers = i["brokerNodeGroupInfo"], int(_num(i["numberOfBrokerNodes"]))
            yield (
                f"MSK {brokers} x {info['instanceType']}",
                brokers * _monthly(prices.instance_class(region, info["instanceType"])),
            )
            gb = _num(info.get("storageInfo", {}).get("ebsStorageInfo", {}).get("volumeSize"), 1000)
            yield f"MSK {brokers} x {gb:g} GB storage", brokers * gb * prices.rate(region, "msk-storage-gb-month")
        elif t == "aws:kms/key:Key":
            yield "KMS key", prices.rate(region, "kms-key-month")
        elif t == "gcp:sql/databaseInstance:DatabaseInstance":
            s = i["settings"]
            match = re.fullmatch(r"db-custom-(\d+)-(\d+)", str(s.get("tier")))
            if not match:
                raise NoPrice(f"no price for Cloud SQL tier {s.get('tier')} in {region}")
            vcpu, mem_gib = int(match[1]), int(match[2]) / 1024
            master = self.by_name.get(str(i.get("masterInstanceName") or ""))
            copies = 2 if s.get("availabilityType") == "REGIONAL" else 1
            hourly = vcpu * prices.rate(region, "cloudsql-vcpu-hour") + mem_gib * prices.rate(
                region, "cloudsql-memory-gib-hour"
            )
            yield f"Cloud SQL {s['tier']} {'replica' if master else 'x' + str(copies)}", copies * _monthly(hourly)
            disk = _num(s.get("diskSize") or (master.inputs["settings"].get("diskSize") if master else 10))
            yield f"Cloud SQL {disk:g} GB SSD", copies * disk * prices.rate(region, "cloudsql-ssd-gb-month")
        elif t == "gcp:redis/instance:Instance":
            standard = i.get("tier") == "STANDARD_HA"
            gb = _num(i["memorySizeGb"])
            # Standard tier prices the primary and its failover replica together; read replicas beyond it
            # are billed like one more node each
            nodes = max(1, int(_num(i.get("replicaCount")))) if standard else 1
            key = "memorystore-standard-gb-hour" if standard else "memorystore-basic-gb-hour"
            yield f"Memorystore {i.get('tier')} {gb:g} GB x {nodes}", nodes * gb * _monthly(prices.rate(region, key))
        elif t == "gcp:managedkafka/cluster:Cluster":
            cap = i["capacityConfig"]
            vcpu, mem = _num(cap["vcpuCount"]), _num(cap["memoryBytes"]) / 2**30
            hourly = vcpu * prices.rate(region, "managed-kafka-vcpu-hour") + mem * prices.rate(
                region, "managed-kafka-memory-gib-hour"
            )
            yield f"Managed Kafka {vcpu:g} vCPU {mem:g} GiB", _monthly(hourly)
        elif t == "gcp:compute/routerNat:RouterNat":
            yield (
                "Cloud NAT (per VM, at the minimum node count)",
                self._gke_min_nodes() * _monthly(prices.rate(region, "cloud-nat-vm-hour")),
            )
        elif t == "kubernetes:helm.sh/v3:Release" and i.get("name") == "istio-ingressgateway":
            if self.doc.outputs.get("cloud") == "gcp":
                yield "L4 load balancer (forwarding rule)", _monthly(prices.rate(region, "forwarding-rule-hour"))
            else:
                yield "Network Load Balancer", _monthly(prices.rate(region, "nlb-hour"))
        gb = _claimed_gb(r)
        if gb:
            key = "pd-balanced-gb-month" if self.doc.outputs.get("cloud") == "gcp" else "ebs-gp3-gb-month"
            yield f"{t.rsplit(':', 1)[-1]} volumes {gb:g} GB", gb * prices.rate(region, key)
        if t.startswith("kubernetes:helm.sh/"):
            for what, gb in _volumes(i):
                key = "pd-balanced-gb-month" if self.doc.outputs.get("cloud") == "gcp" else "ebs-gp3-gb-month"
                yield f"{what} volumes {gb:g} GB", gb * prices.rate(region, key)

    def nodes(self, pool: NodePool, count: int, purpose: str = "") -> Iterator[tuple[str, float]]:
        """`count` of the pool's nodes: the machines (spot where spot, an estimated share) and their disks."""
        cloud = "aws" if pool.resource.type.startswith("aws:") else "gcp"
        hourly = prices.machine(self.region, pool.machine_type).hourly * (SPOT_SHARE[cloud] if pool.spot else 1)
        spot = " (spot, estimated)" if pool.spot else ""
        yield f"{count} x {pool.machine_type}{purpose}{spot}", count * _monthly(hourly)
        disk_rate = prices.rate(self.region, f"{'ebs-' if cloud == 'aws' else ''}{pool.disk}-gb-month")
        yield f"{count} x {pool.disk_gb:g} GB node disk ({pool.disk})", count * pool.disk_gb * disk_rate

    def _gke_min_nodes(self) -> int:
        return min(32, sum(p.minimum for p in self.pools.values()))


def _claimed_gb(r: Registration) -> float:
    """The persistent volumes a Kubernetes object of the program claims, in GiB: a PersistentVolumeClaim, a
    StatefulSet's claim templates per replica, a CloudNativePG Cluster's data and WAL volumes per instance
    (spec.storage / spec.walStorage), a Strimzi KafkaNodePool's per node (persistent-claim or JBOD volumes)."""
    kind, spec = r.type.rsplit(":", 1)[-1], r.inputs.get("spec") or {}
    if not r.type.startswith("kubernetes:"):
        return 0.0
    if kind == "PersistentVolumeClaim":
        return _gib(spec.get("resources", {}).get("requests", {}).get("storage", 0))
    if kind == "StatefulSet":
        each = sum(
            _gib(t.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", 0))
            for t in spec.get("volumeClaimTemplates") or []
        )
        return each * _num(spec.get("replicas"), 1)
    if kind == "Cluster" and r.type.startswith("kubernetes:postgresql.cnpg.io/"):
        each = sum(_gib((spec.get(k) or {}).get("size", 0)) for k in ("storage", "walStorage"))
        return each * _num(spec.get("instances"), 1)
    if kind == "KafkaNodePool":
        storage = spec.get("storage") or {}
        volumes = storage.get("volumes") if storage.get("type") == "jbod" else [storage]
        each = sum(_gib(v.get("size", 0)) for v in volumes or [] if v.get("type") == "persistent-claim")
        return each * _num(spec.get("replicas"))
    return 0.0


def _volumes(inputs: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """The persistent volumes a release's values ask for (volumeClaimTemplates and `persistence` sizes)."""
    total = 0.0
    for node, where in mappings(inputs.get("values") or {}):
        claim = node.get("volumeClaimTemplate", {}).get("spec", {}).get("resources", {}).get("requests", {})
        if "storage" in claim:
            total += _gib(claim["storage"]) * where.replicas
        persistence = node.get("persistence")
        if isinstance(persistence, dict) and persistence.get("size") and persistence.get("enabled", True):
            total += _gib(persistence["size"]) * where.replicas
    if total:
        yield str(inputs.get("name") or inputs.get("chart")), total


# -- placing the platform's pods ----------------------------------------------------------------------


def pod_requests(doc: PlanDocument, rendered: Rendered | None = None) -> list[PodRequest]:
    """Every idle pod's requests (mlplatform/estimate/requests.py): rendered charts where given, else values,
    the program's pod specs and the operator-managed pods."""
    return idle_requests(doc, rendered)


def _allocatable(m: prices.Machine) -> tuple[float, float]:
    """What a node offers pods after the kubelet, system reservations and eviction threshold (about 10 %
    of CPU less 0.1 vCPU, and 20 % of memory on these sizes: the EKS and GKE reservation tables)."""
    return m.vcpu * 0.9 - 0.1, m.memory_gib * 0.8


def place_pods(
    requests: Iterable[PodRequest], region: str, pools: Mapping[str, tuple[str, int]], system: str
) -> list[PoolUse]:
    """Nodes per pool once the platform's pods are placed: the larger of its minimum and what the pods'
    CPU and memory need (bin-packing by totals, so a lower bound), plus the per-node agents on each node
    (an agent that names a pool only on that pool's nodes)."""
    cpu: dict[str, float] = defaultdict(float)
    mem: dict[str, float] = defaultdict(float)
    agent_cpu: dict[str | None, float] = defaultdict(float)
    agent_mem: dict[str | None, float] = defaultdict(float)
    for req in requests:
        if req.per_node:
            agent_cpu[req.pool] += req.cpu
            agent_mem[req.pool] += req.memory_gib
            continue
        pool = req.pool if req.pool in pools else system
        cpu[pool] += req.cpu * req.replicas
        mem[pool] += req.memory_gib * req.replicas
    uses = []
    for pool, (kind, minimum) in pools.items():
        alloc_cpu, alloc_mem = _allocatable(prices.machine(region, kind))
        a_cpu, a_mem = agent_cpu[None] + agent_cpu[pool], agent_mem[None] + agent_mem[pool]
        need = 0
        if cpu[pool] or mem[pool]:
            need = math.ceil(max(cpu[pool] / (alloc_cpu - a_cpu), mem[pool] / (alloc_mem - a_mem)))
        uses.append(PoolUse(pool, kind, minimum, max(minimum, need), cpu[pool], mem[pool]))
    return uses


def estimate_cost(doc: PlanDocument, on: date, rendered: Rendered | None = None) -> CostReport:
    """The stack's idle cost; `rendered` (requests.render_releases) reads the releases' pods as rendered."""
    region = str(doc.outputs.get("region"))
    report = CostReport(region)
    pricer = _Pricer(doc, region, on)
    for r in doc.resources:
        if not r.custom:
            continue
        layer, service = _layer_and_service(doc, r, pricer.index)
        try:
            for item, monthly in pricer.lines(r):
                if monthly:
                    report.lines.append(CostLine(layer, service, item, monthly))
        except NoPrice as e:
            report.missing.append(f"{r.name}: {e}")
    pools = node_pools(doc)
    try:
        report.pools = place_pods(
            pod_requests(doc, rendered), region, {p.name: (p.machine_type, p.minimum) for p in pools.values()}, "system"
        )
    except NoPrice as e:
        report.missing.append(f"pod placement: {e}")
        return report
    for use in report.pools:
        extra = use.needed - use.minimum
        if extra:
            pool = pools[use.pool]
            layer, service = _layer_and_service(doc, pool.resource, pricer.index)
            for item, monthly in pricer.nodes(pool, extra, " for the platform's pods"):
                report.placed_extra.append(CostLine(layer, service, item, monthly))
    return report
