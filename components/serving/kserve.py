"""KServe v0.20 in Knative (serverless) mode: CRDs, controller, the stock serving runtimes, the identity
model pods read artifacts as, and one GPU runtime per GPU pool.

All three charts as helm.v3.Release: kserve-crd holds the CRDs (the InferenceService CRD alone is ~2 MB;
Helm keeps CRDs across uninstall where a v4 Chart would delete every InferenceService with them);
kserve-resources registers webhooks and cert-manager Certificates that must be ready before any runtime
is admitted; kserve-runtime-configs holds ClusterServingRuntimes, custom resources whose kinds a v4 Chart
would need registered at preview time, before kserve-crd exists.

Model pods run as the `kserve-model-pull` service account (stack output `inferenceServiceAccount`):
InferenceServices name it in `spec.predictor.serviceAccountName`; on AWS its IRSA annotation makes the
storage initializer use the role (read-only on the artifacts bucket), on GCP its Workload Identity
annotation makes the GCS client use the Google service account. Images are not pulled with it: the kubelet
pulls with the node's identity (components/storage ContainerRegistry).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import GPU_RESOURCE, NodePoolContract, WorkloadIdentity
from components.kube import PART_OF, RESTRICTED_CONTAINER, identity_service_account, pinned_release, zone_spread
from components.placement import Placement
from mlplatform.config import KServeConfig
from mlplatform.pins import MLSERVER_MLFLOW_UID, MLSERVER_TAG, TRITON_IMAGE, ChartPin

CONTROLLER_LABELS = {"control-plane": "kserve-controller-manager"}
MLFLOW_RUNTIME = "mlflow-3"
TRITON_FORMATS = (("tensorrt", "8"), ("tensorflow", "2"), ("onnx", "1"), ("pytorch", "1"), ("triton", "2"))


@dataclass(frozen=True)
class KServePins:
    crd: ChartPin
    resources: ChartPin
    runtimes: ChartPin


@dataclass(frozen=True)
class KServeArgs:
    namespace: k8s.core.v1.Namespace  # kserve: the controller
    models: k8s.core.v1.Namespace  # model-serving: InferenceServices and the GPU runtimes
    identity: WorkloadIdentity
    pins: KServePins
    config: KServeConfig
    gpu_pools: tuple[NodePoolContract, ...]
    placement: Placement
    provider: k8s.Provider
    # the mlflow-3 runtime's image as built and pushed (components/serving/images.py), by digest
    runtime_image: pulumi.Input[str]
    after: tuple[pulumi.Resource, ...] = ()  # cert-manager and Knative Serving


@dataclass(frozen=True)
class KServeOutputs:
    model_pull_service_account: k8s.core.v1.ServiceAccount
    gpu_runtimes: dict[str, str]  # GPU pool name -> ServingRuntime name in model-serving


def controller_values(cfg: KServeConfig, placement: Placement) -> dict[str, object]:
    return {
        "kserve": {
            "controller": {
                "deploymentMode": "Knative",
                # InferenceServices answer as <name>-<namespace>.<domain> at the ingress gateway
                "gateway": {"domain": cfg.domain},
                "nodeSelector": placement.node_selector,
                "tolerations": placement.tolerations,
                # the chart's default CPU limit (100m) throttles reconciles. It cannot be removed: the chart
                # deep-merges these values into a manifest that hard-codes `limits.cpu: 100m`
                # (kserve-resources v0.20.0 files/kserve/resources.yaml, templates/_utils.tpl deepMerge, which
                # never sees a null: Helm's coalescing drops it first), so the limit is raised instead
                "resources": {
                    "requests": dict(placement.resources("100m", "300Mi", "1Gi", small=("50m", "192Mi"))["requests"]),
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
                # the chart's kube-rbac-proxy sidecar requests 100m/300Mi (kserve-resources v0.20.0 values.yaml
                # kserve.controller.rbacProxy.resources) for a proxy in front of the metrics endpoint; small
                # asks what it idles at, limits as the chart's
                **(
                    {"rbacProxy": {"resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}}
                    if placement.small
                    else {}
                ),
                "topologySpreadConstraints": zone_spread(CONTROLLER_LABELS) if placement.spread else [],
            },
            # prometheus.io annotations on model pods, pointing at queue-proxy's metrics
            "metricsaggregator": {"enablePrometheusScraping": "true"},
            # The storage-initializer's context. KServe's pod mutator injects it at Pod admission, after
            # Knative has defaulted the revision, so Knative's secure-pod-defaults never see it: it is the
            # container of the `storageInitializer` config (name, image, args, resources only) with the
            # `ClusterStorageContainer`'s container merged over it (kserve v0.20.0
            # pkg/webhook/admission/pod/storage_initializer_injector.go CommonStorageInitialization,
            # pkg/utils/storage.go CreateInitContainerWithConfig, pkg/utils/container_merge.go). The chart
            # renders that ClusterStorageContainer (`default`) with this value as its securityContext
            # (templates/common/clusterstoragecontainer.yaml, files/common/storagecontainer-patch.yaml), and
            # its default has no seccomp profile, which Pod Security `restricted` in model-serving rejects
            # (kserve/kserve#5373; the chart fix, kserve/kserve#5855, is not released). Helm merges this map
            # into the default, so the chart's keys stay and the profile is added. Here rather than a
            # pod-level profile in inferenceServiceDefaults: those are advice an InferenceService may not
            # follow, this holds for every InferenceService. The agent (logger, batcher) needs nothing: its
            # securityContext is a copy of the pod's first container's (agent_injector.go InjectAgent), the
            # model container that Knative's secure-pod-defaults already made restricted; the
            # inferenceservice-config's `agent` section carries only its image and resources.
            # Modelcar off: for an `oci://` storageUri KServe adds a modelcar sidecar and init container whose
            # only security setting is runAsUser (kserve v0.20.0 pkg/utils/storage.go, the chart's
            # uidModelcar), which `restricted` rejects; model images are not a supported storageUri here.
            "storage": {"containerSecurityContext": RESTRICTED_CONTAINER, "enableModelcar": False},
        }
    }


def runtime_values() -> dict[str, object]:
    return {
        "kserve": {
            "servingruntime": {
                # the chart installs no runtime unless told to (serving-observability-facts.md §1)
                "enabled": True,
                # the chart's default (1.5.0) is older than the newest MLServer release
                "mlserver": {"tag": MLSERVER_TAG},
                # its default image is vllm/vllm-openai:latest, never pinned; LLMs are served by the
                # huggingfaceserver runtime, which carries vLLM at the KServe release's version
                "vllmserver": {"disabled": True},
            }
        }
    }


MLSERVER_RUNTIME = "kserve-mlserver"
MLSERVER_METRICS_PORT = 8082  # MLServer's metrics_port default (mlserver/settings.py)
# the stock runtime's formats (kserve-runtime-configs files/runtimes/resources.yaml at v0.20.0)
MLSERVER_FORMATS = (
    ("sklearn", "0", 2), ("sklearn", "1", 2), ("xgboost", "1", 2), ("xgboost", "2", 2),
    ("lightgbm", "3", 2), ("lightgbm", "4", 2), ("mlflow", "1", 1), ("mlflow", "2", 1),
)  # fmt: skip


def mlserver_runtime_spec() -> dict[str, object]:
    """The stock MLServer runtime as `model-serving`'s own (KServe prefers a namespace's runtime over the
    cluster runtime of the same name), with one fix: the stock one tells Prometheus its metrics are on 8080,
    but MLServer serves them on 8082. Here the port is set explicitly and the annotations say so."""
    container = {
        "name": "kserve-container",
        "image": f"docker.io/seldonio/mlserver:{MLSERVER_TAG}",
        "env": [
            {"name": "MLSERVER_MODEL_IMPLEMENTATION", "value": "{{.Labels.modelClass}}"},
            {"name": "MLSERVER_HTTP_PORT", "value": "8080"},
            {"name": "MLSERVER_GRPC_PORT", "value": "9000"},
            {"name": "MLSERVER_METRICS_PORT", "value": str(MLSERVER_METRICS_PORT)},
        ],
        # the stock sizing, without the CPU limit (no throttling of inference)
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": RESTRICTED_CONTAINER,
    }
    return {
        "annotations": {
            "prometheus.kserve.io/port": str(MLSERVER_METRICS_PORT),
            "prometheus.kserve.io/path": "/metrics",
        },
        "supportedModelFormats": [
            {"name": n, "version": v, "autoSelect": True, "priority": p} for n, v, p in MLSERVER_FORMATS
        ],
        "protocolVersions": ["v2"],
        "containers": [container],
    }


# What KServe fills in a runtime's container (kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/utils
# ReplacePlaceholders, called from components/predictor.go buildPodSpec): the container as JSON, executed as a
# Go template over the InferenceService's ObjectMeta, so `{{.Name}}` is the InferenceService's name.
ISVC_NAME = "{{.Name}}"
MODEL_DIR = "/mnt/models"  # where the storage initializer puts the model (constants.DefaultModelLocalMountPath)
MLFLOW_MODEL_CLASS = "mlserver_mlflow.MLflowRuntime"  # kserve v0.20.0 constants.MLServerModelClassMLFlow


def mlflow_runtime_spec(placement: Placement, image: pulumi.Input[str]) -> dict[str, object]:
    """MLflow 3 models (`modelFormat: {name: mlflow, version: "3"}`) over KServe's Open Inference Protocol
    (V2: `/v2/models/<name>/infer`, `/ready`, metadata), which KServe's transformers, InferenceGraphs and
    clients speak. The server is MLServer 1.7.1 with its MLflow runtime, at the tracking server's MLflow
    (3.15.1), in the platform's own image (images/mlserver-mlflow, built at `up`, run by digest).

    Why MLServer, and why not the stock kserve-mlserver runtime: MLServer's MLflow runtime loads any pyfunc
    model with MLflow's own loader and answers V2; its 1.7.1 release asks only mlflow>=2.19 (runtimes/mlflow
    pyproject.toml at SeldonIO/MLServer 1.7.1), but its stock image locks MLflow 2.19.0 (poetry.lock), which
    cannot load what MLflow 3 logs. `mlflow models serve`, the runtime before this one, answers only MLflow's
    own `/invocations`, where KServe's V1/V2 paths, transformers and graphs get 404. KServe's own
    sklearnserver speaks V2 but reads a bare joblib/pickle file, not an MLflow model.

    The MLServer settings are explicit rather than left to KServe's MLServer defaulting
    (SetMlServerDefaults in kserve v0.20.0 pkg/apis/serving/v1beta1/inference_service_defaults.go), which runs
    only for a runtime annotated `serving.kserve.io/server-type: mlserver` or named kserve-mlserver, and
    would set the model class from a `modelClass` label it derives from the format: this runtime serves one
    format, so the class is fixed here, with the model's name (the InferenceService's, so KServe's V2 paths
    and the transformer's predictor calls name it) and its directory.

    KServe picks a runtime by protocol too, and an InferenceService without `protocolVersion` asks for v1
    (predictor_model.go GetProtocol): InferenceServices name this runtime (`runtime: mlflow-3`) or set
    `protocolVersion: v2`.

    MLServer opens its HTTP port before the model has loaded (mlserver/server.py MLServer.start), so the
    readiness probe asks for the model itself; Knative's queue-proxy runs it."""
    container = {
        "name": "kserve-container",
        "image": image,
        "command": ["mlserver", "start"],
        "args": [MODEL_DIR],
        "env": [
            {"name": "MLSERVER_MODEL_NAME", "value": ISVC_NAME},
            {"name": "MLSERVER_MODEL_IMPLEMENTATION", "value": MLFLOW_MODEL_CLASS},
            {"name": "MLSERVER_MODEL_URI", "value": MODEL_DIR},
            {"name": "MLSERVER_HTTP_PORT", "value": "8080"},
            {"name": "MLSERVER_GRPC_PORT", "value": "9000"},
            {"name": "MLSERVER_METRICS_PORT", "value": str(MLSERVER_METRICS_PORT)},
            # MLServer's default, stated: inference in one worker process, so a long prediction never blocks
            # the HTTP loop that answers probes and metrics. It needs uvloop < 0.22, which the image pins
            # (images/mlserver-mlflow/requirements.txt says why).
            {"name": "MLSERVER_PARALLEL_WORKERS", "value": "1"},
        ],
        # the CRD requires a port; Knative accepts a number on the user container and probes its serving
        # port, 8080 here (knative/serving knative-v1.21.3 pkg/apis/serving/k8s_validation.go validateProbe)
        "readinessProbe": {"httpGet": {"path": f"/v2/models/{ISVC_NAME}/ready", "port": 8080}},
        "resources": placement.resources("500m", "1Gi", "4Gi"),
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": MLSERVER_MLFLOW_UID},
    }
    return {
        "annotations": {
            "prometheus.kserve.io/port": str(MLSERVER_METRICS_PORT),
            "prometheus.kserve.io/path": "/metrics",
        },
        "supportedModelFormats": [{"name": "mlflow", "version": "3", "autoSelect": True, "priority": 2}],
        "protocolVersions": ["v2"],
        "containers": [container],
    }


