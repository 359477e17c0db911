"""The models and graphs the platform serves: `mlplatform:serving` in `Pulumi.<stack>.yaml`.

Each model becomes an InferenceService in `model-serving` (components/serving/models.py), each graph an
InferenceGraph over them. What a model may name depends on the stack (its GPU pools, whether KServe and
Feast are installed), so PlatformConfig validates this section with those facts in the validation context
(serving_context): an error then names its exact key, its value and what is allowed there.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationInfo, field_validator, model_validator

from mlplatform.config.strict import STRICT

# Names KServe and Knative derive others from must stay DNS labels of at most 63 characters. The longest
# derived name is the private Service Knative makes for a transformer's revision,
# `<model>-transformer-00001-private` (knative/serving pkg/reconciler/serverlessservice: the revision's name
# plus `-private`; the revision is `<Knative Service>-00001`, the Knative Service `<model>-transformer`,
# kserve v0.20.0 pkg/constants TransformerServiceName): 26 characters besides the model's name, so 37 for it.
# A graph's Knative Service is named as the graph (kserve v0.20.0 pkg/controller/v1alpha1/inferencegraph
# knative_reconciler.go createKnativeService), `<graph>-00001-private`: 49.
MODEL_NAME = r"^[a-z]([-a-z0-9]{0,35}[a-z0-9])?$"
GRAPH_NAME = r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$"
# MLflow refuses '/' and ':' in a registered model's name (mlflow/utils/validation.py _validate_model_name);
# '@' would split a `models:/<name>@<alias>` URI, and whitespace has no place in a storage URI
REGISTERED_MODEL = r"^[A-Za-z0-9_.-]{1,256}$"
# MLflow's alias rule (validation.py _REGISTERED_MODEL_ALIAS_REGEX, MAX_REGISTERED_MODEL_ALIAS_LENGTH), and its
# reserved names: `latest` and version-like `v<N>` (_validate_model_alias_name_reserved)
ALIAS = r"^[\w-]+$"
RESERVED_ALIAS = r"^([vV]\d+|[lL][aA][tT][eE][sS][tT])$"
# Feast's feature reference, `<feature view>:<feature>` (feast/feature_view_projection.py, online `features`)
FEATURE_REF = r"[A-Za-z_]\w*:[A-Za-z_]\w*"
V2_INPUT = r"[A-Za-z_][\w.-]*"  # a V2 request's input tensor name
JOIN_KEY = r"[A-Za-z_]\w*"  # a Feast entity's join key (a column name)

CPU_POOL = "cpu"  # the cluster's CPU pool (cluster.cpuPool), by the name models use for it
# The ServingRuntimes a model may name, as components/serving/kserve.py creates them in model-serving:
# MLFLOW_RUNTIME for MLflow 3 models on any pool, and one Triton runtime per GPU pool, `triton-<pool>`.
# tests/test_serving_models.py keeps these equal to that module's.
MLFLOW_RUNTIME = "mlflow-3"
TRITON_PREFIX = "triton-"
TRITON_FORMATS = ("tensorrt", "tensorflow", "onnx", "pytorch", "triton")
# The design's HA table: three predictor pods in every zone in multi-zone stacks, none kept warm otherwise
# (components/serving/__init__.py PODS_PER_ZONE, inference_defaults; a test keeps the two equal)
PODS_PER_ZONE = 3
DEFAULT_MAX_REPLICAS = 3


def default_min_replicas(zones: int, multi_zone: bool) -> int:
    """A model's minReplicas when its config leaves it out: the stack's inference default."""
    return PODS_PER_ZONE * zones if multi_zone else 0


def default_max_replicas(min_replicas: int) -> int:
    """A model's maxReplicas when its config leaves it out: room to double, and at least three."""
    return max(DEFAULT_MAX_REPLICAS, 2 * min_replicas)


