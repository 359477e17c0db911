"""Typed stack configuration: the `mlplatform:` namespace of `Pulumi.<stack>.yaml`.

Keys are camelCase in YAML (Pulumi's convention) and snake_case in Python. Every model forbids unknown
keys, so a typo fails loudly instead of silently falling back to a default.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mlplatform.chartkeys import supported_versions
from mlplatform.config.certificates import ca_bundle_problems
from mlplatform.config.client import ClientConfig
from mlplatform.config.serving import ServingConfig, serving_context
from mlplatform.config.streaming import StreamingConfig
from mlplatform.config.strict import STRICT
from mlplatform.config.versions import (
    KAFKA_MAJOR,
    KUBERNETES_RANGE,
    POSTGRES_RANGE,
    REDIS_RANGE,
    parse_major_minor,
)
from mlplatform.pins import EKS_ADDON_VERSIONS, KNATIVE_SERVING_VERSIONS, SERVICE_CHARTS, SERVING_MIN_KUBERNETES

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
CHART_VERSION = r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$"
PROD_MIN_ZONES = 3
LOCAL_REGION = "local"


class Strict(BaseModel):
    """Base for every config model: unknown keys rejected, camelCase aliases, immutable."""

    model_config = STRICT


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    # any Kubernetes cluster reached by a kubeconfig context (kind, k3d, minikube): no cloud resource at all,
    # every data service and the object store inside the cluster
    LOCAL = "local"


class DataServiceMode(StrEnum):
    """Where a data service runs: the cloud's managed service, or inside the cluster behind the same contract
    (CloudNativePG, Valkey, Strimzi: components/data/in_cluster/). `cloud: local` allows in-cluster only."""

    MANAGED = "managed"
    IN_CLUSTER = "in-cluster"


class Sizing(StrEnum):
    """What the platform's own pods request (`services.sizing`). `standard`: sized for a team's load (prod).
    `small`: for a handful of users (dev, and local within its laptop budget), lower CPU and memory requests
    on the services that idle well below them; memory limits stay as in `standard`, so a small pod may still
    grow to the same ceiling when a node has room. `plan` prints the stack's summed requests."""

    STANDARD = "standard"
    SMALL = "small"


class Profile(StrEnum):
    DEV = "dev"
    PROD = "prod"


class HaProfile(StrEnum):
    """How the in-cluster services and data services spread: one zone or across zones."""

    SINGLE_ZONE = "single-zone"
    MULTI_ZONE = "multi-zone"


