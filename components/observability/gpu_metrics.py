"""NVIDIA's DCGM exporter (chart 4.8.2, DCGM 4.5.3) on every GPU node the pool contracts describe, in
`monitoring-agents`: it runs as root with SYS_ADMIN for DCGM's profiling counters, which only the privileged
level admits. Prometheus scrapes it through the `dcgm` scrape target (components/guardrails.py), so the
chart's own ServiceMonitor stays off.

Installed where the cluster does not collect GPU metrics itself (EKS). GKE runs its managed DCGM package
instead (components/cluster/gcp monitoring_config says why).

helm.v4.Chart: no hooks, no CRDs, no lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import NodePoolContract, gpu_node_placement
from components.guardrails import DCGM_PODS, DCGM_PORT
from components.kube import pinned_chart
from mlplatform.pins import ChartPin

RELEASE = DCGM_PODS["app.kubernetes.io/instance"]


@dataclass(frozen=True)
class DcgmExporterArgs:
    namespace: k8s.core.v1.Namespace  # monitoring-agents
    pin: ChartPin
    gpu_pools: Sequence[NodePoolContract]
    provider: k8s.Provider


def dcgm_values(gpu_pools: Sequence[NodePoolContract]) -> dict[str, object]:
    return {
        **gpu_node_placement(gpu_pools),
        "service": {"port": DCGM_PORT},
        "serviceMonitor": {"enabled": False},
        # the chart's defaults (100m / 128Mi, limit 512Mi) fit a node with a handful of GPUs
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }


class DcgmExporter(pulumi.ComponentResource):
    def __init__(self, name: str, args: DcgmExporterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:DcgmExporter", name, None, opts)
        pinned_chart(
            self,
            name,
            args.pin,
            args.namespace.metadata.name,
            dcgm_values(args.gpu_pools),
            args.provider,
            release_name=RELEASE,
        )
        self.register_outputs({"pools": [p.name for p in args.gpu_pools]})
