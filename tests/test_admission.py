"""Admission as the cluster does it: the pods that upstream controllers and webhooks build from the platform's
objects, checked the way the API server will check them.

A model pod is never declared by the program. KServe's controller turns an InferenceService into a Knative
Service, Knative's webhook defaults the revision, Knative's reconciler adds queue-proxy, and at Pod
admission KServe's pod mutator adds the storage-initializer (and the agent for a logger or batcher). Only
then does Pod Security admission see the pod. The tests rebuild that pod from what the plan installs (the
ServingRuntimes, the rendered `ClusterStorageContainer`, the rendered `inferenceservice-config`, the
KnativeServing's features), following the upstream code at the pinned versions (cited beside each step),
and check it with the project's Pod Security rules at `model-serving`'s level.

They need the pinned chart packages (../shared/charts) and the upstream Knative Service CRD
(../shared/upstream/crds); without them they skip.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.contracts import Namespace
from components.guardrails import POD_SECURITY
from mlplatform.netpol import selects
from mlplatform.plan.document import PlanDocument
from mlplatform.podsecurity import check_pod
from tests.support.graph import helm_release

SHARED = Path(__file__).resolve().parents[2] / "shared"
CHARTS = SHARED / "charts"
KNATIVE_SERVICE_CRD = SHARED / "upstream" / "crds" / "serving.knative.dev_services.yaml"
STACKS = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]  # local: the in-cluster wiring on kind
KNATIVE_SERVING = "kubernetes:operator.knative.dev/v1beta1:KnativeServing"
SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"

# knative/serving pkg/reconciler/revision/resources/queue.go (`queueSecurityContext`, identical at
# knative-v1.21.3 and knative-v1.22.1): the context every revision's queue-proxy runs with
QUEUE_PROXY = {
    "name": "queue-proxy",
    "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue",
    "ports": [{"containerPort": p} for p in (8012, 8022, 9090, 9091)],
    "resources": {"requests": {"cpu": "25m"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}
# kserve v0.20.0 pkg/apis/serving/v1beta1/component.go ComponentExtensionSpec: predictor fields KServe itself
# consumes (autoscaling annotations, traffic, agent); everything else of a predictor is the pod's spec
KSERVE_COMPONENT_FIELDS = frozenset(
    {"minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
     "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
     "deploymentStrategy"}
)  # fmt: skip
# knative/serving pkg/apis/config/features.go defaultFeaturesConfig (knative-v1.21.3, v1.22.1): every
# podspec flag but emptyDir volumes is Disabled unless the config-features ConfigMap says otherwise
KNATIVE_DEFAULT_ON = frozenset({"kubernetes.podspec-volumes-emptydir"})


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared holds the pinned charts and upstream CRDs)")
    return path


def rendered(doc: PlanDocument, release: str, package: str) -> list[dict[str, Any]]:
    """The release's objects rendered from the pinned package with exactly the plan's values."""
    pytest.importorskip("helm_python")
    from mlplatform.manifests import render_release

    return render_release(helm_release(doc, release), _shared(CHARTS / package)).objects


def features(doc: PlanDocument) -> dict[str, str]:
    return dict(doc.one(KNATIVE_SERVING).inputs["spec"]["config"].get("features") or {})


def flag_on(flags: Mapping[str, str], flag: str) -> bool:
    """Knative reads `enabled` and `allowed` as on (pkg/apis/config/features.go: `!= Disabled` gates)."""
    value = flags.get(flag, "enabled" if flag in KNATIVE_DEFAULT_ON else "disabled")
    return str(value).lower() in ("enabled", "allowed")


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A strategic merge patch of one container onto another for the fields these containers carry (maps
    merge key by key, scalars and lists replace): how KServe lays the ClusterStorageContainer's container
    over the one it builds (pkg/utils/container_merge.go MergeContainerWithPatch)."""
    out = dict(base)
    for key, value in overlay.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out


# --- Knative -----------------------------------------------------------------------------------------------


def secure_pod_defaults(pod_sc: Mapping[str, Any], container: dict[str, Any], flag: str) -> None:
    """knative/serving pkg/apis/serving/v1/revision_defaults.go `defaultSecurityContext` (1.21.3, 1.22.1),
    applied by the webhook to the revision's own containers and init containers only."""
    if flag not in ("enabled", "allowrootbounded"):
        return
    sc = dict(container.get("securityContext") or {})
    sc.setdefault("allowPrivilegeEscalation", False)
    if not (pod_sc.get("seccompProfile") or {}).get("type"):
        profile = dict(sc.get("seccompProfile") or {})
        profile.setdefault("type", "RuntimeDefault")
        sc["seccompProfile"] = profile
    if sc.get("capabilities") is None:
        low = any(p.get("containerPort", 1024) < 1024 for p in container.get("ports") or [])
        sc["capabilities"] = {"drop": ["ALL"], **({"add": ["NET_BIND_SERVICE"]} if low else {})}
    if flag == "enabled" and pod_sc.get("runAsNonRoot") is None:
        sc.setdefault("runAsNonRoot", True)
    container["securityContext"] = sc