def serving_context(info: ValidationInfo) -> dict[str, object]:
    """What this section is validated against, from PlatformConfig's fields validated before it (absent
    when they failed: their own errors are reported, and the checks that need them are skipped)."""
    data, context = info.data, dict(info.context or {})
    cluster, services = data.get("cluster"), data.get("services")
    if cluster is not None:
        context["gpu_pools"] = tuple(p.name for p in cluster.gpu_pools)
        # the GPU units a pool can ever offer pods: nvidia.com/gpu per node (GPUs x shares) x its maximum nodes
        context["gpu_capacity"] = {
            p.name: (p.max_nodes, p.accelerator_count * p.shares_per_gpu) for p in cluster.gpu_pools
        }
    if services is not None:
        context["kserve_enabled"] = services.kserve.enabled
        context["feast_enabled"] = services.feast.enabled
    if data.get("zones") is not None and data.get("ha") is not None:
        context["min_replicas_default"] = default_min_replicas(len(data["zones"]), data["ha"] == "multi-zone")
    return context


class Strict(BaseModel):
    """mlplatform/config/models.py's base (models.py imports this module, so it is not imported from there)."""

    model_config = STRICT


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


# the longest canary watch and revision start the deployment DAG's 2 h run allows (ServingModelConfig)
CANARY_WATCH_MAX, READY_TIMEOUT_MAX = 3600, 1500


class TimeoutsConfig(Strict):
    """How long the transformer waits, in seconds: a slow dependency becomes the client's 503/504, never a
    hang. The feature server's 3 s covers a worker's first read (1-2 s measured: Feast imports its SQL
    online-store modules then, feast v0.66.0 online_store.py _is_versioned_read_supported), which happens at
    start and after every recycle of a worker; warm reads take milliseconds."""

    feature_server: Annotated[float, Field(gt=0, le=10)] = 3.0
    predictor: Annotated[float, Field(gt=0, le=600)] = 30.0


def _dns_label(kind: str, longest: int) -> AfterValidator:
    pattern = MODEL_NAME if kind == "model" else GRAPH_NAME

    def check(v: str) -> str:
        if not re.fullmatch(pattern, v):
            raise ValueError(
                f"a {kind}'s name is a DNS label of at most {longest} characters (a-z, 0-9, -; starting with a "
                "letter): KServe and Knative name longer objects after it"
            )
        return v

    return AfterValidator(check)


def _feature_ref(v: str) -> str:
    if not re.fullmatch(FEATURE_REF, v):
        raise ValueError("a feature is named <feature view>:<feature>, e.g. driver_hourly_stats:conv_rate")
    return v


def _v2_input(v: str) -> str:
    if not re.fullmatch(V2_INPUT, v):
        raise ValueError("an entity is keyed by the name of a V2 request input (letters, digits, _ . -)")
    return v


def _join_key(v: str) -> str:
    if not re.fullmatch(JOIN_KEY, v):
        raise ValueError("an entity maps to a Feast join key, a column name (letters, digits, _)")
    return v


FeatureRef = Annotated[str, AfterValidator(_feature_ref)]
V2Input = Annotated[str, AfterValidator(_v2_input)]
JoinKey = Annotated[str, AfterValidator(_join_key)]


def _unique(what: str, v: list[str]) -> list[str]:
    repeated = sorted({x for x in v if v.count(x) > 1})
    if repeated:
        raise ValueError(f"{what} must not repeat; repeated: {_one_of(repeated)}")
    return v


class TransformerConfig(Strict):
    """The Feast transformer before the predictor: for each request row it reads the entity keys from the
    V2 inputs named in `entities`, fetches `features` from the online feature server, and sends the
    predictor the inputs with the features added."""

    features: Annotated[list[FeatureRef], Field(min_length=1)]
    entities: Annotated[dict[V2Input, JoinKey], Field(min_length=1)]  # V2 input name -> Feast join key
    timeout_seconds: TimeoutsConfig = TimeoutsConfig()

    @field_validator("features")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique("features", v)


