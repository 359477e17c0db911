"""Airflow 3 (official chart): KubernetesExecutor, metadata on the platform PostgreSQL through PgBouncer,
DAGs from git-sync, task logs in the logs bucket through the `airflow` workload identity, and the
platform's endpoints provided as Airflow connections and variables.

helm.v3.Release, deliberately: the chart runs its database migration as a Helm hook, which helm.v4.Chart
would skip. Every credential the chart would otherwise template from values (metadata connection,
PgBouncer's users, Fernet/API/JWT keys) is a Secret made here from Pulumi secrets and passed by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.charts import ChartPin
from components.contracts import Bucket, DatabaseCredentials, PostgresEndpoint, ServiceEndpoint
from components.kube import RESTRICTED_CONTAINER, RESTRICTED_POD, zone_spread
from components.lifecycle.placement import Placement
from mlplatform.config import AirflowConfig

RELEASE = "airflow"
PGBOUNCER_PORT = 6543  # the chart's ports.pgbouncer
PGBOUNCER_DB = f"{RELEASE}-metadata"  # the alias the chart's pods connect to
UID = 50000  # the airflow image's user
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


def pgbouncer_files(postgres: PostgresEndpoint, cred: DatabaseCredentials) -> dict[str, pulumi.Output[str]]:
    """pgbouncer.ini and users.txt: clients in the namespace talk to PgBouncer, PgBouncer talks TLS to
    the database (server_tls_sslmode from the endpoint)."""
    ini = pulumi.Output.all(postgres.host, postgres.port).apply(
        lambda hp: "\n".join(
            [
                "[databases]",
                f"{PGBOUNCER_DB} = host={hp[0]} dbname={cred.database} port={int(hp[1])} pool_size=10",
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
                f"server_tls_sslmode = {postgres.ssl_mode}",
                "server_tls_ciphers = normal",
                "",
            ]
        )
    )
    users = cred.password.apply(lambda pw: f'"{cred.username}" "{pw}"\n')
    return {"pgbouncer.ini": ini, "users.txt": users}


def pgbouncer_connection(cred: DatabaseCredentials, host: str, database: str) -> pulumi.Output[str]:
    return cred.password.apply(
        lambda pw: f"postgresql://{cred.username}:{pw}@{host}:{PGBOUNCER_PORT}/{database}?sslmode=disable"
    )


def metadata_connection(cred: DatabaseCredentials, namespace: str) -> pulumi.Output[str]:
    """What Airflow's components use: PgBouncer's Service, which pools and forwards over TLS."""
    return pgbouncer_connection(cred, f"{RELEASE}-pgbouncer.{namespace}", PGBOUNCER_DB)


def stats_connection(cred: DatabaseCredentials) -> pulumi.Output[str]:
    """The exporter sidecar reads PgBouncer's admin console next to it."""
    return pgbouncer_connection(cred, "127.0.0.1", "pgbouncer")


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
    ]
    env += [{"name": f"AIRFLOW_VAR_{purpose.upper()}_URI", "value": uri} for purpose, uri in sorted(buckets.items())]
    return env


def dags_values(cfg: AirflowConfig) -> dict[str, object]:
    if cfg.dags is None:
        return {"persistence": {"enabled": False}, "gitSync": {"enabled": False}}
    return {
        "persistence": {"enabled": False},
        "gitSync": {
            "enabled": True,
            "repo": cfg.dags.repo,
            "branch": cfg.dags.branch,
            "rev": "HEAD",
            "subPath": cfg.dags.sub_path,
            "depth": 1,
            "period": "60s",
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
) -> dict[str, object]:
    replicas = cfg.replicas
    sa = {"create": False, "name": service_account}

    def component(name: str, count: int, **extra: object) -> dict[str, object]:
        spread = zone_spread({"tier": "airflow", "component": name, "release": RELEASE})
        return {
            "replicas": count,
            "serviceAccount": sa,
            "topologySpreadConstraints": spread if placement.spread else [],
            **extra,
        }

    return {
        "airflowVersion": pin.app_version,
        "defaultAirflowTag": pin.app_version,
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
        "data": {"metadataSecretName": secrets.metadata},
        "pgbouncer": {
            "enabled": True,
            "replicas": 2 if placement.spread else 1,
            "configSecretName": secrets.pgbouncer_config,
            "metricsExporterSidecar": {"statsSecretName": secrets.pgbouncer_stats, "statsSecretKey": "connection"},
            "serviceAccount": {"create": True},
            "resources": placement.resources("100m", "128Mi", "256Mi"),
        },
        "fernetKeySecretName": secrets.fernet_key,
        "apiSecretKeySecretName": secrets.api_secret_key,
        "jwtSecretName": secrets.jwt_secret,
        # the chart's default admin user has the password "admin" in values: never. Users come from the
        # auth manager (FAB) set up by the operator, not from Helm values.
        "createUserJob": {"enabled": False},
        "migrateDatabaseJob": {"enabled": True, "serviceAccount": sa},
        # active/standby per the HA table: both schedulers run; row locks in PostgreSQL keep them apart
        "scheduler": component("scheduler", replicas, resources=placement.resources("500m", "1Gi", "2Gi")),
        "apiServer": component("api-server", replicas, resources=placement.resources("250m", "1Gi", "2Gi")),
        "triggerer": component(
            "triggerer", replicas, persistence={"enabled": False}, resources=placement.resources("100m", "512Mi", "1Gi")
        ),
        "dagProcessor": component(
            "dag-processor", 1, enabled=True, resources=placement.resources("250m", "1Gi", "2Gi")
        ),
        "workers": {"serviceAccount": sa},
        "dags": dags_values(cfg),
        "logs": {"persistence": {"enabled": False}},
        "config": {
            "core": {"load_examples": "False"},
            # task logs go to the logs bucket when a task ends; the handler follows the URI's scheme (s3 or
            # gs) and, with no connection id, authenticates as the pod's workload identity
            "logging": {
                "remote_logging": "True",
                "remote_base_log_folder": pulumi.Output.concat(logs.uri, f"/{LOGS_PREFIX}"),
                "delete_local_logs": "True",
            },
        },
        "env": env,
        "secret": secret_env,
        "volumes": volumes[0],
        "volumeMounts": volumes[1],
    }
