"""serving.models[] and serving.graphs[] (mlplatform/config/serving.py, components/serving/models.py): the
config's rules, and what the plan of a stack that serves models holds, checked the way the cluster checks it.

The stacks here are two of the project's own (dev: AWS, one zone; gcp-prod: GCP, three zones) with the
commented `mlplatform:serving` example of their Pulumi.<stack>.yaml uncommented: two models (one with a
Feast transformer, one on a GPU pool) and a graph of each kind. Their InferenceServices, InferenceGraphs and
the ClusterStorageContainer are validated against the pinned CRDs (unknown fields rejected, as the API server
would drop them) and KServe's own webhook rules; the pods KServe and Knative make from them (the predictor
with the storage initializer KServe injects from the ClusterStorageContainer, the transformer, the graph's
router) are rebuilt as tests/test_admission.py does and checked at `model-serving`'s Pod Security level; and
each connection they make is decided against the stack's NetworkPolicies.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.contracts import GPU_RESOURCE, Namespace
from components.guardrails import FEATURE_SERVER_PORT, LOCAL_GATEWAY_PORT, MLFLOW_PORT, NAME_LABEL, POD_SECURITY, flow
from components.serving import PODS_PER_ZONE, inference_defaults
from components.serving import kserve as kserve_module
from components.serving.models import (
    MLFLOW_FORMAT,
    MODEL_URI_PREFIXES,
    PROTOCOL,
    PROTOCOL_ENV,
    STORAGE_CONTAINER,
    TRANSFORMER_ENV,
    TRANSFORMER_UID,
)
from mlplatform.config import ConfigError, load_config, namespace_values, read_stack_file
from mlplatform.config import serving as serving_config
from mlplatform.connections import _gateway, addresses
from mlplatform.netpol import Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from mlplatform.podsecurity import check_pod
from tests.support.crds import plain, python_patterns, spec_schema, strict
from tests.support.graph import depends, helm_release
from tests.test_admission import (
    KSERVE_COMPONENT_FIELDS,
    RUNTIME_ONLY_FIELDS,
    features,
    flag_on,
    knative_field_flags,
    kserve_objects,
    merge,
    revision_pod,
    runtimes,
    storage_initializer,
)

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")
PLANNED = ("dev", "gcp-prod")  # one per cloud and per HA shape: a synthesis takes seconds
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
IG = "kubernetes:serving.kserve.io/v1alpha1:InferenceGraph"
CSC = "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer"
RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
KSERVE_CRD_CHART = ROOT.parent / "shared" / "charts" / "kserve-crd-v0.20.0.tgz"
TRANSFORMER_DIR = ROOT / "images" / "feast-transformer"
LEVEL = POD_SECURITY[Namespace.SERVING]


# -- the stacks' commented example --------------------------------------------------------------------------


def example(stack: str) -> dict[str, Any]:
    """The `mlplatform:serving` block commented in Pulumi.<stack>.yaml, uncommented."""
    lines = (ROOT / f"Pulumi.{stack}.yaml").read_text().splitlines()
    start = lines.index("  #   mlplatform:serving:")
    block = []
    for line in lines[start:]:
        if not line.startswith("  #   "):
            break
        block.append(line[len("  #   ") :])
    return yaml.safe_load("\n".join(block))["mlplatform:serving"]


def serving_stack(stack: str) -> dict[str, Any]:
    return {**read_stack_file(PROJECT_DIR, stack), "mlplatform:serving": example(stack)}


_plans: dict[str, PlanDocument] = {}


def models_plan(stack: str) -> PlanDocument:
    """The stack's plan with its example uncommented, synthesized once per session."""
    if not (TRANSFORMER_DIR / "Dockerfile").is_file():
        pytest.skip("images/feast-transformer has no Dockerfile yet: the example's transformer has no image")
    if stack not in _plans:
        _plans[stack] = synthesize(stack, config_map=serving_stack(stack))
    return _plans[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_carries_a_valid_commented_example(stack: str) -> None:
    cfg = load_config(namespace_values(serving_stack(stack)), stack)
    models, graphs = cfg.serving.models, cfg.serving.graphs
    assert len(models) == 2 and any(m.transformer for m in models) and any(m.node_pool != "cpu" for m in models)
    assert {g.kind for g in graphs} == {"sequence", "ensemble"}
    # and it stays a comment: a stack serves nothing until its owner says what
    assert load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).serving.models == []


# -- config rules -------------------------------------------------------------------------------------------


def model(**over: object) -> dict[str, object]:
    return {"name": "churn", "registeredModel": "churn-classifier", "alias": "production", **over}


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw, "t")
    return [p.render() for p in info.value.problems]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


DEV = {"profile": "dev"}  # one GPU pool, `gpu` (the dev profile's)
PROD = {"profile": "prod", "cluster": {"publicAccessCidrs": ["203.0.113.0/24"]}}
FEATURES = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": "driver_id"}}


