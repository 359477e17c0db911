"""The platform's Grafana dashboards, as code: each is built here from the metric names the platform's
scrapes produce, shipped as a ConfigMap Grafana's dashboard sidecar loads, and every query is checked by
`promtool check rules` in tests/test_dashboards.py.

Sources of the metric names: serving-observability-facts.md §5 (Knative >= 1.19 queue-proxy, Feast >= 0.61,
Airflow's StatsD exporter, DCGM, Ray), jobs/drift/compute_drift.py (drift), Loki and Prometheus themselves.
The labels are those the stored series carry, as for the alerts (components/observability/alerts.py says
why): per revision by the namespace and the Knative labels the `model-requests` PodMonitor copies from the
revision pods; Feast's endpoint as `exported_endpoint`. tests/test_dashboards.py runs the panels on series
shaped that way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.contracts import POOL_LABEL, Namespace
from components.observability.alerts import (
    BY_REVISION,
    CANARY,
    FEAST_ENDPOINT,
    REVISION,
    revision_error_rate,
    revision_p99,
    revision_requests,
)

PROMETHEUS_UID, LOKI_UID = "prometheus", "loki"  # the provisioned data sources' uids
# kube-state-metrics exposes the pool label (allow-listed in its values) as label_<sanitised name>
POOL = "label_" + "".join(c if c.isalnum() else "_" for c in POOL_LABEL)
POOL_LEGEND = "{{" + POOL + "}}"
FEAST = "feast_feature_server_request"
REVISION_LEGEND = "{{" + REVISION + "}}"
ENDPOINT_LEGEND = "{{" + FEAST_ENDPOINT + "}}"
PLATFORM_NAMESPACES = "|".join(ns.value for ns in (Namespace.PLATFORM, Namespace.SERVING, Namespace.TRAINING))


def per_pool(metric: str) -> str:
    """A DCGM series averaged per node pool: DCGM labels GPUs by Hostname, kube-state-metrics labels nodes."""
    nodes = 'label_replace(kube_node_labels, "Hostname", "$1", "node", "(.*)")'
    return f"avg by ({POOL}) ({metric} * on (Hostname) group_left ({POOL}) {nodes})"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    logs: bool = False  # a Loki logs panel (LogQL) instead of a Prometheus time series


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = field(default=("mlplatform",))

    def model(self) -> dict[str, Any]:
        """Grafana's dashboard JSON: two panels a row, each 12 columns wide and 8 high."""
        panels = []
        for i, panel in enumerate(self.panels):
            source = {"type": "loki", "uid": LOKI_UID} if panel.logs else {"type": "prometheus", "uid": PROMETHEUS_UID}
            panels.append(
                {
                    "id": i + 1,
                    "type": "logs" if panel.logs else "timeseries",
                    "title": panel.title,
                    "gridPos": {"x": 12 * (i % 2), "y": 8 * (i // 2), "w": 12, "h": 8},
                    "datasource": source,
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(ord("A") + j), "expr": q.expr, "legendFormat": q.legend, "datasource": source}
                        for j, q in enumerate(panel.queries)
                    ],
                }
            )
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "utc",
            "schemaVersion": 39,
            "editable": False,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "1m",
            "panels": panels,
        }

    def prometheus_queries(self) -> list[str]:
        return [q.expr for p in self.panels if not p.logs for q in p.queries]


def _q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


MODEL_SERVING = Dashboard(
    "mlplatform-model-serving",
    "Model serving",
    "Requests, errors and latency per InferenceService revision (Knative queue-proxy request metrics), with "
    "the expressions the InferenceRevision alerts and the deployment DAG's canary checks use.",
    (
        Panel(
            "Requests per second",
            (_q(revision_requests(), REVISION_LEGEND),),
            "reqps",
        ),
        Panel(
            "5xx share",
            (_q(revision_error_rate(), REVISION_LEGEND),),
            "percentunit",
        ),
        Panel(
            "Latency p50",
            (
                _q(
                    f"histogram_quantile(0.5, sum by (le, {BY_REVISION}) (rate({CANARY}_bucket[5m])))",
                    REVISION_LEGEND,
                ),
            ),
            "s",
        ),
        Panel(
            "Latency p99",
            (_q(revision_p99(), REVISION_LEGEND),),
            "s",
        ),
    ),
)