class ServingModelConfig(Strict):
    """One model: an MLflow registered model, followed by an alias (the deployment DAG rolls out each
    version the alias moves to) or fixed at one version. Field order matters: a field's validator sees the
    fields declared before it."""

    name: Annotated[str, _dns_label("model", 37)]
    registered_model: Annotated[str, Field(pattern=REGISTERED_MODEL)]
    alias: Annotated[str, Field(pattern=ALIAS, max_length=255)] | None = None
    version: Annotated[int | None, Field(ge=1, validate_default=True)] = None
    model_format: Literal[TRITON_FORMATS] | None = None  # Triton runtimes only
    runtime: Annotated[str, Field(validate_default=True)] = MLFLOW_RUNTIME
    pool: str | None = None  # default: a Triton runtime's pool, else cpu
    min_replicas: Annotated[int, Field(ge=0, le=100)] | None = None  # default: the stack's (dev 0, prod 3/zone)
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    canary_percent: Annotated[int, Field(ge=1, le=99)] = 10
    # The deployment DAG's timing (dags/mlplatform_deploy/flow.py ModelTarget). The bounds keep one run inside
    # the DAG's 2 h dagrun_timeout: a new revision's start, the watch, and a rollback's restored revision
    # (2 x 1500 + 3600 = 6600 s).
    canary_watch_seconds: Annotated[int, Field(ge=60, le=CANARY_WATCH_MAX)] = 600
    canary_check_seconds: Annotated[int, Field(ge=10, le=600)] = 30
    ready_timeout_seconds: Annotated[int, Field(ge=60, le=READY_TIMEOUT_MAX)] = 900
    transformer: TransformerConfig | None = None

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, v: str | None) -> str | None:
        if v is not None and re.fullmatch(RESERVED_ALIAS, v):
            raise ValueError("MLflow reserves `latest` and version-like aliases (v1, V2, ...); name another alias")
        return v

    @field_validator("version")
    @classmethod
    def _alias_or_version(cls, v: int | None, info: ValidationInfo) -> int | None:
        if "alias" in info.data and (info.data["alias"] is None) == (v is None):
            raise ValueError(
                "set exactly one of alias (the MLflow alias the deployment DAG follows, e.g. production) or "
                "version (one fixed version)"
            )
        return v

    @field_validator("runtime")
    @classmethod
    def _runtime_exists(cls, v: str, info: ValidationInfo) -> str:
        pools = (info.context or {}).get("gpu_pools")
        if pools is not None and v not in (allowed := [MLFLOW_RUNTIME, *(f"{TRITON_PREFIX}{p}" for p in pools)]):
            raise ValueError(f"runtime must be one of: {_one_of(allowed)} (a Triton runtime per GPU pool)")
        if "model_format" in info.data:
            model_format = info.data["model_format"]
            if _triton_pool(v) is not None and model_format is None:
                raise ValueError(f"a Triton runtime needs modelFormat, one of: {_one_of(TRITON_FORMATS)}")
            if _triton_pool(v) is None and model_format is not None:
                raise ValueError(f"{v} serves MLflow models: modelFormat ({model_format}) is for Triton runtimes")
        return v

    @field_validator("pool")
    @classmethod
    def _pool_exists(cls, v: str | None, info: ValidationInfo) -> str | None:
        pools = (info.context or {}).get("gpu_pools")
        if v is not None and pools is not None and v not in (allowed := [CPU_POOL, *pools]):
            raise ValueError(f"pool must be one of: {_one_of(allowed)} (cpu, or a name in cluster.gpuPools)")
        triton_pool = _triton_pool(info.data.get("runtime"))
        if v is not None and triton_pool is not None and v != triton_pool:
            raise ValueError(f"runtime {info.data['runtime']} runs on GPU pool {triton_pool}; set pool: {triton_pool}")
        return v

    @field_validator("max_replicas")
    @classmethod
    def _max_ge_min(cls, v: int | None, info: ValidationInfo) -> int | None:
        low, stack_default = info.data.get("min_replicas"), (info.context or {}).get("min_replicas_default")
        if v is None:
            return v
        if low is not None and v < low:
            raise ValueError(f"maxReplicas must be >= minReplicas ({low})")
        if low is None and "min_replicas" in info.data and stack_default is not None and v < stack_default:
            raise ValueError(f"maxReplicas must be >= minReplicas, which this stack defaults to {stack_default}")
        return v

    @field_validator("canary_check_seconds")
    @classmethod
    def _checks_within_the_watch(cls, v: int, info: ValidationInfo) -> int:
        watch = info.data.get("canary_watch_seconds")
        if watch is not None and v > watch:
            raise ValueError(
                f"canaryCheckSeconds must be <= canaryWatchSeconds ({watch}): the watch checks at least once"
            )
        return v

    @field_validator("transformer")
    @classmethod
    def _feast_installed(cls, v: TransformerConfig | None, info: ValidationInfo) -> TransformerConfig | None:
        if v is not None and (info.context or {}).get("feast_enabled") is False:
            raise ValueError("a transformer reads the Feast feature server: set services.feast.enabled: true")
        return v

    @model_validator(mode="after")
    def _fits_its_gpu_pool(self, info: ValidationInfo) -> Self:
        """Every predictor pod of a GPU pool's model takes one GPU unit: its minimum must fit the pool."""
        capacity = ((info.context or {}).get("gpu_capacity") or {}).get(self.node_pool)
        low = self.min_replicas if self.min_replicas is not None else (info.context or {}).get("min_replicas_default")
        if capacity is not None and low is not None and low > capacity[0] * capacity[1]:
            nodes, units = capacity
            origin = "" if self.min_replicas is not None else ", this stack's default: 3 pods per zone"
            raise ValueError(
                f"minReplicas ({low}{origin}) is more than GPU pool {self.node_pool} can hold: {nodes} node(s) x "
                f"{units} GPU unit(s) = {nodes * units}; set minReplicas (and maxReplicas) at most {nodes * units}"
            )
        return self

    @property
    def triton_pool(self) -> str | None:
        """The GPU pool of the Triton runtime this model names, if it names one."""
        return _triton_pool(self.runtime)

    @property
    def node_pool(self) -> str:
        """Where the predictor runs: `cpu` or a GPU pool's name."""
        return self.pool or self.triton_pool or CPU_POOL

    @property
    def storage_uri(self) -> str:
        """The model in MLflow's registry, as the platform's `models:/` storage container resolves it when a
        pod starts (components/serving/models.py)."""
        ref = f"@{self.alias}" if self.alias is not None else f"/{self.version}"
        return f"models:/{self.registered_model}{ref}"


