"""Every platform alert, proven with the real promtool (Debian's `prometheus` package; .ci/run installs it):
the generated rule file passes `promtool check rules`, and each alert fires on a bad series and stays
silent on a healthy one (`promtool test rules`).

The input series are shaped as Prometheus would store them on the cluster: the labels and metric names
each pinned exporter emits (read in its source at the pinned version, cited beside it), merged with the
target labels of the platform's own PodMonitor / ServiceMonitor for that exporter (tests/support/scrape.py
runs the monitor the program declares). So a rule that groups by a label that exists only in an exporter's
`target_info`, or matches a status value the exporter never sets, fails here."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.contracts import Namespace
from components.observability.alerts import alertmanager_config, rule_groups
from mlplatform.config import AlertReceiverConfig, AlertThresholds
from tests.support.scrape import Pod, scrape_target, series_text, stored, target_labels
from tests.support.tools import required_tool

T = AlertThresholds()
MINUTE_VALUES = 40  # each input series has a sample a minute for 40 minutes


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def case(inputs: list[dict[str, str]], at: str, alert: str, fires: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": fires}],
    }


def fires(summary: str, severity: str, **labels: str) -> list[dict[str, Any]]:
    return [{"exp_labels": {**labels, "severity": severity}, "exp_annotations": {"summary": summary}}]


def counter(per_minute: float, minutes: int = MINUTE_VALUES) -> str:
    return f"0+{per_minute:g}x{minutes}"


@dataclass(frozen=True)
class Exporter:
    """Where series come from: the pod (labelled as its upstream controller labels it), the platform's
    scrape of it (components/guardrails.py SCRAPES through components/observability/prometheus.py), and the
    labels the exporter itself puts on every series."""

    target: str  # the SCRAPES entry
    pod: Pod
    exposed: Mapping[str, str] = field(default_factory=dict)
    service: str | None = None  # the Service a ServiceMonitor scrapes through

    def series(self, metric: str, values: str, **labels: str) -> dict[str, str]:
        target = scrape_target(self.target)
        merged = stored({**self.exposed, **labels}, target_labels(target, self.pod, self.service), target.honor_labels)
        return {"series": series_text(metric, merged), "values": values}

    def histogram(self, metric: str, bounds: tuple[float, ...], per_minute: Mapping[float, float], **labels: str):
        """Cumulative buckets, _count and _sum of `per_minute` observations a minute (latency -> count)."""
        out = [
            self.series(
                f"{metric}_bucket",
                counter(sum(n for lat, n in per_minute.items() if lat <= le)),
                le=f"{le:g}",
                **labels,
            )
            for le in bounds
        ]
        total = sum(per_minute.values())
        out.append(self.series(f"{metric}_bucket", counter(total), le="+Inf", **labels))
        out.append(self.series(f"{metric}_count", counter(total), **labels))
        out.append(self.series(f"{metric}_sum", counter(sum(lat * n for lat, n in per_minute.items())), **labels))
        return out


# -- Knative 1.21/1.22 queue-proxy, request-metrics-protocol: prometheus ---------------------------------
# The revision pod's labels: knative/serving pkg/reconciler/revision/resources/meta.go makeLabels (the
# revision's labels plus serving.knative.dev/revision and revisionUID) and
# pkg/reconciler/configuration/resources/revision.go updateRevisionLabels (configuration, service, their
# UIDs and the configuration generation), at knative-v1.21.3 and knative-v1.22.1. KServe names the Knative
# Service `<isvc>-predictor` and its revisions `<isvc>-predictor-0000N`.
# The series: pkg/queue/request_metric.go records `kn.serving.invocation.duration` (unit s, latencyBounds)
# with one attribute, http.response.status_code; pkg/queue/sharedmain/otel.go puts k8s.namespace.name,
# kn.service.name, kn.configuration.name and kn.revision.name on the OpenTelemetry *resource*, which
# go.opentelemetry.io/otel/exporters/prometheus (vendored v0.61 / v0.65, UnderscoreEscapingWithSuffixes via
# knative.dev/pkg observability/metrics/prometheus_enabled.go) exports only on `target_info`; every series
# carries the otel_scope_* labels instead (the scope's version and schema URL are empty: no label).
KN_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
KN = "kn_serving_invocation_duration_seconds"
ISVC_NAMESPACE = Namespace.SERVING.value
KSVC = "churn-predictor"


def revision_pod(revision: str, generation: int) -> Pod:
    labels = {
        "serving.knative.dev/service": KSVC,
        "serving.knative.dev/serviceUID": "6f1c2a5e-0000-4000-8000-000000000001",
        "serving.knative.dev/configuration": KSVC,
        "serving.knative.dev/configurationUID": "6f1c2a5e-0000-4000-8000-000000000002",
        "serving.knative.dev/configurationGeneration": str(generation),
        "serving.knative.dev/revision": revision,
        "serving.knative.dev/revisionUID": f"6f1c2a5e-0000-4000-8000-00000000001{generation}",
        "app": revision,
        "serving.kserve.io/inferenceservice": "churn",
        "component": "predictor",
    }
    ports = {"queue-port": 8012, "http-autometric": 9090, "http-usermetric": 9091}
    return Pod(ISVC_NAMESPACE, f"{revision}-deployment-7c9f8b-x2k4q", labels, "queue-proxy", ports)


def queue_proxy(revision: str, generation: int) -> Exporter:
    return Exporter(
        "model-requests", revision_pod(revision, generation), {"otel_scope_name": "knative.dev/serving/pkg/queue"}
    )


STABLE, CANARY = queue_proxy(f"{KSVC}-00001", 1), queue_proxy(f"{KSVC}-00002", 2)
# queue-proxy's outermost handler is otelhttp (knative/serving knative-v1.21.3 pkg/queue/sharedmain/
# handlers.go mainHandler: otelhttp.NewHandler with the same MeterProvider, probes filtered out; otelhttp
# v0.64.0 per go.mod), so every answer the client gets, the timeout handler's 504 and the breaker's 503
# included, is in http.server.request.duration with its stable semconv attributes; the inner
# kn_serving_invocation_duration only sees what reached the model.
OTELHTTP = "http_server_request_duration_seconds"
OTELHTTP_SCOPE = {
    "otel_scope_name": "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
    "otel_scope_version": "0.64.0",
}
OTELHTTP_ATTRIBUTES = {
    "http_request_method": "POST",
    "network_protocol_name": "http",
    "network_protocol_version": "1.1",
    "server_address": f"{KSVC}.{ISVC_NAMESPACE}.svc.cluster.local",
    "url_scheme": "http",
}


def requests(rev: Exporter, ok: float, errors: float, timeouts: float = 0) -> list[dict[str, str]]:
    """`ok` 200s and `errors` 500s from the model, `timeouts` 504s from queue-proxy's timeout handler."""
    outer = Exporter(rev.target, rev.pod, OTELHTTP_SCOPE)
    return [
        rev.series(f"{KN}_count", counter(ok), http_response_status_code="200"),
        rev.series(f"{KN}_count", counter(errors), http_response_status_code="500"),
        *(
            outer.series(f"{OTELHTTP}_count", counter(n), http_response_status_code=code, **OTELHTTP_ATTRIBUTES)
            for code, n in (("200", ok), ("500", errors), ("504", timeouts))
        ),
    ]


