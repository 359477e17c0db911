"""Lifecycle and orchestration layer: MLflow, Feast, Airflow, KubeRay and training Jobs.

Consumes only typed outputs of the infra layers; contains no cloud-specific branching.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.contracts import ClusterOutputs, DataOutputs, Namespace, StorageOutputs
from components.guardrails import training_limits
from components.kube import identity_service_account, namespace, opaque_secret
from mlplatform.config import ServicesConfig


@dataclass(frozen=True)
class LifecycleArgs:
    cluster: ClusterOutputs
    storage: StorageOutputs
    data: DataOutputs
    services: ServicesConfig


@dataclass(frozen=True)
class LifecycleOutputs:
    platform_namespace: pulumi.Output[str]
    training_namespace: pulumi.Output[str]
    service_accounts: dict[str, k8s.core.v1.ServiceAccount]
    database_secrets: dict[str, k8s.core.v1.Secret]


class Lifecycle(pulumi.ComponentResource):
    outputs: LifecycleOutputs

    def __init__(self, name: str, args: LifecycleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Lifecycle", name, None, opts)
        platform_ns = namespace(self, Namespace.PLATFORM, args.cluster)
        training_ns = namespace(self, Namespace.TRAINING, args.cluster)
        training_limits(self, training_ns, args.cluster.gpu_pools)
        ns_for = {Namespace.PLATFORM: platform_ns, Namespace.TRAINING: training_ns}
        accounts = {
            spec.key: identity_service_account(self, args.storage.identity(spec), ns_for[spec.namespace])
            for spec in (workloads.MLFLOW, workloads.FEAST, workloads.AIRFLOW, workloads.RAY)
        }
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
        self.outputs = LifecycleOutputs(
            platform_namespace=platform_ns.metadata.name,
            training_namespace=training_ns.metadata.name,
            service_accounts=accounts,
            database_secrets=secrets,
        )
        self.register_outputs({"platformNamespace": platform_ns.metadata.name})