def _triton_pool(runtime: str | None) -> str | None:
    return runtime.removeprefix(TRITON_PREFIX) if runtime and runtime.startswith(TRITON_PREFIX) else None


def _configured_model(name: str, info: ValidationInfo) -> str:
    models = (info.context or {}).get("models")
    if models is not None and name not in models:
        raise ValueError(f"no model of this name in serving.models; models: {_one_of(models) or 'none'}")
    return name


class ServingGraphConfig(Strict):
    """An InferenceGraph over configured models. `sequence`: each step after the first gets the previous
    step's response as its request (a transformer-like model, then a predictor); `ensemble`: every step gets
    the request, and the response maps each step's model name to its answer."""

    name: Annotated[str, _dns_label("graph", 49)]
    kind: Literal["sequence", "ensemble"]
    steps: Annotated[list[Annotated[str, AfterValidator(_configured_model)]], Field(min_length=2)]

    @field_validator("steps")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        # KServe's webhook rejects a node with two steps of one name (inference_graph_validation.go
        # DuplicateStepNameError), and steps are named by their model
        return _unique("steps", v)


class ServingConfig(Strict):
    models: list[ServingModelConfig] = []
    graphs: list[ServingGraphConfig] = []

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[ServingModelConfig], info: ValidationInfo) -> list[ServingModelConfig]:
        if v and (info.context or {}).get("kserve_enabled") is False:
            raise ValueError("models are served by KServe: set services.kserve.enabled: true")
        names = [m.name for m in v]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"model names must be unique; repeated: {_one_of(repeated)}")
        return v

    @field_validator("graphs", mode="before")
    @classmethod
    def _graphs(cls, v: object, info: ValidationInfo) -> object:
        """Graphs are validated knowing the models' names, so a step naming no model is reported at its key."""
        models = info.data.get("models")
        if models is None:  # the models failed validation; their errors are reported
            return v
        context = {**(info.context or {}), "models": [m.name for m in models]}
        return TypeAdapter(list[ServingGraphConfig]).validate_python(v, context=context)

    @model_validator(mode="after")
    def _names_apart(self) -> Self:
        """A graph's Knative Service and Service are named as the graph, a model's as the model (its
        top-level Service) and `<model>-predictor` / `<model>-transformer`: none may be another's."""
        taken = {n for m in self.models for n in (m.name, f"{m.name}-predictor", f"{m.name}-transformer")}
        names = [g.name for g in self.graphs]
        problems = [
            f"graph names must be unique; repeated: {n}" for n in sorted({n for n in names if names.count(n) > 1})
        ]
        problems += [f"graph {n} would take a name a model's services use" for n in names if n in taken]
        if problems:
            raise ValueError("; ".join(problems))
        return self
