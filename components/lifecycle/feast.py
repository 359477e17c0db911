"""Feast: a feature_store.yaml generated from the data and storage layers' typed outputs, the online
feature server (chart), the feature repository (feature_repo/) applied by a Job on every change, and
scheduled materialization into the online store.

Secrets never enter the YAML: Feast expands ${VAR} in feature_store.yaml from the environment, and those
variables come from Secrets by reference. helm.v4.Chart, deliberately: the chart is one Deployment and
one Service, with no hooks and no CRDs, so the preview can diff each object.

Where Feast 0.66 reads its configuration (feast-dev/feast v0.66.0): FEATURE_STORE_YAML_BASE64 only in the
CLI's create_feature_store (sdk/python/feast/repo_operations.py), which `feast serve` and `feast materialize*`
use but `feast apply` does not; the library (FeatureStore(), what Ray and Airflow tasks call) reads
<repo_path>/feature_store.yaml or FEAST_FS_YAML_FILE_PATH (utils.get_default_yaml_file_path). So every Feast
client here gets the YAML as a mounted file (ConfigMap `feast-store`) named by FEAST_FS_YAML_FILE_PATH; the
chart's own base64 value stays for `feast serve`.

Offline store `file` (Feast's Dask store, infra/offline_stores/dask.py): it reads a FileSource with
dd.read_parquet and no keys, so fsspec's s3fs (botocore's chain: IRSA's AWS_ROLE_ARN and
AWS_WEB_IDENTITY_TOKEN_FILE) or gcsfs (google.auth.default: GKE's metadata server) signs with the pod's
workload identity. DuckDB's store (offline_stores/duckdb.py, _read_data_source) passes S3 keys only from a
source's static credentials and otherwise reads anonymously; DuckDB's httpfs does no web-identity exchange
and reads gs:// only with HMAC keys. The feature-server image (feast[minimal]) has neither s3fs nor gcsfs
(its lock, sdk/python/requirements/py3.12-minimal-requirements.txt): the `file` store's readers need an
image that adds them (tests/venvs/feast.txt has the versions; README, "Feast").
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.contracts import (
    Bucket,
    BucketPurpose,
    ContainerRegistry,
    KafkaEndpoint,
    Namespace,
    ObjectStore,
    PostgresEndpoint,
    RedisEndpoint,
    SeedObject,
    ServiceEndpoint,
    WorkloadIdentity,
)
from components.guardrails import NAME_LABEL, flow
from components.images import ImageSpec, build_image
from components.kube import (
    PART_OF,
    POSTGRES_CA_FILE,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    config_map,
    database_ca,
    database_ca_volume,
    database_secret,
    identity_service_account,
    opaque_secret,
    periodic_job_spec,
    spread_affinity,
)
from components.lifecycle.kafka import client_package, credentials_secret, granted, kafka_env, package_volume
from components.placement import Placement, replicated_chart
from mlplatform.config import FeastConfig
from mlplatform.pins import ChartPin

FLOW = flow("feature-server")
ONLINE_PORT = 6566  # the chart hard-codes this containerPort for feast_mode "online"
if FLOW.port != ONLINE_PORT:
    raise AssertionError(f"flow {FLOW.name} admits port {FLOW.port}, the feature server listens on {ONLINE_PORT}")
ENDPOINT = ServiceEndpoint(FLOW.app, Namespace.PLATFORM, 80)
PROJECT = "mlplatform"
FEATURE_REPO = Path(__file__).resolve().parents[2] / "feature_repo"
# The example feature view's rows (feature_repo/sample_data.py writes them; features.py reads SAMPLE_PATH in
# the datasets bucket): uploaded by the storage layer on `up`, so materialization has data on a new stack.
# In a subdirectory, so the repository's ConfigMap (flat files only) does not carry it.
EXAMPLE_DATA = SeedObject(
    BucketPurpose.DATASETS, "feast/examples/driver_stats.parquet", FEATURE_REPO / "data" / "driver_stats.parquet"
)
# The feature repository's files are mounted under REPO_MOUNT/feature_repo (ConfigMap `items`), never at the
# mount's root: the kubelet puts its `..data` link and timestamped `..<date>` directory there, and Feast's
# parse_repo (repo_operations.py) globs `**/*.py` and resolves symlinks, so a root-level mount would be read
# as the module `..<date>.features`, which cannot be imported.
REPO_MOUNT = "/etc/feast/repo"
REPO_DIR = f"{REPO_MOUNT}/feature_repo"
STORE_DIR, STORE_FILE = "/etc/feast/store", "feature_store.yaml"
FS_YAML_ENV = "FEAST_FS_YAML_FILE_PATH"  # feast/constants.py FEAST_FS_YAML_FILE_PATH_ENV_NAME
DATASETS_ENV = "DATASETS_URI"  # feature_repo/features.py builds its sources' paths from it
REDIS_CA_DIR = "/etc/feast/redis-ca"
# Secret-backed environment the YAML refers to; the Secret names and keys are set in Lifecycle.
REGISTRY_USER_ENV, REGISTRY_PASSWORD_ENV, REDIS_PASSWORD_ENV = (
    "FEAST_REGISTRY_USER",
    "FEAST_REGISTRY_PASSWORD",
    "FEAST_REDIS_PASSWORD",
)
UID = 10001  # the feature-server image declares no user; any non-root UID works with HOME on /tmp

# The feature server's `feast serve` tuned as Feast's guide tunes it (feast.dev/blog/feast-online-server-
# performance-tuning, "Worker Tuning": the defaults are one worker, short keep-alive, frequent registry
# refresh), with the options Feast 0.66's CLI has (sdk/python/feast/cli/serve.py, feast v0.66.0; each is a
# Gunicorn setting in feature_server.py start_server). The chart's `commandArgs` replaces its default command
# (templates/deployment.yaml, feast-feature-server 0.66.0), which passes none of them.
SERVER_CPU_MILLI = 500  # the pod's CPU request (feature_server_values)
# Gunicorn's 2 x cores + 1 (the guide's `workers: -1`), counted on the pod's CPU request, not with `-1`:
# serve.py computes -1 from multiprocessing.cpu_count(), the node's cores, not the container's share.
SERVER_WORKERS = max(1, (2 * SERVER_CPU_MILLI) // 1000 + 1)
REGISTRY_REFRESH_SECONDS = 300  # the guide's registryTTLSeconds: 300 (CLI default 60)
REGISTRY_CACHE_TTL = 600  # feature_store.yaml's registry cache; must exceed REGISTRY_REFRESH_SECONDS
SERVE_ARGS = [
    "feast", "--log-level", "WARNING",  # the chart's logLevel default
    "serve", "-h", "0.0.0.0", "-p", str(ONLINE_PORT),
    "--metrics",  # request counts and latencies on :8000, as the chart's own command with metrics.enabled
    "--workers", str(SERVER_WORKERS),
    "--keep-alive-timeout", "120",  # guide: keepAliveTimeout 120 (CLI default 30): pooled clients keep sockets
    "--max-requests", "5000",  # guide: maxRequests 5000 (CLI default 1000): fewer worker restarts under load
    "--max-requests-jitter", "200",  # guide: maxRequestsJitter 200 (CLI default 50): staggered restarts
    "--worker-connections", "2000",  # guide: workerConnections 2000 (CLI default 1000)
    "--registry_ttl_sec", str(REGISTRY_REFRESH_SECONDS),
    # Gunicorn's per-request access log line costs every request; Prometheus (--metrics) counts them instead
    "--no-access-log",
]  # fmt: skip
if REGISTRY_CACHE_TTL <= REGISTRY_REFRESH_SECONDS:
    raise AssertionError("the registry cache must outlive the server's background refresh interval")


@dataclass(frozen=True)
class FeastSecrets:
    """Where the variables the YAML refers to come from: the feast database Secret and the Redis Secret."""

    database: pulumi.Input[str]  # keys: username, password
    redis: pulumi.Input[str]  # key: password

    def refs(self) -> list[tuple[str, pulumi.Input[str], str]]:
        """(variable, Secret, key) for each variable the YAML refers to."""
        return [
            (REGISTRY_USER_ENV, self.database, "username"),
            (REGISTRY_PASSWORD_ENV, self.database, "password"),
            (REDIS_PASSWORD_ENV, self.redis, "password"),
        ]

    def env(self) -> list[dict[str, object]]:
        return [{"name": v, "valueFrom": {"secretKeyRef": {"name": s, "key": k}}} for v, s, k in self.refs()]

    def airflow_secret_env(self) -> list[dict[str, object]]:
        """The same variables in the Airflow chart's `secret` form (also passed on to task pods)."""
        return [{"envName": v, "secretName": s, "secretKey": k} for v, s, k in self.refs()]