ADMIN_PRINCIPAL_SHAPES: dict[Cloud, tuple[str, str]] = {
    Cloud.AWS: (r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+", "IAM role or user ARNs"),
    # Google Groups would need GKE's "Google Groups for RBAC" set up on the domain, so groups are not offered.
    Cloud.GCP: (r"(user|serviceAccount):[^@\s]+@[^@\s]+\.[a-z]+", "user: or serviceAccount: emails"),
}


# The Redis OSS versions each managed service offers (Memorystore for Redis: REDIS_7_0 and REDIS_7_2;
# ElastiCache's Redis OSS engine ends at 7.1, its 8.x line is the Valkey engine, which this platform does
# not select). https://cloud.google.com/memorystore/docs/redis/supported-versions
# https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html
MEMORYSTORE_REDIS_VERSIONS = ("7.0", "7.2")
ELASTICACHE_REDIS_VERSIONS = ("7.0", "7.1")


def _cloud_keys(
    model: BaseModel, cloud: Cloud, *, aws: tuple[str, ...], gcp: tuple[str, ...], local: tuple[str, ...] = ()
) -> list[str]:
    """Keys that only mean something on one cloud (or in one mode): required there, rejected elsewhere."""
    by_cloud = {Cloud.AWS: aws, Cloud.GCP: gcp, Cloud.LOCAL: local}
    mine = by_cloud[cloud]
    theirs = tuple(dict.fromkeys(k for c, keys in by_cloud.items() if c is not cloud for k in keys if k not in mine))
    camel = to_camel
    problems = [f"{camel(k)} is required on {cloud.value}" for k in mine if getattr(model, k) is None]
    problems += [f"{camel(k)} is not used on {cloud.value}; remove it" for k in theirs if getattr(model, k) is not None]
    return problems


def _cloud(info: ValidationInfo) -> Cloud:
    """The stack's cloud, from the validation context (set by the loader; aws when validated bare)."""
    return Cloud((info.context or {}).get("cloud", Cloud.AWS))


class NodePoolConfig(Strict):
    name: Annotated[str, Field(pattern=DNS_LABEL)]
    # aws and gcp: the instance / machine type the pool's nodes run (required there)
    machine_type: Annotated[str, Field(min_length=1)] | None = None
    # local only: the labels that already mark this pool's nodes in the cluster (the pool contract selects
    # them); empty selects every node. On aws and gcp the program labels the nodes it creates itself.
    node_labels: dict[str, str] | None = None
    min_nodes: Annotated[int, Field(ge=0, le=1000)]
    max_nodes: Annotated[int, Field(ge=1, le=1000)]
    disk_size_gb: Annotated[int, Field(ge=20, le=16384)] = 100
    spot: bool = False

    @field_validator("max_nodes")
    @classmethod
    def _max_ge_min(cls, v: int, info: ValidationInfo) -> int:
        low = info.data.get("min_nodes")
        if low is not None and v < low:
            raise ValueError(f"maxNodes must be >= minNodes ({low})")
        return v


# The GPU each instance family carries. The pool contract, quotas and Ray's GPU requests trust
# `accelerator` and `acceleratorCount`, so they must say what the machine really has.
# AWS: https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
# GCP: https://cloud.google.com/compute/docs/gpus (G2, A2, A3 have GPUs attached by machine type; N1 takes
# T4 / V100 / P4 as attachable accelerators)
GPU_FAMILIES: dict[Cloud, dict[str, tuple[str, ...]]] = {
    Cloud.AWS: {
        "g4dn": ("nvidia-tesla-t4",),
        "g5": ("nvidia-a10g",),
        "g6": ("nvidia-l4",),
        "g6e": ("nvidia-l40s",),
        "p4d": ("nvidia-a100",),
        "p4de": ("nvidia-a100-80gb",),
        "p5": ("nvidia-h100",),
        "p5e": ("nvidia-h200",),
        "p5en": ("nvidia-h200",),
    },
    Cloud.GCP: {
        "g2": ("nvidia-l4",),
        "a2-highgpu": ("nvidia-tesla-a100",),
        "a2-megagpu": ("nvidia-tesla-a100",),
        "a2-ultragpu": ("nvidia-a100-80gb",),
        "a3-highgpu": ("nvidia-h100-80gb",),
        "n1": ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p4"),
    },
}
# GCP machine types whose GPU count is fixed by the type (the API rejects any other count).
G2_GPUS = {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}


def _gpu_family(cloud: Cloud, machine_type: str) -> str | None:
    families = GPU_FAMILIES[cloud]
    prefix = machine_type.split(".")[0] if cloud is Cloud.AWS else machine_type.rsplit("-", 1)[0]
    if cloud is Cloud.GCP and prefix not in families:
        prefix = machine_type.split("-")[0]
    return prefix if prefix in families else None


def _fixed_gpu_count(machine_type: str) -> int | None:
    """GPUs a GCP machine type comes with (g2-standard-N, a2/a3-*-Ng), None where they are attachable."""
    if machine_type.startswith("g2-standard-"):
        return G2_GPUS.get(machine_type.rsplit("-", 1)[1])
    m = re.fullmatch(r"a[23]-(highgpu|megagpu|ultragpu)-(\d+)g", machine_type)
    return int(m.group(2)) if m else None


# MIG partitions GKE offers per accelerator, and how many instances each gives per GPU.
# https://cloud.google.com/kubernetes-engine/docs/how-to/gpus-multi
MIG_PARTITIONS: dict[str, dict[str, int]] = {
    "nvidia-tesla-a100": {"1g.5gb": 7, "2g.10gb": 3, "3g.20gb": 2, "7g.40gb": 1},
    "nvidia-a100-80gb": {"1g.10gb": 7, "2g.20gb": 3, "3g.40gb": 2, "7g.80gb": 1},
    "nvidia-h100-80gb": {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
}
# GKE allows at most 48 clients per time-shared GPU (gpu_sharing_config.max_shared_clients_per_gpu);
# https://cloud.google.com/kubernetes-engine/docs/how-to/timesharing-gpus
MAX_TIME_SLICES = 48


class GpuSharingConfig(Strict):
    """Several models on one GPU (what ModelMesh was meant for): time-slicing (every pod sees the whole GPU,
    turns are interleaved; no memory isolation) or, on GKE, MIG partitions (isolated slices of A100/H100)."""

    strategy: Literal["time-slicing", "mig"]
    replicas: Annotated[int, Field(ge=2, le=MAX_TIME_SLICES)] | None = None  # time-slicing: pods per GPU
    partition: str | None = None  # mig: the partition size, e.g. 1g.5gb

    @model_validator(mode="after")
    def _strategy_keys(self) -> Self:
        if self.strategy == "time-slicing" and (self.replicas is None or self.partition is not None):
            raise ValueError("time-slicing takes replicas (2-48 pods per GPU) and no partition")
        if self.strategy == "mig" and (self.partition is None or self.replicas is not None):
            raise ValueError("mig takes a partition (e.g. 1g.5gb) and no replicas")
        return self


class GpuPoolConfig(NodePoolConfig):
    """A GPU node pool. min_nodes defaults to 0 so idle GPUs cost nothing."""

    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 0
    accelerator: Annotated[str, Field(pattern=r"^nvidia-[a-z0-9-]+$")]
    accelerator_count: Annotated[int, Field(ge=1, le=16)] = 1
    sharing: GpuSharingConfig | None = None

    @property
    def shares_per_gpu(self) -> int:
        """How many pods one physical GPU serves (the nvidia.com/gpu units each GPU advertises)."""
        if self.sharing is None:
            return 1
        if self.sharing.strategy == "time-slicing":
            return self.sharing.replicas or 1
        return MIG_PARTITIONS[self.accelerator][self.sharing.partition or ""]

    @model_validator(mode="after")
    def _machine_has_this_gpu(self, info: ValidationInfo) -> Self:
        cloud = _cloud(info)
        if cloud is Cloud.LOCAL or self.machine_type is None:  # local: the nodes exist; ClusterConfig checks keys
            return self
        family = _gpu_family(cloud, self.machine_type)
        if family is None:
            raise ValueError(
                f"{self.machine_type} is not a GPU machine type on {cloud.value}; families: "
                f"{', '.join(GPU_FAMILIES[cloud])}"
            )
        if self.accelerator not in GPU_FAMILIES[cloud][family]:
            raise ValueError(
                f"{self.machine_type} carries {' or '.join(GPU_FAMILIES[cloud][family])}, not {self.accelerator}"
            )
        fixed = _fixed_gpu_count(self.machine_type) if cloud is Cloud.GCP else None
        if fixed is not None and fixed != self.accelerator_count:
            raise ValueError(f"{self.machine_type} comes with {fixed} GPU(s); set acceleratorCount: {fixed}")
        if self.sharing is not None and self.sharing.strategy == "mig":
            if cloud is Cloud.AWS:
                raise ValueError(
                    "sharing.strategy mig needs NVIDIA's MIG manager on EKS, which the platform does not install; "
                    "use time-slicing"
                )
            partitions = MIG_PARTITIONS.get(self.accelerator)
            if partitions is None or self.sharing.partition not in partitions:
                offered = ", ".join(partitions) if partitions else "none (MIG needs A100 or H100)"
                raise ValueError(f"{self.accelerator} offers MIG partitions: {offered}; got {self.sharing.partition}")
        return self


# GKE's rule for a recurring maintenance window: at least 48 hours of availability in any rolling 32-day
# period, in windows of at least 4 contiguous hours; otherwise the API rejects the cluster.
# https://cloud.google.com/kubernetes-engine/docs/concepts/maintenance-windows-and-exclusions
GKE_MIN_HOURS_PER_32_DAYS = 48
GKE_MIN_WINDOW_HOURS = 4
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class MaintenanceWindowConfig(Strict):
    """gcp: a weekly recurring maintenance window (UTC) for GKE auto-upgrades and node repairs."""

    days: Annotated[list[Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]], Field(min_length=1)]
    start_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]  # HH:MM, UTC
    duration_hours: Annotated[int, Field(ge=GKE_MIN_WINDOW_HOURS, le=24)]

    @model_validator(mode="after")
    def _enough_availability(self) -> Self:
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat")
        # any 32 consecutive days hold each weekday at least 4 times
        hours = 4 * len(self.days) * self.duration_hours
        if hours < GKE_MIN_HOURS_PER_32_DAYS:
            raise ValueError(
                f"GKE needs at least {GKE_MIN_HOURS_PER_32_DAYS} h of maintenance availability in any 32 days; "
                f"{len(self.days)} day(s) x {self.duration_hours} h a week gives only {hours} h "
                f"(need days x durationHours >= {GKE_MIN_HOURS_PER_32_DAYS // 4})"
            )
        return self

    @property
    def recurrence(self) -> str:
        ordered = sorted(self.days, key=WEEKDAYS.index)
        return f"FREQ=WEEKLY;BYDAY={','.join(ordered)}"


