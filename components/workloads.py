"""The platform's workloads that reach cloud storage, and exactly which buckets each may use.

The storage layer creates one cloud identity per entry, next to its bucket grants; the in-cluster layers
create the Kubernetes service account from the same entry. Neither side spells a name on its own.
"""

from __future__ import annotations

from components.contracts import Access, BucketGrant, BucketPurpose, DnsGrant, Namespace, WorkloadSpec
from components.guardrails import CNPG_CLUSTER
from mlplatform.config.client import AcmeDns01Issuer, ClientConfig
from mlplatform.config.models import DataConfig, DataServiceMode
from mlplatform.config.streaming import StreamingConfig

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

# JupyterHub's single-user servers (components/client/jupyterhub.py): people explore datasets and read or
# write artifacts (a model's files, a run's outputs) from a notebook. MLflow's own uploads go through the
# tracking server (--serve-artifacts) and need none of this.
NOTEBOOK = WorkloadSpec(
    "notebook",
    Namespace.PLATFORM,
    "notebook",
    (BucketGrant(BucketPurpose.DATASETS, _RO), BucketGrant(BucketPurpose.ARTIFACTS, _RW)),
)

ALL: tuple[WorkloadSpec, ...] = (MLFLOW, FEAST, AIRFLOW, LOKI, KSERVE, RAY, TRAINING, DRIFT, NOTEBOOK)

# The streaming job (Flink, components/streaming): consumes the feature-event topics; its checkpoints and
# savepoints go to the datasets bucket (flink/ prefix), the one bucket it writes. Only where streaming is on:
# no identity (nor Kafka ACL) for a job that does not run.
STREAMING = WorkloadSpec(
    "streaming", Namespace.STREAMING, "feature-push", (BucketGrant(BucketPurpose.DATASETS, _RW),), kafka=_RO
)


def streaming_workloads(streaming: StreamingConfig) -> tuple[WorkloadSpec, ...]:
    """The identities the streaming path needs beyond ALL: the feature-push job's, with streaming.enabled."""
    return (STREAMING,) if streaming.enabled else ()


# In-cluster PostgreSQL's backups (components/data/in_cluster/backups.py): the Barman Cloud plugin's sidecar runs
# in each instance pod, under the service account CloudNativePG makes for the Cluster and names after it
# (cloudnative-pg v1.30.0 pkg/specs/serviceaccount.go; the Cluster's spec.serviceAccountTemplate annotates it), and
# writes base backups and WAL to the backups bucket, which no other workload is granted. Only where PostgreSQL runs
# in the cluster: RDS and Cloud SQL back themselves up, and then no backups bucket exists.
POSTGRES_BACKUP_KEY = "postgres-backup"
POSTGRES_CLUSTER_SERVICE_ACCOUNT = CNPG_CLUSTER  # the Cluster's name


def postgres_backup_workloads(data: DataConfig) -> tuple[WorkloadSpec, ...]:
    """The identity in-cluster PostgreSQL backs up as, with data.postgres.mode in-cluster; none otherwise."""
    if data.postgres.mode is not DataServiceMode.IN_CLUSTER:
        return ()
    grant = BucketGrant(BucketPurpose.BACKUPS, _RW)
    return (WorkloadSpec(POSTGRES_BACKUP_KEY, Namespace.DATA, POSTGRES_CLUSTER_SERVICE_ACCOUNT, (grant,)),)


# cert-manager's controller solving ACME DNS-01 challenges: the chart's service account (`cert-manager`, the
# release's fullname: cert-manager v1.21.1 templates/_helpers.tpl cert-manager.serviceAccountName) writes TXT
# records in the configured zone and touches no bucket. Only with a domain and an ACME DNS-01 issuer.
CERT_MANAGER_KEY = "cert-manager"


def dns01_workloads(client: ClientConfig) -> tuple[WorkloadSpec, ...]:
    """The identities the stack's UI exposure needs beyond ALL: cert-manager's, with its DNS grant."""
    tls = client.tls
    if client.domain is None or not isinstance(tls, AcmeDns01Issuer):
        return ()
    grant = DnsGrant(hosted_zone_id=tls.hosted_zone_id, project=tls.dns_project)
    return (WorkloadSpec(CERT_MANAGER_KEY, Namespace.CERT_MANAGER, "cert-manager", (), dns=grant),)
