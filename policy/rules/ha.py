"""The design's HA table (prod), as a stack rule that names each row it fails
(../shared/design/high-level-design.md, "Multi-Zone High Availability")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.podsecurity import pod_specs
from policy.rules import stack_rule
from policy.view import HELM_TYPES, Resource, Stack

ZONE = "topology.kubernetes.io/zone"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
PDB = "PodDisruptionBudget"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class Row:
    name: str
    where: str  # where the program meets it (README)


ROWS = {
    "serving": Row("serving pods: 3 per zone over 3 zones", "components/serving/models.py"),
    "feature-server": Row("feature server: 2 per zone", "components/lifecycle/feast.py"),
    "mlflow": Row("MLflow: 1 active + 1 standby (or 2 active)", "components/lifecycle/mlflow.py"),
    "airflow-scheduler": Row("Airflow scheduler: active + standby", "components/lifecycle/airflow.py"),
    "postgres": Row("PostgreSQL: primary + 2 replicas", "components/data/aws.py, gcp.py"),
    "redis": Row("Redis: 2 nodes per zone (6)", "components/data/aws.py, gcp.py"),
    "spread": Row("zone topology spread and a PodDisruptionBudget for every replicated workload", "per workload"),
    "gateway": Row("ingress gateway: at least 3 replicas", "components/serving/istio.py"),
}


def zones(stack: Stack) -> int:
    """Zones the cluster's nodes span: the EKS subnets' zones, or the GKE cluster's node locations."""
    found = {s.get("availabilityZone") for s in stack.of_type("aws:ec2/subnet:Subnet") if s.get("availabilityZone")}
    for gke in stack.of_type("gcp:container/cluster:Cluster"):
        found |= set(gke.get("nodeLocations") or [])
    return max(len(found), 1)


