"""The models and graphs the stack's config declares (`mlplatform:serving`, mlplatform/config/serving.py): one
InferenceService per model in `model-serving`, one InferenceGraph per graph, and the storage container that
lets an InferenceService name its model the way MLflow does.

Where a model comes from. Pulumi cannot ask MLflow at plan time which artifacts an alias points at, so an
InferenceService is created with the model's registry URI, `models:/<registered model>@<alias>` (or
`/<version>`), and the platform teaches KServe that scheme: a ClusterStorageContainer for the `models:/`
and `mlflow-artifacts:/` prefixes whose container resolves the URI with MLflow's own client against the
tracking server and downloads the model where KServe says. KServe matches a storageUri against every
ClusterStorageContainer's supportedUriFormats before its own schemes (kserve v0.20.0
pkg/controller/v1beta1/inferenceservice/utils/utils.go ValidateStorageURI, step 1;
pkg/webhook/admission/pod/storage_initializer_injector.go GetStorageContainerSpec), builds the init
container from its `storageInitializer` config with args `[<uri>, /mnt/models]` and merges the
ClusterStorageContainer's container over it (CommonStorageInitialization, pkg/utils MergeContainerWithPatch):
so this container sets a command and keeps KServe's args. It runs the mlflow-3 runtime's image (MLflow at
the tracking server's version, already on the node for the predictor) as that image's non-root user, with
the restricted securityContext `model-serving`'s Pod Security level requires (the injected init container
is not defaulted by Knative). It reaches MLflow on the flow `model-serving -> mlflow`
(components/guardrails.py); artifacts come through MLflow's proxy, so it needs no bucket credentials.

Who owns what. An alias URI is resolved again at every pod start, so a scale-up after the alias moved would
load the new version outside any canary. The deployment DAG (dags/deploy_model.py) therefore owns
`spec.predictor.model.storageUri` and `spec.predictor.canaryTrafficPercent` once the InferenceService
exists: it pins a concrete, immutable artifact URI and rolls it out as a canary, with server-side apply under
its own field manager (`mlplatform-deploy-model`, force). The program sets storageUri only at creation and
never sets canaryTrafficPercent (a first revision takes all traffic anyway); both are in `ignore_changes`.
So an unchanged config makes no diff, and when another field changes, pulumi-kubernetes (server-side apply,
its v4 default) leaves them out of its apply patch because another manager owns them and it does not
(provider/pkg/await/await.go handleSSAIgnoreFields: "Drop the field from the inputs if it is present on the
cluster and managed by another manager"); where Pulumi still shares one, it re-sends the live value. Either
way a DAG-pinned storageUri and a canary in progress survive `pulumi up`. The program does create the
InferenceService: the DAG must not create one the program manages (a create finds it existing and fails).

What every InferenceService gets: the read-only model-pull identity (its predictor's serviceAccountName),
its pool's selector and tolerations from the pool contract (a GPU pool's models also request one GPU
unit), the stack's inference defaults (prod: 3 pods per zone, spread over zones), and where features are
configured, the Feast transformer (images/feast-transformer) before the predictor, configured by
FEAST_TRANSFORMER_CONFIG with the feature server's address from the lifecycle layer's typed endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import GPU_RESOURCE, NodePoolContract, ServiceEndpoint
from components.kube import PART_OF, RESTRICTED_CONTAINER, ZONE_KEY
from mlplatform.config.serving import (
    CPU_POOL,
    MLFLOW_RUNTIME,
    ServingGraphConfig,
    ServingModelConfig,
    TransformerConfig,
    default_max_replicas,
)

ISVC_API, IG_API = "serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1"
STORAGE_CONTAINER = "mlflow-models"
# the URIs the storage container resolves: a registered model (`models:/<name>@<alias>`, `models:/<name>/<v>`,
# MLflow 3's logged models `models:/m-<id>`) and a run's or logged model's artifacts through MLflow's proxy
MODEL_URI_PREFIXES = ("models:/", "mlflow-artifacts:/")
# What the storage container runs: KServe appends `<uri> <destination>` (its args), python -c hands them on.
# mlflow.artifacts.download_artifacts resolves `models:/` through the registry (ModelsArtifactRepository) and
# writes the model's files, MLmodel first among them, into the destination, where the runtime loads them.
RESOLVE = """\
import sys

from mlflow.artifacts import download_artifacts

uri, destination = sys.argv[1], sys.argv[2]
print(f"mlflow-models: {uri} -> {destination}", flush=True)
try:
    download_artifacts(artifact_uri=uri, dst_path=destination)
except Exception as e:
    sys.exit(f"mlflow-models: cannot download {uri} from the MLflow tracking server: {e}")