def revision_labels(rev: Exporter) -> dict[str, str]:
    return {
        "namespace": ISVC_NAMESPACE,
        "kn_configuration_name": KSVC,
        "kn_revision_name": rev.pod.labels["serving.knative.dev/revision"],
    }


# -- Feast 0.66 feature server (sdk/python/feast/metrics.py @v0.66.0) ------------------------------------
# feast_feature_server_request_total{endpoint, status} with status "success" or "error" (track_request_latency:
# an exception in the handler is "error"), feast_feature_server_request_latency_seconds{endpoint,
# feature_count, feature_view_count} over the same endpoints: /get-online-features, /push, /materialize,
# /materialize-incremental, /search ... (feature_server.py). Scraped through its Service by a
# ServiceMonitor, whose `endpoint` target label (the port name) renames Feast's own to `exported_endpoint`.
FEAST = "feast_feature_server_request"
FEAST_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FEAST_POD = Pod(
    Namespace.PLATFORM.value,
    "feast-feature-server-5d8c7b9f4-q7w2m",
    {"app.kubernetes.io/name": "feast-feature-server", "app.kubernetes.io/instance": "feast-feature-server"},
    "feast-feature-server",
    {"http": 6566, "metrics": 8000},
)
FEATURE_SERVER = Exporter("feature-server", FEAST_POD, service="feast-feature-server")
ONLINE = {"endpoint": "/get-online-features", "feature_count": "12", "feature_view_count": "2"}

