"""Environment profiles: the defaults a stack starts from before its own `Pulumi.<stack>.yaml` overrides.

dev is cheap (two zones, small instances, spot GPUs, everything scales to zero where it can);
prod follows the design's HA table (three zones, Multi-AZ/regional data services, replicas spread).
Machine types differ per cloud, so a profile is chosen by (profile, cloud).
"""

from __future__ import annotations

from typing import Any

from mlplatform.config.models import LOCAL_REGION, Cloud, DataServiceMode, Profile
from mlplatform.pins import SERVICE_DEFAULT_VERSIONS

# Per-cloud machine types for each role, per profile.
_MACHINES: dict[tuple[Profile, Cloud], dict[str, str]] = {
    (Profile.DEV, Cloud.AWS): {
        "system": "t3.large",
        # one node holds dev's idle platform with services.sizing small and in-cluster data services (plan's
        # "Requests while idle"); burstable: its 40 % per-vCPU baseline is above what the idle platform uses
        "cpu": "t3a.xlarge",
        "gpu": "g5.xlarge",
        "gpuAccelerator": "nvidia-a10g",
        # dev's three small databases (MLflow, Feast registry, Airflow behind PgBouncer) fit 2 GiB
        "postgres": "db.t4g.small",
        "redis": "cache.t4g.small",
        "kafka": "kafka.t3.small",
    },
    (Profile.PROD, Cloud.AWS): {
        "system": "m6i.large",
        "cpu": "m6i.2xlarge",
        "gpu": "g5.2xlarge",
        "gpuAccelerator": "nvidia-a10g",
        "postgres": "db.r6g.large",
        "redis": "cache.r7g.large",
        "kafka": "kafka.m7g.large",
    },
    (Profile.DEV, Cloud.GCP): {
        # GKE's own system pods and the platform's few system-pool pods request about 1.5 vCPU
        "system": "e2-standard-2",
        # as on AWS, one node for the idle platform; E2 costs about 30 % less than N2 for the same shape
        "cpu": "e2-standard-4",
        "gpu": "g2-standard-8",
        "gpuAccelerator": "nvidia-l4",
        "postgres": "db-custom-1-3840",
    },
    (Profile.PROD, Cloud.GCP): {
        "system": "n2-standard-4",
        "cpu": "n2-standard-8",
        "gpu": "g2-standard-16",
        "gpuAccelerator": "nvidia-l4",
        "postgres": "db-custom-4-16384",
    },
}

DEFAULT_KUBERNETES_MINOR = "1.35"
_DEFAULT_REGION = {Cloud.AWS: "us-east-1", Cloud.GCP: "us-central1"}


def default_zones(cloud: Cloud, region: str, count: int) -> list[str]:
    """AWS zones are region + letter (us-east-1a); GCP zones are region + '-' + letter (us-central1-a)."""
    sep = "" if cloud is Cloud.AWS else "-"
    return [f"{region}{sep}{letter}" for letter in "abcdef"[:count]]


def _services(prod: bool) -> dict[str, Any]:
    replicas = {"mlflow": 2, "feast": 6, "airflow": 2, "kserve": 2, "prometheus": 2, "grafana": 2, "loki": 3}
    services: dict[str, Any] = {
        name: {"enabled": True, "version": version, "replicas": replicas.get(name, 1) if prod else 1}
        for name, version in SERVICE_DEFAULT_VERSIONS.items()
    }
    # metrics kept a month in prod, a week in dev
    services["prometheus"] |= (
        {"retention": "30d", "retentionSizeGb": 180, "storageGb": 200}
        if prod
        else {"retention": "7d", "retentionSizeGb": 15, "storageGb": 20}
    )
    services["loki"] |= {"storageGb": 50 if prod else 10}
    # notebooks: prod gives bigger servers and homes and culls after a working half-day instead of an hour
    # (a stopped server keeps its volume); the hub stays one replica (JupyterHubConfig)
    services["jupyterhub"] |= (
        {
            "cpu": {"cpuGuarantee": 1, "cpuLimit": 4, "memoryGuaranteeGb": 4, "memoryLimitGb": 8},
            "storageGb": 50,
            "cullIdleMinutes": 240,
        }
        if prod
        else {"storageGb": 10, "cullIdleMinutes": 60}
    )
    services["jupyterhub"]["replicas"] = 1
    # dev (and local, which takes dev's services) requests what a handful of users need: the laptop budget
    # and dev's one CPU node (README, "What dev costs"); memory limits are prod's
    services["sizing"] = "standard" if prod else "small"
    return services