class ClusterConfig(Strict):
    kubernetes_version: str
    system_pool: NodePoolConfig
    cpu_pool: NodePoolConfig
    gpu_pools: list[GpuPoolConfig] = []
    # private_endpoint: no IP endpoint on the internet. On gcp the program reaches the API through GKE's
    # DNS-based endpoint (IAM-gated, no IP allowlist), so a private cluster stays deployable from anywhere.
    # On aws there is no such endpoint: `pulumi up` must run inside the VPC (deployer_in_vpc, e.g. a CI
    # runner in a private subnet), or the public endpoint stays on, limited to public_access_cidrs.
    private_endpoint: bool = False
    public_access_cidrs: list[str] = []
    deployer_in_vpc: bool = False
    # Who administers the cluster besides the identity that runs `pulumi up` (which keeps admin so the
    # program's own Kubernetes provider works). AWS: IAM role/user ARNs (EKS access entries);
    # GCP: user:/serviceAccount: members (bound to cluster-admin; groups would need Google Groups for RBAC).
    admin_principals: list[str] = []
    # gcp: the GKE release channel that upgrades the control plane and nodes (aws: not used).
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] | None = None
    # gcp: when GKE may upgrade and repair (aws: managed node group updates are started by `pulumi up`).
    maintenance_window: MaintenanceWindowConfig | None = None
    # local: the kubeconfig context `pulumi up` deploys to (kind names its context kind-<cluster name>)
    kubeconfig_context: Annotated[str, Field(min_length=1)] | None = None
    # local: the addresses of the cluster's nodes (kind: the docker network, 172.18.0.0/16 by default), from
    # which the API server calls webhooks and which the host-network scrapes target
    node_cidrs: list[str] | None = None
    # local: the image registry the cluster's nodes pull from, as host:port, the same name from the deployer's
    # machine (where `pulumi up` pushes the platform's images) and from the nodes (kind's "Local Registry":
    # a registry container published on localhost:5001, which each node's containerd maps to itself)
    registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]{1,5})?$")] | None = None

    @model_validator(mode="after")
    def _per_cloud(self, info: ValidationInfo) -> Self:
        cloud = _cloud(info)
        problems = _cloud_keys(
            self,
            cloud,
            aws=(),
            gcp=("release_channel", "maintenance_window"),
            local=("kubeconfig_context", "node_cidrs", "registry"),
        )
        pools = [("systemPool", self.system_pool), ("cpuPool", self.cpu_pool)]
        pools += [(f"gpuPools[{i}]", p) for i, p in enumerate(self.gpu_pools)]
        for key, pool in pools:
            if cloud is Cloud.LOCAL and pool.machine_type is not None:
                problems.append(
                    f"{key}.machineType is not used on local (the nodes exist); select them with nodeLabels"
                )
            if cloud is not Cloud.LOCAL and pool.machine_type is None:
                problems.append(f"{key}.machineType is required on {cloud.value}")
            if cloud is not Cloud.LOCAL and pool.node_labels is not None:
                problems.append(f"{key}.nodeLabels is only used on local (the program labels the nodes it creates)")
        for cidr in self.node_cidrs or []:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as e:
                problems.append(f"nodeCidrs: {cidr!r} is not a CIDR block ({e})")
        if cloud is Cloud.AWS and self.private_endpoint and not self.deployer_in_vpc:
            problems.append(
                "privateEndpoint on aws leaves `pulumi up` no way to reach the Kubernetes API from outside the VPC: "
                "keep privateEndpoint: false with publicAccessCidrs set to the deployer's egress CIDRs (private "
                "access stays on for nodes), or set deployerInVpc: true when `pulumi up` runs inside the VPC"
            )
        if cloud is Cloud.GCP and self.deployer_in_vpc:
            problems.append("deployerInVpc is not used on gcp (the program reaches GKE by its DNS endpoint); remove it")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("kubernetes_version")
    @classmethod
    def _k8s_supported(cls, v: str, info: ValidationInfo) -> str:
        _in_range(v, KUBERNETES_RANGE, "Kubernetes")
        if _cloud(info) is Cloud.AWS and v not in EKS_ADDON_VERSIONS:
            raise ValueError(
                f"on aws, Kubernetes {v} has no pinned EKS add-on versions; pinned: {', '.join(EKS_ADDON_VERSIONS)}"
            )
        return v

    @field_validator("admin_principals")
    @classmethod
    def _principals(cls, v: list[str], info: ValidationInfo) -> list[str]:
        cloud = _cloud(info)
        if cloud is Cloud.LOCAL:
            if v:
                raise ValueError("adminPrincipals is not used on local: the kubeconfig context's user administers it")
            return v
        pattern, shape = ADMIN_PRINCIPAL_SHAPES[cloud]
        bad = [p for p in v if not re.fullmatch(pattern, p)]
        if bad:
            raise ValueError(f"on {cloud.value}, admin principals must be {shape}; not: {', '.join(bad)}")
        if len(set(v)) != len(v):
            raise ValueError("admin principals must not repeat")
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not v and info.data.get("private_endpoint") is False and _cloud(info) is not Cloud.LOCAL:
            raise ValueError("a public API endpoint needs at least one CIDR (or set privateEndpoint: true)")
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as e:
                raise ValueError(f"{cidr!r} is not a CIDR block ({e})") from None
        return v

    @field_validator("system_pool")
    @classmethod
    def _system_not_empty(cls, v: NodePoolConfig) -> NodePoolConfig:
        if v.min_nodes < 1:
            raise ValueError("the system pool needs minNodes >= 1 (cluster add-ons run there)")
        return v

    @field_validator("gpu_pools")
    @classmethod
    def _unique_gpu_names(cls, v: list[GpuPoolConfig]) -> list[GpuPoolConfig]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"GPU pool names must be unique; repeated: {', '.join(dupes)}")
        return v


