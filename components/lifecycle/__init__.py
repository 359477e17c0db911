"""Lifecycle and orchestration layer: MLflow, Feast, Airflow, KubeRay and training Jobs.

Consumes only typed outputs of the infra layers; contains no cloud-specific branching. Each service gets
its database Secret, its identity-bound service account and its endpoints from here, so a chart is never
told a name that another part of the program spells differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import workloads
from components.contracts import BucketPurpose, ClusterOutputs, DataOutputs, Namespace, ServiceEndpoint, StorageOutputs
from components.data.credentials import generated_secret
from components.guardrails import git_ssh_egress, training_limits
from components.kube import PART_OF, identity_service_account, namespace, opaque_secret, pinned_release
from components.lifecycle import airflow, feast, mlflow, ray
from components.lifecycle.placement import Placement, replicated_chart
from components.lifecycle.training import airflow_launcher_rbac
from mlplatform.chartkeys import supported_versions
from mlplatform.config import ServicesConfig
from mlplatform.pins import SERVICE_CHARTS, ChartPin, pin_at


@dataclass(frozen=True)
class LifecycleArgs:
    cluster: ClusterOutputs
    storage: StorageOutputs
    data: DataOutputs
    services: ServicesConfig
    multi_zone: bool = False  # ha: multi-zone spreads replicas across zones


@dataclass(frozen=True)
class LifecycleOutputs:
    platform_namespace: pulumi.Output[str]
    training_namespace: pulumi.Output[str]
    service_accounts: dict[str, k8s.core.v1.ServiceAccount]
    database_secrets: dict[str, k8s.core.v1.Secret]
    mlflow: ServiceEndpoint  # .url is the tracking URI
    feature_server: ServiceEndpoint
    ray_dashboard: ServiceEndpoint
    feature_store_yaml: pulumi.Output[str]


def _pin(services: ServicesConfig, service: str) -> ChartPin:
    """The service's chart at the version its config selected (config guarantees a snapshot exists)."""
    pin = SERVICE_CHARTS[service]
    version = getattr(services, service).version
    return pin_at(pin, version, supported_versions(pin.chart)[version])


