"""Airflow 3 (official chart): KubernetesExecutor, metadata on the platform PostgreSQL through PgBouncer,
the platform's reference DAGs (or a configured git-sync repository), task logs in the logs bucket through
the `airflow` workload identity, and the platform's endpoints provided as Airflow connections and variables.

helm.v3.Release, deliberately: Helm keeps the release history operators roll back with, and the chart's
pre-install Secrets stay stable across upgrades. The database migration is not the chart's: as a hook
(`post-install,post-upgrade`, its default) it deadlocks a waiting install, since the scheduler, API server,
triggerer and DAG processor wait in an init container for the migrations and Helm runs post-install hooks
only after those pods are ready; as an ordinary Job (`useHelmHooks: false`) it is patched by the next
upgrade while it still exists (its `ttlSecondsAfterFinished: 300`), and a Job's pod template is immutable,
so any upgrade within 5 minutes that touches it fails (`render` reports such Jobs: mlplatform/helm_apply.py).
The program runs `airflow db migrate` as its own Job before the release, straight to the database with the
`airflow-postgres` Secret's libpq variables (PgBouncer is part of the release): Pulumi replaces the Job under
a new name when its template changes, and the release's pods start on a migrated schema.
Every credential the chart would otherwise template from values (metadata connection, PgBouncer's users,
Fernet/API/JWT keys) is a Secret made here from Pulumi secrets and passed by name.

TLS to the database: PgBouncer (server_tls_sslmode, server_tls_ca_file) and the migration Job (PGSSLMODE,
PGSSLROOTCERT) verify it as the data layer says, against the CA at POSTGRES_CA_FILE. That file is the
feature store client's `feast-postgres-ca` ConfigMap, which every Airflow pod already mounts for Feast's
registry (one namespace, one file, like the Kafka package); the chart mounts the global `volumes` into
PgBouncer too (templates/pgbouncer/pgbouncer-deployment.yaml), and the Job mounts the same ConfigMap.

Pod Security: `mlplatform` enforces `restricted`. The chart gives its own Airflow containers the global
`securityContexts`, but StatsD, PgBouncer, PgBouncer's exporter and git-sync read only their own
component's `securityContexts` (templates/_helpers.yaml: localPodSecurityContext,
localContainerSecurityContext, externalContainerSecurityContext) and otherwise render with a bare
runAsUser, so each gets the restricted shape here. `python -m mlplatform render` checks the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components.contracts import (
    Bucket,
    BucketPurpose,
    DatabaseCredentials,
    KafkaEndpoint,
    Namespace,
    PostgresEndpoint,
    ServiceEndpoint,
    WorkloadIdentity,
    WorkloadSpec,
)
from components.guardrails import AIRFLOW_PODS, git_ssh_egress
from components.kube import (
    PART_OF,
    POSTGRES_CA_FILE,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    config_map,
    database_ca_volume,
    database_secret,
    identity_service_account,
    libpq_env,
    opaque_secret,
    pinned_release,
    zone_spread,
)
from components.lifecycle.airflow_oidc import CONFIG_KEY as SIGN_ON_CONFIG_KEY
from components.lifecycle.airflow_oidc import CONFIG_MAP as SIGN_ON_CONFIG_MAP
from components.lifecycle.airflow_oidc import SECRET as SIGN_ON_SECRET
from components.lifecycle.airflow_oidc import merge_signed_on, signed_on_values, webserver_config
from components.lifecycle.deployment import (
    DAG_PACKAGES,
    ModelDeployment,
    config_map_key,
    deployer_rbac,
    deployment_env,
    package_files,
)
from components.lifecycle.feast import ENDPOINT as FEATURE_SERVER
from components.lifecycle.feast import FeastClient, store_file_env
from components.lifecycle.kafka import (
    KAFKA_BOOTSTRAP_KEY,
    KAFKA_CLIENT_CONFIG_MAP,
    credentials_secret,
    granted,
    late_kafka_env,
)
from components.lifecycle.training import TRAINING_CODE_CONFIG_MAP, TRAINING_RUNTIME_ENV, launcher_rbac
from components.placement import Placement
from components.secrets import generated_secret
from components.sign_on import SignOn
from mlplatform.config import AirflowConfig
from mlplatform.pins import AIRFLOW_IMAGE, AIRFLOW_IMAGE_UID, AIRFLOW_PYTHON, ChartPin

RELEASE = "airflow"
POD_LABELS = AIRFLOW_PODS  # on every pod the chart makes (the flow table names them)
assert POD_LABELS["release"] == RELEASE
DAGS_FOLDER = "/opt/airflow/dags"  # the chart's default core.dags_folder
PLATFORM_DAGS_MOUNT = f"{DAGS_FOLDER}/platform"
PGBOUNCER_PORT = 6543  # the chart's ports.pgbouncer
PGBOUNCER_DB = f"{RELEASE}-metadata"  # the alias the chart's pods connect to
UID = AIRFLOW_IMAGE_UID  # the airflow image's user


def airflow_tag(pin: ChartPin) -> str:
    """The Airflow image's tag for the chart's Airflow, on the platform's pinned Python (mlplatform/pins.py)."""
    return f"{pin.app_version}-python{AIRFLOW_PYTHON}"


