"""Observability layer: Prometheus, Grafana, Loki (logs bucket), Evidently drift monitoring, alert rules.

Consumes only typed outputs of the infra layers; no cloud-specific branching.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.contracts import (
    BucketPurpose,
    ClusterOutputs,
    Namespace,
    PlatformNamespaces,
    PostgresEndpoint,
    StorageOutputs,
)
from components.observability.alloy import Alloy, AlloyArgs
from components.observability.drift import DriftMonitor, DriftMonitorArgs
from components.observability.gpu_metrics import DcgmExporter, DcgmExporterArgs
from components.observability.loki import Loki, LokiArgs
from components.observability.postgres import PostgresMonitoring, PostgresMonitoringArgs
from components.observability.prometheus import Prometheus, PrometheusArgs
from components.placement import Placement
from components.sign_on import SignOn
from mlplatform.chartkeys import selected_pin
from mlplatform.config import ServicesConfig
from mlplatform.config.models import Sizing
from mlplatform.pins import ALLOY, DCGM_EXPORTER, KUBE_PROMETHEUS_STACK, LOKI, PUSHGATEWAY


@dataclass(frozen=True)
class ObservabilityArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    postgres: PostgresEndpoint  # Grafana's database
    services: ServicesConfig
    log_retention_days: int
    multi_zone: bool = False
    # Grafana's own OIDC login, when the stack exposes its UIs (components/sign_on.py)
    sign_on: SignOn | None = None
    # PostgreSQL runs in the cluster (CloudNativePG): its scrape, flow and alerts (components/observability/postgres.py)
    postgres_in_cluster: bool = False


@dataclass(frozen=True)
class ObservabilityOutputs:
    namespace: pulumi.Output[str]
    loki_service_account: k8s.core.v1.ServiceAccount
    logs_bucket: pulumi.Output[str]
    grafana_url: str | None
    grafana_admin_secret: pulumi.Output[str] | None


class Observability(pulumi.ComponentResource):
    outputs: ObservabilityOutputs

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Observability", name, None, opts)
        ns = args.namespaces[Namespace.MONITORING]
        placement = Placement(args.cluster.cpu_pool, spread=args.multi_zone, small=args.services.sizing is Sizing.SMALL)
        provider = args.cluster.kubernetes_provider
        loki = Loki(
            f"{name}-loki",
            LokiArgs(
                namespace=ns,
                identity=args.storage.identity(workloads.LOKI),
                bucket=args.storage.buckets[BucketPurpose.LOGS],
                pin=selected_pin(LOKI, args.services.loki.version),
                config=args.services.loki,
                retention_days=args.log_retention_days,
                storage_class=args.cluster.block_storage_class,
                placement=placement,
                provider=provider,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        Alloy(
            f"{name}-alloy",
            AlloyArgs(args.namespaces[Namespace.MONITORING_AGENTS], ALLOY, loki.outputs.push_url, provider),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[loki]),
        )
        if args.cluster.gpu_pools and not args.cluster.managed_gpu_metrics:
            DcgmExporter(
                f"{name}-dcgm-exporter",
                DcgmExporterArgs(
                    args.namespaces[Namespace.MONITORING_AGENTS], DCGM_EXPORTER, args.cluster.gpu_pools, provider
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.services.evidently.enabled:
            DriftMonitor(
                f"{name}-drift",
                DriftMonitorArgs(
                    namespace=ns,
                    identity=args.storage.identity(workloads.DRIFT),
                    bucket=args.storage.buckets[BucketPurpose.DATASETS],
                    config=args.services.evidently,
                    thresholds=args.services.prometheus.alerts,
                    pushgateway=PUSHGATEWAY,
                    placement=placement,
                    provider=provider,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        sa = loki.outputs.service_account
        cfg = args.services.prometheus
        prometheus = None
        if cfg.enabled:
            prometheus = Prometheus(
                f"{name}-prometheus",
                PrometheusArgs(
                    namespace=ns,
                    pin=selected_pin(KUBE_PROMETHEUS_STACK, cfg.version),
                    config=cfg,
                    storage_class=args.cluster.block_storage_class,
                    placement=placement,
                    provider=provider,
                    loki_url=loki.outputs.url,
                    postgres=args.postgres,
                    dns_metrics_port=args.cluster.network.dns_metrics_port,
                    sign_on=args.sign_on,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.postgres_in_cluster:
                PostgresMonitoring(
                    f"{name}-postgres",
                    PostgresMonitoringArgs(args.namespaces, prometheus),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.outputs = ObservabilityOutputs(
            namespace=ns.metadata.name,
            loki_service_account=sa,
            logs_bucket=args.storage.buckets[BucketPurpose.LOGS].name,
            grafana_url=prometheus.outputs.grafana_url if prometheus else None,
            grafana_admin_secret=prometheus.outputs.grafana_admin_secret if prometheus else None,
        )
        self.register_outputs({"namespace": ns.metadata.name})