def gpu_runtime_spec(pool: NodePoolContract) -> dict[str, object]:
    """Triton on one GPU pool: selector and tolerations from the pool's contract, several models per server
    (Triton loads every model of its repository). One GPU unit per server: a whole GPU, or one share of it
    where the pool time-slices or partitions its GPUs (cluster.gpuPools[].sharing)."""
    gpus = "1"
    container = {
        "name": "kserve-container",
        "image": TRITON_IMAGE,
        "args": [
            "tritonserver",
            "--model-store=/mnt/models",
            "--grpc-port=9000",
            "--http-port=8080",
            "--allow-grpc=true",
            "--allow-http=true",
            "--metrics-port=8002",
        ],
        "resources": {
            "requests": {"cpu": "1", "memory": "4Gi", GPU_RESOURCE: gpus},
            "limits": {"memory": "16Gi", GPU_RESOURCE: gpus},
        },
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": 1000},
    }
    return {
        "annotations": {"prometheus.kserve.io/port": "8002", "prometheus.kserve.io/path": "/metrics"},
        # chosen by name (`runtime:`), never automatically: CPU models keep the stock runtimes
        "supportedModelFormats": [{"name": n, "version": v, "autoSelect": False} for n, v in TRITON_FORMATS],
        "protocolVersions": ["v2", "grpc-v2"],
        "nodeSelector": pool.node_selector(),
        "tolerations": pool.tolerations(),
        "containers": [container],
    }