class StorageConfig(Strict):
    force_destroy: bool
    versioning: bool
    # how long Loki keeps logs (its compactor deletes them) and the control plane's log group keeps its own
    log_retention_days: Annotated[int, Field(ge=1, le=3650)]

    @property
    def logs_bucket_expiry_days(self) -> int:
        """The logs bucket's lifecycle rule: a backstop a week after Loki's own retention. Loki's retention
        docs ask for a lifecycle longer than the retention period, or the index outlives its chunks
        (https://grafana.com/docs/loki/latest/operations/storage/retention/)."""
        return self.log_retention_days + 7


class InClusterSize(Strict):
    """What an in-cluster data service's pods request (and are limited to, for memory): the figures `plan`
    sums into the stack's requests and the cost of the nodes they need."""

    cpu: Annotated[float, Field(gt=0, le=64)]  # cores requested by each of the service's data pods
    memory_gb: Annotated[float, Field(gt=0, le=512)]  # GiB requested and the memory limit of each data pod


def _mode_keys(
    model: BaseModel, cloud: Cloud, managed: dict[Cloud, tuple[str, ...]], in_cluster: tuple[str, ...]
) -> list[str]:
    """A data service's keys by mode: managed keys by cloud (required on theirs, rejected elsewhere), in-cluster
    keys required in-cluster and rejected when managed."""
    mode = model.mode  # type: ignore[attr-defined]
    if mode is DataServiceMode.MANAGED and cloud is Cloud.LOCAL:
        return ["mode must be in-cluster on local (there is no managed service)"]
    if mode is DataServiceMode.MANAGED:
        problems = _cloud_keys(model, cloud, aws=managed[Cloud.AWS], gcp=managed[Cloud.GCP])
        shared = {k for keys in managed.values() for k in keys}
        problems += [
            f"{to_camel(k)} is only used with mode in-cluster; remove it"
            for k in in_cluster
            if k not in shared and getattr(model, k) is not None
        ]
        return problems
    every_managed = dict.fromkeys(k for keys in managed.values() for k in keys if k not in in_cluster)
    problems = [f"{to_camel(k)} is required with mode in-cluster" for k in in_cluster if getattr(model, k) is None]
    problems += [
        f"{to_camel(k)} is a managed-service setting, not used in-cluster; remove it"
        for k in every_managed
        if getattr(model, k) is not None
    ]
    return problems


