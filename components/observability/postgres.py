"""Monitoring of in-cluster PostgreSQL, only where the stack runs it (data.postgres.inCluster): Prometheus scrapes
the CloudNativePG instances (components/guardrails.py CNPG_SCRAPE, as a PodMonitor like every platform scrape),
their NetworkPolicy flow is opened on both sides (CNPG_SCRAPE_FLOW: `monitoring` may reach the instance pods on
9187, nothing else), and the alerts on WAL archiving and base backups (components/observability/alerts.py
postgres_rule_groups) are a PrometheusRule of their own.

Why not in SCRAPES / FLOWS with the other targets: those are every stack's, and on a stack whose PostgreSQL is
managed (RDS, Cloud SQL) the scrape would be a target that never exists, the flow a port opened into `data` for
nothing, and the backup alerts would fire for backups nobody takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Namespace, PlatformNamespaces
from components.guardrails import CNPG_SCRAPE, CNPG_SCRAPE_FLOW, flow_policies
from components.kube import PART_OF
from components.observability.alerts import postgres_rule_groups
from components.observability.prometheus import monitor

RULE_NAME = "mlplatform-postgres-alerts"


@dataclass(frozen=True)
class PostgresMonitoringArgs:
    namespaces: PlatformNamespaces  # `monitoring` (the PodMonitor, the rules, the egress) and `data` (the ingress)
    prometheus: pulumi.Resource  # the monitoring stack, whose release brings the CRDs and the rules' webhook


class PostgresMonitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: PostgresMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:PostgresMonitoring", name, None, opts)
        monitoring = args.namespaces[Namespace.MONITORING]
        for ns in (Namespace.DATA, Namespace.MONITORING):
            flow_policies(self, f"{name}-{ns.value}", ns, args.namespaces[ns], CNPG_SCRAPE_FLOW)
        kind, spec = monitor(CNPG_SCRAPE)
        after = pulumi.ResourceOptions(parent=self, depends_on=[args.prometheus])
        k8s.apiextensions.CustomResource(
            f"{name}-scrape-{CNPG_SCRAPE.name}",
            api_version="monitoring.coreos.com/v1",
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CNPG_SCRAPE.name, namespace=monitoring.metadata.name, labels=PART_OF
            ),
            spec=spec,
            opts=after,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RULE_NAME, namespace=monitoring.metadata.name, labels=PART_OF),
            spec={"groups": postgres_rule_groups()},
            opts=after,
        )
        self.register_outputs({})