LOGS_PREFIX = "airflow"


@dataclass(frozen=True)
class AirflowSecrets:
    """Secret names the chart is pointed at; made by Lifecycle from Pulumi secrets."""

    metadata: pulumi.Input[str]  # key: connection
    pgbouncer_config: pulumi.Input[str]  # keys: pgbouncer.ini, users.txt
    pgbouncer_stats: pulumi.Input[str]  # key: connection
    fernet_key: pulumi.Input[str]  # key: fernet-key
    api_secret_key: pulumi.Input[str]  # key: api-secret-key
    jwt_secret: pulumi.Input[str]  # key: jwt-secret


def pgbouncer_ini(host: str, port: int, postgres: PostgresEndpoint, cred: DatabaseCredentials) -> str:
    """PgBouncer's configuration. Its server-side TLS keywords mirror libpq's (PgBouncer docs, "TLS settings":
    server_tls_sslmode takes verify-ca and verify-full, server_tls_ca_file is the root CA to verify with)."""
    verified = [f"server_tls_ca_file = {POSTGRES_CA_FILE}"] if postgres.ca_certificate is not None else []
    return "\n".join(
        [
            "[databases]",
            f"{PGBOUNCER_DB} = host={host} dbname={cred.database} port={int(port)} pool_size=10",
            "",
            "[pgbouncer]",
            "pool_mode = transaction",
            f"listen_port = {PGBOUNCER_PORT}",
            "listen_addr = *",
            "auth_type = scram-sha-256",
            "auth_file = /etc/pgbouncer/users.txt",
            f"stats_users = {cred.username}",
            "ignore_startup_parameters = extra_float_digits",
            "max_client_conn = 200",
            # protocol-level prepared statements through transaction pooling (PgBouncer 1.21+), which
            # asyncpg (Airflow 3's async engine) uses; 0, the default, breaks it
            "max_prepared_statements = 100",
            f"server_tls_sslmode = {postgres.ssl_mode}",
            *verified,
            "server_tls_ciphers = normal",
            "",
        ]
    )


def pgbouncer_files(postgres: PostgresEndpoint, cred: DatabaseCredentials) -> dict[str, pulumi.Output[str]]:
    """pgbouncer.ini and users.txt: clients in the namespace talk to PgBouncer, PgBouncer talks TLS to
    the database, verifying it as the data layer says (`pgbouncer_ini`)."""
    ini = pulumi.Output.all(postgres.host, postgres.port).apply(lambda hp: pgbouncer_ini(hp[0], hp[1], postgres, cred))
    users = cred.password.apply(lambda pw: f'"{cred.username}" "{pw}"\n')
    return {"pgbouncer.ini": ini, "users.txt": users}