def redis_tls_options(redis: RedisEndpoint) -> list[str]:
    """The connection string's TLS options, each `key=value` a redis-py keyword once Feast's parser has
    JSON-decoded the value (online_stores/redis.py `_parse_connection_string`, Feast v0.66.0): the chain is
    always verified (ssl_cert_reqs, against the private CA where there is one, else the image's trust store)
    and the host name where the certificate can name it. Both stated: redis-py's default for the host name
    changed in 6.0 (redis/redis-py#3626) and Feast 0.66 allows redis>=4.2.2."""
    if not redis.tls:
        return []
    options = ["ssl=true", "ssl_cert_reqs=required", f"ssl_check_hostname={str(redis.check_hostname).lower()}"]
    if redis.ca_certificate is not None:
        options.append(f"ssl_ca_certs={REDIS_CA_DIR}/ca.crt")
    return options


def registry_tls(postgres: PostgresEndpoint) -> str:
    """The registry URL's libpq TLS parameters (psycopg hands the URL's query to libpq)."""
    verified = f"&sslrootcert={POSTGRES_CA_FILE}" if postgres.ca_certificate is not None else ""
    return f"sslmode={postgres.ssl_mode}{verified}"


def feature_store_yaml(postgres: PostgresEndpoint, redis: RedisEndpoint) -> pulumi.Output[str]:
    """The feature_store.yaml every Feast client in the platform uses (server, apply, materialization, Ray,
    Airflow). The offline store has no location of its own: each FileSource names its bucket path."""
    database = postgres.databases["feast"].database

    def render(pg_host: str, pg_port: int, redis_host: str, redis_port: int) -> str:
        registry_url = (
            f"postgresql+psycopg://${{{REGISTRY_USER_ENV}}}:${{{REGISTRY_PASSWORD_ENV}}}"
            f"@{pg_host}:{int(pg_port)}/{database}?{registry_tls(postgres)}"
        )
        options = [f"{redis_host}:{int(redis_port)}", f"password=${{{REDIS_PASSWORD_ENV}}}", *redis_tls_options(redis)]
        doc = {
            "project": PROJECT,
            "provider": "local",
            "entity_key_serialization_version": 3,
            # Longer than the feature server's own background refresh (SERVE_ARGS --registry_ttl_sec), so a
            # request never finds the cache expired and refreshes it inline: cache_mode "sync" refreshes on the
            # request path once cache_ttl_seconds has passed (infra/registry/caching_registry.py
            # _refresh_cached_registry_if_necessary, feast v0.66.0). 600 is Feast's default (repo_config.py).
            "registry": {"registry_type": "sql", "path": registry_url, "cache_ttl_seconds": REGISTRY_CACHE_TTL},
            "online_store": {
                "type": "redis",
                "redis_type": "redis_cluster" if redis.cluster_mode else "redis",
                "connection_string": ",".join(options),
            },
            # DaskOfflineStoreConfig has `type` only (and forbids other keys)
            "offline_store": {"type": "file"},
        }
        return yaml.safe_dump(doc, sort_keys=False)

    return pulumi.Output.all(postgres.host, postgres.port, redis.host, redis.port).apply(lambda a: render(*a))