class PostgresConfig(Strict):
    # managed: RDS (aws) or Cloud SQL (gcp); in-cluster: a CloudNativePG Cluster in the data namespace
    mode: DataServiceMode = DataServiceMode.MANAGED
    version: str
    storage_gb: Annotated[int, Field(ge=1, le=65536)]
    high_availability: bool
    read_replicas: Annotated[int, Field(ge=0, le=5)]
    backup_retention_days: Annotated[int, Field(ge=1, le=35)]
    deletion_protection: bool
    # managed only: the instance class (RDS) or tier (Cloud SQL) and the storage autoscaling ceiling
    machine_type: Annotated[str, Field(min_length=1)] | None = None
    max_storage_gb: Annotated[int, Field(ge=20, le=65536)] | None = None
    # in-cluster only: each instance's requests (instances: 1 + readReplicas, or 3 with highAvailability)
    in_cluster: InClusterSize | None = None
    # aws only: the region's RDS CA bundle, a PEM file in the repository (README, "Data layer"); with it
    # every client verifies the database (verify-full), without it TLS is unauthenticated and plan warns.
    # Cloud SQL reports its own CA, which the program distributes; in-cluster, the platform's own CA signs it.
    ca_bundle: str | None = None

    @field_validator("version")
    @classmethod
    def _pg_supported(cls, v: str) -> str:
        return _in_range(v, POSTGRES_RANGE, "PostgreSQL", major_only=True)

    @field_validator("ca_bundle")
    @classmethod
    def _a_ca_bundle(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and _cloud(info) is not Cloud.AWS:
            raise ValueError(f"caBundle is not used on {_cloud(info).value}: it is the RDS CA bundle (aws); remove it")
        problems = ca_bundle_problems(v) if v is not None else []
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("max_storage_gb")
    @classmethod
    def _max_storage_ge_storage(cls, v: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("storage_gb")
        if v is not None and low is not None and v < low:
            raise ValueError(f"maxStorageGb must be >= storageGb ({low})")
        return v

    @model_validator(mode="after")
    def _per_mode(self, info: ValidationInfo) -> Self:
        both = ("machine_type", "max_storage_gb")
        problems = _mode_keys(self, _cloud(info), {Cloud.AWS: both, Cloud.GCP: both}, ("in_cluster",))
        if self.mode is DataServiceMode.MANAGED and self.storage_gb < MANAGED_MIN_STORAGE_GB:
            problems.append(
                f"storageGb must be >= {MANAGED_MIN_STORAGE_GB} for RDS and Cloud SQL; got {self.storage_gb}"
            )
        if self.mode is DataServiceMode.IN_CLUSTER and self.ca_bundle is not None:
            problems.append("caBundle is an RDS setting; in-cluster PostgreSQL is verified against the platform's CA")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def instances(self) -> int:
        """In-cluster: the CloudNativePG Cluster's instances (a primary and its streaming replicas)."""
        return max(1 + self.read_replicas, 3 if self.high_availability else 1)


MANAGED_MIN_STORAGE_GB = 20  # RDS gp3 and Cloud SQL both start at 20 GB


class RedisConfig(Strict):
    # managed: ElastiCache (aws) or Memorystore (gcp); in-cluster: one Valkey server in the data namespace
    mode: DataServiceMode = DataServiceMode.MANAGED
    shards: Annotated[int, Field(ge=1, le=500)] = 1
    replicas_per_shard: Annotated[int, Field(ge=0, le=5)] = 0
    version: str | None = None  # managed: the service's Redis OSS version (in-cluster: the pinned Valkey image)
    machine_type: Annotated[str, Field(min_length=1)] | None = None  # aws: ElastiCache node type
    memory_size_gb: Annotated[int, Field(ge=1, le=300)] | None = None  # gcp: Memorystore capacity
    in_cluster: InClusterSize | None = None  # in-cluster: the server's requests (maxmemory follows the limit)
    # in-cluster: the append-only file's volume, apart from the memory size (a volume claim never shrinks, and
    # kind's local-path class does not expand): about three datasets, a rewrite writes beside the old file
    storage_gb: Annotated[int, Field(ge=1, le=16384)] | None = None

    @field_validator("version")
    @classmethod
    def _redis_supported(cls, v: str | None) -> str | None:
        return v if v is None else _in_range(v, REDIS_RANGE, "Redis")

    @model_validator(mode="after")
    def _per_cloud(self, info: ValidationInfo) -> Self:
        cloud = _cloud(info)
        managed = {Cloud.AWS: ("version", "machine_type"), Cloud.GCP: ("version", "memory_size_gb")}
        problems = _mode_keys(self, cloud, managed, ("in_cluster", "storage_gb"))
        if self.mode is DataServiceMode.IN_CLUSTER:
            if (self.shards, self.replicas_per_shard) != (1, 0):
                problems.append(
                    "in-cluster Redis is one Valkey server (online features are rebuilt by materialization): "
                    "set shards: 1 and replicasPerShard: 0, or use mode managed for replicas"
                )
        elif cloud is Cloud.AWS and self.version not in ELASTICACHE_REDIS_VERSIONS:
            problems.append(f"ElastiCache offers Redis OSS {', '.join(ELASTICACHE_REDIS_VERSIONS)}; got {self.version}")
        elif cloud is Cloud.GCP:
            if self.version not in MEMORYSTORE_REDIS_VERSIONS:
                problems.append(f"Memorystore offers Redis {', '.join(MEMORYSTORE_REDIS_VERSIONS)}; got {self.version}")
            if self.shards != 1:
                problems.append(
                    "on gcp Redis is one Memorystore STANDARD_HA primary with read replicas (Feast needs AUTH, "
                    "which Memorystore Redis Cluster lacks): set shards: 1 and replicasPerShard for the replicas"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class KafkaConfig(Strict):
    enabled: bool
    # managed: MSK (aws) or Managed Service for Apache Kafka (gcp); in-cluster: Strimzi, one KRaft node pool
    mode: DataServiceMode = DataServiceMode.MANAGED
    # aws (MSK): version, machineType, brokers (a multiple of the zone count), storageGb.
    # in-cluster: brokers (nodes of the KRaft pool, each broker and controller), storageGb, inCluster
    version: str | None = None
    machine_type: Annotated[str, Field(min_length=1)] | None = None
    brokers: Annotated[int, Field(ge=1, le=30)] | None = None
    storage_gb: Annotated[int, Field(ge=1, le=16384)] | None = None
    # gcp (Managed Service for Apache Kafka, always spread over three zones): capacity only
    vcpu_count: Annotated[int, Field(ge=3, le=1000)] | None = None
    memory_gb: Annotated[int, Field(ge=3, le=8000)] | None = None
    in_cluster: InClusterSize | None = None

    @model_validator(mode="after")
    def _per_cloud(self, info: ValidationInfo) -> Self:
        aws_keys = ("version", "machine_type", "brokers", "storage_gb")
        managed = {Cloud.AWS: aws_keys, Cloud.GCP: ("vcpu_count", "memory_gb")}
        in_cluster = ("brokers", "storage_gb", "in_cluster")
        problems = _mode_keys(self, _cloud(info), managed, in_cluster) if self.enabled else []
        if (
            self.mode is DataServiceMode.MANAGED
            and self.version is not None
            and not _kafka_version(self.version, KAFKA_MAJOR)
        ):
            problems.append(f"MSK's Kafka version must be {KAFKA_MAJOR}.x (e.g. 3.8.x); got {self.version!r}")
        if self.vcpu_count and self.memory_gb and not self.vcpu_count <= self.memory_gb <= 8 * self.vcpu_count:
            problems.append(f"memoryGb must be 1 to 8 GiB per vCPU ({self.vcpu_count}..{8 * self.vcpu_count})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _kafka_version(v: str, major: int) -> bool:
    return bool(re.fullmatch(r"\d+\.\d+\.(\d+|x)", v)) and int(v.split(".")[0]) == major


class DataConfig(Strict):
    postgres: PostgresConfig
    redis: RedisConfig
    kafka: KafkaConfig
    # in-cluster data services in a prod profile are refused unless this says so (one pod's volume, no
    # managed backups or failover across zones): the choice must be written down in the stack file
    allow_in_cluster_in_prod: bool = False

    def _modes(self) -> dict[str, DataServiceMode]:
        modes = {"postgres": self.postgres.mode, "redis": self.redis.mode}
        return modes | ({"kafka": self.kafka.mode} if self.kafka.enabled else {})

    def in_cluster(self) -> list[str]:
        """The services this stack runs inside the cluster, by their config key (Kafka only when enabled)."""
        return [k for k, mode in self._modes().items() if mode is DataServiceMode.IN_CLUSTER]

    def managed(self) -> list[str]:
        """The services the cloud runs for this stack, by their config key (Kafka only when enabled)."""
        return [k for k, mode in self._modes().items() if mode is DataServiceMode.MANAGED]


class ServiceConfig(Strict):
    """An in-cluster service: whether it is installed, its version pin (chart, or image where no chart) and replicas."""

    enabled: bool = True
    version: Annotated[str, Field(pattern=CHART_VERSION)]
    replicas: Annotated[int, Field(ge=1, le=100)] = 1


class DagsConfig(Strict):
    """Where git-sync takes Airflow's DAGs from: a repository the stack's owner controls."""

    repo: Annotated[str, Field(pattern=r"^(https://|ssh://|git@)[^\s]+$")]
    branch: Annotated[str, Field(pattern=r"^[\w./-]+$")] = "main"
    # a commit SHA or tag pins what runs; HEAD follows the branch
    rev: Annotated[str, Field(pattern=r"^(HEAD|[0-9a-f]{7,40}|[\w./-]+)$")] = "HEAD"
    sub_path: Annotated[str, Field(pattern=r"^[\w./-]*$")] = "dags"

    @property
    def over_ssh(self) -> bool:
        return not self.repo.startswith("https://")


class AirflowConfig(ServiceConfig):
    # None (the default): no git-sync; Airflow runs the platform's reference DAGs (dags/ in this
    # repository, shipped as a ConfigMap). Set it to sync a repository you control.
    dags: DagsConfig | None = None


class KServeConfig(ServiceConfig):
    """KServe on Knative and Istio. `replicas` is the KServe controller's and, in multi-zone stacks, the
    ingress gateway runs max(3, replicas) spread over the zones."""

    # InferenceServices are reachable as <name>-<namespace>.<domain> through the ingress gateway
    domain: Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")] = (
        "models.mlplatform.internal"
    )
    # the gateway's load balancer: reachable inside the VPC only (default), or from the internet
    ingress: Literal["internal", "internet-facing"] = "internal"


class AlertThresholds(Strict):
    """When the platform's alerts fire (components/observability/alerts.py, each proven by promtool tests)."""

    canary_error_rate: Annotated[float, Field(gt=0, lt=1)] = 0.05  # share of 5xx per revision over 5 m
    canary_p99_seconds: Annotated[float, Field(gt=0)] = 1.0
    feature_server_error_rate: Annotated[float, Field(gt=0, lt=1)] = 0.01
    feature_server_p99_seconds: Annotated[float, Field(gt=0)] = 0.25
    airflow_heartbeat_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    gpu_idle_percent: Annotated[float, Field(ge=0, le=100)] = 5.0
    gpu_idle_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    # share of compared columns that drifted (the drift job's dataset-drift flag uses the same share)
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    # no successful drift run for this long (or none at all): the job is failing or its inputs are missing
    drift_stale_hours: Annotated[int, Field(ge=1, le=168)] = 6


class AlertReceiverConfig(Strict):
    """Where Alertmanager sends the platform's critical and warning alerts. The URL is a credential, so it
    stays in a Secret you create in `monitoring`; config names the Secret, never the URL."""

    kind: Literal["webhook", "slack"]
    secret_name: Annotated[str, Field(pattern=DNS_LABEL)]
    secret_key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = "url"


class PrometheusConfig(ServiceConfig):
    """kube-prometheus-stack: Prometheus, Alertmanager, Grafana. `replicas` is Prometheus's and
    Alertmanager's (prod: 2 each, spread over zones)."""

    retention: Annotated[str, Field(pattern=r"^\d+[hdwy]$")] = "15d"
    retention_size_gb: Annotated[int, Field(ge=1, le=10000)] = 40
    storage_gb: Annotated[int, Field(ge=5, le=16384)] = 50
    alerts: AlertThresholds = AlertThresholds()
    # None (default): alerts stay in Alertmanager's UI and API, nothing is sent anywhere
    alert_receiver: AlertReceiverConfig | None = None

    @model_validator(mode="after")
    def _room_for_retention(self) -> Self:
        if self.retention_size_gb >= self.storage_gb:
            raise ValueError(
                f"retentionSizeGb ({self.retention_size_gb}) must be below storageGb ({self.storage_gb}): "
                "Prometheus needs headroom for its write-ahead log and compaction"
            )
        return self


OBJECT_KEY = r"^[\w!\-.*'()/]+\.(csv|jsonl|ndjson)$"


class DriftConfig(Strict):
    """The drift job (jobs/drift/): the reference sample and the recent inference sample, as objects in the
    datasets bucket (CSV or JSON lines), compared on a schedule; alert thresholds are in
    services.prometheus.alerts (driftShare, driftStaleHours)."""

    dataset: Annotated[str, Field(pattern=DNS_LABEL)] = "inference"  # the `dataset` label of its series
    reference: Annotated[str, Field(pattern=OBJECT_KEY)] = "drift/reference.csv"
    current: Annotated[str, Field(pattern=OBJECT_KEY)] = "drift/current.csv"
    # the columns compared (default: all of them; name them when the inference log has ids or timestamps)
    columns: list[Annotated[str, Field(pattern=r"^[\w.-]+$")]] = []
    # cron, in UTC
    schedule: Annotated[str, Field(pattern=r"^\S+ \S+ \S+ \S+ \S+$")] = "15 * * * *"

    @model_validator(mode="after")
    def _distinct_samples(self) -> Self:
        if self.reference == self.current:
            raise ValueError(f"reference and current are the same object ({self.reference})")
        return self


class EvidentlyConfig(ServiceConfig):
    """Drift monitoring with Evidently: `version` is the evidently-service image's (the job runs in it)."""

    drift: DriftConfig = DriftConfig()


class LokiConfig(ServiceConfig):
    """Monolithic Loki: `replicas` of the single binary (prod 3, one per zone, replication factor 3). How
    long logs are kept is storage.logRetentionDays."""

    # each replica's volume: the write-ahead log and the compactor's working files (chunks go to the bucket)
    storage_gb: Annotated[int, Field(ge=5, le=1000)] = 10


# an image reference with a tag or a digest (registry/path:tag, registry/path@sha256:...)
# (a tag, a digest, or both as `repo:tag@sha256:...`, the usual way to pin)
IMAGE_REF = (
    r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+"
    r"(:[\w][\w.-]{0,127}(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$"
)


class FeastConfig(ServiceConfig):
    """The feature server, plus the image the platform's offline Feast readers (materialization, the
    training flow's feature step) run. The feature server's stock image is built from `feast[minimal]`,
    which has neither s3fs nor gcsfs, so it cannot read the offline store's bucket: the platform builds
    images/feast-client (that image plus the bucket's filesystem) and pushes it to the stack's registry.
    `clientImage` names another image to run instead (then nothing is built)."""

    client_image: Annotated[str | None, Field(pattern=IMAGE_REF)] = None


class NotebookSize(Strict):
    """A notebook profile's resources: what KubeSpawner requests (guarantee) and limits, per server."""

    cpu_guarantee: Annotated[float, Field(gt=0, le=64)]
    cpu_limit: Annotated[float, Field(gt=0, le=64)]
    memory_guarantee_gb: Annotated[int, Field(ge=1, le=512)]
    memory_limit_gb: Annotated[int, Field(ge=1, le=512)]

    @model_validator(mode="after")
    def _guarantee_within_limit(self) -> Self:
        if self.cpu_guarantee > self.cpu_limit or self.memory_guarantee_gb > self.memory_limit_gb:
            raise ValueError("a guarantee above its limit: KubeSpawner would ask for requests > limits")
        return self


class JupyterHubConfig(ServiceConfig):
    """JupyterHub (z2jh) in `mlplatform` (components/client/jupyterhub.py): a CPU profile and one per GPU pool,
    idle servers culled, each user's home on a PVC. The hub and its proxy run one replica each, the most
    the chart allows (its hub Deployment says `replicas: 1`: one state database, and the proxy keeps its
    routes in memory), so `replicas` must stay 1."""

    # the single-user image; default: the chart's own (k8s-singleuser-sample at the chart's version)
    image: Annotated[str | None, Field(pattern=IMAGE_REF)] = None
    cpu: NotebookSize = NotebookSize(cpu_guarantee=0.5, cpu_limit=2, memory_guarantee_gb=2, memory_limit_gb=4)
    # the GPU profiles' CPU and memory (each also takes one nvidia.com/gpu unit of its pool)
    gpu: NotebookSize = NotebookSize(cpu_guarantee=2, cpu_limit=3, memory_guarantee_gb=8, memory_limit_gb=12)
    storage_gb: Annotated[int, Field(ge=1, le=1000)] = 10  # each user's home volume
    # a server without activity for this long is stopped (its volume stays)
    cull_idle_minutes: Annotated[int, Field(ge=10, le=10080)] = 60
    # and any server after this long, active or not (0: never)
    cull_max_age_hours: Annotated[int, Field(ge=0, le=720)] = 0

    @field_validator("replicas")
    @classmethod
    def _one_hub(cls, v: int) -> int:
        if v != 1:
            raise ValueError("the JupyterHub chart runs exactly one hub and one proxy (replicas: 1)")
        return v


class ServicesConfig(Strict):
    sizing: Sizing = Sizing.STANDARD  # the platform pods' requests: standard, or small (dev, local)
    mlflow: ServiceConfig
    feast: FeastConfig
    airflow: AirflowConfig
    kuberay: ServiceConfig
    kserve: KServeConfig
    prometheus: PrometheusConfig
    grafana: ServiceConfig
    loki: LokiConfig
    evidently: EvidentlyConfig
    jupyterhub: JupyterHubConfig

    @field_validator("*")
    @classmethod
    def _chart_version_known(cls, v: ServiceConfig, info: ValidationInfo) -> ServiceConfig:
        """A chart version is selectable only if the repo holds its values-key snapshot, so the values the
        program builds are always checked against the chart that is installed."""
        pin = SERVICE_CHARTS.get(info.field_name or "")
        if pin is not None:
            known = supported_versions(pin.chart)
            if v.version not in known:
                raise ValueError(
                    f"version {v.version} of chart {pin.chart} has no values-key snapshot; supported: "
                    f"{', '.join(known)} (add one with `python -m mlplatform chart-keys`)"
                )
        return v


class PlatformConfig(Strict):
    """The whole `mlplatform:` namespace after profile defaults are merged in."""

    profile: Profile
    cloud: Cloud
    region: str
    gcp_project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")] | None = None
    zones: list[str]
    ha: HaProfile
    cluster: ClusterConfig
    storage: StorageConfig
    data: DataConfig
    services: ServicesConfig
    # the models and graphs the platform serves (mlplatform/config/serving.py); none by default
    serving: ServingConfig = ServingConfig()
    # how people reach the UIs (mlplatform/config/client.py); by default nothing is exposed
    client: ClientConfig = ClientConfig()
    # the streaming feature path, Kafka -> Flink -> Feast push (mlplatform/config/streaming.py); on in prod
    streaming: StreamingConfig = StreamingConfig()

    @field_validator("serving", mode="before")
    @classmethod
    def _serving_fits_the_stack(cls, v: object, info: ValidationInfo) -> object:
        """Models name GPU pools and need KServe (and Feast, for a transformer): validated with what the stack
        has, so that an error names its exact key (serving.models[1].pool), not the whole section."""
        return ServingConfig.model_validate(v, context=serving_context(info))

    @field_validator("services")
    @classmethod
    def _serving_needs_its_kubernetes_floor(cls, v: ServicesConfig, info: ValidationInfo) -> ServicesConfig:
        cluster = info.data.get("cluster")
        if not v.kserve.enabled or cluster is None:
            return v
        minor, floor = parse_major_minor(cluster.kubernetes_version), parse_major_minor(SERVING_MIN_KUBERNETES)
        if minor is not None and floor is not None and minor < floor:
            raise ValueError(
                f"kserve needs cluster.kubernetesVersion >= {SERVING_MIN_KUBERNETES} (Knative Serving "
                f"{KNATIVE_SERVING_VERSIONS[SERVING_MIN_KUBERNETES]}, the line KServe v0.20 is tested with, refuses "
                f"older clusters); the cluster runs {cluster.kubernetes_version}. Upgrade it or set "
                "services.kserve.enabled: false"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region_shape(cls, v: str, info: ValidationInfo) -> str:
        if _cloud(info) is Cloud.LOCAL:
            if v != LOCAL_REGION:
                raise ValueError(
                    f"on local the region is {LOCAL_REGION!r} (the S3 signing region of the in-cluster store)"
                )
            return v
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-?\d+", v):
            raise ValueError("region must look like us-east-1 (AWS) or us-central1 (GCP)")
        return v

    @field_validator("zones")
    @classmethod
    def _enough_zones(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("zones must not repeat")
        if _cloud(info) is Cloud.LOCAL:
            if len(v) != 1:
                raise ValueError("a local cluster is one zone: zones: [local-a]")
            return v
        if len(v) < 2:
            raise ValueError("at least 2 zones are needed (EKS and regional load balancers need two)")
        profile = (info.context or {}).get("profile")
        if profile == Profile.PROD and len(v) < PROD_MIN_ZONES:
            raise ValueError(f"prod needs at least {PROD_MIN_ZONES} zones; got {len(v)}")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> Self:
        problems = []
        if self.cloud is Cloud.GCP and self.gcp_project is None:
            problems.append("cloud gcp needs gcpProject (the Google Cloud project id)")
        kafka = self.data.kafka
        problems += _in_cluster_problems(self)
        managed_msk = kafka.enabled and kafka.mode is DataServiceMode.MANAGED and kafka.brokers is not None
        if self.cloud is Cloud.AWS and managed_msk and kafka.brokers % len(self.zones):
            problems.append(
                f"data.kafka.brokers ({kafka.brokers}) must be a multiple of the zone count "
                f"({len(self.zones)}) on AWS MSK"
            )
        stray = [z for z in self.zones if not z.startswith(self.region)]
        if stray:
            problems.append(f"zones {stray} are not in region {self.region}")
        if self.ha is HaProfile.MULTI_ZONE and not self.data.postgres.high_availability:
            problems.append("ha multi-zone needs data.postgres.highAvailability: true")
        feast = self.services.feast
        if self.ha is HaProfile.MULTI_ZONE and feast.enabled and feast.replicas % len(self.zones):
            problems.append(
                f"services.feast.replicas ({feast.replicas}) must be a multiple of the zone count ({len(self.zones)}) "
                "so every zone serves online features with the same number of replicas"
            )
        if self.streaming.enabled and not (self.data.kafka.enabled and self.services.feast.enabled):
            problems.append("streaming.enabled needs data.kafka.enabled and services.feast.enabled (Kafka -> Feast)")
        if self.profile is Profile.PROD and self.ha is not HaProfile.MULTI_ZONE:
            problems.append("prod must use ha: multi-zone")
        if self.profile is Profile.PROD and any(
            ipaddress.ip_network(c).prefixlen == 0 for c in self.cluster.public_access_cidrs
        ):
            problems.append("prod must not open the Kubernetes API to the whole internet (cluster.publicAccessCidrs)")
        sso = self.client.sso
        if sso is not None and sso.endpoints is None and self.services.prometheus.enabled:
            problems.append(
                "client.sso.endpoints is needed with Grafana (services.prometheus): Grafana's generic_oauth cannot "
                "discover the provider's endpoints; copy authorizationEndpoint, tokenEndpoint and userinfoEndpoint "
                "from <issuerUrl>/.well-known/openid-configuration"
            )
        problems += _exposure_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _in_cluster_problems(cfg: PlatformConfig) -> list[str]:
    """`cloud: local` has no managed services; a prod profile runs in-cluster data services only when the stack
    file says so (data.allowInClusterInProd), since they give up managed backups and failover across zones."""
    problems = []
    data = cfg.data
    if cfg.cloud is Cloud.LOCAL:
        managed = [k for k in ("postgres", "redis", "kafka") if k not in data.in_cluster()]
        managed = [k for k in managed if k != "kafka" or data.kafka.enabled]
        problems += [f"data.{k}.mode must be in-cluster on local (there is no managed service)" for k in managed]
    in_cluster = data.in_cluster()
    if cfg.profile is Profile.PROD and in_cluster and not data.allow_in_cluster_in_prod:
        problems.append(
            f"prod runs {', '.join(f'data.{k}' for k in in_cluster)} in-cluster: no managed backups, no failover "
            "across zones. Use mode managed, or set data.allowInClusterInProd: true to accept that"
        )
    return problems


def _exposure_problems(cfg: PlatformConfig) -> list[str]:
    """The UIs are served on the Istio ingress gateway (KServe's), and an ACME DNS-01 issuer solves through
    the stack's own cloud DNS: Route 53 needs the hosted zone, Cloud DNS takes a project."""
    client, problems = cfg.client, []
    if client.domain is not None and not cfg.services.kserve.enabled:
        problems.append("client.domain needs services.kserve.enabled: the UIs are served on its Istio ingress gateway")
    tls = client.tls
    if tls is not None and tls.kind == "acme-dns01" and cfg.cloud is Cloud.LOCAL:
        problems.append("client.tls acme-dns01 needs a cloud DNS zone; on local use a provided issuer")
    if client.sso is not None and cfg.cloud is Cloud.LOCAL:
        # the client secret is read from the cloud's secret manager (components/client/secrets.py), and a
        # local stack configures no cloud provider to read it with
        problems.append("client.sso is not available on local: its clientSecret lives in a cloud secret manager")
    if tls is not None and tls.kind == "acme-dns01":
        if cfg.cloud is Cloud.AWS and tls.hosted_zone_id is None:
            problems.append("client.tls.hostedZoneId is needed on aws: the Route 53 zone that holds client.domain")
        if cfg.cloud is Cloud.AWS and tls.dns_project is not None:
            problems.append("client.tls.dnsProject is a GCP setting; on aws set hostedZoneId")
        if cfg.cloud is Cloud.GCP and tls.hosted_zone_id is not None:
            problems.append("client.tls.hostedZoneId is an AWS setting; on gcp the zone is found in dnsProject")
    return problems


def _in_range(v: str, bounds: tuple[tuple[int, int], tuple[int, int]], what: str, *, major_only: bool = False) -> str:
    lo, hi = bounds
    parsed = parse_major_minor(v, major_only=major_only)
    shown = (lambda t: str(t[0])) if major_only else (lambda t: f"{t[0]}.{t[1]}")
    if parsed is None:
        raise ValueError(f"{what} version {v!r} is not of the form {'N' if major_only else 'N.M'}")
    if not lo <= parsed <= hi:
        raise ValueError(f"{what} {v} is outside the supported range {shown(lo)}..{shown(hi)}")
    return v