def pgbouncer_checksum(files: Mapping[str, pulumi.Output[str]], postgres: PostgresEndpoint) -> pulumi.Output[str]:
    """A hash of what PgBouncer reads only at start: pgbouncer.ini and users.txt (mounted by the chart with
    subPath, so never updated in a running pod) and the database CA (loaded by `sbuf_tls_setup` at start or
    reload, not per connection). As a pod annotation it rolls PgBouncer when any of them changes: the chart's
    own checksums cover only its templated Secrets (templates/pgbouncer/pgbouncer-deployment.yaml), so a
    Cloud SQL CA rotation or a new password would otherwise reach PgBouncer only on a manual restart."""
    ca = postgres.ca_certificate if postgres.ca_certificate is not None else ""
    return pulumi.Output.all(files["pgbouncer.ini"], files["users.txt"], ca).apply(
        lambda parts: hashlib.sha256("\0".join(parts).encode()).hexdigest()
    )


def pgbouncer_connection(cred: DatabaseCredentials, host: str, database: str, query: str = "") -> pulumi.Output[str]:
    return cred.password.apply(
        lambda pw: f"postgresql://{cred.username}:{pw}@{host}:{PGBOUNCER_PORT}/{database}{query}"
    )


def metadata_connection(cred: DatabaseCredentials, namespace: str) -> pulumi.Output[str]:
    """What Airflow's components use: PgBouncer's Service, which pools and forwards over TLS. No `sslmode` in
    the URL: Airflow 3 derives its asyncpg URL from this one, and asyncpg rejects the parameter (TypeError:
    unexpected keyword argument 'sslmode'; apache/airflow#49383); libpq's default, `prefer`, falls back to
    plain text with PgBouncer, which has no TLS listener."""
    return pgbouncer_connection(cred, f"{RELEASE}-pgbouncer.{namespace}", PGBOUNCER_DB)


def stats_connection(cred: DatabaseCredentials) -> pulumi.Output[str]:
    """The exporter sidecar reads PgBouncer's admin console next to it, in plain text: its Go driver (lib/pq)
    would require TLS by default."""
    return pgbouncer_connection(cred, "127.0.0.1", "pgbouncer", "?sslmode=disable")


def _http_conn(endpoint: ServiceEndpoint) -> str:
    return json.dumps({"conn_type": "http", "host": endpoint.host, "port": endpoint.port, "schema": endpoint.scheme})


def platform_env(
    *,
    mlflow: ServiceEndpoint,
    feature_server: ServiceEndpoint,
    ray_dashboard: ServiceEndpoint,
    training_namespace: str,
    training_service_account: str,
    buckets: Mapping[str, pulumi.Output[str]],
) -> list[dict[str, object]]:
    """Airflow connections (AIRFLOW_CONN_*) and variables (AIRFLOW_VAR_*) for the platform's services."""
    kube = {"conn_type": "kubernetes", "extra": {"in_cluster": True, "namespace": training_namespace}}
    env: list[dict[str, object]] = [
        {"name": "AIRFLOW_CONN_MLFLOW_DEFAULT", "value": _http_conn(mlflow)},
        {"name": "AIRFLOW_CONN_FEAST_FEATURE_SERVER", "value": _http_conn(feature_server)},
        {"name": "AIRFLOW_CONN_RAY_DEFAULT", "value": _http_conn(ray_dashboard)},
        {"name": "AIRFLOW_CONN_KUBERNETES_DEFAULT", "value": json.dumps(kube)},
        {"name": "AIRFLOW_VAR_MLFLOW_TRACKING_URI", "value": mlflow.url},
        {"name": "AIRFLOW_VAR_RAY_ADDRESS", "value": ray_dashboard.url},
        {"name": "AIRFLOW_VAR_TRAINING_NAMESPACE", "value": training_namespace},
        {"name": "AIRFLOW_VAR_TRAINING_SERVICE_ACCOUNT", "value": training_service_account},
        # the reference training job's code and runtime_env (components/lifecycle/training.py)
        {"name": "AIRFLOW_VAR_TRAINING_CODE", "value": TRAINING_CODE_CONFIG_MAP},
        {"name": "AIRFLOW_VAR_TRAINING_RUNTIME_ENV", "value": TRAINING_RUNTIME_ENV},
    ]
    env += [{"name": f"AIRFLOW_VAR_{purpose.upper()}_URI", "value": uri} for purpose, uri in sorted(buckets.items())]
    return env


