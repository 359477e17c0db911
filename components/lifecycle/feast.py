"""Feast: a feature_store.yaml generated from the data and storage layers' typed outputs, the online
feature server (chart), and scheduled materialization into the online store.

Secrets never enter the YAML: Feast expands ${VAR} in feature_store.yaml from the environment, and those
variables come from Secrets by reference. helm.v4.Chart, deliberately: the chart is one Deployment and
one Service, with no hooks and no CRDs, so the preview can diff each object.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.contracts import (
    Bucket,
    KafkaEndpoint,
    Namespace,
    PostgresEndpoint,
    RedisEndpoint,
    ServiceEndpoint,
    WorkloadIdentity,
)
from components.guardrails import flow
from components.kube import (
    PART_OF,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    config_map,
    database_secret,
    identity_service_account,
    opaque_secret,
    periodic_job_spec,
    spread_affinity,
)
from components.placement import Placement, replicated_chart
from mlplatform.config import ServiceConfig
from mlplatform.pins import ChartPin

FLOW = flow("feature-server")
ONLINE_PORT = 6566  # the chart hard-codes this containerPort for feast_mode "online"
if FLOW.port != ONLINE_PORT:
    raise AssertionError(f"flow {FLOW.name} admits port {FLOW.port}, the feature server listens on {ONLINE_PORT}")
ENDPOINT = ServiceEndpoint(FLOW.app, Namespace.PLATFORM, 80)
PROJECT = "mlplatform"
STAGING_PREFIX = "feast/staging"  # offline retrieval results, under the datasets bucket
REDIS_CA_DIR = "/etc/feast/redis-ca"
# Secret-backed environment the YAML refers to; the Secret names and keys are set in Lifecycle.
REGISTRY_USER_ENV, REGISTRY_PASSWORD_ENV, REDIS_PASSWORD_ENV = (
    "FEAST_REGISTRY_USER",
    "FEAST_REGISTRY_PASSWORD",
    "FEAST_REDIS_PASSWORD",
)
UID = 10001  # the feature-server image declares no user; any non-root UID works with HOME on /tmp


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


def feature_store_yaml(postgres: PostgresEndpoint, redis: RedisEndpoint, datasets: Bucket) -> pulumi.Output[str]:
    """The feature_store.yaml every Feast client in the platform uses (server, materialization, Airflow)."""
    database = postgres.databases["feast"].database

    def render(pg_host: str, pg_port: int, redis_host: str, redis_port: int, datasets_uri: str) -> str:
        registry_url = (
            f"postgresql+psycopg://${{{REGISTRY_USER_ENV}}}:${{{REGISTRY_PASSWORD_ENV}}}"
            f"@{pg_host}:{int(pg_port)}/{database}?sslmode={postgres.ssl_mode}"
        )
        options = [f"{redis_host}:{int(redis_port)}", f"password=${{{REDIS_PASSWORD_ENV}}}"]
        if redis.tls:
            options.append("ssl=true")
        if redis.ca_certificate is not None:
            options.append(f"ssl_ca_certs={REDIS_CA_DIR}/ca.crt")
        doc = {
            "project": PROJECT,
            "provider": "local",
            "entity_key_serialization_version": 3,
            "registry": {"registry_type": "sql", "path": registry_url, "cache_ttl_seconds": 60},
            "online_store": {
                "type": "redis",
                "redis_type": "redis_cluster" if redis.cluster_mode else "redis",
                "connection_string": ",".join(options),
            },
            "offline_store": {"type": "duckdb", "staging_location": f"{datasets_uri}/{STAGING_PREFIX}"},
        }
        return yaml.safe_dump(doc, sort_keys=False)

    return pulumi.Output.all(postgres.host, postgres.port, redis.host, redis.port, datasets.uri).apply(
        lambda a: render(*a)
    )


def kafka_env(kafka: KafkaEndpoint | None) -> list[dict[str, object]]:
    """Stream and push sources in the feature repository read the brokers from here."""
    if kafka is None:
        return []
    env = [
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": kafka.bootstrap_servers},
        {"name": "KAFKA_SECURITY_PROTOCOL", "value": kafka.security_protocol},
    ]
    if kafka.sasl_mechanism:
        env.append({"name": "KAFKA_SASL_MECHANISM", "value": kafka.sasl_mechanism})
    return env


KAFKA_CLIENT_CONFIG_MAP, KAFKA_BOOTSTRAP_KEY = "kafka-client", "bootstrap-servers"


def late_kafka_env(kafka: KafkaEndpoint | None) -> list[dict[str, object]]:
    """kafka_env for long-lived releases that must not wait for the brokers (MSK and Managed Kafka take
    25-30 minutes to create): the broker list comes from the `kafka-client` ConfigMap, which is made once
    Kafka exists, and is optional, so the release's pods start without it. Pods started after it exists,
    such as Airflow's task pods, get the brokers."""
    if kafka is None:
        return []
    ref = {"name": KAFKA_CLIENT_CONFIG_MAP, "key": KAFKA_BOOTSTRAP_KEY, "optional": True}
    return [
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "valueFrom": {"configMapKeyRef": ref}},
        *(e for e in kafka_env(kafka) if e["name"] != "KAFKA_BOOTSTRAP_SERVERS"),
    ]


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