class KServe(pulumi.ComponentResource):
    outputs: KServeOutputs

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:KServe", name, None, opts)
        account = identity_service_account(self, f"{name}-model-pull-account", args.identity, args.models)
        runtimes: dict[str, str] = {}
        if args.config.enabled:
            ns = args.namespace.metadata.name
            # CRDs only: they need nothing else, so they install at once; the controller waits for the rest
            crd = pinned_release(
                self, f"{name}-crd", args.pins.crd, ns, {}, args.provider, release_name="kserve-crd",
                timeout_seconds=300,
            )  # fmt: skip
            controller = pinned_release(
                self,
                f"{name}-controller",
                args.pins.resources,
                ns,
                controller_values(args.config, args.placement),
                args.provider,
                release_name="kserve",
                # the controller on the CPU pool (may be at zero nodes) and its webhook certificate
                timeout_seconds=600,
                depends_on=[crd, *args.after],
            )
            if args.placement.spread:
                # the chart has no replicas value; leader election lets a second replica take over at once
                k8s.apps.v1.DeploymentPatch(
                    f"{name}-controller-replicas",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name="kserve-controller-manager", namespace=ns),
                    spec=k8s.apps.v1.DeploymentSpecPatchArgs(replicas=args.config.replicas),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[controller]),
                )
            stock = pinned_release(
                self, f"{name}-runtimes", args.pins.runtimes, ns, runtime_values(), args.provider,
                release_name="kserve-runtime-configs", timeout_seconds=300, depends_on=[controller],
            )  # fmt: skip
            models_ns = args.models.metadata.name
            k8s.apiextensions.CustomResource(
                f"{name}-mlserver-runtime",
                api_version="serving.kserve.io/v1alpha1",
                kind="ServingRuntime",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=MLSERVER_RUNTIME, namespace=models_ns, labels=PART_OF),
                spec=mlserver_runtime_spec(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[controller, stock]),
            )
            k8s.apiextensions.CustomResource(
                f"{name}-mlflow-runtime",
                api_version="serving.kserve.io/v1alpha1",
                kind="ServingRuntime",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=MLFLOW_RUNTIME, namespace=models_ns, labels=PART_OF),
                spec=mlflow_runtime_spec(args.placement, args.runtime_image),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[controller, stock]),
            )
            for pool in args.gpu_pools:
                runtime = f"triton-{pool.name}"
                k8s.apiextensions.CustomResource(
                    f"{name}-{runtime}",
                    api_version="serving.kserve.io/v1alpha1",
                    kind="ServingRuntime",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=runtime, namespace=args.models.metadata.name, labels=PART_OF
                    ),
                    spec=gpu_runtime_spec(pool),
                    # KServe's webhook validates ServingRuntimes: after the controller is serving
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[controller, stock]),
                )
                runtimes[pool.name] = runtime
        self.outputs = KServeOutputs(account, runtimes)
        self.register_outputs({"modelPullServiceAccount": account.metadata.name})
