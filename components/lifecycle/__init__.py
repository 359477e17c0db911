"""Lifecycle and orchestration layer: MLflow, Feast, KubeRay, Airflow and training Jobs, one component each.

Consumes only typed outputs of the infra layers and the namespaces; no cloud-specific branching. Each
service makes its own Secrets, service account and charts; this constructor only wires outputs to inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import workloads
from components.contracts import (
    BucketPurpose,
    ClusterOutputs,
    DataOutputs,
    Namespace,
    PlatformNamespaces,
    ServiceEndpoint,
    StorageOutputs,
)
from components.guardrails import PROMETHEUS_QUERY
from components.lifecycle.airflow import Airflow, AirflowArgs
from components.lifecycle.deployment import ModelDeployment, model_targets
from components.lifecycle.feast import Feast, FeastArgs, FeastClient, client_image
from components.lifecycle.mlflow import MLflow, MLflowArgs
from components.lifecycle.ray import KubeRay, KubeRayArgs
from components.lifecycle.training import Training, TrainingArgs
from components.placement import Placement
from components.sign_on import MLFLOW as MLFLOW_UI
from components.sign_on import SignOn
from mlplatform.chartkeys import selected_pin
from mlplatform.config import ServicesConfig
from mlplatform.config.models import Sizing
from mlplatform.config.serving import ServingModelConfig
from mlplatform.pins import SERVICE_CHARTS, ChartPin


@dataclass(frozen=True)
class LifecycleArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    data: DataOutputs
    services: ServicesConfig
    multi_zone: bool = False  # ha: multi-zone spreads replicas across zones
    # serving.models[] (mlplatform/config/serving.py): the deployment DAG follows those with an alias
    serving_models: tuple[ServingModelConfig, ...] = ()
    # the alert rules' canary queries (components/observability/alerts.py canary_queries) the DAG judges with
    canary_queries: Mapping[str, Any] = field(default_factory=dict)
    # Airflow's own OIDC login, when the stack exposes its UIs (components/sign_on.py)
    sign_on: SignOn | None = None


@dataclass(frozen=True)
class LifecycleOutputs:
    mlflow: ServiceEndpoint  # .url is the tracking URI
    mlflow_artifacts: pulumi.Output[str]  # the server's artifacts destination (registered models' files)
    feature_server: ServiceEndpoint
    ray_dashboard: ServiceEndpoint
    feature_store_yaml: pulumi.Output[str]
    # the feature store as clients in `mlplatform` load it (its mounted YAML, Secrets and CAs): notebooks
    feast_client: FeastClient | None = None


def _pin(services: ServicesConfig, service: str) -> ChartPin:
    """The service's chart at the version its config selected."""
    return selected_pin(SERVICE_CHARTS[service], getattr(services, service).version)


class Lifecycle(pulumi.ComponentResource):
    outputs: LifecycleOutputs

    def __init__(self, name: str, args: LifecycleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Lifecycle", name, None, opts)
        svc, data, storage, child = args.services, args.data, args.storage, pulumi.ResourceOptions(parent=self)
        platform, training = args.namespaces[Namespace.PLATFORM], args.namespaces[Namespace.TRAINING]
        common = {
            "placement": Placement(
                args.cluster.cpu_pool, spread=args.multi_zone, small=args.services.sizing is Sizing.SMALL
            ),
            "provider": args.cluster.kubernetes_provider,
        }
        buckets = storage.buckets

        mlflow = MLflow(
            f"{name}-mlflow",
            MLflowArgs(
                namespace=platform, identity=storage.identity(workloads.MLFLOW), postgres=data.postgres,
                artifacts=buckets[BucketPurpose.ARTIFACTS], pin=_pin(svc, "mlflow"), config=svc.mlflow,
                public_host=args.sign_on.host(MLFLOW_UI) if args.sign_on else None, **common,
            ),
            opts=child,
        )  # fmt: skip
        feast = Feast(
            f"{name}-feast",
            FeastArgs(
                namespace=platform, identity=storage.identity(workloads.FEAST), postgres=data.postgres,
                redis=data.redis, kafka=data.kafka, datasets=buckets[BucketPurpose.DATASETS],
                pin=_pin(svc, "feast"), config=svc.feast, registry=storage.registry, **common,
            ),
            opts=child,
        )  # fmt: skip
        ray = KubeRay(
            f"{name}-kuberay",
            KubeRayArgs(
                namespace=training, identity=storage.identity(workloads.RAY), gpu_pools=args.cluster.gpu_pools,
                mlflow=mlflow.outputs.endpoint, feature_store=feast.outputs.source, pin=_pin(svc, "kuberay"),
                config=svc.kuberay, **common,
            ),
            opts=child,
        )  # fmt: skip
        trainer = Training(
            f"{name}-training",
            TrainingArgs(
                training, storage.identity(workloads.TRAINING), feature_store=ray.outputs.feature_store,
                feature_image=feast.outputs.client_image or client_image(_pin(svc, "feast")),
                gpu_pools=args.cluster.gpu_pools,
            ),
            opts=child,
        )  # fmt: skip
        # the deployment DAG (dags/deploy_model.py), where KServe serves models. Prometheus is installed after
        # this layer: its query Service's address is fixed by its release (components/guardrails.py)
        deployment = (
            ModelDeployment(
                serving_namespace=args.namespaces[Namespace.SERVING],
                artifacts_destination=mlflow.outputs.artifacts_destination,
                prometheus=PROMETHEUS_QUERY if svc.prometheus.enabled else None,
                queries=args.canary_queries,
                models=model_targets(args.serving_models),
            )
            if svc.kserve.enabled
            else None
        )
        Airflow(
            f"{name}-airflow",
            AirflowArgs(
                namespace=platform, training_namespace=training, identity=storage.identity(workloads.AIRFLOW),
                postgres=data.postgres, kafka=data.kafka, buckets=buckets, feature_store=feast.outputs.client,
                mlflow=mlflow.outputs.endpoint, ray_dashboard=ray.outputs.dashboard,
                training_account=workloads.TRAINING, pin=_pin(svc, "airflow"), config=svc.airflow,
                training_env=tuple(trainer.outputs.airflow_env), deployment=deployment, sign_on=args.sign_on,
                **common,
            ),
            opts=child,
        )  # fmt: skip

        self.outputs = LifecycleOutputs(
            mlflow=mlflow.outputs.endpoint,
            mlflow_artifacts=mlflow.outputs.artifacts_destination,
            feature_server=feast.outputs.endpoint,
            ray_dashboard=ray.outputs.dashboard,
            feature_store_yaml=feast.outputs.source.store_yaml,
            feast_client=feast.outputs.client,
        )
        self.register_outputs({"mlflowTrackingUri": mlflow.outputs.endpoint.url})
