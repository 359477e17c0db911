"""One environment's platform: cluster -> storage -> data -> lifecycle -> serving -> observability.

Infra layers run under the explicit cloud provider; in-cluster layers under the cluster's Kubernetes
provider, and receive only typed outputs, so they are identical on every cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import workloads
from components.cloud import cloud_provider
from components.cluster import Cluster
from components.contracts import BucketPurpose
from components.data import Data
from components.environment import ClusterArgs, DataArgs, StorageArgs
from components.lifecycle import Lifecycle, LifecycleArgs
from components.lifecycle.feast import EXAMPLE_DATA
from components.namespaces import Namespaces, NamespacesArgs
from components.observability import Observability, ObservabilityArgs
from components.observability.alerts import canary_queries
from components.serving import Serving, ServingArgs
from components.storage import Storage
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


def build_platform(cfg: PlatformConfig) -> Platform:
    infra = pulumi.ResourceOptions(providers=[cloud_provider(f"{NAME}-{cfg.cloud.value}", cfg)])
    cluster = Cluster(NAME, ClusterArgs.of(cfg), opts=infra)
    in_cluster = pulumi.ResourceOptions(providers=[cluster.outputs.kubernetes_provider])
    # every platform namespace and its guard rails, before anything is put in one
    namespaces = Namespaces(NAME, NamespacesArgs(cluster.outputs), opts=in_cluster)
    data = Data(
        NAME,
        DataArgs.of(cfg),
        cluster.outputs,
        namespaces.outputs,
        opts=infra,
    )
    # Storage after data: a workload's identity is created once, with its bucket grants and its Kafka grant.
    # the example feature view's data, where Feast is installed
    seeds = (EXAMPLE_DATA,) if cfg.services.feast.enabled else ()
    storage = Storage(
        NAME, StorageArgs.of(cfg), cluster.outputs, workloads.ALL, data.outputs.kafka, seeds=seeds, opts=infra
    )

    ns = namespaces.outputs
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
        ),
        opts=in_cluster,
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
        ),
        opts=in_cluster,
    )

    pulumi.export("cloud", cfg.cloud.value)
    pulumi.export("region", cfg.region)
    pulumi.export("clusterName", cluster.outputs.name)
    pulumi.export("gpuPools", [p.name for p in cluster.outputs.gpu_pools])
    pulumi.export("buckets", {p.value: storage.outputs.buckets[p].uri for p in BucketPurpose})
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
    return Platform(cluster, namespaces, storage, data, lifecycle, serving, observability)