print(f"mlflow-models: {uri} is in {destination}", flush=True)
"""
# The runtime a model names and the format its InferenceService declares for it: KServe admits a model only
# when the named runtime supports its format (the mlflow-3 runtime's supportedModelFormats,
# components/serving/kserve.py; a test checks every planned model against the planned runtime)
MLFLOW_FORMAT = {"name": "mlflow", "version": "3"}
TRANSFORMER_ENV = "FEAST_TRANSFORMER_CONFIG"  # images/feast-transformer/feast_transformer/config.py
# KServe's CustomTransformer reports its protocol from this variable (kserve v0.20.0
# pkg/apis/serving/v1beta1/transformer_custom.go GetProtocol, constants.CustomSpecProtocolEnvVarKey); an
# InferenceGraph calls a model with a transformer on that protocol's path (/v2/models/<name>/infer)
PROTOCOL_ENV, PROTOCOL = "PROTOCOL", "v2"
COMPONENT_LABEL = "component"  # KServe's label on each component's pods (pkg/constants KServiceComponentLabel)
GRAPH_LABEL = "serving.kserve.io/inferencegraph"  # on a graph's router pods (pkg/constants InferenceGraphLabel)
TRANSFORMER_UID = 1000  # the Feast transformer image's numeric non-root USER (images/feast-transformer/Dockerfile)


@dataclass(frozen=True)
class ModelsArgs:
    namespace: k8s.core.v1.Namespace  # model-serving
    models: Sequence[ServingModelConfig]
    graphs: Sequence[ServingGraphConfig]
    service_account: k8s.core.v1.ServiceAccount  # the read-only model-pull identity (KServeOutputs)
    cpu_pool: NodePoolContract
    gpu_pools: Sequence[NodePoolContract]
    gpu_runtimes: Mapping[str, str]  # GPU pool -> its Triton ServingRuntime (KServeOutputs.gpu_runtimes)
    defaults: Mapping[str, object]  # components/serving/__init__.py inference_defaults
    zones: int
    multi_zone: bool
    mlflow: ServiceEndpoint  # the tracking server: the storage container's MLFLOW_TRACKING_URI
    feature_server: ServiceEndpoint  # what the transformer reads online features from
    # an image with MLflow at the tracking server's version, and its numeric non-root user: the mlflow-3
    # runtime's (components/serving/images.py)
    storage_image: pulumi.Input[str]
    storage_uid: int
    transformer_image: pulumi.Input[str]  # the Feast transformer (components/serving/images.py)
    transformer_uid: int
    after: Sequence[pulumi.Resource] = ()  # KServe: its CRDs, controller (webhooks) and runtimes


@dataclass(frozen=True)
class ModelsOutputs:
    storage_container: k8s.apiextensions.CustomResource
    inference_services: Mapping[str, k8s.apiextensions.CustomResource]
    inference_graphs: Mapping[str, k8s.apiextensions.CustomResource]


def storage_container_spec(mlflow: ServiceEndpoint, image: pulumi.Input[str], uid: int) -> dict[str, object]:
    container = {
        # KServe's own name for the init container (constants.StorageInitializerContainerName), which its
        # injector and the Istio CNI handling look the container up by
        "name": "storage-initializer",
        "image": image,
        "command": ["python", "-c", RESOLVE],
        "env": [{"name": "MLFLOW_TRACKING_URI", "value": mlflow.url}, {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": uid},
    }
    return {
        "container": container,
        "supportedUriFormats": [{"prefix": p} for p in MODEL_URI_PREFIXES],
        "workloadType": "initContainer",
    }


def transformer_config(t: TransformerConfig, feature_server: ServiceEndpoint) -> dict[str, object]:
    """FEAST_TRANSFORMER_CONFIG: the contract images/feast-transformer/feast_transformer/config.py parses."""
    return {
        "featureServerUrl": feature_server.url,
        "features": list(t.features),
        "entities": dict(t.entities),
        "timeoutSeconds": {"featureServer": t.timeout_seconds.feature_server, "predictor": t.timeout_seconds.predictor},
    }


def _replicas(m: ServingModelConfig, defaults: Mapping[str, object]) -> dict[str, int]:
    low = m.min_replicas if m.min_replicas is not None else cast(int, defaults.get("minReplicas", 0))
    return {"minReplicas": low, "maxReplicas": m.max_replicas or default_max_replicas(low)}


def _spread(defaults: Mapping[str, object], component: str) -> list[dict[str, object]]:
    """The stack's topology spread for the predictor, aimed at `component`'s pods (its labelSelector names
    the predictor's component label: a transformer counts its own pods, not the predictor's)."""
    constraints = defaults.get("topologySpreadConstraints") or []
    assert isinstance(constraints, list)
    return [{**c, "labelSelector": {"matchLabels": {COMPONENT_LABEL: component}}} for c in constraints]


def inference_service_spec(
    m: ServingModelConfig, args: ModelsArgs, account: pulumi.Input[str], transformer_image: pulumi.Input[str]
) -> dict[str, object]:
    pool = args.cpu_pool if m.node_pool == CPU_POOL else next(p for p in args.gpu_pools if p.name == m.node_pool)
    model: dict[str, object] = {"storageUri": m.storage_uri}
    if m.runtime == MLFLOW_RUNTIME:
        model |= {"modelFormat": dict(MLFLOW_FORMAT), "runtime": MLFLOW_RUNTIME}
    else:
        model |= {"modelFormat": {"name": m.model_format}, "runtime": args.gpu_runtimes[m.node_pool]}
    if pool.is_gpu:
        model["resources"] = {"requests": {GPU_RESOURCE: "1"}, "limits": {GPU_RESOURCE: "1"}}
    replicas = _replicas(m, args.defaults)
    predictor: dict[str, object] = {
        **replicas,
        "serviceAccountName": account,
        "nodeSelector": pool.node_selector(),
        "model": model,
    }
    if pool.tolerations():
        predictor["tolerations"] = pool.tolerations()
    if spread := _spread(args.defaults, "predictor"):
        predictor["topologySpreadConstraints"] = spread
    spec: dict[str, object] = {"predictor": predictor}
    if m.transformer is not None:
        container = {
            "name": "kserve-container",
            "image": transformer_image,
            "env": [
                {"name": TRANSFORMER_ENV, "value": json.dumps(transformer_config(m.transformer, args.feature_server))},
                {"name": PROTOCOL_ENV, "value": PROTOCOL},
            ],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": args.transformer_uid},
        }
        transformer: dict[str, object] = {
            **replicas,
            # it reads the feature server and calls the predictor; the Kubernetes API is nothing of its
            "automountServiceAccountToken": False,
            "nodeSelector": args.cpu_pool.node_selector(),
            "containers": [container],
        }
        if args.cpu_pool.tolerations():
            transformer["tolerations"] = args.cpu_pool.tolerations()
        if spread := _spread(args.defaults, "transformer"):
            transformer["topologySpreadConstraints"] = spread
        spec["transformer"] = transformer
    return spec


def inference_graph_spec(g: ServingGraphConfig, args: ModelsArgs) -> dict[str, object]:
    """The graph's root node over its models (steps named by model, which an ensemble's answer is keyed by);
    in a sequence every step after the first is sent the previous step's response (`$response`, kserve
    v0.20.0 cmd/router/main.go). The router runs on the CPU pool: in prod one per zone at least, kept apart
    by zone."""
    steps = []
    for i, model in enumerate(g.steps):
        step: dict[str, object] = {"name": model, "serviceName": model}
        if g.kind == "sequence":
            step["data"] = "$response" if i else "$request"
        steps.append(step)
    low = args.zones if args.multi_zone else 0
    spec: dict[str, object] = {
        "nodes": {"root": {"routerType": g.kind.capitalize(), "steps": steps}},
        "minReplicas": low,
        "maxReplicas": default_max_replicas(low),
        "nodeSelector": args.cpu_pool.node_selector(),
    }
    if args.cpu_pool.tolerations():
        spec["tolerations"] = args.cpu_pool.tolerations()
    if args.multi_zone:
        selector = {"matchLabels": {GRAPH_LABEL: g.name}}
        term = {"weight": 100, "podAffinityTerm": {"topologyKey": ZONE_KEY, "labelSelector": selector}}
        spec["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}
    return spec


class Models(pulumi.ComponentResource):
    outputs: ModelsOutputs

    def __init__(self, name: str, args: ModelsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Models", name, None, opts)
        ns = args.namespace.metadata.name
        storage = k8s.apiextensions.CustomResource(
            f"{name}-storage-container",
            api_version="serving.kserve.io/v1alpha1",
            kind="ClusterStorageContainer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=STORAGE_CONTAINER, labels=PART_OF),
            spec=storage_container_spec(args.mlflow, args.storage_image, args.storage_uid),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        account = args.service_account.metadata.name
        services: dict[str, k8s.apiextensions.CustomResource] = {}
        for m in args.models:
            services[m.name] = k8s.apiextensions.CustomResource(
                f"{name}-{m.name}",
                api_version=ISVC_API,
                kind="InferenceService",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=m.name, namespace=ns, labels=PART_OF),
                spec=inference_service_spec(m, args, account, args.transformer_image),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # the storage container first: a pod whose URI no container resolves would get KServe's
                    # default initializer, which cannot read `models:/`
                    depends_on=[*args.after, args.namespace, args.service_account, storage],
                    # the deployment DAG's after creation (see the module docstring)
                    ignore_changes=["spec.predictor.model.storageUri", "spec.predictor.canaryTrafficPercent"],
                ),
            )
        graphs: dict[str, k8s.apiextensions.CustomResource] = {}
        for g in args.graphs:
            graphs[g.name] = k8s.apiextensions.CustomResource(
                f"{name}-graph-{g.name}",
                api_version=IG_API,
                kind="InferenceGraph",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=g.name, namespace=ns, labels=PART_OF),
                spec=inference_graph_spec(g, args),
                # KServe resolves each step's InferenceService when it reconciles the graph
                opts=pulumi.ResourceOptions(parent=self, depends_on=[services[s] for s in g.steps]),
            )
        self.outputs = ModelsOutputs(storage, services, graphs)
        self.register_outputs({"inferenceServices": list(services), "inferenceGraphs": list(graphs)})