# -- Airflow's StatsD exporter (chart airflow 1.19.0 files/statsd-mappings.yml: airflow.scheduler_heartbeat
# -> airflow_scheduler_heartbeat{type="counter"}; statsd_exporter v0.28.0 serves the classic text format,
# so the counter keeps its name without _total) ---------------------------------------------------------
STATSD = Exporter(
    "airflow-statsd",
    Pod(
        Namespace.PLATFORM.value,
        "airflow-statsd-6b9d7c5f8-mk2pl",
        {"tier": "airflow", "component": "statsd", "release": "airflow"},
        "statsd",
        {"statsd-ingest": 9125, "statsd-scrape": 9102},
    ),
    {"type": "counter"},
)


# -- DCGM exporter 4.5.3-4.8.2 (internal/pkg/rendermetrics/render_metrics.go; Hostname is NODE_NAME, which
# the chart sets from spec.nodeName: internal/pkg/hostname/hostname.go; with the pod-resources mapping
# each GPU's pod, namespace and container too, which the target's own become exported_*) -----------------
def dcgm(node: str) -> Exporter:
    from components.guardrails import DCGM_PODS

    gpu = {
        "gpu": "0",
        "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",
        "pci_bus_id": "00000000:00:1E.0",
        "device": "nvidia0",
        "modelName": "NVIDIA L4",
        "Hostname": node,
        "DCGM_FI_DRIVER_VERSION": "580.95.05",
    }
    workload = {
        "pod": "churn-predictor-00002-deployment-7c9f8b-x2k4q",
        "namespace": ISVC_NAMESPACE,
        "container": "kserve-container",
    }
    pod = Pod(
        Namespace.MONITORING_AGENTS.value, f"dcgm-exporter-{node[-5:]}", dict(DCGM_PODS), "exporter", {"metrics": 9400}
    )
    return Exporter("dcgm", pod, {**gpu, **workload})


# -- the drift job's pushes (jobs/drift/compute_drift.py: grouping key job, dataset), through the
# Pushgateway v1.11 (which adds instance="" to a group pushed without one), scraped with honor_labels -----
def pushgateway() -> Exporter:
    from components.guardrails import PUSHGATEWAY_PODS

    pod = Pod(
        Namespace.MONITORING.value,
        "prometheus-pushgateway-7f6d5c4b3-abcde",
        dict(PUSHGATEWAY_PODS),
        "pushgateway",
        {"metrics": 9091},
    )
    return Exporter("pushgateway", pod, {"job": "mlplatform-drift", "dataset": "inference", "instance": ""})


# -- Loki 3.7 (pkg/distributor/distributor.go: lines_received_total{tenant, is_internal_stream, policy,
# format}; auth off: tenant "fake") and the stack's own up / Prometheus series ----------------------------
def loki() -> Exporter:
    from components.guardrails import LOKI_PODS

    pod = Pod(Namespace.MONITORING.value, "loki-0", dict(LOKI_PODS), "loki", {"http-metrics": 3100, "grpc": 9095})
    return Exporter("loki", pod, {"tenant": "fake", "is_internal_stream": "false", "format": "loki"})


def up(job: str, values: str) -> dict[str, str]:
    return {
        "series": f'up{{job="{job}", namespace="{Namespace.MONITORING.value}", instance="10.1.2.9:9093"}}',
        "values": values,
    }


# kube-prometheus-stack's own ServiceMonitors: job is the Service's name (`<release>-prometheus`, ...)
PROMETHEUS_JOB, ALERTMANAGER_JOB = "kube-prometheus-stack-prometheus", "kube-prometheus-stack-alertmanager"