# What each in-cluster data pod requests, per profile (prod only with data.allowInClusterInProd). Small in
# dev and local: one instance each, sized for a handful of users; `plan` sums them into the stack's requests.
_IN_CLUSTER_SIZE: dict[str, dict[bool, dict[str, float]]] = {
    "postgres": {False: {"cpu": 0.25, "memoryGb": 0.5}, True: {"cpu": 2, "memoryGb": 8}},
    "redis": {False: {"cpu": 0.1, "memoryGb": 0.25}, True: {"cpu": 1, "memoryGb": 4}},
    "kafka": {False: {"cpu": 0.25, "memoryGb": 1}, True: {"cpu": 2, "memoryGb": 8}},
}


def _postgres(prod: bool, m: dict[str, str], mode: DataServiceMode) -> dict[str, Any]:
    common = {
        "mode": mode.value,
        "version": "16",
        "highAvailability": prod,
        "readReplicas": 2 if prod else 0,
        "backupRetentionDays": 14 if prod else 1,
        "deletionProtection": prod,
    }
    if mode is DataServiceMode.IN_CLUSTER:
        return common | {"storageGb": 100 if prod else 5, "inCluster": _IN_CLUSTER_SIZE["postgres"][prod]}
    return common | {
        "machineType": m["postgres"],
        "storageGb": 100 if prod else 20,
        "maxStorageGb": 1000 if prod else 100,
    }


def _redis(prod: bool, cloud: Cloud, m: dict[str, str], mode: DataServiceMode) -> dict[str, Any]:
    """AWS: ElastiCache cluster mode, 3 shards x 1 replica in prod. GCP: Memorystore STANDARD_HA, a primary
    and 5 read replicas in prod, the HA table's 2 nodes per zone: Memorystore spreads the primary and its
    replicas over the region's zones itself, 1 to 5 replicas (Memorystore docs, "About read replicas").
    Memorystore Redis Cluster has no AUTH, which Feast needs. In-cluster: one Valkey server."""
    if mode is DataServiceMode.IN_CLUSTER:
        size = _IN_CLUSTER_SIZE["redis"][prod]
        return {
            "mode": mode.value,
            "shards": 1,
            "replicasPerShard": 0,
            "inCluster": size,
            "storageGb": 12 if prod else 1,
        }
    if cloud is Cloud.AWS:
        shape = {"shards": 3, "replicasPerShard": 1} if prod else {"shards": 1, "replicasPerShard": 0}
        return {"version": "7.1", "machineType": m["redis"], **shape}
    return {"version": "7.2", "memorySizeGb": 5 if prod else 1, "shards": 1, "replicasPerShard": 5 if prod else 0}


def _kafka(prod: bool, cloud: Cloud, m: dict[str, str], mode: DataServiceMode) -> dict[str, Any]:
    """AWS: MSK brokers (3 across 3 zones in prod). GCP: Managed Kafka capacity (brokers always in 3 zones).
    In-cluster: Strimzi, one KRaft node pool whose nodes are both broker and controller."""
    if mode is DataServiceMode.IN_CLUSTER:
        size = {"brokers": 3, "storageGb": 100} if prod else {"brokers": 1, "storageGb": 5}
        return {"enabled": True, "mode": mode.value, **size, "inCluster": _IN_CLUSTER_SIZE["kafka"][prod]}
    if cloud is Cloud.AWS:
        size = {"brokers": 3, "storageGb": 500} if prod else {"brokers": 2, "storageGb": 20}
        return {"enabled": True, "version": "3.8.x", "machineType": m["kafka"], **size}
    return {"enabled": True, "vcpuCount": 6 if prod else 3, "memoryGb": 24 if prod else 3}


