"""The platform's workloads that reach cloud storage, and exactly which buckets each may use.

The storage layer creates one cloud identity per entry, next to its bucket grants; the in-cluster layers
create the Kubernetes service account from the same entry. Neither side spells a name on its own.
"""

from __future__ import annotations

from components.contracts import Access, BucketGrant, BucketPurpose, Namespace, WorkloadSpec

_RW, _RO = Access.READ_WRITE, Access.READ

MLFLOW = WorkloadSpec("mlflow", Namespace.PLATFORM, "mlflow", (BucketGrant(BucketPurpose.ARTIFACTS, _RW),))
# Feast consumes stream sources from Kafka into the online store; Airflow reacts to and publishes events.
FEAST = WorkloadSpec("feast", Namespace.PLATFORM, "feast", (BucketGrant(BucketPurpose.DATASETS, _RW),), kafka=_RO)
AIRFLOW = WorkloadSpec(
    "airflow",
    Namespace.PLATFORM,
    "airflow",
    (BucketGrant(BucketPurpose.LOGS, _RW), BucketGrant(BucketPurpose.DATASETS, _RO)),
    kafka=_RW,
)
LOKI = WorkloadSpec("loki", Namespace.MONITORING, "loki", (BucketGrant(BucketPurpose.LOGS, _RW),))
KSERVE = WorkloadSpec("kserve", Namespace.SERVING, "kserve-model-pull", (BucketGrant(BucketPurpose.ARTIFACTS, _RO),))
RAY = WorkloadSpec(
    "ray",
    Namespace.TRAINING,
    "ray",
    (BucketGrant(BucketPurpose.ARTIFACTS, _RW), BucketGrant(BucketPurpose.DATASETS, _RO)),
)

# Plain Kubernetes Jobs/CronJobs in `training` (Airflow's KubernetesPodOperator launches them): the same
# grants as Ray, under their own identity.
TRAINING = WorkloadSpec(
    "training",
    Namespace.TRAINING,
    "training",
    (BucketGrant(BucketPurpose.ARTIFACTS, _RW), BucketGrant(BucketPurpose.DATASETS, _RO)),
)

# The drift job reads the reference and recent inference samples, nothing else.
DRIFT = WorkloadSpec("drift", Namespace.MONITORING, "drift", (BucketGrant(BucketPurpose.DATASETS, _RO),))

ALL: tuple[WorkloadSpec, ...] = (MLFLOW, FEAST, AIRFLOW, LOKI, KSERVE, RAY, TRAINING, DRIFT)