def serving(*models: dict, graphs: tuple[dict, ...] = ()) -> dict:
    return {"serving": {"models": list(models), "graphs": list(graphs)}}


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        # the key path, its value, and what is allowed there
        (DEV | serving(model(pool="gpu-x")), "mlplatform:serving.models[0].pool = 'gpu-x'", "one of: cpu, gpu"),
        (DEV | serving(model(runtime="tgi")), "mlplatform:serving.models[0].runtime = 'tgi'", "mlflow-3, triton-gpu"),
        (DEV | serving(model(version=3)), "mlplatform:serving.models[0].version = 3", "exactly one of alias"),
        (DEV | serving({"name": "a", "registeredModel": "b"}), "mlplatform:serving.models[0].version", "alias"),
        (DEV | serving(model(alias="latest")), "mlplatform:serving.models[0].alias = 'latest'", "reserves"),
        (DEV | serving(model(name="Churn")), "mlplatform:serving.models[0].name = 'Churn'", "DNS label"),
        (DEV | serving(model(name="m" * 38)), "mlplatform:serving.models[0].name", "at most 37"),
        (DEV | serving(model(registeredModel="a/b")), "mlplatform:serving.models[0].registeredModel", "pattern"),
        (
            DEV | serving(model(runtime="triton-gpu")),
            "mlplatform:serving.models[0].runtime = 'triton-gpu'",
            "modelFormat, one of: tensorrt, tensorflow, onnx, pytorch, triton",
        ),
        (
            DEV | serving(model(runtime="triton-gpu", modelFormat="onnx", pool="cpu")),
            "mlplatform:serving.models[0].pool = 'cpu'",
            "runs on GPU pool gpu; set pool: gpu",
        ),
        (DEV | serving(model(modelFormat="onnx")), "mlplatform:serving.models[0].runtime = 'mlflow-3'", "Triton"),
        (
            DEV | serving(model(minReplicas=3, maxReplicas=2)),
            "mlplatform:serving.models[0].maxReplicas = 2",
            ">= minReplicas (3)",
        ),
        (
            PROD | serving(model(maxReplicas=4)),
            "mlplatform:serving.models[0].maxReplicas = 4",
            "this stack defaults to 9",
        ),
        (DEV | serving(model(canaryPercent=100)), "mlplatform:serving.models[0].canaryPercent = 100", "less than"),
        (
            DEV | serving(model(canaryWatchSeconds=120, canaryCheckSeconds=300)),
            "mlplatform:serving.models[0].canaryCheckSeconds = 300",
            "<= canaryWatchSeconds (120)",
        ),
        (
            DEV | serving(model(canaryWatchSeconds=7200)),
            "mlplatform:serving.models[0].canaryWatchSeconds = 7200",
            "less than or equal to 3600",
        ),
        (
            DEV | serving(model(transformer={**FEATURES, "features": ["conv_rate"]})),
            "mlplatform:serving.models[0].transformer.features[0] = 'conv_rate'",
            "<feature view>:<feature>",
        ),
        (
            DEV | serving(model(transformer={**FEATURES, "entities": {"driver_id": "driver id"}})),
            "mlplatform:serving.models[0].transformer.entities.driver_id = 'driver id'",
            "Feast join key",
        ),
        (
            DEV | serving(model(transformer={**FEATURES, "timeoutSeconds": {"featureServer": 0}})),
            "mlplatform:serving.models[0].transformer.timeoutSeconds.featureServer = 0",
            "greater than 0",
        ),
        (
            DEV | {"services": {"feast": {"enabled": False}}} | serving(model(transformer=FEATURES)),
            "mlplatform:serving.models[0].transformer",
            "services.feast.enabled: true",
        ),
        (
            DEV | {"services": {"kserve": {"enabled": False}}} | serving(model()),
            "mlplatform:serving.models",
            "services.kserve.enabled: true",
        ),
        (DEV | serving(model(), model()), "mlplatform:serving.models", "repeated: churn"),
        (
            DEV | serving(model(), graphs=({"name": "g", "kind": "sequence", "steps": ["churn", "fraud"]},)),
            "mlplatform:serving.graphs[0].steps[1] = 'fraud'",
            "no model of this name in serving.models; models: churn",
        ),
        (
            DEV
            | serving(model(), model(name="b"), graphs=({"name": "g", "kind": "pipeline", "steps": ["churn", "b"]},)),
            "mlplatform:serving.graphs[0].kind = 'pipeline'",
            "'sequence' or 'ensemble'",
        ),
        (
            DEV | serving(model(), graphs=({"name": "g", "kind": "ensemble", "steps": ["churn"]},)),
            "mlplatform:serving.graphs[0].steps",
            "at least 2",
        ),
        (
            DEV
            | serving(
                model(), model(name="b"), graphs=({"name": "churn", "kind": "ensemble", "steps": ["churn", "b"]},)
            ),
            "mlplatform:serving",
            "graph churn would take a name a model's services use",
        ),
        (
            PROD
            | serving(model(pool="gpu-small"))
            | {
                "cluster": {
                    "publicAccessCidrs": ["203.0.113.0/24"],
                    "gpuPools": [
                        {"name": "gpu-small", "machineType": "g6.xlarge", "accelerator": "nvidia-l4", "maxNodes": 4}
                    ],
                }
            },
            "mlplatform:serving.models[0]",
            "minReplicas (9, this stack's default: 3 pods per zone) is more than GPU pool gpu-small can hold: "
            "4 node(s) x 1 GPU unit(s) = 4",
        ),
    ],
)
def test_a_bad_serving_value_is_named_with_its_key_and_what_is_allowed(raw: dict, path: str, fragment: str) -> None:
    message = only(raw)
    assert message.startswith(path), message
    assert fragment in message, message


