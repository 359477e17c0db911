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
annotation makes the GCS client use the Google service account.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import GPU_RESOURCE, NodePoolContract, WorkloadIdentity
from components.kube import PART_OF, RESTRICTED_CONTAINER, identity_service_account, pinned_release, zone_spread
from components.placement import Placement
from mlplatform.config import KServeConfig
from mlplatform.pins import MLFLOW_IMAGE_UID, MLFLOW_SERVING_IMAGE, MLSERVER_TAG, TRITON_IMAGE, ChartPin

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
                "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
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


def mlflow_runtime_spec(placement: Placement) -> dict[str, object]:
    """MLflow 3 models (`modelFormat: {name: mlflow, version: "3"}`): `mlflow models serve` on the model the
    storage initializer put in /mnt/models, in the tracking server's image (same MLflow version, with the
    cloud storage clients; scikit-learn and pyfunc flavors run as they are, other flavors need their
    libraries in an image built FROM it). Why not MLServer: its MLflow runtime is locked to MLflow 2.20.
    Protocol: MLflow's scoring API (`POST /invocations`), KServe's v1 slot."""
    container = {
        "name": "kserve-container",
        "image": MLFLOW_SERVING_IMAGE,
        "command": ["mlflow", "models", "serve"],
        "args": ["--model-uri=/mnt/models", "--host=0.0.0.0", "--port=8080", "--env-manager=local"],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": placement.resources("500m", "1Gi", "4Gi"),
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": MLFLOW_IMAGE_UID},
    }
    return {
        "supportedModelFormats": [{"name": "mlflow", "version": "3", "autoSelect": True, "priority": 2}],
        "protocolVersions": ["v1"],
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
                spec=mlflow_runtime_spec(args.placement),
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