class Lifecycle(pulumi.ComponentResource):
    outputs: LifecycleOutputs

    def __init__(self, name: str, args: LifecycleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Lifecycle", name, None, opts)
        provider = args.cluster.kubernetes_provider
        svc = args.services
        placement = Placement(args.cluster.cpu_pool, spread=args.multi_zone)
        data_cidrs = args.data.service_cidrs
        platform_ns = namespace(self, Namespace.PLATFORM, args.cluster, data_cidrs)
        training_ns = namespace(self, Namespace.TRAINING, args.cluster, data_cidrs)
        training_limits(self, training_ns, args.cluster.gpu_pools)
        ns_for = {Namespace.PLATFORM: platform_ns, Namespace.TRAINING: training_ns}
        specs = (workloads.MLFLOW, workloads.FEAST, workloads.AIRFLOW, workloads.RAY, workloads.TRAINING)
        accounts = {
            spec.key: identity_service_account(self, args.storage.identity(spec), ns_for[spec.namespace])
            for spec in specs
        }
        sa_name = {key: sa.metadata.name for key, sa in accounts.items()}
        pg = args.data.postgres
        secrets = {
            service: opaque_secret(
                self,
                f"{service}-postgres",
                platform_ns,
                {
                    "host": pg.host,
                    "port": pg.port.apply(str),
                    "database": cred.database,
                    "username": cred.username,
                    "password": cred.password,
                    "sslmode": pg.ssl_mode,
                },
            )
            for service, cred in pg.databases.items()
        }
        buckets = args.storage.buckets
        ns = Namespace.PLATFORM.value

        # -- MLflow ----------------------------------------------------------------------------------
        if svc.mlflow.enabled:
            mlflow_pin = _pin(svc, "mlflow")
            replicated_chart(
                self,
                f"{name}-mlflow",
                pin=mlflow_pin,
                endpoint=mlflow.ENDPOINT,
                app=mlflow.FLOW.app,
                values=mlflow.mlflow_values(
                    pin=mlflow_pin,
                    replicas=svc.mlflow.replicas,
                    postgres=pg,
                    database_secret=secrets["mlflow"].metadata.name,
                    artifacts=buckets[BucketPurpose.ARTIFACTS],
                    service_account=sa_name["mlflow"],
                    flask_secret_key=generated_secret(self, f"{name}-mlflow-flask-key", length=64),
                    placement=placement,
                ),
                replicas=svc.mlflow.replicas,
                namespace=platform_ns.metadata.name,
                provider=provider,
                depends_on=[*pg.ready, secrets["mlflow"], accounts["mlflow"]],
            )

        # -- Feast -----------------------------------------------------------------------------------
        redis = args.data.redis
        redis_secret = opaque_secret(self, "feast-redis", platform_ns, {"password": redis.auth_token})
        ca: k8s.core.v1.ConfigMap | None = None
        if redis.ca_certificate is not None:
            ca = k8s.core.v1.ConfigMap(
                "configmap-feast-redis-ca",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="feast-redis-ca", namespace=platform_ns.metadata.name, labels=PART_OF
                ),
                data={"ca.crt": redis.ca_certificate},
                opts=pulumi.ResourceOptions(parent=self),
            )
        ca_map = ca.metadata.name if ca is not None else None
        feast_secrets = feast.FeastSecrets(database=secrets["feast"].metadata.name, redis=redis_secret.metadata.name)
        store_yaml = feast.feature_store_yaml(pg, redis, buckets[BucketPurpose.DATASETS])
        feast_env = feast.feast_env(feast_secrets, args.data.kafka)
        # what any container loading the YAML needs to exist first (Feast's own pods and Airflow's)
        feast_inputs: list[pulumi.Resource] = [secrets["feast"], redis_secret, *([ca] if ca is not None else [])]
        feast_deps = [*pg.ready, *feast_inputs, accounts["feast"]]
        if svc.feast.enabled:
            feast_pin = _pin(svc, "feast")
            replicated_chart(
                self,
                f"{name}-feast",
                pin=feast_pin,
                endpoint=feast.ENDPOINT,
                app=feast.FLOW.app,
                namespace=platform_ns.metadata.name,
                values=feast.feature_server_values(
                    pin=feast_pin,
                    replicas=svc.feast.replicas,
                    store_yaml=store_yaml,
                    env=feast_env,
                    service_account=sa_name["feast"],
                    ca_config_map=ca_map,
                    placement=placement,
                ),
                replicas=svc.feast.replicas,
                provider=provider,
                depends_on=feast_deps,
            )
            feast.materialization(
                self,
                name,
                pin=feast_pin,
                namespace=platform_ns.metadata.name,
                store_yaml=store_yaml,
                env=feast_env,
                service_account=sa_name["feast"],
                ca_config_map=ca_map,
                placement=placement,
                depends_on=feast_deps,
            )

        # -- KubeRay and training --------------------------------------------------------------------
        if svc.kuberay.enabled:
            operator = pinned_release(
                self,
                f"{name}-kuberay-operator",
                _pin(svc, "kuberay"),
                training_ns.metadata.name,
                ray.operator_values(placement),
                provider,
                release_name=ray.OPERATOR_RELEASE,
                # one small Deployment on the CPU pool, which may be at zero nodes in dev: ~3 min for the
                # autoscaler and a new instance, then the image pull
                timeout_seconds=600,
            )
            # Secrets are namespaced: Ray in `training` gets its own copies of the Feast credentials and CA,
            # made from the same typed outputs
            ray_secrets = {
                "database": opaque_secret(
                    self,
                    "training-feast-postgres",
                    training_ns,
                    {"username": pg.databases["feast"].username, "password": pg.databases["feast"].password},
                ),
                "redis": opaque_secret(self, "training-feast-redis", training_ns, {"password": redis.auth_token}),
            }
            ray_ca = (
                k8s.core.v1.ConfigMap(
                    "configmap-training-feast-redis-ca",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name="feast-redis-ca", namespace=training_ns.metadata.name, labels=PART_OF
                    ),
                    data={"ca.crt": redis.ca_certificate},
                    opts=pulumi.ResourceOptions(parent=self),
                )
                if redis.ca_certificate is not None
                else None
            )
            ray_feast = feast.FeastSecrets(**{k: v.metadata.name for k, v in ray_secrets.items()})
            ray.ray_cluster(
                self,
                name,
                namespace=training_ns.metadata.name,
                spec=ray.ray_cluster_spec(
                    service_account=workloads.RAY.service_account,
                    gpu_pools=args.cluster.gpu_pools,
                    placement=placement,
                    mlflow_tracking_uri=mlflow.ENDPOINT.url,
                    feast_env=[
                        {"name": "FEATURE_STORE_YAML_BASE64", "value": feast.encoded(store_yaml)},
                        *feast.feast_env(ray_feast, args.data.kafka),
                    ],
                    feast_volumes=feast.ca_volume(ray_ca.metadata.name if ray_ca is not None else None),
                ),
                depends_on=[operator, accounts["ray"], *ray_secrets.values(), *([ray_ca] if ray_ca else [])],
            )

        # -- Airflow ---------------------------------------------------------------------------------
        if svc.airflow.enabled:
            airflow_pin = _pin(svc, "airflow")
            cred = pg.databases["airflow"]
            fernet = random.RandomId(f"{name}-airflow-fernet", byte_length=32, opts=pulumi.ResourceOptions(parent=self))
            made = {
                "metadata": opaque_secret(
                    self, "airflow-metadata", platform_ns, {"connection": airflow.metadata_connection(cred, ns)}
                ),
                "pgbouncer_config": opaque_secret(
                    self, "airflow-pgbouncer-config", platform_ns, airflow.pgbouncer_files(pg, cred)
                ),
                "pgbouncer_stats": opaque_secret(
                    self, "airflow-pgbouncer-stats", platform_ns, {"connection": airflow.stats_connection(cred)}
                ),
                "fernet_key": opaque_secret(self, "airflow-fernet-key", platform_ns, {"fernet-key": fernet.b64_std}),
                "api_secret_key": opaque_secret(
                    self,
                    "airflow-api-secret-key",
                    platform_ns,
                    {"api-secret-key": generated_secret(self, f"{name}-airflow-api")},
                ),
                "jwt_secret": opaque_secret(
                    self,
                    "airflow-jwt-secret",
                    platform_ns,
                    {"jwt-secret": generated_secret(self, f"{name}-airflow-jwt")},
                ),
            }
            names = airflow.AirflowSecrets(**{field: secret.metadata.name for field, secret in made.items()})
            env = airflow.platform_env(
                mlflow=mlflow.ENDPOINT,
                feature_server=feast.ENDPOINT,
                ray_dashboard=ray.DASHBOARD,
                training_namespace=Namespace.TRAINING.value,
                training_service_account=workloads.TRAINING.service_account,
                buckets={p.value: b.uri for p, b in buckets.items()},
            )
            # DAG tasks use Feast (point-in-time features) with the platform's YAML, and Kafka with their grant
            env += [{"name": "FEATURE_STORE_YAML_BASE64", "value": feast.encoded(store_yaml)}]
            env += feast.kafka_env(args.data.kafka)
            airflow_launcher_rbac(self, training_ns, accounts["airflow"])
            if svc.airflow.dags is not None and svc.airflow.dags.over_ssh:
                git_ssh_egress(self, platform_ns, airflow.POD_LABELS)
            dags: list[pulumi.Resource] = []
            if svc.airflow.dags is None:
                dags.append(
                    k8s.core.v1.ConfigMap(
                        "configmap-airflow-platform-dags",
                        metadata=k8s.meta.v1.ObjectMetaArgs(
                            name="airflow-platform-dags", namespace=platform_ns.metadata.name, labels=PART_OF
                        ),
                        data=airflow.platform_dag_files(),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )
            ca_volumes, ca_mounts = feast.ca_volume(ca_map)
            dag_volumes, dag_mounts = airflow.dag_volumes(dags[0].metadata.name if dags else None)
            pinned_release(
                self,
                f"{name}-airflow",
                airflow_pin,
                platform_ns.metadata.name,
                airflow.airflow_values(
                    pin=airflow_pin,
                    cfg=svc.airflow,
                    secrets=names,
                    service_account=sa_name["airflow"],
                    logs=buckets[BucketPurpose.LOGS],
                    env=env,
                    secret_env=feast_secrets.airflow_secret_env(),
                    volumes=(ca_volumes + dag_volumes, ca_mounts + dag_mounts),
                    placement=placement,
                ),
                provider,
                release_name=airflow.RELEASE,
                # Five Deployments plus the migration Job on the CPU pool, which may start at zero nodes:
                # ~3 min for a node, ~2 min to pull the Airflow image (~1 GiB), the migration (~1 min on a
                # new database), then the components' readiness; 15 min leaves room for a slow pull.
                timeout_seconds=900,
                wait_for_jobs=True,
                depends_on=[*pg.ready, *made.values(), *feast_inputs, *dags, accounts["airflow"]],
            )

        self.outputs = LifecycleOutputs(
            platform_namespace=platform_ns.metadata.name,
            training_namespace=training_ns.metadata.name,
            service_accounts=accounts,
            database_secrets=secrets,
            mlflow=mlflow.ENDPOINT,
            feature_server=feast.ENDPOINT,
            ray_dashboard=ray.DASHBOARD,
            feature_store_yaml=store_yaml,
        )
        self.register_outputs(
            {
                "platformNamespace": platform_ns.metadata.name,
                "mlflowTrackingUri": mlflow.ENDPOINT.url,
                "featureServerUrl": feast.ENDPOINT.url,
                "rayDashboardUrl": ray.DASHBOARD.url,
            }
        )