def test_an_unknown_serving_key_is_suggested() -> None:
    assert only(DEV | serving(model(pol="cpu"))) == (
        "mlplatform:serving.models[0].pol: unknown key; did you mean 'pool'?"
    )
    assert only(DEV | {"serving": {"model": []}}) == "mlplatform:serving.model: unknown key; did you mean 'models'?"


def test_serving_is_empty_by_default_and_a_model_needs_little() -> None:
    assert load_config(DEV, "t").serving.models == []
    [m] = load_config(DEV | serving(model(version=None)), "t").serving.models
    assert (m.runtime, m.node_pool, m.canary_percent, m.storage_uri) == (
        "mlflow-3",
        "cpu",
        10,
        "models:/churn-classifier@production",
    )
    [m] = load_config(
        DEV | serving(model(alias=None, version=7, runtime="triton-gpu", modelFormat="onnx")), "t"
    ).serving.models
    assert (m.node_pool, m.storage_uri) == ("gpu", "models:/churn-classifier/7")


def test_the_config_names_what_the_components_create() -> None:
    """The runtime names and the HA default the config validates against are the serving layer's own."""
    assert serving_config.MLFLOW_RUNTIME == kserve_module.MLFLOW_RUNTIME
    assert set(serving_config.TRITON_FORMATS) == {name for name, _ in kserve_module.TRITON_FORMATS}
    assert serving_config.PODS_PER_ZONE == PODS_PER_ZONE
    for zones, multi in ((2, False), (3, True), (4, True)):
        assert serving_config.default_min_replicas(zones, multi) == inference_defaults(zones, multi)["minReplicas"]


# -- the plan -----------------------------------------------------------------------------------------------


def _isvcs(doc: PlanDocument) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: plain(r.inputs) for r in doc.by_type(ISVC)}


def _graphs(doc: PlanDocument) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: plain(r.inputs) for r in doc.by_type(IG)}


def test_no_model_is_planned_without_config(plan) -> None:
    for stack in PLANNED:
        doc = plan(stack)
        assert not doc.by_type(ISVC) and not doc.by_type(IG)
        # the storage container is there all the same: the deployment DAG may pin `models:/` URIs
        assert len(doc.by_type(CSC)) == 1


@pytest.mark.parametrize("stack", PLANNED)
def test_each_configured_model_is_an_inference_service_as_configured(stack: str) -> None:
    doc = models_plan(stack)
    cfg = load_config(namespace_values(serving_stack(stack)), stack)
    isvcs = _isvcs(doc)
    assert set(isvcs) == {m.name for m in cfg.serving.models}
    account = doc.outputs["inferenceServiceAccount"]
    defaults = doc.outputs["inferenceServiceDefaults"]
    pools = pool_contracts(doc)
    for m in cfg.serving.models:
        isvc = isvcs[m.name]
        assert isvc["metadata"]["namespace"] == doc.outputs["inferenceNamespace"] == Namespace.SERVING.value
        predictor = isvc["spec"]["predictor"]
        assert predictor["serviceAccountName"] == account  # the read-only model-pull identity
        assert predictor["model"]["storageUri"] == m.storage_uri
        assert "canaryTrafficPercent" not in predictor  # the deployment DAG's, never the program's
        # the pool's contract: its selector, and tolerations for its taints
        labels, taints = pools[m.node_pool]
        assert predictor["nodeSelector"].items() <= labels.items()
        as_set = lambda items: {tuple(sorted(i.items())) for i in items}  # noqa: E731
        assert as_set(taints) == as_set(predictor.get("tolerations", []))
        gpu = m.node_pool != "cpu"
        assert (predictor["model"].get("resources", {}).get("requests", {}).get(GPU_RESOURCE) == "1") is gpu
        # replicas: the config's, else the stack's inference defaults; the zone spread where there is one
        low = m.min_replicas if m.min_replicas is not None else defaults["minReplicas"]
        assert predictor["minReplicas"] == low and predictor["maxReplicas"] >= max(low, 1)
        assert predictor.get("topologySpreadConstraints", []) == defaults.get("topologySpreadConstraints", [])
        assert ("transformer" in isvc["spec"]) is (m.transformer is not None)


