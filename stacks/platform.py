"""One environment's platform: cluster -> storage -> data -> lifecycle -> serving -> observability.

Infra layers run under the explicit cloud provider; in-cluster layers under the cluster's Kubernetes
provider, and receive only typed outputs, so they are identical on every cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import workloads
from components.client import Client, ClientArgs
from components.client.exposure import ui_extension_providers
from components.client.native_oidc import callback_urls, sign_on
from components.cloud import cloud_provider
from components.cluster import Cluster
from components.contracts import BucketPurpose, Namespace
from components.data import Data
from components.data.in_cluster.backups import PostgresBackups, PostgresBackupsArgs
from components.environment import ClusterArgs, DataArgs, StorageArgs
from components.lifecycle import Lifecycle, LifecycleArgs
from components.lifecycle.feast import EXAMPLE_DATA
from components.namespaces import Namespaces, NamespacesArgs
from components.observability import Observability, ObservabilityArgs
from components.observability.alerts import canary_queries
from components.serving import Serving, ServingArgs
from components.storage import Storage
from components.streaming import STREAM_DATA, Streaming, StreamingArgs
from mlplatform.config import HaProfile, PlatformConfig

NAME = "mlplatform"


@dataclass(frozen=True)
class Platform:
    cluster: Cluster
    namespaces: Namespaces
    storage: Storage
    data: Data
    lifecycle: Lifecycle
    serving: Serving
    observability: Observability
    client: Client
    streaming: Streaming | None = None  # with streaming.enabled


def build_platform(cfg: PlatformConfig) -> Platform:
    cloud = cloud_provider(f"{NAME}-{cfg.cloud.value}", cfg)
    clouds = [cloud] if cloud is not None else []  # none on local: no cloud resource at all
    infra = pulumi.ResourceOptions(providers=clouds)
    cluster = Cluster(NAME, ClusterArgs.of(cfg), opts=infra)
    # the cloud provider too, for the few reads an in-cluster object is made from (the SSO client secret
    # in the cloud's secret manager: components/client/secrets.py); in-cluster layers create no cloud resource
    in_cluster = pulumi.ResourceOptions(providers=[cluster.outputs.kubernetes_provider, *clouds])
    # every platform namespace and its guard rails, before anything is put in one
    namespaces = Namespaces(NAME, NamespacesArgs(cluster.outputs), opts=in_cluster)
    # with a domain and an ACME issuer, cert-manager's identity too (its grant on the DNS zone)
    platform_workloads = (
        workloads.ALL
        + workloads.dns01_workloads(cfg.client)
        + workloads.streaming_workloads(cfg.streaming)
        + workloads.postgres_backup_workloads(cfg.data)
    )
    # in-cluster Kafka makes a Kafka user per workload with a Kafka grant, as managed Kafka grants its identity
    data = Data(NAME, DataArgs.of(cfg), cluster.outputs, namespaces.outputs, platform_workloads, opts=infra)
    # Storage after data: a workload's identity is created once, with its bucket grants and its Kafka grant.
    # where Feast is installed, the files feature_repo/ reads: the example view's data, and the streaming push
    # source's (empty) batch source, which Feast's file offline store appends to. Both views are applied on
    # every stack, so both files exist on every stack (the hourly materialization reads every view)
    seeds = (EXAMPLE_DATA, STREAM_DATA) if cfg.services.feast.enabled else ()
    storage = Storage(
        NAME,
        StorageArgs.of(cfg),
        cluster.outputs,
        platform_workloads,
        data.outputs.kafka,
        seeds=seeds,
        namespaces=namespaces.outputs,
        opts=infra,
    )

    ns = namespaces.outputs
    # in-cluster PostgreSQL's backups, attached to its Cluster once the storage layer has made their bucket and
    # identity (components/data/in_cluster/backups.py): part of the data layer, built after storage
    if data.cloudnative_pg is not None and data.ca is not None:
        PostgresBackups(
            f"{NAME}-postgres-backups",
            PostgresBackupsArgs(
                cluster.outputs,
                ns[Namespace.DATA],
                data.ca,
                data.cloudnative_pg,
                storage.outputs.buckets[BucketPurpose.BACKUPS],
                storage.outputs.identities[workloads.POSTGRES_BACKUP_KEY],
                cfg.data.postgres.backup_retention_days,
            ),
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(parent=data)),
        )
    # Grafana's and Airflow's own OIDC login, with a domain (components/sign_on.py); None without
    native_sign_on = sign_on(cfg)
    lifecycle = Lifecycle(
        NAME,
        LifecycleArgs(
            cluster.outputs,
            ns,
            storage.outputs,
            data.outputs,
            cfg.services,
            multi_zone=cfg.ha is HaProfile.MULTI_ZONE,
            serving_models=tuple(cfg.serving.models),
            canary_queries=canary_queries(cfg.services.prometheus.alerts),
            sign_on=native_sign_on,
        ),
        opts=in_cluster,
    )
    multi_zone = cfg.ha is HaProfile.MULTI_ZONE
    serving = Serving(
        NAME,
        ServingArgs(
            cluster.outputs,
            ns,
            storage.outputs,
            cfg.services,
            mlflow=lifecycle.outputs.mlflow,
            feature_server=lifecycle.outputs.feature_server,
            zones=len(cfg.zones),
            multi_zone=multi_zone,
            serving=cfg.serving,
            # the UIs' external authorizer (oauth2-proxy), only when the stack exposes its UIs
            extension_providers=ui_extension_providers(cfg.client),
        ),
        opts=in_cluster,
    )
    # Kafka -> Flink -> Feast push (components/streaming): after lifecycle (the feature server) and serving
    # (cert-manager, for the Flink operator's webhook); topics under the cloud provider in_cluster carries
    streaming = (
        Streaming(
            NAME,
            StreamingArgs(
                cluster.outputs,
                ns,
                storage.outputs,
                data.outputs,
                lifecycle.outputs.feature_server,
                serving.outputs.cert_manager,
                cfg,
            ),
            opts=in_cluster,
        )
        if cfg.streaming.enabled
        else None
    )
    observability = Observability(
        NAME,
        ObservabilityArgs(
            cluster.outputs,
            ns,
            storage.outputs,
            data.outputs.postgres,
            cfg.services,
            cfg.storage.log_retention_days,
            multi_zone,
            sign_on=native_sign_on,
            postgres_in_cluster=data.cloudnative_pg is not None,
        ),
        opts=in_cluster,
    )
    client = Client(
        NAME,
        ClientArgs(
            cluster.outputs,
            ns,
            storage.outputs,
            data.outputs,
            lifecycle.outputs,
            serving.outputs,
            observability.outputs,
            cfg,
        ),
        opts=in_cluster,
    )

    pulumi.export("cloud", cfg.cloud.value)
    pulumi.export("region", cfg.region)
    pulumi.export("clusterName", cluster.outputs.name)
    pulumi.export("gpuPools", [p.name for p in cluster.outputs.gpu_pools])
    pulumi.export("buckets", {p.value: b.uri for p, b in storage.outputs.buckets.items()})
    pulumi.export("postgresHost", data.outputs.postgres.host)
    pulumi.export("redisHost", data.outputs.redis.host)
    if data.outputs.kafka is not None:
        pulumi.export("kafkaBootstrapServers", data.outputs.kafka.bootstrap_servers)
    pulumi.export("mlflowTrackingUri", lifecycle.outputs.mlflow.url)
    pulumi.export("mlflowArtifactsDestination", lifecycle.outputs.mlflow_artifacts)
    pulumi.export("featureServerUrl", lifecycle.outputs.feature_server.url)
    pulumi.export("rayDashboardUrl", lifecycle.outputs.ray_dashboard.url)
    if cfg.services.kserve.enabled:
        pulumi.export("inferenceIngress", serving.outputs.gateway)
        pulumi.export("servingDomain", serving.outputs.domain)
        pulumi.export("inferenceNamespace", serving.outputs.namespace)
        pulumi.export("inferenceServiceAccount", serving.outputs.model_pull_service_account.metadata.name)
        pulumi.export("gpuServingRuntimes", serving.outputs.gpu_runtimes)
        pulumi.export("inferenceServiceDefaults", serving.outputs.inference_defaults)
    if observability.outputs.grafana_url is not None:
        pulumi.export("grafanaUrl", observability.outputs.grafana_url)
        pulumi.export("grafanaAdminSecret", observability.outputs.grafana_admin_secret)
    pulumi.export("workloadIdentities", {k: i.principal for k, i in storage.outputs.identities.items()})
    if client.outputs.ui_urls:
        pulumi.export("uiUrls", client.outputs.ui_urls)
    if client.outputs.sso_callback_urls:
        # the redirect URIs oauth2-proxy uses for the UIs it guards (register them with the SSO client)
        pulumi.export("ssoCallbackUrls", client.outputs.sso_callback_urls)
    if native_sign_on is not None:
        # the redirect URIs to register with the OIDC provider for the UIs that sign people in themselves
        pulumi.export("nativeSsoRedirectUris", callback_urls(native_sign_on, cfg))
    if client.outputs.configuration is not None:
        # what a data scientist's clients need; `plan` writes it to clients/<stack>.env (+ feature_store.yaml)
        pulumi.export("clientConfiguration", client.outputs.configuration)
    return Platform(cluster, namespaces, storage, data, lifecycle, serving, observability, client, streaming)