@dataclass(frozen=True)
class Workload:
    owner: Resource
    where: str
    obj: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def replicas(self) -> int:
        return int(float((self.obj.get("spec") or {}).get("replicas", 1) or 0))

    @property
    def labels(self) -> Mapping[str, str]:
        return ((((self.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}

    @property
    def pod(self) -> Mapping[str, Any]:
        return next((spec for _l, spec, _ls in pod_specs(self.obj)), {})


def workloads(stack: Stack) -> list[Workload]:
    return [
        Workload(res, where, obj) for res, where, obj in stack.kubernetes_objects() if obj.get("kind") in WORKLOAD_KINDS
    ]


def chart_workloads(stack: Stack, chart: str) -> list[Workload] | None:
    """The Deployments and StatefulSets of a chart as rendered; None when it was not rendered."""
    found: list[Workload] = []
    for res in stack.of_type(*HELM_TYPES):
        if res.get("chart") != chart:
            continue
        try:
            objects = stack.chart_objects(res)
        except Exception:
            return None
        found += [
            Workload(res, f"release {res.name}: {o.get('kind')}", o) for o in objects if o.get("kind") in WORKLOAD_KINDS
        ]
    return found


def chart_release(stack: Stack, chart: str) -> Resource | None:
    return next((r for r in stack.of_type(*HELM_TYPES) if r.get("chart") == chart), None)


def spreads_over_zones(pod: Mapping[str, Any]) -> bool:
    """A zone topology spread constraint, or pod anti-affinity keyed on the zone (required or preferred)."""
    if any((c or {}).get("topologyKey") == ZONE for c in pod.get("topologySpreadConstraints") or []):
        return True
    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    terms += [
        (t or {}).get("podAffinityTerm") or {}
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ]
    return any((t or {}).get("topologyKey") == ZONE for t in terms)


def budgets(stack: Stack) -> list[Mapping[str, Any]]:
    return [obj for _res, _where, obj in stack.kubernetes_objects() if obj.get("kind") == PDB]


def has_budget(w: Workload, pdbs: list[Mapping[str, Any]]) -> bool:
    for pdb in pdbs:
        if str((pdb.get("metadata") or {}).get("namespace") or "") != w.namespace:
            continue
        selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector and selector.items() <= w.labels.items():
            return True
    return False


def _replicas_of(stack: Stack, chart: str, pick: Any, values_path: str) -> tuple[int | None, list[Workload] | None]:
    """Replicas of a chart's workload as rendered (the largest matching `pick`), else from its values."""
    rendered = chart_workloads(stack, chart)
    if rendered is not None:
        chosen = [w for w in rendered if pick(w)]
        return (max((w.replicas for w in chosen), default=0), chosen)
    release = chart_release(stack, chart)
    if release is None:
        return None, None
    value = release.get(f"values.{values_path}")
    return (int(float(value)) if isinstance(value, (int, float)) else 1), None


@stack_rule("ha-table", "Prod meets the design's HA table (each failed row named)")
def ha_table(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """The design's promise for prod (high-level-design.md, "Multi-Zone High Availability"): losing one zone
    loses no service. Each row is checked on what the cluster will run: chart workloads as rendered (their
    values when a chart cannot be rendered), the managed data services' node counts, and every replicated
    workload's zone spread and disruption budget."""
    if not stack.prod:
        return
    n = zones(stack)
    if n < 3:
        yield None, f"{ROWS['serving'].name}: the cluster spans {n} zones, not 3"

    for isvc in stack.of_type(INFERENCE_SERVICE):
        predictor = isvc.get("spec.predictor") or {}
        wanted = 3 * n
        if float(predictor.get("minReplicas", 1)) < wanted:
            yield isvc, f"{ROWS['serving'].name}: minReplicas {predictor.get('minReplicas', 1)} < {wanted}"
        if not spreads_over_zones(predictor):
            yield isvc, f"{ROWS['serving'].name}: the predictor has no zone topology spread"

    rows = (
        ("feature-server", "feast-feature-server", lambda w: w.kind == "Deployment", "replicaCount", 2 * n),
        ("mlflow", "mlflow", lambda w: w.kind == "Deployment", "replicaCount", 2),
        ("airflow-scheduler", "airflow", lambda w: w.labels.get("component") == "scheduler", "scheduler.replicas", 2),
        ("gateway", "gateway", lambda w: w.kind == "Deployment", "replicaCount", 3),
    )
    for key, chart, pick, values_path, wanted in rows:
        replicas, _ = _replicas_of(stack, chart, pick, values_path)
        release = chart_release(stack, chart)
        if replicas is None:
            yield None, f"{ROWS[key].name}: no {chart} release in the stack"
        elif replicas < wanted:
            yield release, f"{ROWS[key].name}: {replicas} replicas < {wanted}"
        if key == "gateway" and release is not None and release.get("values.autoscaling.enabled") is True:
            low = release.get("values.autoscaling.minReplicas", 1)
            if float(low) < wanted:
                yield release, f"{ROWS[key].name}: autoscaling minReplicas {low} < {wanted}"

    yield from _postgres_row(stack)
    yield from _redis_row(stack, n)

    pdbs = budgets(stack)
    for w in workloads(stack):
        if w.replicas < 2:
            continue
        if not spreads_over_zones(w.pod):
            yield w.owner, f"{ROWS['spread'].name}: {w.where} ({w.replicas} replicas) has no zone spread"
        if not has_budget(w, pdbs):
            yield w.owner, f"{ROWS['spread'].name}: {w.where} ({w.replicas} replicas) has no PodDisruptionBudget"


def _postgres_row(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    row = ROWS["postgres"].name
    rds = stack.of_type("aws:rds/instance:Instance")
    sql = stack.of_type("gcp:sql/databaseInstance:DatabaseInstance")
    cnpg = stack.of_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    for primaries, replica_key in ((rds, "replicateSourceDb"), (sql, "masterInstanceName")):
        for primary in [p for p in primaries if not p.get(replica_key)]:
            replicas = [r for r in primaries if r.get(replica_key) and primary.urn in r.dependencies]
            if len(replicas) < 2:
                yield primary, f"{row}: {len(replicas)} replicas"
    for cluster in cnpg:
        if float(cluster.get("spec.instances", 1)) < 3:
            yield cluster, f"{row}: {cluster.get('spec.instances', 1)} instances"
    if not (rds or sql or cnpg):
        yield None, f"{row}: no PostgreSQL in the stack"


def _redis_row(stack: Stack, n: int) -> Iterator[tuple[Resource | None, str]]:
    row, wanted = ROWS["redis"].name, 2 * n
    for group in stack.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        if group.get("numCacheClusters") is not None:
            nodes = int(float(group.get("numCacheClusters")))
        else:
            nodes = int(float(group.get("numNodeGroups", 1)) * (1 + float(group.get("replicasPerNodeGroup", 0))))
        if nodes < wanted:
            yield group, f"{row}: {nodes} nodes < {wanted}"
        if group.get("multiAzEnabled") is not True:
            yield group, f"{row}: multiAzEnabled is not true"
    for instance in stack.of_type("gcp:redis/instance:Instance"):
        nodes = 1 + int(float(instance.get("replicaCount", 0) or 0)) if instance.get("tier") == "STANDARD_HA" else 1
        if nodes < wanted:
            replicas = instance.get("replicaCount", 0)
            yield instance, f"{row}: {nodes} nodes ({instance.get('tier')}, {replicas} read replicas) < {wanted}"
