"""The plan tree reads like the design: stack -> layer (or the Namespaces component) -> service component ->
objects. A newcomer finds any object's owner from the folders and the tree; a service's objects change in
one module."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from components.contracts import Namespace
from mlplatform.plan.document import PlanDocument
from tests.support.managed import managed_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]  # local: the in-cluster wiring on kind
LAYER_TYPES = {
    f"mlplatform:{layer}:{cls}"
    for layer, cls in [
        ("cluster", "Cluster"),
        ("storage", "Storage"),
        ("data", "Data"),
        ("lifecycle", "Lifecycle"),
        ("serving", "Serving"),
        ("observability", "Observability"),
    ]
}


def _children(doc: PlanDocument, urn: str) -> Counter[str]:
    return Counter(r.type for r in doc.children(urn))


@pytest.mark.parametrize("stack", STACKS)
def test_no_kubernetes_object_sits_directly_under_a_layer(plan, stack: str) -> None:
    doc = plan(stack)
    index = {r.urn: r for r in doc.resources}
    for r in doc.resources:
        parent = index.get(r.parent)
        if r.custom and r.type.startswith("kubernetes:") and parent is not None:
            assert parent.type not in LAYER_TYPES, f"{r.type} {r.name} sits directly under {parent.type}"


@pytest.mark.parametrize("stack", STACKS)
def test_in_cluster_layers_are_compositions_of_service_components(plan, stack: str) -> None:
    doc = plan(stack)
    for layer in ("Lifecycle", "Serving", "Observability"):
        [top] = [r for r in doc.resources if r.type.endswith(f":{layer}")]
        kinds = {r.type for r in doc.children(top.urn)}
        assert all(k.startswith("mlplatform:") for k in kinds), (layer, kinds)
    services = {r.type.rsplit(":", 1)[1] for r in doc.resources if r.type.startswith("mlplatform:lifecycle:")}
    assert services == {"Lifecycle", "MLflow", "Feast", "KubeRay", "Training", "Airflow"}


@pytest.mark.parametrize("data", ["in-cluster", "managed"])
def test_each_service_component_owns_its_objects(dev: PlanDocument, prod: PlanDocument, data: str) -> None:
    """dev as it is (every data service in the cluster) and with RDS, ElastiCache and MSK: the in-cluster
    services add what their clients need to trust and reach them, each in the client's own component: the
    platform CA's certificate (a ConfigMap per mounted CA, PostgreSQL's and Redis's) and, for a Kafka client,
    its KafkaUser's credentials (a Secret)."""
    if data == "managed":
        dev = managed_stack("dev")
    extra = 1 if data == "in-cluster" else 0

    def owned(doc: PlanDocument, type_: str) -> Counter[str]:
        [component] = doc.by_type(type_)
        return _children(doc, component.urn)

    secret, sa = "kubernetes:core/v1:Secret", "kubernetes:core/v1:ServiceAccount"
    config_map = "kubernetes:core/v1:ConfigMap"
    # the flask session key (which the chart makes only as a hook) beside the database Secret, and the
    # schema migration as one Job before the chart
    assert owned(dev, "mlplatform:lifecycle:MLflow") == Counter(
        {
            sa: 1,
            secret: 2,
            config_map: extra,  # the database's CA
            "kubernetes:helm.sh/v4:Chart": 1,
            "kubernetes:batch/v1:Job": 1,
            "random:index/randomPassword:RandomPassword": 1,
        }
    )
    assert owned(prod, "mlplatform:lifecycle:MLflow")["kubernetes:policy/v1:PodDisruptionBudget"] == 1  # 2 replicas
    # ConfigMaps: the Kafka token callbacks' package (Feast is granted Kafka), feature_store.yaml and the
    # feature repository, which the apply Job reads; the client image that reads the offline store's bucket
    assert owned(dev, "mlplatform:lifecycle:Feast") == Counter(
        {
            sa: 1,
            secret: 2 + extra,  # the Kafka user's credentials
            config_map: 3 + 2 * extra,  # PostgreSQL's and Redis's CA
            "kubernetes:helm.sh/v4:Chart": 1,
            "kubernetes:batch/v1:Job": 1,
            "kubernetes:batch/v1:CronJob": 1,
            "docker-build:index:Image": 1,
        }
    )
    airflow = owned(dev, "mlplatform:lifecycle:Airflow")
    assert airflow[secret] == 7 + extra and airflow["kubernetes:helm.sh/v3:Release"] == 1
    # its launch rights in training, its deployment rights (InferenceServices) in model-serving
    assert airflow["kubernetes:rbac.authorization.k8s.io/v1:Role"] == 2
    assert owned(dev, "mlplatform:lifecycle:KubeRay")["kubernetes:ray.io/v1:RayCluster"] == 1
    # its identity, and the reference training job's code (the DAG mounts it into the submitting pod)
    assert owned(dev, "mlplatform:lifecycle:Training") == Counter({sa: 1, "kubernetes:core/v1:ConfigMap": 1})
    namespaces = owned(dev, "mlplatform:platform:Namespaces")
    assert namespaces["kubernetes:core/v1:Namespace"] == len(Namespace)
    assert namespaces["kubernetes:core/v1:ResourceQuota"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_children_are_named_from_their_component_not_their_type(plan, stack: str) -> None:
    doc = plan(stack)
    index = {r.urn: r for r in doc.resources}
    for r in doc.resources:
        parent = index.get(r.parent)
        if parent is None or parent.custom or not r.type.startswith("kubernetes:"):
            continue
        assert r.name.startswith(parent.name), (r.name, parent.name)
        assert not r.name.startswith(("secret-", "sa-", "ns-", "netpol-", "pdb-", "configmap-", "role-")), r.name


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.split(".")[0] in ("mlplatform", "components", "stacks")}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_config_and_pins_never_import_components_and_modules_form_no_cycle() -> None:
    files = [p for d in ("mlplatform", "components", "stacks") for p in (ROOT / d).rglob("*.py")]
    graph = {_module(p): _imports(p) for p in files}
    base = [m for m in graph if m.startswith(("mlplatform.config", "mlplatform.pins", "mlplatform.chartkeys"))]
    for module in base:
        assert not [i for i in graph[module] if i.startswith("components")], module

    def resolve(name: str) -> str | None:
        while name and name not in graph:
            name = name.rpartition(".")[0]
        return name or None

    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for imported in filter(None, (resolve(i) for i in graph[module])):
            if imported == module:
                continue
            assert state.get(imported) != 1, " -> ".join([*trail, module, imported])
            if imported not in state:
                visit(imported, [*trail, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


IN_CLUSTER_LAYERS = ("lifecycle", "serving", "observability")
LAYER_PACKAGES = ("cluster", "storage", "data", *IN_CLUSTER_LAYERS)


def test_in_cluster_layers_import_only_their_own_modules_and_the_shared_ones() -> None:
    """A helper one layer needs from another belongs beside kube.py: an in-cluster layer that imports an
    infra layer's (or a sibling layer's) module would move with it, and so would its plan."""
    for layer in IN_CLUSTER_LAYERS:
        for path in (ROOT / "components" / layer).rglob("*.py"):
            foreign = {
                i
                for i in _imports(path)
                if i.split(".")[:2][0] == "components"
                and len(i.split(".")) > 1
                and i.split(".")[1] in LAYER_PACKAGES
                and i.split(".")[1] != layer
            }
            assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"