def serving_cases() -> list[dict[str, Any]]:
    canary_5xx = f"{KSVC}-00002 answers more than {T.canary_error_rate:.0%} of requests with 5xx"
    slow = f"{KSVC}-00002 p99 latency above {T.canary_p99_seconds}s"
    fast, slow_dist = {0.05: 6000.0}, {0.05: 30.0, 2.4: 30.0}
    return [
        # a 1 % canary failing half its requests beside a healthy revision with 100x its traffic: the alert
        # fires for the canary, and only for it
        case(
            requests(STABLE, 6000, 0) + requests(CANARY, 30, 30),
            "15m",
            "InferenceRevisionErrorRate",
            fires(canary_5xx, "critical", **revision_labels(CANARY)),
        ),
        case(requests(STABLE, 6000, 6) + requests(CANARY, 60, 0), "15m", "InferenceRevisionErrorRate", []),
        # a canary whose every other request times out: queue-proxy answers 504 itself, and the model's own
        # metric never sees those requests
        case(
            requests(STABLE, 6000, 0) + requests(CANARY, 30, 0, timeouts=30),
            "15m",
            "InferenceRevisionErrorRate",
            fires(canary_5xx, "critical", **revision_labels(CANARY)),
        ),
        case(
            STABLE.histogram(KN, KN_BOUNDS, fast, http_response_status_code="200")
            + CANARY.histogram(KN, KN_BOUNDS, slow_dist, http_response_status_code="200"),
            "25m",
            "InferenceRevisionLatencyP99",
            fires(slow, "warning", **revision_labels(CANARY)),
        ),
        case(
            STABLE.histogram(KN, KN_BOUNDS, fast, http_response_status_code="200")
            + CANARY.histogram(KN, KN_BOUNDS, {0.05: 60.0}, http_response_status_code="200"),
            "25m",
            "InferenceRevisionLatencyP99",
            [],
        ),
    ]


def feature_cases() -> list[dict[str, Any]]:
    s = FEATURE_SERVER.series
    failing = f"/get-online-features: more than {T.feature_server_error_rate:.0%} of feature server requests fail"
    lookups_slow = f"online feature lookups p99 above {T.feature_server_p99_seconds}s"
    online_fast = FEATURE_SERVER.histogram(f"{FEAST}_latency_seconds", FEAST_BOUNDS, {0.01: 600.0}, **ONLINE)
    # materialization and pushes take seconds; they are not online reads
    slow_writes = FEATURE_SERVER.histogram(
        f"{FEAST}_latency_seconds",
        FEAST_BOUNDS,
        {8.0: 30.0},
        endpoint="/materialize",
        feature_count="",
        feature_view_count="",
    ) + FEATURE_SERVER.histogram(
        f"{FEAST}_latency_seconds", FEAST_BOUNDS, {3.0: 60.0}, endpoint="/push", feature_count="", feature_view_count=""
    )
    return [
        case(
            [
                s(f"{FEAST}_total", counter(540), endpoint="/get-online-features", status="success"),
                s(f"{FEAST}_total", counter(60), endpoint="/get-online-features", status="error"),
            ],
            "15m",
            "FeatureServerErrorRate",
            fires(failing, "critical", exported_endpoint="/get-online-features"),
        ),
        case(
            [s(f"{FEAST}_total", counter(600), endpoint="/get-online-features", status="success")],
            "15m",
            "FeatureServerErrorRate",
            [],
        ),
        case(
            FEATURE_SERVER.histogram(f"{FEAST}_latency_seconds", FEAST_BOUNDS, {0.01: 540.0, 0.8: 60.0}, **ONLINE),
            "25m",
            "FeatureServerLatencyP99",
            fires(lookups_slow, "warning"),
        ),
        case(online_fast + slow_writes, "25m", "FeatureServerLatencyP99", []),
    ]