def pool_contracts(doc: PlanDocument) -> dict[str, tuple[dict[str, str], list[dict[str, str]]]]:
    """Each node pool as the cluster layer plans it (EKS node groups, GKE node pools): its node labels and the
    tolerations its taints call for, which is what a pod placed there must select and tolerate."""
    effects = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
    found = {}
    for r in [*doc.by_type("aws:eks/nodeGroup:NodeGroup"), *doc.by_type("gcp:container/nodePool:NodePool")]:
        node = r.inputs.get("nodeConfig") or r.inputs
        labels = node.get("labels") or {}
        if "mlplatform.io/pool" in labels:
            tolerations = [
                {
                    "key": t["key"],
                    "operator": "Equal",
                    "value": t["value"],
                    "effect": effects.get(t["effect"], t["effect"]),
                }
                for t in node.get("taints") or []
            ]
            found[labels["mlplatform.io/pool"]] = (labels, tolerations)
    return found


@pytest.mark.parametrize("stack", PLANNED)
def test_the_deployment_dag_owns_storage_uri_and_canary_after_creation(stack: str) -> None:
    """ignore_changes on exactly the two fields the DAG applies (dags/mlplatform_deploy/clients.py), so a
    DAG-pinned artifact and a canary in progress survive `pulumi up` (components/serving/models.py says how
    pulumi-kubernetes treats them under server-side apply)."""
    for r in models_plan(stack).by_type(ISVC):
        assert sorted(r.ignore_changes) == ["spec.predictor.canaryTrafficPercent", "spec.predictor.model.storageUri"]
    dag = (ROOT / "dags" / "mlplatform_deploy" / "clients.py").read_text()
    if "canaryTrafficPercent" in dag:  # the DAG's own apply body names the same two fields
        assert '"canaryTrafficPercent"' in dag and '"storageUri"' in dag


@pytest.mark.parametrize("stack", PLANNED)
def test_models_wait_for_kserve_and_graphs_for_their_models(stack: str) -> None:
    doc = models_plan(stack)
    controller, csc = helm_release(doc, "kserve"), doc.one(CSC)
    runtimes_planned = doc.by_type(RUNTIME)
    for r in doc.by_type(ISVC):
        assert depends(doc, r, controller) and depends(doc, r, csc)
        assert all(depends(doc, r, rt) for rt in runtimes_planned)
    isvcs = {r.inputs["metadata"]["name"]: r for r in doc.by_type(ISVC)}
    for g in doc.by_type(IG):
        for step in g.inputs["spec"]["nodes"]["root"]["steps"]:
            assert depends(doc, g, isvcs[step["serviceName"]])


@pytest.mark.parametrize("stack", PLANNED)
def test_each_model_names_a_runtime_the_plan_installs_for_its_format(stack: str) -> None:
    """KServe admits a model only on a runtime that supports its format and a protocol it speaks
    (pkg/controller/v1beta1/inferenceservice/utils GetServingRuntime, predictor_model.go)."""
    doc = models_plan(stack)
    planned = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in doc.by_type(RUNTIME)}
    for name, isvc in _isvcs(doc).items():
        m = isvc["spec"]["predictor"]["model"]
        runtime = planned[m["runtime"]]
        formats = [(f["name"], f.get("version")) for f in runtime["supportedModelFormats"]]
        wanted = (m["modelFormat"]["name"], m["modelFormat"].get("version"))
        assert wanted in formats or (wanted[0], None) in [(n, None) for n, _ in formats], (name, wanted, formats)
        assert "v2" in runtime["protocolVersions"], name  # what the transformer and the graphs speak


# -- the pinned CRDs and KServe's webhook rules ---------------------------------------------------------------


def _chart_crd_spec(file_name: str, version: str) -> dict[str, Any]:
    """A CRD the kserve-crd chart ships but ../shared/upstream/crds does not hold (ClusterStorageContainer)."""
    if not KSERVE_CRD_CHART.exists():
        pytest.skip(f"{KSERVE_CRD_CHART} is not present")
    with tarfile.open(KSERVE_CRD_CHART) as tgz:
        member = tgz.extractfile(f"kserve-crd/files/{file_name}")  # what templates/ includes
        assert member is not None
        text = member.read().decode()
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("{{"))
    [found] = [v for v in yaml.safe_load(text)["spec"]["versions"] if v["name"] == version]
    return python_patterns(strict(found["schema"]["openAPIV3Schema"]["properties"]["spec"]))


_schemas: dict[str, Any] = {}