FEATURE_SERVER = Dashboard(
    "mlplatform-feature-server",
    "Feature server",
    "Feast's online feature server: traffic, errors, latency and feature freshness.",
    (
        Panel(
            "Requests per second",
            (_q(f"sum by ({FEAST_ENDPOINT}, status) (rate({FEAST}_total[5m]))", ENDPOINT_LEGEND + " {{status}}"),),
            "reqps",
        ),
        Panel(
            "Latency p99",
            (
                _q(
                    f"histogram_quantile(0.99, sum by (le, {FEAST_ENDPOINT}) "
                    f"(rate({FEAST}_latency_seconds_bucket[5m])))",
                    ENDPOINT_LEGEND,
                ),
            ),
            "s",
        ),
        Panel(
            "Feature freshness",
            (_q("max by (project, feature_view) (feast_feature_freshness_seconds)", "{{feature_view}}"),),
            "s",
        ),
        Panel(
            "Materialization runs",
            (_q("sum by (status) (increase(feast_materialization_result_total[1h]))", "{{status}}"),),
        ),
    ),
)

AIRFLOW = Dashboard(
    "mlplatform-airflow",
    "Airflow",
    "Airflow's StatsD metrics, as its StatsD exporter maps them.",
    (
        Panel(
            "Scheduler heartbeats per minute", (_q("sum(rate(airflow_scheduler_heartbeat[5m])) * 60", "heartbeats"),)
        ),
        Panel(
            "Executor slots",
            (
                _q("sum(airflow_executor_running_tasks)", "running"),
                _q("sum(airflow_executor_queued_tasks)", "queued"),
                _q("sum(airflow_executor_open_slots)", "open"),
            ),
        ),
        Panel(
            "Task instances per hour",
            (
                _q("sum(increase(airflow_ti_successes[1h]))", "succeeded"),
                _q("sum(increase(airflow_ti_failures[1h]))", "failed"),
            ),
        ),
        Panel("Failed DAG file imports", (_q("max(airflow_dag_processing_import_errors)", "import errors"),)),
    ),
)

GPU = Dashboard(
    "mlplatform-gpu",
    "GPU pools",
    "GPU utilisation and framebuffer memory per node pool, from the DCGM exporter (EKS). On GKE the managed "
    "DCGM package sends these metrics to Cloud Monitoring, whose GPU dashboards show them.",
    (
        Panel("GPU utilisation per pool", (_q(per_pool("DCGM_FI_DEV_GPU_UTIL"), POOL_LEGEND),), "percent"),
        Panel("Framebuffer used per pool", (_q(per_pool("DCGM_FI_DEV_FB_USED"), POOL_LEGEND),), "mbytes"),
        Panel("GPU utilisation per node", (_q("avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}}"),), "percent"),
        Panel(
            "GPU nodes per pool",
            (
                _q(
                    f"count by ({POOL}) (kube_node_labels * on (node) group_left () "
                    '(kube_node_status_capacity{resource="nvidia_com_gpu"} > 0))',
                    POOL_LEGEND,
                ),
            ),
        ),
    ),
)

RAY = Dashboard(
    "mlplatform-ray",
    "Ray",
    "The platform's Ray cluster: node resources, tasks and actors (Ray's own metrics on each node's `metrics` port).",
    (
        Panel(
            "CPU utilisation per node", (_q("avg by (instance) (ray_node_cpu_utilization)", "{{instance}}"),), "percent"
        ),
        Panel("Memory used per node", (_q("sum by (instance) (ray_node_mem_used)", "{{instance}}"),), "bytes"),
        Panel(
            "GPU utilisation per node",
            (_q("avg by (instance) (ray_node_gpus_utilization)", "{{instance}}"),),
            "percent",
        ),
        Panel(
            "Tasks and actors by state",
            (
                _q("sum by (State) (ray_tasks)", "tasks {{State}}"),
                _q("sum by (State) (ray_actors)", "actors {{State}}"),
            ),
        ),
    ),
)

OVERVIEW = Dashboard(
    "mlplatform-overview",
    "Platform overview",
    "Is every scrape target up, what is firing, how much data drifted, whether logs and metrics flow.",
    (
        Panel("Scrape targets down", (_q("sum by (job) (up == 0)", "{{job}}"),)),
        Panel("Firing alerts", (_q('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}"),)),
        Panel(
            "Drift share per dataset", (_q("max by (dataset) (mlplatform_drift_share)", "{{dataset}}"),), "percentunit"
        ),
        Panel("Nodes per pool", (_q(f"count by ({POOL}) (kube_node_labels)", POOL_LEGEND),)),
        Panel(
            "Ingestion",
            (
                _q("sum(rate(prometheus_tsdb_head_samples_appended_total[5m]))", "metric samples/s"),
                _q("sum(rate(loki_distributor_lines_received_total[5m]))", "log lines/s"),
            ),
        ),
        Panel("Platform errors in logs", (_q(f'{{namespace=~"{PLATFORM_NAMESPACES}"}} |~ "(?i)error"'),), logs=True),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, MODEL_SERVING, FEATURE_SERVER, AIRFLOW, GPU, RAY)