def _volumes(ca_config_map: pulumi.Input[str] | None) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    ca_volumes, ca_mounts = ca_volume(ca_config_map)
    return [{"name": "tmp", "emptyDir": {}}, *ca_volumes], [{"name": "tmp", "mountPath": "/tmp"}, *ca_mounts]


def feature_server_values(
    *, pin: ChartPin, replicas: int, client: FeastClient, service_account: pulumi.Input[str], placement: Placement
) -> dict[str, object]:
    volumes, mounts = _volumes(client.ca_config_map)
    return {
        "nameOverride": FLOW.app,
        "fullnameOverride": ENDPOINT.name,
        "replicaCount": replicas,
        "image": {"tag": pin.app_version},
        "feast_mode": "online",
        # `--metrics`: request counts and latencies on :8000 (the chart adds the Service port), scraped by
        # Prometheus through a ServiceMonitor
        "metrics": {"enabled": True},
        "feature_store_yaml_base64": encoded(client.store_yaml),
        "serviceAccount": {"name": service_account},
        "service": {"port": ENDPOINT.port},
        "podSecurityContext": {**RESTRICTED_POD, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "extraEnvs": client.chart_env(),
        "volumes": volumes,
        "volumeMounts": mounts,
        "resources": placement.resources("500m", "1Gi", "2Gi"),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "affinity": spread_affinity(FLOW.app) if placement.spread else {},
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
) -> k8s.batch.v1.CronJob:
    """Hourly `feast materialize-incremental` into the online store, with the feature server's image and
    configuration. Forbid: a slow run is never overlapped by the next one."""
    volumes, mounts = _volumes(client.ca_config_map)
    script = 'exec feast materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"'
    container = {
        "name": "materialize",
        "image": f"quay.io/feastdev/feature-server:{pin.app_version}",
        "command": ["/bin/sh", "-c", script],
        "env": client.env(),
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "resources": placement.resources("500m", "1Gi", "4Gi"),
        "volumeMounts": mounts,
    }
    pod = {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "securityContext": {**RESTRICTED_POD, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "containers": [container],
        "volumes": volumes,
    }
    return k8s.batch.v1.CronJob(
        f"{name}-materialize",
        metadata={"name": "feast-materialize", "namespace": namespace, "labels": PART_OF},
        # hourly; a run that has not finished within 55 minutes is stopped before the next one
        spec=periodic_job_spec("0 * * * *", "feast-materialize", pod, deadline_seconds=3300),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
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
    ${VARS} come from, the Redis CA (when private) and the Kafka settings, plus what must exist first."""

    store_yaml: pulumi.Output[str]
    secrets: FeastSecrets
    ca_config_map: pulumi.Output[str] | None
    kafka: KafkaEndpoint | None
    ready: tuple[pulumi.Resource, ...]

    def env(self) -> list[dict[str, object]]:
        """The YAML as base64 plus its variables: for containers that do not take the chart's YAML value."""
        return [{"name": "FEATURE_STORE_YAML_BASE64", "value": encoded(self.store_yaml)}, *self.chart_env()]

    def chart_env(self) -> list[dict[str, object]]:
        return feast_env(self.secrets, self.kafka)

    def volumes(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        return ca_volume(self.ca_config_map)


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
    return FeastClient(
        store_yaml=source.store_yaml,
        secrets=FeastSecrets(database=db.metadata.name, redis=redis_secret.metadata.name),
        ca_config_map=ca.metadata.name if ca is not None else None,
        kafka=source.kafka,
        ready=(db, redis_secret, *([ca] if ca is not None else [])),
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
    config: ServiceConfig
    placement: Placement
    provider: k8s.Provider


@dataclass(frozen=True)
class FeastOutputs:
    endpoint: ServiceEndpoint
    service_account: k8s.core.v1.ServiceAccount
    client: FeastClient  # the feature store for clients in the platform namespace (Airflow's tasks)
    source: FeatureStoreSource  # for clients in other namespaces (Ray in training), which make their own


class Feast(pulumi.ComponentResource):
    """The feature store's configuration and Secrets, the online feature server and its hourly
    materialization."""

    outputs: FeastOutputs

    def __init__(self, name: str, args: FeastArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Feast", name, None, opts)
        ns, placement = args.namespace, args.placement
        account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
        source = FeatureStoreSource(
            feature_store_yaml(args.postgres, args.redis, args.datasets), args.postgres, args.redis, args.kafka
        )
        client = feast_client(self, name, ns, source)
        depends = [*args.postgres.ready, *client.ready, account]
        if args.config.enabled:
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
                ),
                replicas=args.config.replicas,
                provider=args.provider,
                depends_on=depends,
            )
            materialization(
                self,
                name,
                pin=args.pin,
                namespace=ns.metadata.name,
                client=client,
                service_account=account.metadata.name,
                placement=placement,
                depends_on=depends,
            )
        self.outputs = FeastOutputs(ENDPOINT, account, client, source)
        self.register_outputs({"featureServerUrl": ENDPOINT.url})