def validator(kind: str) -> Any:
    """A validator of the kind's `spec` against its pinned CRD, made once: the InferenceService CRD is ~2 MB,
    and jsonschema.validate would check that schema itself again on every call."""
    import jsonschema

    if kind not in _schemas:
        schema = {
            "InferenceService": lambda: spec_schema("serving.kserve.io_inferenceservices.yaml", "v1beta1"),
            "InferenceGraph": lambda: spec_schema("serving.kserve.io_inferencegraphs.yaml", "v1alpha1"),
            "ClusterStorageContainer": lambda: _chart_crd_spec(
                "serving.kserve.io_clusterstoragecontainers.yaml", "v1alpha1"
            ),
        }[kind]()
        _schemas[kind] = jsonschema.validators.validator_for(schema)(schema)
    return _schemas[kind]


@pytest.mark.parametrize("stack", PLANNED)
def test_planned_resources_validate_against_the_pinned_crds(stack: str) -> None:
    import jsonschema

    doc = models_plan(stack)
    for isvc in _isvcs(doc).values():
        validator("InferenceService").validate(isvc["spec"])
    for ig in _graphs(doc).values():
        validator("InferenceGraph").validate(ig["spec"])
    validator("ClusterStorageContainer").validate(plain(doc.one(CSC).inputs)["spec"])
    # the schemas are not blind: a misspelt field is refused, as the API server would drop it
    broken = copy.deepcopy(next(iter(_isvcs(doc).values()))["spec"])
    broken["predictor"]["canaryTraficPercent"] = 10
    with pytest.raises(jsonschema.ValidationError):
        validator("InferenceService").validate(broken)
    with pytest.raises(jsonschema.ValidationError):
        validator("InferenceGraph").validate({"nodes": {"root": {"routerType": "Pipeline", "steps": []}}})
    with pytest.raises(jsonschema.ValidationError):
        validator("ClusterStorageContainer").validate({"container": {}, "supportedUriFormat": []})


def kserve_graph_rules(name: str, spec: dict[str, Any]) -> list[str]:
    """KServe's InferenceGraph webhook (kserve v0.20.0 pkg/apis/serving/v1alpha1/inference_graph_validation.go):
    the name's format, a `root` node, unique step names per node, one target per step."""
    found = []
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        found.append("InvalidGraphNameFormatError")
    if "root" not in spec["nodes"]:
        found.append("RootNodeNotFoundError")
    for node, router in spec["nodes"].items():
        names = [s["name"] for s in router["steps"] if s.get("name")]
        if len(names) != len(set(names)):
            found.append(f"DuplicateStepNameError in {node}")
        for step in router["steps"]:
            targets = [k for k in ("nodeName", "serviceName", "serviceUrl") if step.get(k)]
            if len(targets) != 1:
                found.append(f"{'TargetNotProvidedError' if not targets else 'InvalidTargetError'} in {node}")
    return found


@pytest.mark.parametrize("stack", PLANNED)
def test_graphs_pass_kserves_webhook_and_route_as_configured(stack: str) -> None:
    doc = models_plan(stack)
    cfg = load_config(namespace_values(serving_stack(stack)), stack)
    graphs, isvcs = _graphs(doc), _isvcs(doc)
    for g in cfg.serving.graphs:
        spec = graphs[g.name]["spec"]
        assert kserve_graph_rules(g.name, spec) == []
        root = spec["nodes"]["root"]
        assert root["routerType"] == {"sequence": "Sequence", "ensemble": "Ensemble"}[g.kind]
        assert [s["serviceName"] for s in root["steps"]] == g.steps
        assert all(s["serviceName"] in isvcs for s in root["steps"])
        if g.kind == "sequence":  # each step after the first is sent the previous step's answer (router main.go)
            assert [s["data"] for s in root["steps"]] == ["$request"] + ["$response"] * (len(g.steps) - 1)
    assert kserve_graph_rules("Bad", {"nodes": {"x": {"steps": [{"name": "a"}, {"name": "a", "serviceName": "b"}]}}})


# -- the pods KServe and Knative make from them, at model-serving's Pod Security level --------------------------


def predictor_pod(isvc: dict[str, Any], doc: PlanDocument) -> dict[str, Any]:
    """The predictor's revision spec as KServe's controller builds it for a model on a named runtime
    (kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/components/predictor.go: the runtime's pod fields,
    the predictor's pod fields over them, the runtime's kserve-container with the model's container fields
    merged over it, utils.MergeRuntimeContainers)."""
    predictor = isvc["spec"]["predictor"]
    runtime = copy.deepcopy(runtimes(doc)[predictor["model"]["runtime"]])
    pod = {k: v for k, v in runtime.items() if k not in RUNTIME_ONLY_FIELDS}
    pod.update({k: copy.deepcopy(v) for k, v in predictor.items() if k not in KSERVE_COMPONENT_FIELDS | {"model"}})
    model_fields = {
        k: v
        for k, v in predictor["model"].items()
        if k not in ("modelFormat", "runtime", "storageUri", "protocolVersion")
    }
    pod["containers"] = [merge(runtime["containers"][0], model_fields), *runtime["containers"][1:]]
    return pod