def platform_cases() -> list[dict[str, Any]]:
    n = T.airflow_heartbeat_minutes
    beats = "0+1x10 " + f"10x{MINUTE_VALUES}"  # the scheduler beats for 10 minutes, then stops
    missing = f"no Airflow scheduler heartbeat for {n} minutes"
    idle = f"gpu-node-1 runs its GPUs below {T.gpu_idle_percent}% for {T.gpu_idle_minutes} minutes: scale the pool down"
    idle_series, idle_at = f"x{T.gpu_idle_minutes + 20}", f"{T.gpu_idle_minutes + 10}m"
    heartbeat = STATSD.series
    return [
        # the documented wait: firing n minutes after the last beat (within the minute), not before
        case(
            [heartbeat("airflow_scheduler_heartbeat", beats)],
            f"{10 + n + 1}m",
            "AirflowSchedulerHeartbeatMissing",
            fires(missing, "critical"),
        ),
        case(
            [heartbeat("airflow_scheduler_heartbeat", beats)], f"{10 + n - 1}m", "AirflowSchedulerHeartbeatMissing", []
        ),
        # no scheduler (the StatsD exporter runs, the heartbeat was never sent), for n minutes
        case(
            [heartbeat("airflow_executor_open_slots", "32x30")],
            f"{n + 1}m",
            "AirflowSchedulerHeartbeatMissing",
            fires(missing, "critical"),
        ),
        case([heartbeat("airflow_executor_open_slots", "32x30")], f"{n - 1}m", "AirflowSchedulerHeartbeatMissing", []),
        case([heartbeat("airflow_scheduler_heartbeat", counter(1))], "30m", "AirflowSchedulerHeartbeatMissing", []),
        case(
            [dcgm("gpu-node-1").series("DCGM_FI_DEV_GPU_UTIL", f"2{idle_series}")],
            idle_at,
            "GpuNodeIdle",
            fires(idle, "info", Hostname="gpu-node-1"),
        ),
        case([dcgm("gpu-node-2").series("DCGM_FI_DEV_GPU_UTIL", f"80{idle_series}")], idle_at, "GpuNodeIdle", []),
    ]


def monitoring_cases() -> list[dict[str, Any]]:
    samples = "prometheus_tsdb_head_samples_appended_total"
    prom = {"job": PROMETHEUS_JOB, "namespace": Namespace.MONITORING.value, "instance": "10.1.2.8:9090"}
    appended = {"series": series_text(samples, {**prom, "type": "float"}), "values": "0+100x10 1000x30"}
    lines = "loki_distributor_lines_received_total"
    logs = loki().series
    return [
        # appends stop at minute 10: the README's "no samples appended for 10 m"
        case([appended], "21m", "PrometheusNotIngesting", fires("Prometheus appends no samples", "critical")),
        case([appended], "19m", "PrometheusNotIngesting", []),
        case(
            [up(ALERTMANAGER_JOB, "0x20")],
            "10m",
            "AlertmanagerDown",
            fires("no Alertmanager is up: alerts are not delivered", "critical"),
        ),
        case([up(ALERTMANAGER_JOB, "1x20")], "10m", "AlertmanagerDown", []),
        case(
            [up(f"{Namespace.MONITORING.value}/loki", "0x20")],
            "10m",
            "LokiDown",
            fires("no Loki replica is up: the cluster's logs are not stored", "critical"),
        ),
        case([up(f"{Namespace.MONITORING.value}/loki", "1x20")], "10m", "LokiDown", []),
        # lines stop at minute 10: the README's "no log lines received for 15 m"
        case(
            [logs(lines, "0+500x10 5000x30")],
            "26m",
            "LokiNotIngesting",
            fires("Loki has received no log lines for 15 minutes: Alloy is not shipping", "warning"),
        ),
        case([logs(lines, "0+500x10 5000x30")], "24m", "LokiNotIngesting", []),
    ]


def drift_cases() -> list[dict[str, Any]]:
    h = T.drift_stale_hours
    push = pushgateway().series
    last_success = "mlplatform_drift_last_success_timestamp_seconds"
    drifted = f"inference: at least {T.drift_share:.0%} of the compared features drifted"
    stale = f"no successful drift run for {h} hours: the job fails or its samples are missing"
    # the last success was at minute 1 and the job never succeeded again (healthy: it moves every run)
    frozen, minutes = f"60x{h * 60 + 30}", h * 60 + 30
    return [
        case(
            [push("mlplatform_drift_share", "0.67x10")],
            "5m",
            "DriftShareHigh",
            fires(drifted, "warning", dataset="inference"),
        ),
        case([push("mlplatform_drift_share", "0.2x10")], "5m", "DriftShareHigh", []),
        # the documented wait: firing h hours after the last success (within the minute), not before
        case(
            [push(last_success, frozen)], f"{h * 60 + 2}m", "DriftStale", fires(stale, "warning", dataset="inference")
        ),
        case([push(last_success, frozen)], f"{h * 60}m", "DriftStale", []),
        case([push(last_success, f"0+60x{minutes}")], f"{minutes}m", "DriftStale", []),
        # never a successful run: after h hours
        case(
            [push("mlplatform_drift_share", f"0.1x{minutes}")], f"{h * 60 + 1}m", "DriftStale", fires(stale, "warning")
        ),
        case([push("mlplatform_drift_share", f"0.1x{minutes}")], f"{h * 60 - 1}m", "DriftStale", []),
    ]


