"""How long a `pulumi up` from empty takes: typical creation times per resource type and the longest
weighted path through the plan's dependency graph.

Pulumi creates a resource as soon as everything it depends on exists, so with enough parallelism (its
default is unbounded) the time to `up` is the heaviest chain of dependencies. A resource's dependencies
here are the ones the plan records (inputs that are other resources' outputs, and depends_on), where a
dependency on a component stands for every resource inside it, plus the provider it is created with and
that provider's own dependencies (a Kubernetes object waits for the cluster its provider points at).

Creation times are typical wall-clock minutes, each with where it comes from. They are estimates: a
region, quota or image pull can move any of them; what the tests hold is the shape of the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from components.cluster.aws.addons import AFTER_NODES, BEFORE_NODES
from mlplatform.pins import ISTIO_BASE, ISTIO_GATEWAY, ISTIOD, KSERVE, KSERVE_RUNTIME_CONFIGS
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration


@dataclass(frozen=True)
class Typical:
    minutes: float
    source: str


API_CALL = Typical(0.1, "one control-plane API call, created in seconds")

# resource type -> typical creation time
CREATION: Mapping[str, Typical] = {
    # AWS
    "aws:eks/cluster:Cluster": Typical(10, "EKS control plane: 8-12 min (EKS user guide, create-cluster)"),
    "aws:eks/nodeGroup:NodeGroup": Typical(4, "managed node group: instances launch and join, 3-5 min"),
    "aws:eks/addon:Addon": Typical(1.5, "EKS add-on: its DaemonSet or Deployment rolls out, 1-2 min"),
    "aws:rds/instance:Instance": Typical(12, "RDS PostgreSQL, single-AZ: 10-15 min"),
    "aws:elasticache/replicationGroup:ReplicationGroup": Typical(12, "ElastiCache replication group: 10-15 min"),
    "aws:msk/cluster:Cluster": Typical(28, "MSK provisioned cluster: 25-30 min (Amazon MSK developer guide)"),
    "aws:ec2/natGateway:NatGateway": Typical(2, "NAT gateway: pending to available, 1-2 min"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": Typical(1.5, "interface VPC endpoint: ENIs in each subnet, 1-2 min"),
    "aws:ec2/vpc:Vpc": Typical(0.3, "VPC: seconds, then DNS attributes"),
    "aws:ec2/subnet:Subnet": Typical(0.2, "subnet: seconds"),
    # GCP
    "gcp:container/cluster:Cluster": Typical(8, "GKE control plane: zonal 5-8 min (regional: see below)"),
    "gcp:container/nodePool:NodePool": Typical(4, "GKE node pool: instance group and node registration, 3-5 min"),
    "gcp:sql/databaseInstance:DatabaseInstance": Typical(12, "Cloud SQL PostgreSQL: 10-15 min"),
    "gcp:redis/instance:Instance": Typical(6, "Memorystore for Redis BASIC: about 5 min (STANDARD_HA: below)"),
    "gcp:managedkafka/cluster:Cluster": Typical(30, "Managed Service for Apache Kafka: up to 30 min (Google docs)"),
    "gcp:servicenetworking/connection:Connection": Typical(2, "private services access peering: 1-3 min"),
    "gcp:projects/service:Service": Typical(1, "enabling an API: about a minute to propagate"),
    "gcp:compute/network:Network": Typical(0.5, "VPC network: under a minute"),
    "gcp:compute/subnetwork:Subnetwork": Typical(0.3, "subnetwork: seconds"),
    "gcp:compute/routerNat:RouterNat": Typical(1, "Cloud NAT on its router: about a minute"),
    # Kubernetes (Pulumi waits for Deployments, StatefulSets and Jobs to be ready)
    "kubernetes:helm.sh/v3:Release": Typical(2, "Helm release with wait: images pulled, pods ready, 1-3 min"),
    "kubernetes:helm.sh/v4:Chart": Typical(1.5, "chart objects, each awaited by Pulumi: 1-2 min"),
    "kubernetes:batch/v1:Job": Typical(1, "a Job that runs a few SQL statements: image pull and run"),
    # components/serving/images.py; from a cold BuildKit cache, on the deployer's machine
    "docker-build:index:Image": Typical(5, "image build (pinned pip install, ~120 wheels) and push: 3-6 min"),
    "kubernetes:operator.knative.dev/v1beta1:KnativeServing": Typical(
        3, "the operator installs Serving and net-istio; Pulumi waits for Ready: 2-4 min"
    ),
}

# a few resources whose time depends on their settings or chart
HEAVY_RELEASES: Mapping[str, Typical] = {
    "kube-prometheus-stack": Typical(4, "operator, webhook patch Jobs, two StatefulSets binding volumes"),
    "airflow": Typical(5, "database migration Job, then scheduler, API server, triggerer, DAG processor"),
    "loki": Typical(3, "StatefulSet binding a volume, memberlist ring"),
}
REGIONAL_GKE = Typical(10, "regional GKE control plane: three zonal replicas, 8-12 min")
MULTI_AZ_RDS = Typical(18, "RDS Multi-AZ: the standby is created and synchronised, 15-20 min")
HA_MEMORYSTORE = Typical(10, "Memorystore STANDARD_HA with replicas: 8-12 min")
HA_CLOUD_SQL = Typical(15, "Cloud SQL REGIONAL (HA): 12-18 min")


def typical(r: Registration) -> Typical:
    """The creation time of one registration; components (which create nothing themselves) take none."""
    if not r.custom or r.type.startswith("pulumi:providers:"):
        return Typical(0, "component or provider: nothing to create")
    inputs: Mapping[str, Any] = r.inputs
    if r.type == "kubernetes:helm.sh/v3:Release" and inputs.get("chart") in HEAVY_RELEASES:
        return HEAVY_RELEASES[inputs["chart"]]
    if r.type == "gcp:container/cluster:Cluster" and inputs.get("nodeLocations"):
        return REGIONAL_GKE
    if r.type == "aws:rds/instance:Instance" and inputs.get("multiAz"):
        return MULTI_AZ_RDS
    if r.type == "gcp:redis/instance:Instance" and inputs.get("tier") == "STANDARD_HA":
        return HA_MEMORYSTORE
    if r.type == "gcp:sql/databaseInstance:DatabaseInstance" and (
        (inputs.get("settings") or {}).get("availabilityType") == "REGIONAL"
    ):
        return HA_CLOUD_SQL
    return CREATION.get(r.type, API_CALL)


@dataclass(frozen=True)
class Step:
    resource: Registration
    minutes: float
    finishes_at: float


@dataclass(frozen=True)
class Prerequisite:
    """One step of a sequence no program can overlap: it needs the step before it running. Found in a plan
    by type (and, for a Helm release, its chart; for an EKS add-on, the add-on)."""

    what: str
    types: frozenset[str]
    charts: frozenset[str] = frozenset()
    addons: frozenset[str] = frozenset()

    def matches(self, r: Registration) -> bool:
        if r.type not in self.types:
            return False
        if self.charts:
            return r.inputs.get("chart") in self.charts
        if self.addons:
            return r.inputs.get("addonName") in self.addons
        return True


_RELEASE = frozenset({"kubernetes:helm.sh/v3:Release"})
# The serving installs, in the order each needs the one before it running (components/cluster/aws/addons.py,
# components/serving/istio.py, knative.py, kserve.py say why at each depends_on). Nothing a program does can
# overlap them; a step the plan lacks (GKE has no add-ons here, local no control plane) counts nothing.
SERVING_SEQUENCE: tuple[Prerequisite, ...] = (
    Prerequisite("the control plane", frozenset({"aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster"})),
    Prerequisite(
        "the add-ons nodes need to become Ready", frozenset({"aws:eks/addon:Addon"}), addons=frozenset(BEFORE_NODES)
    ),
    Prerequisite("nodes for pods", frozenset({"aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool"})),
    Prerequisite(
        "the add-ons that run as pods (DNS, volumes)", frozenset({"aws:eks/addon:Addon"}), addons=frozenset(AFTER_NODES)
    ),
    Prerequisite("Istio's CRDs", _RELEASE, charts=frozenset({ISTIO_BASE.chart})),
    Prerequisite("istiod, whose webhook admits the gateway's pods", _RELEASE, charts=frozenset({ISTIOD.chart})),
    Prerequisite("the ingress gateway net-istio routes through", _RELEASE, charts=frozenset({ISTIO_GATEWAY.chart})),
    Prerequisite("Knative Serving, Ready", frozenset({"kubernetes:operator.knative.dev/v1beta1:KnativeServing"})),
    Prerequisite("KServe's controller and webhook", _RELEASE, charts=frozenset({KSERVE.chart})),
    Prerequisite(
        "KServe's runtimes, which its webhook admits", _RELEASE, charts=frozenset({KSERVE_RUNTIME_CONFIGS.chart})
    ),
)

# The goal: `up` takes at most this much longer than its floor, the longer of the stack's slowest single
# resource (MSK or Managed Kafka, 25-30 min, where Kafka is managed) and the serving installs' sequence
# (~25-30 min, the cluster's ~10 of it): everything the program can start in parallel fits beside them.
TARGET_OVER_FLOOR = 3.0


@dataclass(frozen=True)
class UpEstimate:
    minutes: float
    path: tuple[Step, ...]  # the critical path, first to last
    slowest: Step  # the stack's slowest single resource, wherever it is
    sequence: tuple[Step, ...]  # SERVING_SEQUENCE as planned: the slowest match of each step found

    @property
    def over_slowest(self) -> float:
        return self.minutes - self.slowest.minutes

    @property
    def sequence_minutes(self) -> float:
        return sum(s.minutes for s in self.sequence)

    @property
    def floor(self) -> float:
        """What no ordering of the plan can beat: its slowest resource, or the installs that run in sequence."""
        return max(self.slowest.minutes, self.sequence_minutes)

    @property
    def over_floor(self) -> float:
        return self.minutes - self.floor

    @property
    def within_target(self) -> bool:
        return self.over_floor <= TARGET_OVER_FLOOR

    def describe(self) -> str:
        slow = self.slowest.resource
        heavy = [s for s in self.path if s.minutes >= 1]
        chain = " -> ".join(f"{s.resource.name} {s.minutes:g}" for s in heavy)
        verdict = "within" if self.within_target else "OVER"
        return (
            f"Time to `up` from empty: about {self.minutes:.0f} min, {self.over_floor:.1f} min over its floor "
            f"(target: {verdict} {TARGET_OVER_FLOOR:g})\n"
            f"  floor {self.floor:g} min: the longer of the slowest resource ({slow.name}, "
            f"{slow.type.split(':')[-1]}, {self.slowest.minutes:g} min) and the serving installs, each needing "
            f"the one before it running ({self.sequence_minutes:g} min)\n"
            f"  critical path (min): {chain}"
        )


class DependencyGraph:
    """Each custom resource's direct prerequisites, as custom resources."""

    def __init__(self, doc: PlanDocument) -> None:
        self.doc = doc
        self.by_urn = {r.urn: r for r in doc.resources}
        self._children: dict[str, list[str]] = {}
        for r in doc.resources:
            self._children.setdefault(r.parent, []).append(r.urn)

    @cache  # noqa: B019 - one graph per plan, discarded with it
    def _expand(self, urn: str) -> frozenset[str]:
        """A custom resource stands for itself; a component for every custom resource inside it."""
        r = self.by_urn.get(urn)
        if r is None:
            return frozenset()
        if r.custom:
            return frozenset({urn})
        return frozenset().union(*(self._expand(c) for c in self._children.get(urn, [])))

    @cache  # noqa: B019
    def prerequisites(self, urn: str) -> frozenset[str]:
        r = self.by_urn[urn]
        direct = set(r.dependencies)
        provider = r.provider.rsplit("::", 1)[0] if r.provider else ""  # "<provider urn>::<provider id>"
        if provider in self.by_urn:
            direct.add(provider)
        return frozenset().union(*(self._expand(d) for d in direct)) - {urn}