def transformer_pod(isvc: dict[str, Any]) -> dict[str, Any]:
    """The transformer's revision spec (transformer.go: the container with KServe's --model_name,
    --predictor_host, --http_port appended by CustomTransformer.GetContainer, and INFERENCE_SERVICE_NAME)."""
    spec = copy.deepcopy(isvc["spec"]["transformer"])
    pod = {k: v for k, v in spec.items() if k not in KSERVE_COMPONENT_FIELDS}
    name = isvc["metadata"]["name"]
    container = pod["containers"][0]
    container["args"] = [
        *container.get("args", []),
        "--model_name",
        name,
        "--predictor_host",
        f"{name}-predictor.{isvc['metadata']['namespace']}",
        "--http_port",
        "8080",
    ]
    container["env"] = [*container.get("env", []), {"name": "INFERENCE_SERVICE_NAME", "value": name}]
    return pod


def router_pod(graph: dict[str, Any], router: dict[str, Any]) -> dict[str, Any]:
    """The graph's revision spec, exactly as kserve v0.20.0 pkg/controller/v1alpha1/inferencegraph/
    knative_reconciler.go createKnativeService writes it: the router image from inferenceservice-config's
    `router`, its fixed securityContext (no seccomp profile of its own), no service-account token, and the
    graph's affinity, tolerations and node selector."""
    spec = graph["spec"]
    pod: dict[str, Any] = {
        "containers": [
            {
                "image": router["image"],
                "args": ["--graph-json", json.dumps(spec)],
                "resources": {
                    "limits": {"cpu": router["cpuLimit"], "memory": router["memoryLimit"]},
                    "requests": {"cpu": router["cpuRequest"], "memory": router["memoryRequest"]},
                },
                "securityContext": {
                    "privileged": False,
                    "runAsNonRoot": True,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}},
            }
        ],
        "automountServiceAccountToken": False,
    }
    for field in ("affinity", "tolerations", "nodeSelector", "serviceAccountName"):
        if spec.get(field):
            pod[field] = copy.deepcopy(spec[field])
    return pod


def with_storage_initializer(revision: dict[str, Any], uri: str, config: dict, csc: dict) -> dict[str, Any]:
    """KServe's pod mutator at admission: the init container built from `storageInitializer` with the matching
    ClusterStorageContainer's container merged over it (storage_initializer_injector.go, as in
    tests/test_admission.py), here the platform's for `models:/`."""
    assert any(uri.startswith(f["prefix"]) for f in csc["spec"]["supportedUriFormats"]), uri
    pod = copy.deepcopy(revision)
    init = storage_initializer(json.loads(config["storageInitializer"]), csc["spec"]["container"])
    init["args"] = [uri, "/mnt/models"]
    pod["initContainers"] = [*(pod.get("initContainers") or []), init]
    pod["volumes"] = [*pod["volumes"], {"name": "kserve-provision-location", "emptyDir": {}}]
    return pod


@pytest.mark.parametrize("stack", PLANNED)
def test_every_pod_kserve_makes_from_the_plan_is_admitted(stack: str) -> None:
    doc = models_plan(stack)
    config, _ = kserve_objects(doc)
    flags = features(doc)
    csc = plain(doc.one(CSC).inputs)
    found = []
    for name, isvc in _isvcs(doc).items():
        revision = revision_pod(predictor_pod(isvc, doc), flags)
        pod = with_storage_initializer(revision, isvc["spec"]["predictor"]["model"]["storageUri"], config, csc)
        found += check_pod(pod, LEVEL, f"{stack} / {name} predictor")
        if "transformer" in isvc["spec"]:
            found += check_pod(revision_pod(transformer_pod(isvc), flags), LEVEL, f"{stack} / {name} transformer")
    router = json.loads(config["router"])
    for name, graph in _graphs(doc).items():
        found += check_pod(revision_pod(router_pod(graph, router), flags), LEVEL, f"{stack} / {name} router")
    assert not found, "\n".join(map(str, found))


def test_the_router_is_admitted_only_through_knatives_secure_pod_defaults() -> None:
    """KServe gives the router no seccomp profile; `model-serving` admits it because the KnativeServing
    enables secure-pod-defaults (components/serving/knative.py), whose webhook adds RuntimeDefault. Without
    it the check names the router's container: the rebuilt pod is not blind."""
    doc = models_plan("dev")
    config, _ = kserve_objects(doc)
    graph = next(iter(_graphs(doc).values()))
    bare = revision_pod(router_pod(graph, json.loads(config["router"])), {"secure-pod-defaults": "disabled"})
    assert any("seccomp" in v.field for v in check_pod(bare, LEVEL, "router"))
    assert flag_on(features(doc), "secure-pod-defaults")


