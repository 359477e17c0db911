"""Environment profiles: the defaults a stack starts from before its own `Pulumi.<stack>.yaml` overrides.

dev is cheap (two zones, small instances, spot GPUs, everything scales to zero where it can);
prod follows the design's HA table (three zones, Multi-AZ/regional data services, replicas spread).
Machine types differ per cloud, so a profile is chosen by (profile, cloud).
"""

from __future__ import annotations

from typing import Any

from mlplatform.config.models import Cloud, Profile
from mlplatform.pins import SERVICE_DEFAULT_VERSIONS

# Per-cloud machine types for each role, per profile.
_MACHINES: dict[tuple[Profile, Cloud], dict[str, str]] = {
    (Profile.DEV, Cloud.AWS): {
        "system": "t3.large",
        "cpu": "m6i.xlarge",
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
        "cpu": "n2-standard-4",
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
    return services


def _redis(prod: bool, cloud: Cloud, m: dict[str, str]) -> dict[str, Any]:
    """AWS: ElastiCache cluster mode, 3 shards x 1 replica in prod. GCP: Memorystore STANDARD_HA, a primary
    and 2 read replicas in other zones in prod (Memorystore Redis Cluster has no AUTH, which Feast needs)."""
    if cloud is Cloud.AWS:
        shape = {"shards": 3, "replicasPerShard": 1} if prod else {"shards": 1, "replicasPerShard": 0}
        return {"version": "7.1", "machineType": m["redis"], **shape}
    return {"version": "7.2", "memorySizeGb": 5 if prod else 1, "shards": 1, "replicasPerShard": 2 if prod else 0}


def _kafka(prod: bool, cloud: Cloud, m: dict[str, str]) -> dict[str, Any]:
    """AWS: MSK brokers (3 across 3 zones in prod). GCP: Managed Kafka capacity (brokers always in 3 zones)."""
    if cloud is Cloud.AWS:
        size = {"brokers": 3, "storageGb": 500} if prod else {"brokers": 2, "storageGb": 20}
        return {"enabled": True, "version": "3.8.x", "machineType": m["kafka"], **size}
    return {"enabled": True, "vcpuCount": 6 if prod else 3, "memoryGb": 24 if prod else 3}


def _gke_policies(prod: bool) -> dict[str, Any]:
    """Release channel and an upgrade window of 8 h on Saturday and Sunday nights (UTC): 64 h in any 32
    days, above GKE's 48 h minimum."""
    return {
        "releaseChannel": "STABLE" if prod else "REGULAR",
        "maintenanceWindow": {"days": ["SA", "SU"], "startTime": "01:00", "durationHours": 8},
    }


def profile_defaults(profile: Profile, cloud: Cloud, region: str | None = None) -> dict[str, Any]:
    """The full config document for (profile, cloud), in the same camelCase shape as Pulumi.<stack>.yaml."""
    prod = profile is Profile.PROD
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
        "data": {
            "postgres": {
                "version": "16",
                "machineType": m["postgres"],
                "storageGb": 100 if prod else 20,
                "maxStorageGb": 1000 if prod else 100,
                "highAvailability": prod,
                "readReplicas": 2 if prod else 0,
                "backupRetentionDays": 14 if prod else 1,
                "deletionProtection": prod,
            },
            "redis": _redis(prod, cloud, m),
            "kafka": _kafka(prod, cloud, m),
        },
        "services": _services(prod),
        # Kafka -> Flink -> Feast push: prod only (the operator and a job's JobManager and TaskManagers)
        "streaming": {"enabled": prod},
    }