def feast_env(secrets: FeastSecrets, kafka: KafkaEndpoint | None) -> list[dict[str, object]]:
    """Everything a Feast client container needs besides the YAML's base64 (the chart sets that itself)."""
    return [*secrets.env(), *kafka_env(kafka), {"name": "HOME", "value": "/tmp"}]


def encoded(store_yaml: pulumi.Output[str]) -> pulumi.Output[str]:
    return store_yaml.apply(lambda text: base64.b64encode(text.encode()).decode())


def ca_volume(ca_config_map: pulumi.Input[str] | None) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The Redis CA where the YAML's ssl_ca_certs expects it, for every container that loads the YAML."""
    if ca_config_map is None:
        return [], []
    return (
        [{"name": "redis-ca", "configMap": {"name": ca_config_map}}],
        [{"name": "redis-ca", "mountPath": REDIS_CA_DIR, "readOnly": True}],
    )


def _volumes(client: FeastClient) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    volumes, mounts = client.volumes()
    return [{"name": "tmp", "emptyDir": {}}, *volumes], [{"name": "tmp", "mountPath": "/tmp"}, *mounts]


def feature_server_values(
    *,
    pin: ChartPin,
    replicas: int,
    client: FeastClient,
    service_account: pulumi.Input[str],
    placement: Placement,
    identity_env: Sequence[dict[str, object]] = (),
) -> dict[str, object]:
    """`identity_env`: the feast identity's WorkloadIdentity.env (the store's key and endpoint on local), for
    a push that writes to the offline store."""
    volumes, mounts = _volumes(client)
    return {
        "nameOverride": FLOW.app,
        "fullnameOverride": ENDPOINT.name,
        "replicaCount": replicas,
        "image": {"tag": pin.app_version},
        "feast_mode": "online",
        # `--metrics`: request counts and latencies on :8000 (the chart adds the Service port), scraped by
        # Prometheus through a ServiceMonitor
        "metrics": {"enabled": True},
        "commandArgs": SERVE_ARGS,
        "feature_store_yaml_base64": encoded(client.store_yaml),
        "serviceAccount": {"name": service_account},
        "service": {"port": ENDPOINT.port},
        "podSecurityContext": {**RESTRICTED_POD, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "extraEnvs": [*client.chart_env(), *identity_env],
        "volumes": volumes,
        "volumeMounts": mounts,
        # small keeps the CPU its worker count is derived from (SERVER_WORKERS)
        "resources": placement.resources(f"{SERVER_CPU_MILLI}m", "1Gi", "2Gi", small=(f"{SERVER_CPU_MILLI}m", "384Mi")),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "affinity": spread_affinity(FLOW.app) if placement.spread else {},
    }


# The CronJob's program: Feast's own materialize-incremental, but a registry with no online feature view is a
# failure, not "Materializing 0 feature views" and exit 0 (feature_store.py materialize_incremental): the
# Job fails and kube-prometheus-stack's KubeJobFailed (kubernetes-apps rules, kube_job_failed > 0 for 15m)
# fires. The filter is Feast's own (_get_feature_views_to_materialize: online and enabled).
MATERIALIZE = """\
import sys
from datetime import datetime, timezone

from feast import FeatureStore

store = FeatureStore()
views = [v for v in [*store.list_feature_views(), *store.list_stream_feature_views()] if v.online and v.enabled]
if not views:
    sys.exit(
        f"feast-materialize: project {store.project} has no online feature view in its registry; "
        "the feast-apply Job registers feature_repo/ on pulumi up (kubectl -n mlplatform get jobs)"
    )
store.materialize_incremental(end_date=datetime.now(timezone.utc))
"""


# images/feast-client: the feature server's image plus s3fs or gcsfs, built per stack (components/images.py)
CLIENT_IMAGE_DIR = "feast-client"


def client_image(pin: ChartPin) -> str:
    """The feature server's own image, which has `feast`, for the platform's Feast Jobs."""
    return f"quay.io/feastdev/feature-server:{pin.app_version}"


def _job_pod(
    container: dict[str, object],
    volumes: list[dict[str, object]],
    service_account: pulumi.Input[str],
    placement: Placement,
) -> dict[str, object]:
    return {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "securityContext": {**RESTRICTED_POD, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "containers": [container],
        "volumes": volumes,
    }


def materialization(
    parent: pulumi.Resource,
    name: str,
    *,
    pin: ChartPin,
    namespace: pulumi.Input[str],
    client: FeastClient,
    service_account: pulumi.Input[str],
    placement: Placement,
    depends_on: list[pulumi.Resource],
    image: pulumi.Input[str] | None = None,
    identity_env: Sequence[dict[str, object]] = (),
) -> k8s.batch.v1.CronJob:
    """Hourly materialize-incremental into the online store (MATERIALIZE), with the feature server's
    identity and configuration. Forbid: a slow run is never overlapped by the next one. Suspended without
    an `image` that can read the bucket (the platform's images/feast-client, or FeastConfig.client_image)."""
    volumes, mounts = _volumes(client)
    container = {
        "name": "materialize",
        "image": image or client_image(pin),
        "command": ["python", "-c", MATERIALIZE],
        # the offline store's reader (s3fs) finds the local store's endpoint and key in identity_env
        "env": [*client.env(), *identity_env],
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "resources": placement.resources("500m", "1Gi", "4Gi"),
        "volumeMounts": mounts,
    }
    return k8s.batch.v1.CronJob(
        f"{name}-materialize",
        metadata={"name": "feast-materialize", "namespace": namespace, "labels": PART_OF},
        # hourly; a run that has not finished within 55 minutes is stopped before the next one
        spec=periodic_job_spec(
            "0 * * * *",
            "feast-materialize",
            _job_pod(container, volumes, service_account, placement),
            deadline_seconds=3300,
        )
        | {"suspend": image is None},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )


def feature_repo_files(root: Path = FEATURE_REPO) -> dict[str, str]:
    """The feature repository's files by name, as the ConfigMap carries them (flat: a key holds no `/`)."""
    return {p.name: p.read_text() for p in sorted(root.iterdir()) if p.is_file() and p.suffix != ".pyc"}


def repo_digest(files: dict[str, str], image: str) -> str:
    """A short hash of everything one `feast apply` run depends on but the registry's address: the files and
    the image. It names the Job and its ConfigMap, so a change is a new Job (a Job's pod template is
    immutable) and an unchanged repository is not applied again."""
    h = hashlib.sha256()
    for file_name, text in sorted(files.items()):
        h.update(f"{file_name}\0{text}\0".encode())
    h.update(image.encode())
    return h.hexdigest()[:10]


def apply_job(
    parent: pulumi.Resource,
    name: str,
    *,
    pin: ChartPin,
    ns: k8s.core.v1.Namespace,
    client: FeastClient,
    datasets: Bucket,
    service_account: pulumi.Input[str],
    placement: Placement,
    depends_on: list[pulumi.Resource],
    identity_env: Sequence[dict[str, object]] = (),
) -> k8s.batch.v1.Job:
    """`feast apply` of feature_repo/ into the SQL registry, run by `pulumi up` (which waits for the Job) when
    the repository changes; the same image, identity, Secrets and YAML as the materialization.

    `--skip-source-validation`: FileSource.validate (file_source.py) only logs a warning when a path is
    missing or unreadable, so it cannot fail the apply; skipping it keeps the Job off the bucket."""
    files = feature_repo_files()
    image = client_image(pin)
    digest = repo_digest(files, image)
    repo = config_map(parent, f"{name}-repo", f"feast-repo-{digest}", ns, files)
    volumes, mounts = _volumes(client)
    items = [{"key": key, "path": f"feature_repo/{key}"} for key in files]
    volumes = [*volumes, {"name": "feature-repo", "configMap": {"name": repo.metadata.name, "items": items}}]
    mounts = [*mounts, {"name": "feature-repo", "mountPath": REPO_MOUNT, "readOnly": True}]
    container = {
        "name": "apply",
        "image": image,
        "command": ["feast", "--chdir", REPO_DIR, "apply", "--skip-source-validation"],
        "env": [*client.env(), {"name": DATASETS_ENV, "value": datasets.uri}, *identity_env],
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "resources": placement.resources("250m", "512Mi", "1Gi"),
        "volumeMounts": mounts,
    }
    pod = _job_pod(container, volumes, service_account, placement)
    return k8s.batch.v1.Job(
        f"{name}-apply",
        metadata={"name": f"feast-apply-{digest}", "namespace": ns.metadata.name, "labels": PART_OF},
        spec={
            "backoffLimit": 2,
            # a node from zero (~3 min) and the image pull (~1.5 GiB) before a run of seconds
            "activeDeadlineSeconds": 1200,
            "template": {"metadata": {"labels": {**PART_OF, NAME_LABEL: "feast-apply"}}, "spec": pod},
        },
        # a change of anything but the digest (placement, Secrets' names) replaces the Job under the same name
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[*depends_on, repo],
            delete_before_replace=True,
            custom_timeouts=pulumi.CustomTimeouts(create="25m"),
        ),
    )


@dataclass(frozen=True)
class FeatureStoreSource:
    """What the feature store's clients are made from: the YAML and the typed endpoints it points at."""

    store_yaml: pulumi.Output[str]
    postgres: PostgresEndpoint
    redis: RedisEndpoint
    kafka: KafkaEndpoint | None


@dataclass(frozen=True)
class FeastClient:
    """What a pod in one namespace needs to load the platform's feature store: the YAML, the Secrets its
    ${VARS} come from, the Redis and PostgreSQL CAs (when there are) and the Kafka settings, plus what must
    exist first."""

    store_yaml: pulumi.Output[str]
    secrets: FeastSecrets
    ca_config_map: pulumi.Output[str] | None
    kafka: KafkaEndpoint | None
    ready: tuple[pulumi.Resource, ...]
    kafka_package: pulumi.Output[str] | None = None  # the Kafka token callbacks' ConfigMap, with `kafka`
    store_config_map: pulumi.Output[str] | None = None  # `feast-store`: the YAML as a file
    # `feast-postgres-ca`: the registry database's CA, where the YAML's sslrootcert names it
    postgres_ca_config_map: pulumi.Output[str] | None = None

    def env(self) -> list[dict[str, object]]:
        """The mounted YAML's path plus its variables, for every Feast client but the chart's server (which
        takes the YAML's base64, read by `feast serve`): FeatureStore() and the CLI both read the file."""
        return [store_file_env(), *self.chart_env()]

    def chart_env(self) -> list[dict[str, object]]:
        return feast_env(self.secrets, self.kafka)

    def volumes(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        ca_volumes, ca_mounts = ca_volume(self.ca_config_map)
        pg_volumes, pg_mounts = database_ca_volume(self.postgres_ca_config_map)
        kafka_volumes, kafka_mounts = package_volume(self.kafka_package)
        store_volumes, store_mounts = store_volume(self.store_config_map)
        return (
            [*store_volumes, *ca_volumes, *pg_volumes, *kafka_volumes],
            [*store_mounts, *ca_mounts, *pg_mounts, *kafka_mounts],
        )


def store_file_env() -> dict[str, object]:
    """Where the mounted feature_store.yaml is: read by FeatureStore() and every `feast` command."""
    return {"name": FS_YAML_ENV, "value": f"{STORE_DIR}/{STORE_FILE}"}


def store_volume(name: pulumi.Input[str] | None) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """feature_store.yaml at STORE_DIR, where FEAST_FS_YAML_FILE_PATH points."""
    if name is None:
        return [], []
    return (
        [{"name": "feast-store", "configMap": {"name": name}}],
        [{"name": "feast-store", "mountPath": STORE_DIR, "readOnly": True}],
    )


def feast_client(
    parent: pulumi.Resource, prefix: str, ns: k8s.core.v1.Namespace, source: FeatureStoreSource
) -> FeastClient:
    """The feature store's Secrets and CA in namespace `ns` (Secrets and ConfigMaps are namespaced, so each
    namespace with Feast clients gets its own, made from the same typed outputs)."""
    postgres, redis = source.postgres, source.redis
    db = database_secret(parent, f"{prefix}-db-secret", ns, postgres, "feast")
    redis_secret = opaque_secret(parent, f"{prefix}-redis-secret", "feast-redis", ns, {"password": redis.auth_token})
    ca = (
        config_map(parent, f"{prefix}-redis-ca", "feast-redis-ca", ns, {"ca.crt": redis.ca_certificate})
        if redis.ca_certificate is not None
        else None
    )
    pg_ca = database_ca(parent, f"{prefix}-postgres-ca", "feast-postgres-ca", ns, postgres)
    package = client_package(parent, f"{prefix}-kafka-client-package", ns) if source.kafka is not None else None
    # the SCRAM password of the workload the endpoint was granted to (none for a cloud token login)
    kafka_credentials = credentials_secret(parent, f"{prefix}-kafka-credentials", source.kafka, ns)
    # the YAML holds no secret (its passwords are ${VARS}), so a ConfigMap
    store = config_map(parent, f"{prefix}-store", "feast-store", ns, {STORE_FILE: source.store_yaml})
    return FeastClient(
        store_yaml=source.store_yaml,
        secrets=FeastSecrets(database=db.metadata.name, redis=redis_secret.metadata.name),
        ca_config_map=ca.metadata.name if ca is not None else None,
        kafka=source.kafka,
        ready=(
            db,
            redis_secret,
            store,
            *([ca] if ca is not None else []),
            *([pg_ca] if pg_ca is not None else []),
            *([package] if package is not None else []),
            *([kafka_credentials] if kafka_credentials is not None else []),
        ),
        kafka_package=package.metadata.name if package is not None else None,
        store_config_map=store.metadata.name,
        postgres_ca_config_map=pg_ca.metadata.name if pg_ca is not None else None,
    )


@dataclass(frozen=True)
class FeastArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity
    postgres: PostgresEndpoint
    redis: RedisEndpoint
    kafka: KafkaEndpoint | None
    datasets: Bucket
    pin: ChartPin
    config: FeastConfig
    placement: Placement
    provider: k8s.Provider
    # where the platform's Feast client image (images/feast-client) is pushed; None: not built, and without
    # config.client_image the materialization is suspended (no image here can read the bucket)
    registry: ContainerRegistry | None = None


@dataclass(frozen=True)
class FeastOutputs:
    endpoint: ServiceEndpoint
    service_account: k8s.core.v1.ServiceAccount
    client: FeastClient  # the feature store for clients in the platform namespace (Airflow's tasks)
    source: FeatureStoreSource  # for clients in other namespaces (Ray in training), which make their own
    # the image that reads the offline store's bucket (feast + s3fs / gcsfs); None when there is none
    client_image: pulumi.Input[str] | None = None


def client_image_spec(store: ObjectStore) -> ImageSpec:
    """images/feast-client with the filesystem of the datasets bucket's store: `feast-client-s3`, `-gcs`."""
    return ImageSpec(CLIENT_IMAGE_DIR, {"FILESYSTEM": store.value})


class Feast(pulumi.ComponentResource):
    """The feature store's configuration and Secrets, the online feature server, the feature repository's
    apply Job and the hourly materialization."""

    outputs: FeastOutputs

    def __init__(self, name: str, args: FeastArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Feast", name, None, opts)
        ns, placement = args.namespace, args.placement
        account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
        source = FeatureStoreSource(
            feature_store_yaml(args.postgres, args.redis),
            args.postgres,
            args.redis,
            granted(args.identity.spec, args.kafka),
        )
        client = feast_client(self, name, ns, source)
        depends = [*args.postgres.ready, *client.ready, account]
        reader: pulumi.Input[str] | None = args.config.client_image
        if args.config.enabled and reader is None and args.registry is not None:
            spec = client_image_spec(args.datasets.store)
            reader = build_image(self, f"{name}-{spec.name}", spec, args.registry).ref
        if args.config.enabled:
            applied = apply_job(
                self,
                name,
                pin=args.pin,
                ns=ns,
                client=client,
                datasets=args.datasets,
                service_account=account.metadata.name,
                placement=placement,
                depends_on=depends,
                identity_env=args.identity.env,
            )
            replicated_chart(
                self,
                name,
                pin=args.pin,
                endpoint=ENDPOINT,
                app=FLOW.app,
                namespace=ns.metadata.name,
                values=feature_server_values(
                    pin=args.pin,
                    replicas=args.config.replicas,
                    client=client,
                    service_account=account.metadata.name,
                    placement=placement,
                    identity_env=args.identity.env,
                ),
                replicas=args.config.replicas,
                provider=args.provider,
                # after the apply Job: both create the SQL registry's tables on a new database
                # (infra/registry/sql.py metadata.create_all), and the server should start on the views
                depends_on=[*depends, applied],
            )
            materialization(
                self,
                name,
                pin=args.pin,
                namespace=ns.metadata.name,
                client=client,
                service_account=account.metadata.name,
                placement=placement,
                depends_on=[*depends, applied],
                image=reader,
                identity_env=args.identity.env,
            )
        self.outputs = FeastOutputs(ENDPOINT, account, client, source, reader)
        self.register_outputs({"featureServerUrl": ENDPOINT.url})
