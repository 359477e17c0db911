"""The estimates `plan` prints: Kubernetes version support, idle cost, time to `up` from empty."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from mlplatform.config.profiles import DEFAULT_KUBERNETES_MINOR
from mlplatform.estimate.report import report, version_support
from mlplatform.estimate.support import TABLE_DATE, WINDOWS, Phase, support_status
from mlplatform.pins import EKS_ADDON_VERSIONS, KNATIVE_SERVING_VERSIONS, SERVING_MIN_KUBERNETES

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]
ROOT = Path(__file__).resolve().parents[1]


def _minor(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def test_default_minor_stays_in_standard_support_for_90_days_on_both_clouds() -> None:
    for cloud in ("aws", "gcp"):
        window = WINDOWS[DEFAULT_KUBERNETES_MINOR][cloud]
        assert window.standard_end >= TABLE_DATE + timedelta(days=90), (cloud, window)


def test_default_minor_is_the_newest_with_pins_and_standard_support() -> None:
    """Newest minor the platform can deploy on both clouds (EKS add-on pins, Knative, serving floor) whose
    standard support lasts on both: no newer one qualifies, so the default is not left behind."""
    deployable = {
        m
        for m in WINDOWS
        if m in EKS_ADDON_VERSIONS and m in KNATIVE_SERVING_VERSIONS and _minor(m) >= _minor(SERVING_MIN_KUBERNETES)
    }
    in_standard = {
        m for m in deployable if all(support_status(c, m, TABLE_DATE).phase is Phase.STANDARD for c in ("aws", "gcp"))
    }
    assert max(in_standard, key=_minor) == DEFAULT_KUBERNETES_MINOR


def test_support_phases_and_the_warning() -> None:
    window = WINDOWS["1.33"]["aws"]
    assert support_status("aws", "1.33", window.standard_end).phase is Phase.STANDARD
    late = support_status("aws", "1.33", window.standard_end + timedelta(days=1))
    assert late.phase is Phase.EXTENDED and "WARNING" in late.describe() and "$365/month" in late.describe()
    assert support_status("aws", "1.33", window.extended_end + timedelta(days=1)).phase is Phase.UNSUPPORTED
    assert support_status("gcp", "1.20", TABLE_DATE).phase is Phase.UNKNOWN


@pytest.mark.parametrize("stack", STACKS)
def test_plan_reports_the_stacks_version_support(plan, stack: str) -> None:
    doc = plan(stack)
    status = version_support(doc, TABLE_DATE)
    assert status is not None and status.minor == DEFAULT_KUBERNETES_MINOR
    assert status.cloud == ("gcp" if stack.startswith("gcp") else "aws") and status.phase is Phase.STANDARD
    assert status.describe() in report(doc, TABLE_DATE)
    # the same plan a year on warns
    assert "WARNING" in report(doc, date(2027, 11, 1))


def reg(urn: str, type_: str, parent: str = "stack", deps: tuple[str, ...] = (), custom: bool = True, **inputs):
    from mlplatform.plan.mocks import Registration

    return Registration(urn, type_, urn, parent, "", custom, list(deps), False, False, False, [], dict(inputs))


def test_a_dependency_on_a_component_waits_for_everything_inside_it() -> None:
    from mlplatform.estimate.timing import estimate_up
    from mlplatform.plan.document import PlanDocument

    resources = [
        reg("net", "aws:ec2/vpc:Vpc"),
        reg("component", "mlplatform:data:Data", custom=False),
        reg("kafka", "aws:msk/cluster:Cluster", parent="component", deps=("net",)),
        reg("topics", "kubernetes:core/v1:ConfigMap", parent="component"),
        reg("user", "kubernetes:helm.sh/v3:Release", deps=("component",), chart="mlflow"),
    ]
    estimate = estimate_up(PlanDocument("p", "s", resources, {}, 0.0))
    assert [s.resource.urn for s in estimate.path] == ["net", "kafka", "user"]
    assert estimate.minutes == pytest.approx(0.3 + 28 + 2)
    assert estimate.slowest.resource.urn == "kafka"


def test_a_needless_wait_puts_up_over_its_floor() -> None:
    """The floor is the slowest resource or the serving installs' sequence, whichever is longer: a managed
    data service made to wait for the cluster (as the data security group once made MSK wait for EKS) puts
    `up` over it, the same graph without that wait is within it."""
    from mlplatform.estimate.timing import TARGET_OVER_FLOOR, estimate_up
    from mlplatform.plan.document import PlanDocument

    def stack(kafka_waits_for_the_cluster: bool) -> PlanDocument:
        return PlanDocument("p", "s", [
            reg("net", "aws:ec2/vpc:Vpc"),
            reg("eks", "aws:eks/cluster:Cluster", deps=("net",)),
            reg("cpu", "aws:eks/nodeGroup:NodeGroup", deps=("eks",)),
            reg("base", "kubernetes:helm.sh/v3:Release", deps=("cpu",), chart="base"),
            reg("istiod", "kubernetes:helm.sh/v3:Release", deps=("base",), chart="istiod"),
            reg("kafka", "aws:msk/cluster:Cluster", deps=("net", "eks") if kafka_waits_for_the_cluster else ("net",)),
        ], {}, 0.0)  # fmt: skip

    fine, late = estimate_up(stack(False)), estimate_up(stack(True))
    assert [s.resource.urn for s in fine.sequence] == ["eks", "cpu", "base", "istiod"]
    assert fine.floor == late.floor == 28  # MSK, longer than the sequence's 10 + 4 + 2 + 2
    assert fine.within_target and fine.minutes == pytest.approx(0.3 + 28)
    assert not late.within_target and late.over_floor > TARGET_OVER_FLOOR, late.describe()
    assert "(target: OVER 3)" in late.describe()


@pytest.mark.parametrize("stack", STACKS)
def test_up_takes_at_most_3_minutes_more_than_its_floor(plan, stack: str) -> None:
    """Within 3 minutes of what no ordering can beat: the slowest resource (managed Kafka in prod) or the
    serving installs, which run in sequence (cluster, nodes, Istio, Knative, KServe: dev's longest wait
    now that its data services run in the cluster). The sequence is found in the plan, and each step of it
    is a prerequisite of the next, directly or through others."""
    from mlplatform.estimate.timing import SERVING_SEQUENCE, TARGET_OVER_FLOOR, DependencyGraph, estimate_up

    doc = plan(stack)
    estimate = estimate_up(doc)
    assert estimate.over_floor <= TARGET_OVER_FLOOR and estimate.within_target, estimate.describe()
    assert len(estimate.sequence) == len(SERVING_SEQUENCE) - (2 if stack.startswith("gcp") else 0)  # no add-ons
    graph = DependencyGraph(doc)

    def waits_for(later: str, earlier: str) -> bool:
        seen, todo = set(), [later]
        while todo:
            for p in graph.prerequisites(todo.pop()) - seen:
                if p == earlier:
                    return True
                seen.add(p)
                todo.append(p)
        return False

    for before, after in zip(estimate.sequence, estimate.sequence[1:], strict=False):
        assert waits_for(after.resource.urn, before.resource.urn), (before.resource.name, after.resource.name)
    # the path is a real chain of prerequisites, ending when the plan does
    for before, after in zip(estimate.path, estimate.path[1:], strict=False):
        assert before.resource.urn in graph.prerequisites(after.resource.urn)
    assert estimate.path[-1].finishes_at == pytest.approx(estimate.minutes)
    assert estimate.describe() in report(doc, TABLE_DATE)


@pytest.mark.parametrize("stack", STACKS)
def test_data_services_start_beside_the_cluster_not_after_it(plan, stack: str) -> None:
    """Nothing in the data layer's managed services waits for the Kubernetes cluster: they only need the
    network, so they are created from the start, in parallel with it."""
    from mlplatform.estimate.timing import DependencyGraph

    doc = plan(stack)
    graph = DependencyGraph(doc)
    cluster = next(r for r in doc.resources if r.type in ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster"))
    services = (
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:msk/cluster:Cluster",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "gcp:redis/instance:Instance",
        "gcp:managedkafka/cluster:Cluster",
    )
    checked = 0
    for service in (r for r in doc.resources if r.type in services):
        seen, todo = set(), [service.urn]
        while todo:
            urn = todo.pop()
            for p in graph.prerequisites(urn) - seen:
                assert p != cluster.urn, f"{service.name} waits for the cluster"
                seen.add(p)
                todo.append(p)
        checked += 1
    # dev runs some data services in the cluster (they need it); the managed ones still start beside it
    groups = {r.type.split(":")[1].split("/")[0] for r in doc.resources}
    assert checked >= (0 if groups & {"postgresql.cnpg.io", "kafka.strimzi.io"} else 3)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_is_priced_in_full(plan, stack: str) -> None:
    from mlplatform.estimate.cost import estimate_cost

    doc = plan(stack)
    cost = estimate_cost(doc, TABLE_DATE)
    assert cost.missing == []
    assert cost.minimum == pytest.approx(sum(cost.by("layer").values()))
    assert cost.with_pods >= cost.minimum > 0
    items = " ".join(line.item for line in cost.lines)
    managed_kafka = doc.by_type("aws:msk/cluster:Cluster") + doc.by_type("gcp:managedkafka/cluster:Cluster")
    expected = ["control plane" if not stack.startswith("gcp") else "GKE cluster", "load balancer"]
    # an in-cluster Kafka is priced as its volumes and the nodes its pods need
    expected.append("Kafka" if managed_kafka else "KafkaNodePool volumes")
    for item in expected:
        assert item.lower() in items.lower(), item
    assert cost.describe() in report(doc, TABLE_DATE)


def test_pods_placed_on_a_pool_at_zero_count_its_nodes(plan) -> None:
    """dev's CPU pool has a minimum of 0, yet the platform's services select it: the second figure counts
    the nodes they need, from their requests in the plan."""
    from mlplatform.estimate.cost import estimate_cost, pod_requests

    doc = plan("dev")
    cost = estimate_cost(doc, TABLE_DATE)
    [cpu] = [p for p in cost.pools if p.pool == "cpu"]
    requested = sum(r.cpu * r.replicas for r in pod_requests(doc) if r.pool == "cpu" and not r.per_node)
    assert cpu.minimum == 0 and cpu.needed >= 1 and cpu.cpu == pytest.approx(requested)
    assert cost.with_pods - cost.minimum == pytest.approx(sum(line.monthly for line in cost.placed_extra))
    assert any(f"{cpu.needed} x {cpu.machine_type} for the platform's pods" in line.item for line in cost.placed_extra)
    assert any("GB node disk" in line.item for line in cost.placed_extra)


DEV_BUDGET = 250  # dollars a month, with the platform's pods placed (issue 22)


@pytest.mark.parametrize("stack", ["dev", "gcp-dev"])
def test_dev_stays_under_its_monthly_budget_with_every_pod_placed(plan, stack: str) -> None:
    """dev's idle bill with every pod that runs counted and placed: read from the values alone, and from the
    charts as rendered where the pinned packages are at hand (what `plan` prints). Every priced item is
    known, the pods' pool gets the nodes they need, and the in-cluster data services' pods are among them."""
    from mlplatform.cli import default_charts
    from mlplatform.estimate.cost import estimate_cost, pod_requests
    from mlplatform.estimate.requests import render_releases

    doc = plan(stack)
    in_cluster = {
        r.name
        for r in doc.resources
        if r.type.split(":")[1].split("/")[0] in ("postgresql.cnpg.io", "kafka.strimzi.io")
    }
    assert in_cluster, "dev's PostgreSQL and Kafka run in the cluster"
    for rendered in ({}, render_releases(doc, default_charts(ROOT))):
        cost = estimate_cost(doc, TABLE_DATE, rendered)
        assert cost.missing == []
        counted = {r.source for r in pod_requests(doc, rendered)}
        assert in_cluster & counted, "the in-cluster data pods are placed"
        [cpu] = [p for p in cost.pools if p.pool == "cpu"]
        placed = sum(r.total_cpu for r in pod_requests(doc, rendered) if r.pool == "cpu" and not r.per_node)
        assert cpu.needed >= 1 and cpu.cpu == pytest.approx(placed)
        assert cost.with_pods < DEV_BUDGET, cost.describe()


def test_extended_support_shows_in_the_bill(plan) -> None:
    from mlplatform.estimate.cost import estimate_cost

    doc = plan("dev")
    late = WINDOWS[DEFAULT_KUBERNETES_MINOR]["aws"].standard_end + timedelta(days=1)
    extra = estimate_cost(doc, late).minimum - estimate_cost(doc, TABLE_DATE).minimum
    assert extra == pytest.approx((0.60 - 0.10) * 730)


def test_a_region_without_prices_is_reported_not_guessed() -> None:
    from mlplatform.config import read_stack_file
    from mlplatform.estimate.cost import estimate_cost
    from mlplatform.plan.synth import synthesize

    config = read_stack_file(ROOT, "dev") | {"mlplatform:region": "eu-west-1"}
    cost = estimate_cost(synthesize("dev-eu", config_map=config), TABLE_DATE)
    assert any("no price for t3.large in eu-west-1" in m for m in cost.missing)
    assert "not priced:" in cost.describe()


def test_default_machine_types_have_prices() -> None:
    from mlplatform.config.models import Cloud, Profile
    from mlplatform.config.profiles import _DEFAULT_REGION, _MACHINES
    from mlplatform.estimate import prices

    for (profile, cloud), machines in _MACHINES.items():
        region = _DEFAULT_REGION[cloud]
        for role, kind in machines.items():
            if role == "gpuAccelerator" or (cloud is Cloud.GCP and role in ("postgres", "redis", "kafka")):
                continue
            if role in ("postgres", "redis", "kafka"):
                assert prices.instance_class(region, kind) > 0, (profile, role)
            else:
                assert prices.machine(region, kind).hourly > 0, (profile, role)
    assert Profile.DEV in {p for p, _ in _MACHINES}