def cases() -> list[dict[str, Any]]:
    return serving_cases() + feature_cases() + platform_cases() + monitoring_cases() + drift_cases()


def run_promtool_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    tool = promtool()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(T)}, sort_keys=False))
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run([tool, "test", "rules", str(unit)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = {r["alert"] for g in rule_groups(T) for r in g["rules"]}
    tested = [t["alert_rule_test"][0] for t in cases()]
    assert {t["alertname"] for t in tested if t["exp_alerts"]} == alerts
    assert {t["alertname"] for t in tested if not t["exp_alerts"]} == alerts


def test_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(T)}, sort_keys=False))
    check = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    result = run_promtool_tests(tmp_path, cases())
    assert result.returncode == 0, result.stdout + result.stderr


def test_series_carry_the_exporters_labels_not_the_resource_attributes() -> None:
    """The shape the cases rely on: a queue-proxy series has no k8s_namespace_name / kn_revision_name of
    its own (those are OpenTelemetry resource attributes: target_info only), Feast's endpoint label is
    renamed by the ServiceMonitor's, the Pushgateway's job survives (honor_labels)."""
    [count] = [s for s in requests(CANARY, 1, 0) if s["series"].startswith(f"{KN}_count{{") and '"200"' in s["series"]]
    assert (
        "k8s_namespace_name" not in count["series"]
        and 'otel_scope_name="knative.dev/serving/pkg/queue"' in count["series"]
    )
    feast = FEATURE_SERVER.series(f"{FEAST}_total", "1", endpoint="/push", status="success")["series"]
    assert 'exported_endpoint="/push"' in feast and 'endpoint="metrics"' in feast
    assert 'job="mlplatform-drift"' in pushgateway().series("mlplatform_drift_share", "1")["series"]
    assert scrape_target("model-requests").port == "http-usermetric"


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a rule with a PromQL syntax error fails it."""
    tool = promtool()
    groups = rule_groups(T)
    groups[0]["rules"][0]["expr"] = "sum(rate(x[5m]) >"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    assert subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, timeout=60).returncode != 0


def amtool() -> str:
    return required_tool("amtool", "prometheus-alertmanager")


@pytest.mark.parametrize(
    "receiver",
    [
        None,
        AlertReceiverConfig(kind="webhook", secret_name="oncall-webhook"),
        AlertReceiverConfig(kind="slack", secret_name="slack-alerts", secret_key="api-url"),
    ],
    ids=["none", "webhook", "slack"],
)
def test_alertmanager_config_passes_amtool_and_routes_only_when_configured(tmp_path: Path, receiver) -> None:
    """Debian's amtool is Alertmanager 0.25, which predates the webhook's `url_file` (0.26; the pinned
    kube-prometheus-stack runs v0.34.0): for the webhook case amtool checks the config with that one field
    spelt as the older `url`, everything else as deployed."""
    config = alertmanager_config(receiver)
    checked = yaml.safe_load(yaml.safe_dump(config))
    for r in checked["receivers"]:
        for hook in r.get("webhook_configs", []):
            hook["url"] = "https://alerts.invalid/" + hook.pop("url_file").rsplit("/", 1)[-1]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(checked, sort_keys=False))
    result = subprocess.run([amtool(), "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    routed = {r["receiver"] for r in config["route"]["routes"]}
    assert ("platform" in routed) == (receiver is not None)
    if receiver is not None:
        [platform] = [r for r in config["receivers"] if r["name"] == "platform"]
        [target] = next(v for k, v in platform.items() if k.endswith("_configs"))
        assert next(iter(v for k, v in target.items() if k.endswith("_file"))).endswith(
            f"/{receiver.secret_name}/{receiver.secret_key}"
        )  # the URL stays in the Secret