@pytest.mark.parametrize("stack", PLANNED)
def test_every_pod_field_the_plan_sets_is_allowed_by_knatives_features(stack: str) -> None:
    """KServe turns a component's pod fields into a Knative Service's; Knative's webhook refuses a field whose
    feature flag is off (pkg/apis/serving/fieldmask.go PodSpecMask)."""
    doc = models_plan(stack)
    flags, gates = features(doc), knative_field_flags()
    fields: set[str] = set()
    for isvc in _isvcs(doc).values():
        for component in ("predictor", "transformer"):
            spec = isvc["spec"].get(component) or {}
            fields |= set(spec) - KSERVE_COMPONENT_FIELDS - {"model"}
    for graph in _graphs(doc).values():
        fields |= set(
            router_pod(
                graph, {"image": "", **dict.fromkeys(("cpuLimit", "memoryLimit", "cpuRequest", "memoryRequest"), "1")}
            )
        )
    for field in sorted(fields):
        assert field in gates, f"{field}: not a field a Knative revision may set"
        assert gates[field] is None or flag_on(flags, gates[field]), f"{stack}: {field} needs {gates[field]}"


# -- the transformer's configuration ---------------------------------------------------------------------------


def transformer_configs(doc: PlanDocument) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Each transformer's FEAST_TRANSFORMER_CONFIG (parsed) and its container's whole environment."""
    found = {}
    for name, isvc in _isvcs(doc).items():
        if "transformer" in isvc["spec"]:
            env = {e["name"]: e["value"] for e in isvc["spec"]["transformer"]["containers"][0]["env"]}
            found[name] = (json.loads(env[TRANSFORMER_ENV]), env)
    return found


@pytest.mark.parametrize("stack", PLANNED)
def test_the_transformer_is_configured_from_the_model_and_the_feature_servers_endpoint(stack: str) -> None:
    doc = models_plan(stack)
    cfg = load_config(namespace_values(serving_stack(stack)), stack)
    configs = transformer_configs(doc)
    assert set(configs) == {m.name for m in cfg.serving.models if m.transformer is not None}
    for m in cfg.serving.models:
        if m.transformer is None:
            continue
        parsed, env = configs[m.name]
        # the lifecycle layer's endpoint, the one the stack exports (not a retyped address)
        assert parsed["featureServerUrl"] == doc.outputs["featureServerUrl"]
        assert parsed["features"] == m.transformer.features and parsed["entities"] == m.transformer.entities
        assert parsed["timeoutSeconds"] == {
            "featureServer": m.transformer.timeout_seconds.feature_server,
            "predictor": m.transformer.timeout_seconds.predictor,
        }
        assert env[PROTOCOL_ENV] == PROTOCOL  # KServe routes graphs to /v2/models/<name>/infer
        [container] = _isvcs(doc)[m.name]["spec"]["transformer"]["containers"]
        [tag] = doc.one("docker-build:index:Image", "mlplatform-images-feast-transformer").inputs["tags"]
        assert container["image"].startswith(f"{tag}@sha256:")  # the image the program builds, by digest
        assert container["securityContext"]["runAsUser"] == TRANSFORMER_UID


def _transformer_parser() -> Any:
    """images/feast-transformer/feast_transformer/config.py, imported by path (the image's own module)."""
    path = TRANSFORMER_DIR / "feast_transformer" / "config.py"
    if not path.is_file():
        pytest.skip(f"{path} is not there yet")
    spec = importlib.util.spec_from_file_location("feast_transformer_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stack", PLANNED)
def test_the_transformer_accepts_the_configuration_the_program_plans(stack: str) -> None:
    parser = _transformer_parser()
    doc = models_plan(stack)
    cfg = {m.name: m for m in load_config(namespace_values(serving_stack(stack)), stack).serving.models}
    for name, (_, env) in transformer_configs(doc).items():
        parsed = parser.from_env(env)  # the container's environment, as the transformer reads it at start
        t = cfg[name].transformer
        assert parsed.feature_server_url == doc.outputs["featureServerUrl"]
        assert (list(parsed.features), dict(parsed.entities)) == (t.features, t.entities)
        assert (parsed.timeouts.feature_server, parsed.timeouts.predictor) == (
            t.timeout_seconds.feature_server,
            t.timeout_seconds.predictor,
        )
    # and the parser is not blind: a reference Feast cannot read is refused
    with pytest.raises(ValueError):
        parser.from_env(
            {TRANSFORMER_ENV: json.dumps({"featureServerUrl": "http://f", "features": ["x"], "entities": {}})}
        )


# -- connections --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", PLANNED)
def test_every_connection_the_models_make_passes_the_policies(stack: str) -> None:
    """The storage initializer to MLflow (models:/ resolves there, artifacts come through its proxy), the
    transformer to the feature server and to its predictor, the graph's router to each step: the last two
    through Knative's local gateway, where a cluster-local InferenceService URL leads (Istio's
    knative-local-gateway, the gateway pods' port 8081)."""
    doc = models_plan(stack)
    a = addresses(doc)
    policies = PolicySet(doc, a.cni)
    gateway = _gateway(doc, a)[0]  # the gateway pods as the chart labels them
    mlflow = Pod(Namespace.PLATFORM.value, flow("mlflow").pod_labels, a.pod)
    feature_server = Pod(Namespace.PLATFORM.value, {NAME_LABEL: "feast-feature-server"}, a.pod)
    wanted: list[tuple[str, Pod, Pod, int]] = []
    for name, isvc in _isvcs(doc).items():
        predictor = Pod(
            Namespace.SERVING.value, {"serving.kserve.io/inferenceservice": name, "component": "predictor"}, a.pod
        )
        wanted.append((f"{name} storage-initializer -> mlflow", predictor, mlflow, MLFLOW_PORT))
        if "transformer" in isvc["spec"]:
            transformer = Pod(
                Namespace.SERVING.value, {"serving.kserve.io/inferenceservice": name, "component": "transformer"}, a.pod
            )
            wanted.append((f"{name} transformer -> feature server", transformer, feature_server, FEATURE_SERVER_PORT))
            wanted.append((f"{name} transformer -> predictor", transformer, gateway, LOCAL_GATEWAY_PORT))
    for name in _graphs(doc):
        router = Pod(Namespace.SERVING.value, {"serving.kserve.io/inferencegraph": name}, a.pod)
        wanted.append((f"{name} router -> steps", router, gateway, LOCAL_GATEWAY_PORT))
    failures = [
        f"{what}: {v.why}" for what, src, dst, port in wanted if not (v := policies.decide(src, dst, port)).allowed
    ]
    assert failures == []
    # and the evaluator is not blind: the router may not reach the feature server's metrics port
    router = Pod(Namespace.SERVING.value, {"serving.kserve.io/inferencegraph": "g"}, a.pod)
    assert not policies.decide(router, feature_server, 8000).allowed


def _claims(formats: list[dict[str, str]], uri: str) -> bool:
    """Whether a ClusterStorageContainer with these formats takes `uri` (v1alpha1 storage_container_types.go
    IsStorageUriSupported: a prefix, or a Go regexp that matches anywhere in the URI)."""
    return any(uri.startswith(f["prefix"]) if f.get("prefix") else re.search(f["regex"], uri) for f in formats)


def test_the_storage_container_and_the_charts_claim_different_uris(plan) -> None:
    """KServe takes the first enabled ClusterStorageContainer that claims a URI (storage_initializer_injector.go
    GetStorageContainerSpec): the platform's must take every MLflow URI, and nothing the chart's `default`
    serves (s3://, gs://, https://, ...), which a DAG-pinned bucket path uses; and `default` none of MLflow's."""
    from tests.test_admission import rendered

    doc = plan("dev")
    mine = plain(doc.one(CSC).inputs)
    [default] = [
        o for o in rendered(doc, "kserve", "kserve-resources-v0.20.0.tgz") if o["kind"] == "ClusterStorageContainer"
    ]
    ours, theirs = mine["spec"]["supportedUriFormats"], default["spec"]["supportedUriFormats"]
    mlflow_uris = [
        "models:/churn-classifier@production",
        "models:/churn-classifier/3",
        "models:/m-0a1b2c",
        "mlflow-artifacts:/1/models/m-0a1b2c/artifacts",
    ]
    bucket_uris = [
        "s3://artifacts/mlflow/1/models/m-0a1b2c/artifacts",
        "gs://artifacts/mlflow/1/x",
        "https://models.example.com/m/model.joblib",
        "hf://org/model",
    ]
    assert all(_claims(ours, u) and not _claims(theirs, u) for u in mlflow_uris)
    assert all(_claims(theirs, u) and not _claims(ours, u) for u in bucket_uris)
    assert mine["metadata"]["name"] == STORAGE_CONTAINER and not mine["spec"].get("disabled")
    assert [f["prefix"] for f in ours] == list(MODEL_URI_PREFIXES)


def test_the_storage_container_runs_the_runtimes_image_as_its_user(plan) -> None:
    """MLflow at the tracking server's version, in the image the predictor pulls anyway, as that image's user."""
    doc = plan("dev")
    container = plain(doc.one(CSC).inputs)["spec"]["container"]
    runtime = next(r.inputs["spec"] for r in doc.by_type(RUNTIME) if r.inputs["metadata"]["name"] == "mlflow-3")
    [server] = runtime["containers"]
    assert container["image"] == server["image"]
    assert container["securityContext"]["runAsUser"] == server["securityContext"]["runAsUser"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == doc.outputs["mlflowTrackingUri"]
    assert "args" not in container  # KServe's [<uri>, <destination>] stay (MergeContainerWithPatch)
    assert MLFLOW_FORMAT in [{"name": f["name"], "version": f["version"]} for f in runtime["supportedModelFormats"]]