def restricted(uid: int) -> dict[str, dict[str, object]]:
    """A component's own `securityContexts` (pod and container) in Pod Security `restricted` shape."""
    return {"pod": {**RESTRICTED_POD, "runAsUser": uid}, "container": RESTRICTED_CONTAINER}


GIT_SYNC_UID = 65533  # the git-sync image's user (the chart's dags.gitSync.uid)
STATSD_UID = PGBOUNCER_UID = 65534  # the chart's statsd.uid / pgbouncer.uid (nobody)


def dags_values(cfg: AirflowConfig, placement: Placement) -> dict[str, object]:
    """git-sync only for a repository the stack names; otherwise the platform's DAG ConfigMap (see
    dag_volumes) is the only DAG source."""
    if cfg.dags is None:
        return {"persistence": {"enabled": False}, "gitSync": {"enabled": False}}
    return {
        "persistence": {"enabled": False},
        "gitSync": {
            "enabled": True,
            "repo": cfg.dags.repo,
            "branch": cfg.dags.branch,
            "rev": cfg.dags.rev,
            "subPath": cfg.dags.sub_path,
            "depth": 1,
            "period": "60s",
            "securityContexts": {"container": {**RESTRICTED_CONTAINER, "runAsUser": GIT_SYNC_UID}},
            # a shallow clone and a poll loop: little CPU, memory for the working copy's index
            "resources": placement.resources("10m", "64Mi", "256Mi"),
        },
    }


PLATFORM_DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


# The kubelet mounts a ConfigMap as `..data` -> `..<timestamp>/` with each key a link through `..data`
# (kubernetes pkg/volume/util/atomic_writer.go). Airflow 3.1.7 walks the DAGs folder following links and
# stops the DAG processor with "Detected recursive loop when walking DAG directory" when it reaches the
# same directory twice (airflow/utils/file.py _find_path_from_directory), which those two are. This
# .airflowignore (glob syntax, Airflow 3's default `core.dag_ignore_file_syntax`) keeps the walk out of
# both; the DAG files themselves are reached through their links in the mount's top directory.
KUBELET_DIRS_IGNORE = "# the kubelet's ConfigMap volume internals (..data and ..<timestamp>)\n..*\n"
# the packages shipped beside the DAGs (components/lifecycle/deployment.py DAG_PACKAGES) are imported by
# them, not DAG files: the walk skips them (a module with relative imports fails when parsed on its own)
PACKAGES_IGNORE = "".join(f"{d.name}/\n" for d, _ in DAG_PACKAGES)


def platform_dag_paths() -> dict[str, str]:
    """Every file of the platform's DAG folder by its path there: the reference DAGs (dags/*.py), the
    packages they import, and the ignore file the mount needs."""
    files = {p.name: p.read_text() for p in sorted(PLATFORM_DAGS_DIR.glob("*.py"))}
    return files | package_files() | {".airflowignore": KUBELET_DIRS_IGNORE + PACKAGES_IGNORE}


def platform_dag_files() -> dict[str, str]:
    """platform_dag_paths as ConfigMap data (flat keys; dag_volumes' items put each back at its path)."""
    return {config_map_key(path): text for path, text in platform_dag_paths().items()}