# Where each data service runs when the stack file does not say (data.<service>.mode). dev runs Kafka in
# the cluster on both clouds (MSK and Managed Kafka were dev's largest data costs); prod stays managed.
DEFAULT_MODES: dict[tuple[Profile, Cloud], dict[str, DataServiceMode]] = {
    # dev under $250 a month with the pods placed (tests/test_estimates.py): on AWS both RDS ($26) and
    # ElastiCache ($23) are the difference. On GCP Cloud SQL ($53) alone would be; Redis is in the cluster
    # there too, so dev's in-cluster layers stay identical on both clouds (tests/test_composition.py)
    (Profile.DEV, Cloud.AWS): {
        "postgres": DataServiceMode.IN_CLUSTER,
        "redis": DataServiceMode.IN_CLUSTER,
        "kafka": DataServiceMode.IN_CLUSTER,
    },
    (Profile.DEV, Cloud.GCP): {
        "postgres": DataServiceMode.IN_CLUSTER,
        "redis": DataServiceMode.IN_CLUSTER,
        "kafka": DataServiceMode.IN_CLUSTER,
    },
    (Profile.PROD, Cloud.AWS): dict.fromkeys(("postgres", "redis", "kafka"), DataServiceMode.MANAGED),
    (Profile.PROD, Cloud.GCP): dict.fromkeys(("postgres", "redis", "kafka"), DataServiceMode.MANAGED),
}
for _profile in Profile:
    DEFAULT_MODES[(_profile, Cloud.LOCAL)] = dict.fromkeys(("postgres", "redis", "kafka"), DataServiceMode.IN_CLUSTER)


def data_modes(profile: Profile, cloud: Cloud, raw: dict[str, Any]) -> dict[str, DataServiceMode]:
    """Each data service's mode: the stack file's data.<service>.mode, else the profile's. An unknown value
    is left to validation (which names the key), keeping the profile's default for the defaults' shape."""
    modes = dict(DEFAULT_MODES[(profile, cloud)])
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    for service in modes:
        section = data.get(service) if isinstance(data.get(service), dict) else {}
        value = section.get("mode", modes[service].value)
        if value in {m.value for m in DataServiceMode}:
            modes[service] = DataServiceMode(value)
    return modes


def _gke_policies(prod: bool) -> dict[str, Any]:
    """Release channel and an upgrade window of 8 h on Saturday and Sunday nights (UTC): 64 h in any 32
    days, above GKE's 48 h minimum."""
    return {
        "releaseChannel": "STABLE" if prod else "REGULAR",
        "maintenanceWindow": {"days": ["SA", "SU"], "startTime": "01:00", "durationHours": 8},
    }


def profile_defaults(
    profile: Profile, cloud: Cloud, region: str | None = None, modes: dict[str, DataServiceMode] | None = None
) -> dict[str, Any]:
    """The full config document for (profile, cloud), in the same camelCase shape as Pulumi.<stack>.yaml;
    the data services' defaults follow their modes (`data_modes`)."""
    prod = profile is Profile.PROD
    modes = modes or DEFAULT_MODES[(profile, cloud)]
    if cloud is Cloud.LOCAL:
        return local_defaults(profile, modes)
    m = _MACHINES[(profile, cloud)]
    region = region or _DEFAULT_REGION[cloud]
    return {
        "profile": profile.value,
        "cloud": cloud.value,
        "region": region,
        "zones": default_zones(cloud, region, 3 if prod else 2),
        "ha": "multi-zone" if prod else "single-zone",
        "cluster": {
            # the newest minor with add-on pins and standard support on both clouds (mlplatform/estimate/
            # support.py; tests/test_estimates.py keeps it there for 90 days past the table's date)
            "kubernetesVersion": DEFAULT_KUBERNETES_MINOR,
            "systemPool": {
                "name": "system",
                "machineType": m["system"],
                "minNodes": 3 if prod else 1,
                "maxNodes": 6 if prod else 3,
                "diskSizeGb": 50,
            },
            "cpuPool": {
                "name": "cpu",
                "machineType": m["cpu"],
                "minNodes": 3 if prod else 0,
                "maxNodes": 30 if prod else 6,
                "spot": not prod,
                # dev: the platform's images (about 15 GB) and emptyDirs fit 50 GB
                "diskSizeGb": 100 if prod else 50,
            },
            "gpuPools": [
                {
                    "name": "gpu",
                    "machineType": m["gpu"],
                    "accelerator": m["gpuAccelerator"],
                    "acceleratorCount": 1,
                    "minNodes": 0,
                    "maxNodes": 8 if prod else 2,
                    "spot": not prod,
                    "diskSizeGb": 200,
                },
            ],
            # gcp: private IP endpoint in prod, the program deploys through GKE's DNS endpoint. aws: the
            # public endpoint stays, and prod must name the deployer's CIDRs (see ClusterConfig).
            "privateEndpoint": prod and cloud is Cloud.GCP,
            "publicAccessCidrs": [] if prod else ["0.0.0.0/0"],
            **(_gke_policies(prod) if cloud is Cloud.GCP else {}),
        },
        "storage": {"forceDestroy": not prod, "versioning": prod, "logRetentionDays": 90 if prod else 14},
        "data": _data(prod, cloud, m, modes),
        "services": _services(prod),
        # Kafka -> Flink -> Feast push: prod only (the operator and a job's JobManager and TaskManagers)
        "streaming": {"enabled": prod},
    }


