"""What a stack's pods request while idle: the CPU and memory the scheduler reserves before anyone trains,
serves or opens a notebook. `plan` prints the sum for every stack, the cost model places it on the node
pools (cost.py), and the local stack's laptop budget is held against it (tests/test_local_budget.py).

Where each figure comes from, most exact first:
- **rendered charts**: a Helm release whose pinned package is at hand (`../shared/charts`) is rendered with
  the values Helm receives (mlplatform/manifests.py) and its Deployments, StatefulSets, DaemonSets and Pods
  read as the scheduler sees them: every container the chart makes, including the ones the values never
  mention (sidecars, config reloaders), and none it does not make (a KubernetesExecutor's `workers`), hook
  Jobs left out (they finish);
- **Helm values**: a release without a package (jupyterhub, flink-kubernetes-operator, the newly pinned
  operators) is read from its values: each `resources.requests` with the nearest replica count and node
  selector around it;
- **pod specs** the program declares itself (Deployments, StatefulSets, DaemonSets, Pods);
- **operator-managed pods**, from their custom resources and the operators' documented defaults (each
  handler below cites its source): CloudNativePG `Cluster`, Strimzi `Kafka` + `KafkaNodePool`, KServe
  `InferenceService`, KubeRay `RayCluster`, Flink `FlinkDeployment`, Knative `KnativeServing`, and the
  Prometheus Operator's `Prometheus` and `Alertmanager` (from kube-prometheus-stack as rendered).

Istio injects no sidecar into the platform's pods (components/serving/istio.py sets istiod's
`global.proxy.autoInject: disabled`; the ingress gateway's proxy is the gateway chart's own container and is
counted with it), so there is no per-pod sidecar to add. Jobs and CronJobs run to completion and are not idle.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from components.contracts import ACCELERATOR_LABEL, POOL_LABEL
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")


@dataclass(frozen=True)
class PodRequest:
    """Requests of one pod (or of one container group of it), with how many of it run idle and where."""

    pool: str | None  # None: no pool selector (the scheduler may use any pool; counted on the system pool)
    cpu: float
    memory_gib: float
    replicas: float
    # a DaemonSet-like agent: one on every node (pool None) or on every node of `pool`; not placed
    per_node: bool
    namespace: str = ""
    source: str = ""  # the plan resource it comes from
    origin: str = "values"  # rendered | values | spec | operator

    @property
    def total_cpu(self) -> float:
        return self.cpu * self.replicas

    @property
    def total_memory_gib(self) -> float:
        return self.memory_gib * self.replicas


# -- quantities ------------------------------------------------------------------------------------


def gib(quantity: Any) -> float:
    """A Kubernetes memory quantity (Ki, Mi, Gi, Ti, k, M, G or bytes) in GiB; Flink's `1536m` is MiB."""
    text = str(quantity)
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 1024, "k": 1e3 / 2**30, "G": 1e9 / 2**30, "M": 1e6 / 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text) / 2**30


def cpu(quantity: Any) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _num(value: Any, default: float = 0) -> float:
    return float(value) if value is not None else default