def dag_volumes(config_map: pulumi.Input[str] | None) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The platform's reference DAGs (a ConfigMap built from dags/) mounted read-only under the DAGs folder
    of every Airflow component and task pod, each key at its path; nothing when the stack syncs its own
    repository."""
    if config_map is None:
        return [], []
    items = [{"key": config_map_key(path), "path": path} for path in platform_dag_paths()]
    volume = {"name": "platform-dags", "configMap": {"name": config_map, "items": items}}
    return [volume], [{"name": "platform-dags", "mountPath": PLATFORM_DAGS_MOUNT, "readOnly": True}]


# SQLAlchemy's psycopg2 URL with no host, user or database: libpq takes all of them (and the TLS mode) from
# the PG* variables (libpq "Environment Variables"), so the connection string holds no secret
LIBPQ_CONNECTION = "postgresql+psycopg2://"
# users, roles and the UI's login (the chart's config.core.auth_manager default, values.yaml)
AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def migration_job_spec(
    database_secret: pulumi.Input[str],
    postgres: PostgresEndpoint,
    placement: Placement,
    ca_config_map: pulumi.Input[str] | None = None,
) -> dict[str, object]:
    """One `airflow db migrate` in the pinned Airflow image (its entrypoint, as the chart's Job runs it),
    straight to PostgreSQL over TLS with the `airflow-postgres` Secret's libpq variables and the endpoint's
    TLS settings, the CA mounted."""
    volumes, mounts = database_ca_volume(ca_config_map)
    return {
        "backoffLimit": 6,
        "activeDeadlineSeconds": 900,
        "template": {
            "metadata": {"labels": {**PART_OF, "app.kubernetes.io/name": "airflow-db-migrate"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "nodeSelector": placement.node_selector,
                "tolerations": placement.tolerations,
                "securityContext": {**RESTRICTED_POD, "runAsUser": UID},
                "containers": [
                    {
                        "name": "migrate",
                        "image": AIRFLOW_IMAGE,
                        "args": ["airflow", "db", "migrate"],
                        "env": [
                            *libpq_env(database_secret, postgres),
                            {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "value": LIBPQ_CONNECTION},
                            # the components' auth manager: `db migrate` creates its tables (FAB's) only
                            # when it is configured (airflow 3.1.7 utils/db_manager.py RunDBManager), and the
                            # components' wait-for-migrations check requires them (utils/db.py)
                            {"name": "AIRFLOW__CORE__AUTH_MANAGER", "value": AUTH_MANAGER},
                        ],
                        # `airflow db migrate` imports Airflow and its providers: ~400 MiB resident
                        "resources": placement.resources("250m", "512Mi", "1Gi"),
                        "securityContext": RESTRICTED_CONTAINER,
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": volumes,
            },
        },
    }


def airflow_values(
    *,
    pin: ChartPin,
    cfg: AirflowConfig,
    secrets: AirflowSecrets,
    service_account: pulumi.Input[str],
    logs: Bucket,
    env: list[dict[str, object]],
    secret_env: list[dict[str, object]],
    volumes: tuple[list[dict[str, object]], list[dict[str, object]]],
    placement: Placement,
    pgbouncer_checksum: pulumi.Input[str] = "",
    signed_on: dict[str, dict[str, object]] | None = None,
) -> dict[str, object]:
    replicas = cfg.replicas
    sa = {"create": False, "name": service_account}
    # The chart's `env` renders only `value` (templates/_helpers.yaml custom_airflow_environment); variables
    # read from a ConfigMap or Secret go to `extraEnv`, copied as written into every Airflow container and
    # the KubernetesExecutor's pod template
    plain_env = [e for e in env if "valueFrom" not in e]
    referenced_env = [e for e in env if "valueFrom" in e]
    # the groomer sidecar is a shell loop that deletes old local log files every 15 minutes
    groomer = {"logGroomerSidecar": {"resources": placement.resources("10m", "32Mi", "128Mi")}}

    def component(name: str, count: int, **extra: object) -> dict[str, object]:
        spread = zone_spread({"tier": "airflow", "component": name, "release": RELEASE})
        return {
            "replicas": count,
            "serviceAccount": sa,
            "topologySpreadConstraints": spread if placement.spread else [],
            # a drain keeps one replica running (the HA table: a budget for every replicated workload)
            "podDisruptionBudget": {"enabled": count > 1, "config": {"maxUnavailable": 1}},
            **extra,
        }

    values: dict[str, object] = {
        "airflowVersion": pin.app_version,
        "defaultAirflowTag": airflow_tag(pin),
        "executor": "KubernetesExecutor",
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "securityContexts": {
            "pod": {**RESTRICTED_POD, "runAsUser": UID, "runAsGroup": 0, "fsGroup": 0},
            "containers": RESTRICTED_CONTAINER,
        },
        # the metadata database is the platform's PostgreSQL; no in-chart PostgreSQL or Redis (no Celery)
        "postgresql": {"enabled": False},
        "redis": {"enabled": False},
        "data": {
            "metadataSecretName": secrets.metadata,
            # Naming an existing Secret stops the chart from creating `airflow-broker-url` (a Celery broker
            # URL that renders as "%!s(<nil>)" without Redis). Its only reader, AIRFLOW__CELERY__BROKER_URL,
            # is set for the Celery executors only (templates/_helpers.yaml), never under KubernetesExecutor.
            "brokerUrlSecretName": secrets.metadata,
        },
        "pgbouncer": {
            "enabled": True,
            "replicas": 2 if placement.spread else 1,
            "topologySpreadConstraints": (
                zone_spread({"tier": "airflow", "component": "pgbouncer", "release": RELEASE})
                if placement.spread
                else []
            ),
            "podDisruptionBudget": {"enabled": placement.spread, "config": {"maxUnavailable": 1}},
            "configSecretName": secrets.pgbouncer_config,
            # a new config, password or database CA rolls the pods (pgbouncer_checksum)
            "podAnnotations": {"checksum/pgbouncer-config": pgbouncer_checksum},
            "securityContexts": restricted(PGBOUNCER_UID),
            "metricsExporterSidecar": {
                "statsSecretName": secrets.pgbouncer_stats,
                "statsSecretKey": "connection",
                "securityContexts": {"container": RESTRICTED_CONTAINER},
                # one scrape of the admin console every 30 s
                "resources": placement.resources("10m", "32Mi", "64Mi"),
            },
            "serviceAccount": {"create": True},
            "resources": placement.resources("100m", "128Mi", "256Mi", small=("20m", "64Mi")),
        },
        # StatsD -> Prometheus bridge for Airflow's metrics: a small Go exporter
        "statsd": {
            "securityContexts": restricted(STATSD_UID),
            "resources": placement.resources("50m", "64Mi", "256Mi", small=("10m", "32Mi")),
        },
        "fernetKeySecretName": secrets.fernet_key,
        "apiSecretKeySecretName": secrets.api_secret_key,
        "jwtSecretName": secrets.jwt_secret,
        # the chart's default admin user has the password "admin" in values: never. Users come from the
        # auth manager (FAB) set up by the operator, not from Helm values.
        "createUserJob": {"enabled": False, "serviceAccount": {"create": False}},
        # the program's Job migrates before the release (migration_job_spec)
        "migrateDatabaseJob": {"enabled": False},
        # active/standby per the HA table: both schedulers run; row locks in PostgreSQL keep them apart
        "scheduler": component(
            "scheduler",
            replicas,
            resources=placement.resources("500m", "1Gi", "2Gi", small=("100m", "384Mi")),
            **groomer,
        ),
        "apiServer": component(
            "api-server", replicas, resources=placement.resources("250m", "1Gi", "2Gi", small=("100m", "384Mi"))
        ),
        "triggerer": component(
            "triggerer",
            replicas,
            persistence={"enabled": False},
            resources=placement.resources("100m", "512Mi", "1Gi", small=("50m", "192Mi")),
            **groomer,
        ),
        "dagProcessor": component(
            "dag-processor",
            1,
            enabled=True,
            resources=placement.resources("250m", "1Gi", "2Gi", small=("50m", "256Mi")),
            **groomer,
        ),
        # KubernetesExecutor task pods (the pod template's `base` container): one Airflow task process
        "workers": {"serviceAccount": sa, "resources": placement.resources("250m", "512Mi", "2Gi")},
        "dags": dags_values(cfg, placement),
        "logs": {"persistence": {"enabled": False}},
        "config": {
            # the chart's default, set here so the migration Job and the components agree (AUTH_MANAGER)
            "core": {"load_examples": "False", "auth_manager": AUTH_MANAGER},
            # task logs go to the logs bucket when a task ends; the handler follows the URI's scheme (s3 or
            # gs) and, with no connection id, authenticates as the pod's workload identity
            "logging": {
                "remote_logging": "True",
                "remote_base_log_folder": pulumi.Output.concat(logs.uri, f"/{LOGS_PREFIX}"),
                "delete_local_logs": "True",
            },
        },
        "env": plain_env,
        **({"extraEnv": yaml.safe_dump(referenced_env, sort_keys=False)} if referenced_env else {}),
        "secret": secret_env,
        "volumes": volumes[0],
        "volumeMounts": volumes[1],
    }
    # with a domain: the API server signs people in with the OIDC provider (components/lifecycle/airflow_oidc.py)
    return merge_signed_on(values, signed_on)


@dataclass(frozen=True)
class AirflowArgs:
    namespace: k8s.core.v1.Namespace  # mlplatform
    training_namespace: k8s.core.v1.Namespace  # where its tasks launch Pods, Jobs and RayJobs
    identity: WorkloadIdentity
    postgres: PostgresEndpoint
    kafka: KafkaEndpoint | None
    buckets: Mapping[BucketPurpose, Bucket]
    feature_store: FeastClient  # in the platform namespace, from Feast
    mlflow: ServiceEndpoint
    ray_dashboard: ServiceEndpoint
    training_account: WorkloadSpec
    pin: ChartPin
    config: AirflowConfig
    placement: Placement
    provider: k8s.Provider
    # the training flow's variables (the feature step's pod, the Ray job's GPUs): Training's airflow_env
    training_env: tuple[dict[str, object], ...] = ()
    # the deployment DAG's variables and its rights in model-serving (none without KServe)
    deployment: ModelDeployment | None = None
    # Airflow's own OIDC login, when the stack exposes its UIs (components/lifecycle/airflow_oidc.py)
    sign_on: SignOn | None = None


@dataclass(frozen=True)
class AirflowOutputs:
    service_account: k8s.core.v1.ServiceAccount
    database_secret: k8s.core.v1.Secret


class Airflow(pulumi.ComponentResource):
    """The scheduler, API server, triggerer and DAG processor with their Secrets, the platform's DAGs, the
    launch rights in `training` and the release."""

    outputs: AirflowOutputs

    def __init__(self, name: str, args: AirflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Airflow", name, None, opts)
        ns, pg, cfg = args.namespace, args.postgres, args.config
        account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
        db = database_secret(self, f"{name}-db-secret", ns, pg, "airflow")
        self.outputs = AirflowOutputs(account, db)
        self.register_outputs({"serviceAccount": account.metadata.name})
        if not cfg.enabled:
            return
        pgbouncer = pgbouncer_files(pg, pg.databases["airflow"])
        made = self._secrets(name, ns, pg, pgbouncer)
        launcher_rbac(self, f"{name}-launcher", args.training_namespace, account)
        if cfg.dags is not None and cfg.dags.over_ssh:
            git_ssh_egress(self, f"{name}-git-ssh", ns, POD_LABELS)
        dags = (
            [config_map(self, f"{name}-platform-dags", "airflow-platform-dags", ns, platform_dag_files())]
            if cfg.dags is None
            else []
        )
        store = args.feature_store
        env = platform_env(
            mlflow=args.mlflow,
            feature_server=FEATURE_SERVER,
            ray_dashboard=args.ray_dashboard,
            training_namespace=args.training_account.namespace.value,
            training_service_account=args.training_account.service_account,
            buckets={p.value: b.uri for p, b in args.buckets.items()},
        )
        # DAG tasks use Feast (point-in-time features) with the platform's YAML, and Kafka with their grant:
        # the YAML as the mounted file FeatureStore() reads (FEAST_FS_YAML_FILE_PATH; store.volumes() below)
        env += [store_file_env(), *args.training_env]
        if args.deployment is not None:
            env += deployment_env(args.deployment)
            deployer_rbac(self, f"{name}-deployer", args.deployment.serving_namespace, account)
        # the release does not wait for Kafka (its task pods, started later, read the brokers from here); the
        # token callbacks' package is mounted from the feature store client's volumes (same namespace)
        kafka = granted(args.identity.spec, args.kafka)
        env += late_kafka_env(kafka)
        # task logs (the S3 handler's hook, with no connection, builds boto3's default client) and DAG tasks reach
        # the local store with the airflow identity's key and endpoint; nothing on AWS and GCP
        env += args.identity.env
        if kafka is not None:
            brokers = {KAFKA_BOOTSTRAP_KEY: kafka.bootstrap_servers}
            config_map(self, f"{name}-kafka-client", KAFKA_CLIENT_CONFIG_MAP, ns, brokers)
            credentials_secret(self, f"{name}-kafka-credentials", kafka, ns)  # SCRAM: Airflow's own password
        migration = k8s.batch.v1.Job(
            f"{name}-db-migrate",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=ns.metadata.name, labels=PART_OF),
            # the CA is the feature store client's, which every Airflow pod mounts (module docstring)
            spec=migration_job_spec(db.metadata.name, pg, args.placement, store.postgres_ca_config_map),
            # Pulumi waits for the Job to complete; a new Airflow version or env is a new Job (auto-named)
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*pg.ready, db, *store.ready]),
        )
        signed_on, sign_on_objects = self._sign_on(name, ns, args.sign_on) if args.sign_on else (None, [])
        ca_volumes, ca_mounts = store.volumes()
        dag_vols, dag_mounts = dag_volumes(dags[0].metadata.name if dags else None)
        pinned_release(
            self,
            name,
            args.pin,
            ns.metadata.name,
            airflow_values(
                pin=args.pin,
                cfg=cfg,
                secrets=AirflowSecrets(**{field: secret.metadata.name for field, secret in made.items()}),
                service_account=account.metadata.name,
                logs=args.buckets[BucketPurpose.LOGS],
                env=env,
                secret_env=store.secrets.airflow_secret_env(),
                volumes=(ca_volumes + dag_vols, ca_mounts + dag_mounts),
                placement=args.placement,
                pgbouncer_checksum=pgbouncer_checksum(pgbouncer, pg),
                signed_on=signed_on,
            ),
            args.provider,
            release_name=RELEASE,
            # Five Deployments on the CPU pool, which may start at zero nodes: ~3 min for a node, ~2 min to
            # pull the Airflow image (~1 GiB), then the components' readiness; 15 min leaves room for a slow
            # pull.
            timeout_seconds=900,
            depends_on=[*pg.ready, *made.values(), *store.ready, *dags, *sign_on_objects, account, migration],
        )

    def _sign_on(
        self, name: str, ns: k8s.core.v1.Namespace, sign_on: SignOn
    ) -> tuple[dict[str, dict[str, object]], list[pulumi.Resource]]:
        """The API server's OIDC login: its webserver_config.py ConfigMap and the client Secret, and the values
        that mount and read them (components/lifecycle/airflow_oidc.py)."""
        text = webserver_config(sign_on)
        config = config_map(self, f"{name}-sign-on", SIGN_ON_CONFIG_MAP, ns, {SIGN_ON_CONFIG_KEY: text})
        secret = sign_on.client_secret(self, f"{name}-sso", ns, SIGN_ON_SECRET)
        return signed_on_values(sign_on, SIGN_ON_CONFIG_MAP, text), [config, secret]

    def _secrets(
        self,
        name: str,
        ns: k8s.core.v1.Namespace,
        pg: PostgresEndpoint,
        pgbouncer: Mapping[str, pulumi.Output[str]],
    ) -> dict[str, k8s.core.v1.Secret]:
        """Everything the chart would otherwise template from values, made here from Pulumi secrets."""
        cred = pg.databases["airflow"]
        fernet = random.RandomId(f"{name}-fernet", byte_length=32, opts=pulumi.ResourceOptions(parent=self))
        namespace = Namespace.PLATFORM.value

        def secret(purpose: str, data: Mapping[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
            return opaque_secret(self, f"{name}-{purpose}", f"{RELEASE}-{purpose}", ns, data)

        return {
            "metadata": secret("metadata", {"connection": metadata_connection(cred, namespace)}),
            "pgbouncer_config": secret("pgbouncer-config", pgbouncer),
            "pgbouncer_stats": secret("pgbouncer-stats", {"connection": stats_connection(cred)}),
            "fernet_key": secret("fernet-key", {"fernet-key": fernet.b64_std}),
            "api_secret_key": secret("api-secret-key", {"api-secret-key": generated_secret(self, f"{name}-api")}),
            "jwt_secret": secret("jwt-secret", {"jwt-secret": generated_secret(self, f"{name}-jwt")}),
        }