def revision_pod(podspec: Mapping[str, Any], flags: Mapping[str, str]) -> dict[str, Any]:
    """The pod Knative's reconciler creates for a revision: the defaulted revision spec, its containers
    first and queue-proxy last (pkg/reconciler/revision/resources/deploy.go makePodSpec), plus the
    projected token and downward-API volumes queue-proxy may mount."""
    spec = copy.deepcopy(dict(podspec))
    flag = str(flags.get("secure-pod-defaults", "disabled")).lower()
    for kind in ("containers", "initContainers"):
        for container in spec.get(kind) or []:
            secure_pod_defaults(spec.get("securityContext") or {}, container, flag)
    spec["containers"] = [*spec["containers"], copy.deepcopy(QUEUE_PROXY)]
    spec["volumes"] = [
        *(spec.get("volumes") or []),
        {"name": "knative-token-volume", "projected": {"sources": []}},
        {"name": "knative-var-podinfo", "downwardAPI": {"items": []}},
    ]
    return spec


# --- KServe's pod mutator (kserve v0.20.0 pkg/webhook/admission/pod) -----------------------------------------


def storage_initializer(config: Mapping[str, Any], storage_container: Mapping[str, Any]) -> dict[str, Any]:
    """storage_initializer_injector.go CommonStorageInitialization: the container built from the
    `storageInitializer` config (pkg/utils/storage.go CreateInitContainerWithConfig: name, image, args,
    resources, no securityContext), then the ClusterStorageContainer's container merged over it. Nothing is
    copied from the pod or its user container (only Istio CNI's runAsUser, not used here)."""
    base = {
        "name": "storage-initializer",
        "image": config["image"],
        "args": ["s3://bucket/model", "/mnt/models"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {
            "limits": {"cpu": config["cpuLimit"], "memory": config["memoryLimit"]},
            "requests": {"cpu": config["cpuRequest"], "memory": config["memoryRequest"]},
        },
    }
    return merge(base, storage_container)


def agent(config: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """agent_injector.go InjectAgent (logger, batcher, puller): its securityContext is a copy of the pod's
    first container's (`pod.Spec.Containers[0].SecurityContext.DeepCopy()`), i.e. the revision's user
    container after Knative's defaults; the `agent` config (AgentConfig) gives only image and resources."""
    return {
        "name": "agent",
        "image": config["image"],
        "ports": [{"name": "agent-port", "containerPort": 9081, "protocol": "TCP"}],
        "resources": {
            "limits": {"cpu": config["cpuLimit"], "memory": config["memoryLimit"]},
            "requests": {"cpu": config["cpuRequest"], "memory": config["memoryRequest"]},
        },
        "securityContext": copy.deepcopy(pod["containers"][0].get("securityContext")),
    }


def admitted_pod(revision: Mapping[str, Any], kserve_config: Mapping[str, Any], storage_container: Mapping[str, Any],
                 with_agent: bool) -> dict[str, Any]:  # fmt: skip
    """mutator.go: the storage-initializer (storageUri set), then the agent (a logger or batcher set)."""
    pod = copy.deepcopy(dict(revision))
    init = storage_initializer(json.loads(kserve_config["storageInitializer"]), storage_container)
    pod["initContainers"] = [*(pod.get("initContainers") or []), init]
    pod["volumes"] = [*pod["volumes"], {"name": "kserve-provision-location", "emptyDir": {}}]
    if with_agent:
        pod["containers"] = [*pod["containers"], agent(json.loads(kserve_config["agent"]), pod)]
    return pod


# --- what the plan installs --------------------------------------------------------------------------------


def kserve_objects(doc: PlanDocument) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the inferenceservice-config data, the default ClusterStorageContainer's container) as rendered."""
    objects = rendered(doc, "kserve", "kserve-resources-v0.20.0.tgz")
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "inferenceservice-config"]
    [storage] = [o for o in objects if o["kind"] == "ClusterStorageContainer"]
    return config["data"], storage["spec"]["container"]


def runtimes(doc: PlanDocument) -> dict[str, dict[str, Any]]:
    """Every runtime an InferenceService can select in Knative mode: the stock ClusterServingRuntimes the
    plan enables and `model-serving`'s own. Multi-node runtimes (workerSpec) run in Standard mode only."""
    stock = rendered(doc, "kserve-runtime-configs", "kserve-runtime-configs-v0.20.0.tgz")
    found = {
        o["metadata"]["name"]: o["spec"]
        for o in stock
        if o["kind"] == "ClusterServingRuntime" and not o["spec"].get("disabled") and "workerSpec" not in o["spec"]
    }
    for r in doc.by_type(SERVING_RUNTIME):
        found[r.inputs["metadata"]["name"]] = r.inputs["spec"]
    return found


def predictor_podspec(runtime: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """What KServe's controller puts in the Knative Service's template for a README-style InferenceService
    with the documented defaults: the runtime's containers and pod fields, then the predictor's pod fields
    (pkg/controller/v1beta1/inferenceservice/components/predictor.go)."""
    pod_fields = {k: v for k, v in runtime.items() if k not in RUNTIME_ONLY_FIELDS}
    spec: dict[str, Any] = {**copy.deepcopy(pod_fields), "serviceAccountName": "kserve-model-pull"}
    spec.update({k: copy.deepcopy(v) for k, v in defaults.items() if k not in KSERVE_COMPONENT_FIELDS})
    return spec


# ServingRuntimeSpec fields that are not pod fields (pkg/apis/serving/v1alpha1/servingruntime_types.go)
RUNTIME_ONLY_FIELDS = frozenset(
    {"supportedModelFormats", "protocolVersions", "multiModel", "disabled", "annotations", "labels",
     "builtInAdapter", "storageHelper", "grpcEndpoint", "grpcDataEndpoint", "httpDataEndpoint", "replicas",
     "workerSpec"}
)  # fmt: skip


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("with_agent", [False, True], ids=["plain", "logger"])
def test_every_model_pod_passes_pod_security_as_admitted(plan, stack: str, with_agent: bool) -> None:
    doc = plan(stack)
    config, storage_container = kserve_objects(doc)
    level = POD_SECURITY[Namespace.SERVING]
    defaults = doc.outputs["inferenceServiceDefaults"]
    found = []
    for name, runtime in sorted(runtimes(doc).items()):
        revision = revision_pod(predictor_podspec(runtime, defaults), features(doc))
        pod = admitted_pod(revision, config, storage_container, with_agent)
        found += check_pod(pod, level, f"{stack} / InferenceService on {name}")
    assert not found, "\n".join(map(str, found))


def test_the_rebuilt_pod_sees_what_admission_sees(plan) -> None:
    """The model is not blind: without Knative's secure pod defaults the stock runtimes' containers carry no
    seccomp profile, and the check names them."""
    doc = plan("dev")
    config, storage_container = kserve_objects(doc)
    runtime = runtimes(doc)["kserve-sklearnserver"]
    revision = revision_pod(predictor_podspec(runtime, {}), {"secure-pod-defaults": "disabled"})
    found = check_pod(admitted_pod(revision, config, storage_container, False), "restricted", "probe")
    assert any(v.container == "kserve-container" and "seccomp" in v.field for v in found), found


# --- the documented InferenceService defaults against Knative's feature gates --------------------------------


def knative_field_flags() -> dict[str, str | None]:
    """Each field of a Knative Service's revision template spec -> the feature flag that gates it (None:
    always allowed), from the upstream CRD's descriptions ("This is accessible behind a feature flag - X"),
    which knative/serving generates from pkg/apis/serving/fieldmask.go PodSpecMask."""
    crd = yaml.safe_load(_shared(KNATIVE_SERVICE_CRD).read_text())
    [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    spec = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    marker = "behind a feature flag - "
    out: dict[str, str | None] = {}
    for field, schema in spec["properties"].items():
        text = schema.get("description") or ""
        out[field] = text.split(marker, 1)[1].split()[0] if marker in text else None
    return out


def seccomp_only(value: Any, flags: Mapping[str, str]) -> bool:
    """fieldmask.go PodSecurityContextMask: with secure-pod-defaults on (Enabled or AllowRootBounded) a pod
    securityContext holding only a RuntimeDefault or Unconfined seccomp profile passes without
    kubernetes.podspec-securitycontext."""
    secure = str(flags.get("secure-pod-defaults", "disabled")).lower() in ("enabled", "allowrootbounded")
    profile = (value or {}).get("seccompProfile") or {}
    return secure and set(value or {}) == {"seccompProfile"} and profile.get("type") in ("RuntimeDefault", "Unconfined")


@pytest.mark.parametrize("stack", STACKS)
def test_every_documented_default_is_allowed_by_the_enabled_knative_features(plan, stack: str) -> None:
    doc = plan(stack)
    flags, gates = features(doc), knative_field_flags()
    for field, value in doc.outputs["inferenceServiceDefaults"].items():
        if field in KSERVE_COMPONENT_FIELDS:
            continue  # KServe turns these into annotations and traffic, never pod fields
        assert field in gates, f"{field}: not a field a Knative revision may set (fieldmask.go PodSpecMask)"
        gate = gates[field]
        if field == "securityContext" and seccomp_only(value, flags):
            continue
        assert gate is None or flag_on(flags, gate), f"{stack}: {field} needs Knative feature {gate}"


def model_pod_labels(isvc: str, component: str, revision: int, template: str = "5d8f7c9b6") -> dict[str, str]:
    """A model pod's labels: KServe's component labels (predictor.go; pkg/constants
    InferenceServicePodLabelKey, KServiceComponentLabel) propagated by Knative to the revision's pods with
    its own (pkg/reconciler/revision/resources/meta.go makeLabels), and the pod-template-hash the Deployment
    controller puts on each ReplicaSet's pods (one Deployment per revision; a new hash when the revision's
    Deployment template changes, e.g. a Knative upgrade's queue-proxy image)."""
    rev = f"{isvc}-{component}-{revision:05d}"
    return {
        "serving.kserve.io/inferenceservice": isvc,
        "component": component,
        "serving.knative.dev/service": f"{isvc}-{component}",
        "serving.knative.dev/configuration": f"{isvc}-{component}",
        "serving.knative.dev/revision": rev,
        "serving.knative.dev/revisionUID": f"uid-{rev}",
        "app": rev,
        "pod-template-hash": f"{template}-{isvc}-{component}-{revision}",
    }


def spread_group(constraint: Mapping[str, Any], incoming: Mapping[str, str]) -> dict[str, Any]:
    """The selector the scheduler spreads an incoming pod over: labelSelector ANDed with the incoming pod's
    values for matchLabelKeys (Kubernetes KEP-3243; beta and on by default since 1.27, a key the pod lacks
    is ignored; matchLabelKeys without a labelSelector is invalid)."""
    selector = copy.deepcopy(dict(constraint.get("labelSelector") or {}))
    keys = constraint.get("matchLabelKeys") or []
    assert not keys or selector, "matchLabelKeys cannot be set when labelSelector isn't set"
    extra = {k: incoming[k] for k in keys if k in incoming}
    # a key in matchLabelKeys and in the selector (matchLabels or matchExpressions) is rejected by the API
    # server (pkg/apis/core/validation/validation.go validateMatchLabelKeysInTopologySpread: "exists in both
    # matchLabelKeys and labelSelector")
    in_selector = (selector.get("matchLabels") or {}).keys() | {
        e["key"] for e in selector.get("matchExpressions") or []
    }
    assert not set(keys) & in_selector, f"a key in both matchLabelKeys and labelSelector: {set(keys) & in_selector}"
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **extra}
    return selector


@pytest.mark.parametrize("stack", STACKS)
def test_the_documented_spread_selects_the_predictors_own_pods(plan, stack: str) -> None:
    """Each constraint counts the incoming predictor pod's siblings: the same InferenceService's predictor
    pods of the same pod template. Not another model's, not its transformer's, and not those of an older
    revision or template, which are on their way out (a canary's, or a rollout's): counting them would
    leave the new pods skewed once they are gone (the Kubernetes docs' reason for matchLabelKeys with
    pod-template-hash)."""
    constraints = plan(stack).outputs["inferenceServiceDefaults"].get("topologySpreadConstraints") or []
    assert constraints or "prod" not in stack, "prod spreads its predictor pods over the zones"
    churn = model_pod_labels("churn", "predictor", 1)
    for constraint in constraints:
        assert constraint.get("labelSelector"), "without a labelSelector the constraint counts no pods"
        group = spread_group(constraint, churn)
        assert selects(group, churn), "its own pods (a ReplicaSet's pods carry the same labels)"
        assert not selects(group, model_pod_labels("fraud", "predictor", 1)), "another model's pods"
        assert not selects(group, model_pod_labels("churn", "transformer", 1)), "its transformer's pods"
        assert not selects(group, model_pod_labels("churn", "predictor", 2)), "another revision's pods"
        assert not selects(group, model_pod_labels("churn", "predictor", 1, "6c7d8e9f0")), "an old template's"