def estimate_up(doc: PlanDocument) -> UpEstimate:
    graph = DependencyGraph(doc)
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}

    def visit(urn: str) -> float:
        if urn in finish:
            return finish[urn]
        finish[urn] = float("nan")  # a cycle would show as NaN instead of recursing forever
        prereqs = graph.prerequisites(urn)
        start, first = 0.0, None
        for p in sorted(prereqs):  # ties broken by URN, so the printed path is the same every run
            t = visit(p)
            if first is None or t > start:
                start, first = t, p
        finish[urn] = start + typical(graph.by_urn[urn]).minutes
        before[urn] = first
        return finish[urn]

    customs = [r.urn for r in doc.resources if r.custom]
    end = max(customs, key=visit)
    slowest = max((graph.by_urn[u] for u in customs), key=lambda r: typical(r).minutes)
    path: list[Step] = []
    urn: str | None = end
    while urn is not None:
        r = graph.by_urn[urn]
        path.append(Step(r, typical(r).minutes, finish[urn]))
        urn = before[urn]
    sequence = []
    for step in SERVING_SEQUENCE:
        found = [graph.by_urn[u] for u in customs if step.matches(graph.by_urn[u])]
        if found:  # the slowest of several (node pools), ties broken by URN
            r = max(sorted(found, key=lambda x: x.urn), key=lambda x: typical(x).minutes)
            sequence.append(Step(r, typical(r).minutes, finish[r.urn]))
    return UpEstimate(
        finish[end],
        tuple(reversed(path)),
        Step(slowest, typical(slowest).minutes, finish[slowest.urn]),
        tuple(sequence),
    )