def flink_gib(size: Any) -> float:
    """A Flink memory size (`1536m`, `2g`, `1024mb`) in GiB: Flink's units are binary whatever their spelling
    (apache/flink flink-core MemorySize.MemoryUnit: b, k/kb, m/mb, g/gb, t/tb)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", str(size))
    if match is None:
        raise ValueError(f"not a Flink memory size: {size!r}")
    unit = match[2].lower().rstrip("b") or "b"
    power = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit[0]]
    return float(match[1]) * 1024**power / 2**30


def _requests(resources: Any) -> tuple[float, float]:
    requests = (resources or {}).get("requests") if isinstance(resources, Mapping) else None
    if not isinstance(requests, Mapping):
        return 0.0, 0.0
    return cpu(requests.get("cpu", 0)), gib(requests.get("memory", 0))


def pod_totals(spec: Mapping[str, Any]) -> tuple[float, float]:
    """A pod's effective requests, as the scheduler computes them: its containers plus its sidecar init
    containers (restartPolicy Always), or its largest ordinary init container if that is more
    (https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers)."""
    c = m = 0.0
    for container in spec.get("containers") or []:
        dc, dm = _requests(container.get("resources"))
        c, m = c + dc, m + dm
    init_c = init_m = 0.0
    for container in spec.get("initContainers") or []:
        dc, dm = _requests(container.get("resources"))
        if container.get("restartPolicy") == "Always":
            c, m = c + dc, m + dm
        else:
            init_c, init_m = max(init_c, dc), max(init_m, dm)
    return max(c, init_c), max(m, init_m)


# -- where a pod runs ------------------------------------------------------------------------------------


def pool_of(node: Any) -> str | None:
    """The node pool a pod spec or custom resource selects: a nodeSelector on the pool label, or a required
    node affinity `In` one pool, wherever it sits in `node`."""
    if isinstance(node, list):
        for item in node:
            found = pool_of(item)
            if found is not None:
                return found
        return None
    if not isinstance(node, Mapping):
        return None
    selector = node.get("nodeSelector")
    if isinstance(selector, Mapping) and POOL_LABEL in selector:
        return str(selector[POOL_LABEL])
    if node.get("key") == POOL_LABEL and node.get("operator") == "In" and len(node.get("values") or []) == 1:
        return str(node["values"][0])
    for child in node.values():
        found = pool_of(child)
        if found is not None:
            return found
    return None


def _everywhere(spec: Mapping[str, Any]) -> bool:
    return {"operator": "Exists"} in (spec.get("tolerations") or [])


def _gpu_only(spec: Mapping[str, Any]) -> bool:
    """A pod that selects GPU nodes by their feature labels (nvidia.com/*, the pool contracts' accelerator
    label: components/contracts.py gpu_node_placement), in a nodeSelector or a required node affinity. A
    DaemonSet like that (device plugin, DCGM exporter) runs on no node while idle: GPU pools scale from zero."""

    def keys(node: Any) -> Iterator[str]:
        if isinstance(node, list):
            for item in node:
                yield from keys(item)
        elif isinstance(node, Mapping):
            if isinstance(node.get("key"), str):
                yield node["key"]
            for child in node.values():
                yield from keys(child)

    selector = list((spec.get("nodeSelector") or {}).keys())
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    return any(k.startswith("nvidia.com/") or k == ACCELERATOR_LABEL for k in [*selector, *keys(required)])


# -- Helm values (releases without a package) -------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """What is in force at a place in a values document or pod spec: the nearest node selector's pool,
    the nearest replica count, and whether a parent tolerates every taint (a per-node agent)."""

    pool: str | None = None
    replicas: float = 1
    per_node: bool = False


def mappings(node: Any, where: Where = Where()) -> Iterator[tuple[Mapping[str, Any], Where]]:
    """Every mapping in `node`, with what is in force there."""
    if isinstance(node, list):
        for item in node:
            yield from mappings(item, where)
        return
    if not isinstance(node, dict):
        return
    selector = node.get("nodeSelector")
    if isinstance(selector, dict) and POOL_LABEL in selector:
        where = replace(where, pool=str(selector[POOL_LABEL]))
    for key in ("replicas", "replicaCount", "minReplicas"):
        if isinstance(node.get(key), int | float) and not isinstance(node.get(key), bool):
            where = replace(where, replicas=float(node[key]))
            break
    if node.get("tolerations") == [{"operator": "Exists"}]:
        where = replace(where, per_node=True)
    yield node, where
    for child in node.values():
        yield from mappings(child, where)


def from_values(values: Any, where: Where = Where(), **label: str) -> Iterator[PodRequest]:
    """Each `resources.requests` in a values document (or pod spec), with what is in force around it."""
    for node, here in mappings(values, where):
        resources = node.get("resources")
        requests = resources.get("requests") if isinstance(resources, dict) else None
        if isinstance(requests, dict) and ("cpu" in requests or "memory" in requests):
            c, m = cpu(requests.get("cpu", 0)), gib(requests.get("memory", 0))
            yield PodRequest(here.pool, c, m, here.replicas, here.per_node, **label)


# -- workloads as Kubernetes objects (rendered charts, the program's own) ---------------------------------


def from_objects(objects: Iterable[Mapping[str, Any]], source: str, origin: str) -> Iterator[PodRequest]:
    """The pods a list of Kubernetes objects keeps running: workloads (hook Jobs and Jobs excluded) and the
    operator-managed custom resources among them."""
    for obj in objects:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        if (meta.get("annotations") or {}).get("helm.sh/hook"):
            continue
        if kind in WORKLOAD_KINDS:
            spec = obj.get("spec") or {}
            pod = spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
            c, m = pod_totals(pod)
            if not (c or m):
                continue
            if kind == "DaemonSet":
                if _gpu_only(pod):
                    continue
                pool = pool_of(pod.get("nodeSelector") or {}) or pool_of(pod.get("affinity") or {})
                yield PodRequest(pool, c, m, 1, True, namespace, source, origin)
            else:
                replicas = _num(spec.get("replicas"), 1) if kind != "Pod" else 1
                yield PodRequest(pool_of(pod), c, m, replicas, _everywhere(pod), namespace, source, origin)
        else:
            handler = OPERATOR_KINDS.get(str(kind))
            if handler is not None:
                for r in handler(obj):
                    yield replace(r, namespace=namespace, source=source, origin="operator")


# -- operator-managed pods ------------------------------------------------------------------------------


def _one(pool: str | None, resources: Any, replicas: float) -> Iterator[PodRequest]:
    c, m = _requests(resources)
    if (c or m) and replicas:
        yield PodRequest(pool, c, m, replicas, False)


def cnpg_cluster(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """CloudNativePG `Cluster`: `spec.instances` pods (the primary and its replicas), each with
    `spec.resources` on its postgres container (the CRD's `resources`, ../shared/upstream/crds, CNPG 0.29.0);
    an empty one counts nothing here, and the guardrails refuse a container without requests anyway."""
    spec = obj.get("spec") or {}
    yield from _one(pool_of(spec.get("affinity") or {}), spec.get("resources"), _num(spec.get("instances"), 1))


def strimzi_node_pool(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """Strimzi `KafkaNodePool`: `spec.replicas` Kafka nodes, each with `spec.resources`. Strimzi sets no
    default requests on its operands ("By default, the Strimzi Cluster Operator does not specify CPU and
    memory resource requests and limits for its deployed operands", strimzi.io/docs/operators/latest/
    deploying#config-resources-str), so a pool without resources counts nothing, and the guardrails refuse
    a container without requests anyway."""
    spec = obj.get("spec") or {}
    yield from _one(pool_of(spec.get("template") or {}), spec.get("resources"), _num(spec.get("replicas")))


def strimzi_kafka(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """Strimzi `Kafka` (KRaft, brokers in KafkaNodePools): the Entity Operator pod, one container per
    operator it runs (`spec.entityOperator.topicOperator` / `.userOperator`, each with its `resources`;
    no default requests, as above), and Cruise Control and Kafka Exporter when declared."""
    spec = obj.get("spec") or {}
    entity = spec.get("entityOperator")
    if isinstance(entity, Mapping):
        pool = pool_of(entity.get("template") or {})
        c = m = 0.0
        for name in ("topicOperator", "userOperator"):
            if isinstance(entity.get(name), Mapping):
                dc, dm = _requests(entity[name].get("resources"))
                c, m = c + dc, m + dm
        if c or m:
            yield PodRequest(pool, c, m, 1, False)
    for name in ("cruiseControl", "kafkaExporter"):
        part = spec.get(name)
        if isinstance(part, Mapping):
            yield from _one(pool_of(part.get("template") or {}), part.get("resources"), 1)


def flink_deployment(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """Flink `FlinkDeployment` (application mode): `jobManager.replicas` JobManagers and, for the job's
    parallelism, ceil(parallelism / taskmanager.numberOfTaskSlots) TaskManagers unless `taskManager.replicas`
    says otherwise, each pod requesting its `resource` (cpu cores, memory as Flink's process size; the
    operator sets requests from them: flink-kubernetes-operator docs, "Resource management" / the
    FlinkDeployment reference, JobManagerSpec/TaskManagerSpec `resource`)."""
    spec = obj.get("spec") or {}
    pool = pool_of(spec.get("podTemplate") or {})
    conf = spec.get("flinkConfiguration") or {}
    for part in ("jobManager", "taskManager"):
        section = spec.get(part) or {}
        res = section.get("resource") or {}
        c, m = _num(res.get("cpu")), flink_gib(res.get("memory", 0))
        if part == "jobManager":
            replicas = _num(section.get("replicas"), 1)
        elif section.get("replicas") is not None:
            replicas = _num(section["replicas"])
        else:
            slots = _num(conf.get("taskmanager.numberOfTaskSlots"), 1)
            parallelism = _num((spec.get("job") or {}).get("parallelism"), 1)
            replicas = math.ceil(parallelism / slots)
        where = pool_of(section.get("podTemplate") or {}) or pool
        if c or m:
            yield PodRequest(where, c, m, replicas, False)


def inference_service(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """KServe `InferenceService`: the predictor's (and transformer's) `minReplicas` pods, 1 when unset
    (kserve pkg/constants/constants.go `DefaultMinReplicas`); a component scaled to zero runs nothing while
    idle. Knative's queue-proxy adds 25m CPU per pod (config-deployment `queue-sidecar-cpu-request`, "if
    omitted, a default value (currently 25m)", in knative/operator cmd/operator/kodata/knative-serving/1.22.1/
    2-serving-core.yaml; its memory request applies only with `queueproxy.resource-defaults` enabled)."""
    spec = obj.get("spec") or {}
    for part in ("predictor", "transformer", "explainer"):
        section = spec.get(part)
        if not isinstance(section, Mapping):
            continue
        replicas = _num(section.get("minReplicas"), 1)
        c = m = 0.0
        containers = list(section.get("containers") or [])
        model = section.get("model")
        if isinstance(model, Mapping):
            containers.append(model)
        for container in containers:
            dc, dm = _requests(container.get("resources"))
            c, m = c + dc, m + dm
        if replicas and (c or m):
            yield PodRequest(pool_of(section), c + 0.025, m, replicas, False)


def ray_cluster(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """KubeRay `RayCluster`: the head pod, the autoscaler sidecar KubeRay adds to it when in-tree
    autoscaling is on (500m CPU / 512Mi when `autoscalerOptions.resources` is unset, the figures KubeRay's
    samples give as its default: ray-project/kuberay ray-operator/config/samples/ray-cluster.autoscaler.yaml;
    the program always sets them, components/lifecycle/ray.py), and each worker group's `minReplicas`."""
    spec = obj.get("spec") or {}
    head = spec["headGroupSpec"]["template"]["spec"]
    c, m = pod_totals(head)
    if spec.get("enableInTreeAutoscaling"):
        default = {"requests": {"cpu": "500m", "memory": "512Mi"}}
        dc, dm = _requests((spec.get("autoscalerOptions") or {}).get("resources") or default)
        c, m = c + dc, m + dm
    yield PodRequest(pool_of(head), c, m, 1, False)
    for group in spec.get("workerGroupSpecs", []):
        pod = group["template"]["spec"]
        wc, wm = pod_totals(pod)
        if _num(group.get("minReplicas")):
            yield PodRequest(pool_of(pod), wc, wm, _num(group.get("minReplicas")), False)


# Knative Serving's control plane as its operator installs it for the Serving versions the program pins
# (mlplatform/pins.py KNATIVE_SERVING_VERSIONS: 1.21.3, 1.22.1): container requests from the manifests the
# operator ships, knative/operator cmd/operator/kodata/knative-serving/1.22.1/2-serving-core.yaml (activator
# 300m/60Mi, autoscaler, controller and webhook 100m/100Mi each) and kodata/ingress/1.22/istio/net-istio.yaml
# (net-istio-controller 30m/40Mi, net-istio-webhook 20m/20Mi). `spec.high-availability.replicas` sets every
# one of these Deployments' replicas, and the activator's and webhook's HPA minimum
# (knative/operator pkg/reconciler/common/ha.go HighAvailabilityTransform); `spec.workloads[].resources`
# overrides a container's requests.
KNATIVE_SERVING_DEFAULTS: dict[str, tuple[str, str, str]] = {
    # deployment: (container, cpu, memory)
    "activator": ("activator", "300m", "60Mi"),
    "autoscaler": ("autoscaler", "100m", "100Mi"),
    "controller": ("controller", "100m", "100Mi"),
    "webhook": ("webhook", "100m", "100Mi"),
    "net-istio-controller": ("controller", "30m", "40Mi"),
    "net-istio-webhook": ("webhook", "20m", "20Mi"),
}


def knative_serving(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    spec = obj.get("spec") or {}
    replicas = _num((spec.get("high-availability") or {}).get("replicas"), 1)
    overrides = {w.get("name"): w for w in spec.get("workloads") or [] if isinstance(w, Mapping)}
    for deployment, (container, c, m) in KNATIVE_SERVING_DEFAULTS.items():
        workload = overrides.get(deployment) or {}
        resources = {"requests": {"cpu": c, "memory": m}}
        for entry in workload.get("resources") or []:
            if entry.get("container") == container and entry.get("requests"):
                resources = {"requests": {"cpu": c, "memory": m} | dict(entry["requests"])}
        count = _num(workload.get("replicas"), replicas)
        yield from _one(pool_of(workload), resources, count)


def prometheus_operated(obj: Mapping[str, Any]) -> Iterator[PodRequest]:
    """Prometheus Operator `Prometheus` / `Alertmanager`: `spec.replicas` pods (default 1) with
    `spec.resources`; the config-reloader sidecar's requests come from the operator's flags, which
    kube-prometheus-stack sets to 0 unless configured (its templates/prometheus-operator/deployment.yaml
    `--config-reloader-cpu-request`), so it adds nothing here."""
    spec = obj.get("spec") or {}
    yield from _one(pool_of(spec), spec.get("resources"), _num(spec.get("replicas"), 1))


OPERATOR_KINDS = {
    "Cluster": cnpg_cluster,  # postgresql.cnpg.io
    "KafkaNodePool": strimzi_node_pool,
    "Kafka": strimzi_kafka,
    "FlinkDeployment": flink_deployment,
    "InferenceService": inference_service,
    "RayCluster": ray_cluster,
    "KnativeServing": knative_serving,
    "Prometheus": prometheus_operated,
    "Alertmanager": prometheus_operated,
}
# the API groups of those kinds, so that a plan resource is matched by group and kind (a CNPG `Cluster`,
# never an EKS or GKE one)
OPERATOR_GROUPS = {
    "Cluster": "postgresql.cnpg.io",
    "KafkaNodePool": "kafka.strimzi.io",
    "Kafka": "kafka.strimzi.io",
    "FlinkDeployment": "flink.apache.org",
    "InferenceService": "serving.kserve.io",
    "RayCluster": "ray.io",
    "KnativeServing": "operator.knative.dev",
    "Prometheus": "monitoring.coreos.com",
    "Alertmanager": "monitoring.coreos.com",
}


def _plan_object(r: Registration) -> dict[str, Any] | None:
    """A plan registration of a Kubernetes object as the object it declares (kind, metadata, spec)."""
    if not r.type.startswith("kubernetes:") or r.type in HELM_TYPES:
        return None
    group_version, kind = r.type.split(":")[1], r.type.split(":")[2]
    group = group_version.rsplit("/", 1)[0] if "/" in group_version else ""
    if kind in OPERATOR_KINDS and group != OPERATOR_GROUPS[kind]:
        return None
    if kind not in OPERATOR_KINDS and kind not in WORKLOAD_KINDS:
        return None
    metadata = r.inputs.get("metadata") or {}
    return {"kind": kind, "metadata": metadata, "spec": r.inputs.get("spec") or {}}


# The Barman Cloud plugin (components/data/in_cluster/backups.py) injects a sidecar into every instance pod of a
# Cluster that names it in spec.plugins, with the resources of the ObjectStore the entry's barmanObjectName
# names (spec.instanceSidecarConfiguration.resources; plugin-barman-cloud v0.13.0 internal/cnpgi/operator/
# lifecycle.go: sidecarTemplate.Resources = config.resources, a restartPolicy Always init container, so the
# scheduler adds it to the pod's requests). The plugin entry may come from a server-side patch of the Cluster.
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
CNPG_CLUSTER_TYPE = "kubernetes:postgresql.cnpg.io/v1:Cluster"
CNPG_CLUSTER_PATCH_TYPE = "kubernetes:postgresql.cnpg.io/v1:ClusterPatch"
OBJECT_STORE_TYPE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"


def _key(r: Registration) -> tuple[str, str]:
    meta = r.inputs.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def barman_sidecars(doc: PlanDocument) -> Iterator[PodRequest]:
    """The plugin's sidecar in each instance pod of each Cluster that archives through it, one request per
    Cluster and ObjectStore with the Cluster's instances as replicas."""
    stores = {_key(r): r for r in doc.by_type(OBJECT_STORE_TYPE)}
    patches = doc.by_type(CNPG_CLUSTER_PATCH_TYPE)
    for cluster in doc.by_type(CNPG_CLUSTER_TYPE):
        spec = cluster.inputs.get("spec") or {}
        entries = list(spec.get("plugins") or [])
        for patch in (p for p in patches if _key(p) == _key(cluster)):
            entries += (patch.inputs.get("spec") or {}).get("plugins") or []
        namespace = _key(cluster)[0]
        for entry in entries:
            if (entry or {}).get("name") != BARMAN_PLUGIN:
                continue
            store = stores.get((namespace, str((entry.get("parameters") or {}).get("barmanObjectName"))))
            if store is None:
                continue
            sidecar = (store.inputs.get("spec") or {}).get("instanceSidecarConfiguration") or {}
            pool = pool_of(spec.get("affinity") or {})
            for r in _one(pool, sidecar.get("resources"), _num(spec.get("instances"), 1)):
                # counted under the ObjectStore, which declares the sidecar's resources
                yield replace(r, namespace=namespace, source=store.name, origin="operator")


# -- the whole stack ------------------------------------------------------------------------------------


def idle_requests(
    doc: PlanDocument, rendered: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> list[PodRequest]:
    """Every idle pod's requests in the plan. `rendered` maps a Helm release's resource name to its objects
    as rendered (`render_releases`); releases not in it are read from their values."""
    rendered = rendered or {}
    out: list[PodRequest] = []
    for r in doc.resources:
        if r.type in HELM_TYPES:
            namespace = str(r.inputs.get("namespace") or "default")
            if r.name in rendered:
                out += from_objects(rendered[r.name], r.name, "rendered")
            elif r.inputs.get("values"):
                out += from_values(r.inputs["values"], namespace=namespace, source=r.name, origin="values")
            continue
        obj = _plan_object(r)
        if obj is not None:
            out += from_objects([obj], r.name, "spec")
    return out + list(barman_sidecars(doc))


def render_releases(doc: PlanDocument, charts: Path | None) -> dict[str, list[dict[str, Any]]]:
    """The plan's Helm releases whose pinned package is in `charts`, rendered offline with the values Helm
    receives (no checks: `python -m mlplatform render` does those). Releases without a package are left to
    their values. A few seconds per stack (the parsed charts are cached per process)."""
    if charts is None or not charts.is_dir():
        return {}
    try:
        from mlplatform.manifests import ChartNotFound, find_chart, render_release
    except ImportError:  # helm-python absent: values only
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in doc.resources:
        if r.type not in HELM_TYPES:
            continue
        try:
            source = find_chart(charts, str(r.inputs["chart"]), str(r.inputs["version"]))
        except ChartNotFound:
            continue
        out[r.name] = render_release(r, source).objects
    return out


# -- the summary `plan` prints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestSummary:
    pods: list[PodRequest]
    layers: dict[str, str]  # resource name -> layer
    nodes: int  # nodes the per-node agents run on (per pool when the agent names one)
    pool_nodes: Mapping[str, int]

    def agents(self) -> tuple[float, float]:
        """What the per-node agents request over every node they run on."""
        c = m = 0.0
        for p in self.pods:
            if p.per_node:
                n = self.nodes if p.pool is None else self.pool_nodes.get(p.pool, 0)
                c, m = c + p.cpu * n, m + p.memory_gib * n
        return c, m

    @property
    def cpu(self) -> float:
        return sum(p.total_cpu for p in self.pods if not p.per_node) + self.agents()[0]

    @property
    def memory_gib(self) -> float:
        return sum(p.total_memory_gib for p in self.pods if not p.per_node) + self.agents()[1]

    def by(self, key: str) -> dict[str, tuple[float, float]]:
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for p in self.pods:
            if p.per_node:
                continue
            name = self.layers.get(p.source, "stack") if key == "layer" else (p.namespace or "default")
            totals[name][0] += p.total_cpu
            totals[name][1] += p.total_memory_gib
        return {k: (v[0], v[1]) for k, v in sorted(totals.items(), key=lambda kv: -kv[1][0])}

    def describe(self) -> str:
        agent_cpu, agent_mem = self.agents()
        origins = sorted({p.origin for p in self.pods})
        out = [
            f"Requests while idle: {self.cpu:.2f} vCPU, {self.memory_gib:.1f} GiB "
            f"(per-node agents {agent_cpu:.2f} vCPU, {agent_mem:.2f} GiB over {self.nodes} node(s); "
            f"from {', '.join(origins)})"
        ]
        for layer, (c, m) in self.by("layer").items():
            out.append(f"  {layer:<14} {c:6.2f} vCPU {m:6.2f} GiB")
        spaces = ", ".join(f"{ns} {c:.2f}/{m:.1f}" for ns, (c, m) in self.by("namespace").items())
        out.append(f"  per namespace (vCPU/GiB): {spaces}")
        return "\n".join(out)


def layer_of(doc: PlanDocument) -> dict[str, str]:
    """Each resource name's layer (the type name of its top-level component), for the per-layer lines."""
    index = {r.urn: r for r in doc.resources}
    out = {}
    for r in doc.resources:
        top = r
        while top.parent != doc.stack_urn and top.parent in index:
            top = index[top.parent]
        out[r.name] = top.type.split(":")[1] if top.type.startswith("mlplatform:") else "stack"
    return out


def summarize(
    doc: PlanDocument,
    rendered: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    pool_nodes: Mapping[str, int] | None = None,
) -> RequestSummary:
    """The stack's idle requests. Per-node agents count once per node: `pool_nodes` (the nodes each pool
    runs once the pods are placed, from the cost model), else one node (the local quickstart's cluster)."""
    pool_nodes = dict(pool_nodes or {})
    nodes = sum(pool_nodes.values()) if pool_nodes else 1
    return RequestSummary(idle_requests(doc, rendered), layer_of(doc), nodes, pool_nodes)