def _data(prod: bool, cloud: Cloud, m: dict[str, str], modes: dict[str, DataServiceMode]) -> dict[str, Any]:
    return {
        "postgres": _postgres(prod, m, modes["postgres"]),
        "redis": _redis(prod, cloud, m, modes["redis"]),
        "kafka": _kafka(prod, cloud, m, modes["kafka"]),
    }


def _local_data(modes: dict[str, DataServiceMode]) -> dict[str, Any]:
    """dev's data services with a smaller Kafka node (3/4 GiB) and PostgreSQL instance (3/8 GiB): one
    laptop's few topics and connections, within the laptop budget (tests/test_local_budget.py)."""
    data = _data(False, Cloud.LOCAL, {}, modes)
    if modes["kafka"] is DataServiceMode.IN_CLUSTER:
        data["kafka"]["inCluster"] = {"cpu": 0.25, "memoryGb": 0.75}
    if modes["postgres"] is DataServiceMode.IN_CLUSTER:
        data["postgres"]["inCluster"] = {"cpu": 0.25, "memoryGb": 0.375}
    return data


# kind's default docker network (`docker network inspect kind`), where its nodes and API server live
KIND_NODE_CIDR = "172.18.0.0/16"
# kind's "Local Registry" (kubernetes-sigs/kind site/static/examples/kind-with-registry.sh): the registry
# container published on the host's 127.0.0.1:5001, which each node's containerd aliases to the container
KIND_REGISTRY = "localhost:5001"


def local_defaults(profile: Profile, modes: dict[str, DataServiceMode]) -> dict[str, Any]:
    """Any Kubernetes reached by a kubeconfig context (README, "Local quickstart": kind). One zone, every data
    service and the object store in the cluster, no GPU pool unless the stack file names its nodes, every
    layer on with one replica each so the whole platform fits a laptop (tests/test_local_stack.py holds the
    requests under its budget)."""
    services = _services(prod=False)
    return {
        "profile": profile.value,
        "cloud": Cloud.LOCAL.value,
        "region": LOCAL_REGION,
        "zones": [f"{LOCAL_REGION}-a"],
        "ha": "single-zone",
        "cluster": {
            "kubernetesVersion": DEFAULT_KUBERNETES_MINOR,
            "kubeconfigContext": "kind-mlplatform",
            "nodeCidrs": [KIND_NODE_CIDR],
            "registry": KIND_REGISTRY,
            # every node serves every pool: kind's nodes carry no pool labels
            "systemPool": {"name": "system", "minNodes": 1, "maxNodes": 1, "nodeLabels": {}},
            "cpuPool": {"name": "cpu", "minNodes": 1, "maxNodes": 1, "nodeLabels": {}},
            "gpuPools": [],
        },
        "storage": {"forceDestroy": True, "versioning": False, "logRetentionDays": 7},
        "data": _local_data(modes),
        "services": services,
        "streaming": {"enabled": True},
    }
