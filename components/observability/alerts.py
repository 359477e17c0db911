"""The platform's alert rules, generated from config thresholds. One source for the PrometheusRule the
program declares and for `promtool check rules` / `promtool test rules` in tests/test_alerts.py, which
prove each alert fires on a synthetic bad series and stays silent on a healthy one.

Metric names are those the components export today (serving-observability-facts.md §5):
Knative ≥ 1.19 queue-proxy `kn_serving_invocation_duration_seconds_*` labelled by `kn_revision_name` and
`http_response_status_code`; the Feast feature server's `feast_feature_server_request_*`; Airflow's
StatsD `airflow_scheduler_heartbeat` counter; DCGM's `DCGM_FI_DEV_GPU_UTIL`.
"""

from __future__ import annotations

from typing import Any

from mlplatform.config import AlertReceiverConfig, AlertThresholds

CANARY = "kn_serving_invocation_duration_seconds"
FEAST = "feast_feature_server_request"


def _alert(name: str, expr: str, minutes: int, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": f"{minutes}m",
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def rule_groups(t: AlertThresholds) -> list[dict[str, Any]]:
    """Prometheus rule groups (the PrometheusRule's spec.groups and a promtool rule file's groups)."""
    by_revision = "sum by (k8s_namespace_name, kn_configuration_name, kn_revision_name)"
    serving = [
        # the deployment flow's canary signal: a revision's share of 5xx answers, once it has real traffic
        _alert(
            "InferenceRevisionErrorRate",
            f'({by_revision} (rate({CANARY}_count{{http_response_status_code=~"5.."}}[5m])) '
            f"/ {by_revision} (rate({CANARY}_count[5m]))) > {t.canary_error_rate} "
            f"and {by_revision} (rate({CANARY}_count[5m])) > 0.1",
            5,
            "critical",
            f"{{{{ $labels.kn_revision_name }}}} answers more than {t.canary_error_rate:.0%} of requests with 5xx",
        ),
        _alert(
            "InferenceRevisionLatencyP99",
            f"histogram_quantile(0.99, sum by (le, k8s_namespace_name, kn_revision_name) "
            f"(rate({CANARY}_bucket[5m]))) > {t.canary_p99_seconds}",
            10,
            "warning",
            f"{{{{ $labels.kn_revision_name }}}} p99 latency above {t.canary_p99_seconds}s",
        ),
    ]
    features = [
        _alert(
            "FeatureServerErrorRate",
            f'sum(rate({FEAST}_total{{status=~"5.."}}[5m])) / sum(rate({FEAST}_total[5m])) '
            f"> {t.feature_server_error_rate}",
            5,
            "critical",
            f"the feature server answers more than {t.feature_server_error_rate:.0%} of requests with 5xx",
        ),
        _alert(
            "FeatureServerLatencyP99",
            f"histogram_quantile(0.99, sum by (le) (rate({FEAST}_latency_seconds_bucket[5m]))) "
            f"> {t.feature_server_p99_seconds}",
            10,
            "warning",
            f"online feature lookups p99 above {t.feature_server_p99_seconds}s",
        ),
    ]
    platform = [
        _alert(
            "AirflowSchedulerHeartbeatMissing",
            f"sum(increase(airflow_scheduler_heartbeat[{t.airflow_heartbeat_minutes}m])) == 0 "
            "or absent(airflow_scheduler_heartbeat)",
            t.airflow_heartbeat_minutes,
            "critical",
            f"no Airflow scheduler heartbeat for {t.airflow_heartbeat_minutes} minutes",
        ),
        _alert(
            "GpuNodeIdle",
            f"avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL) < {t.gpu_idle_percent}",
            t.gpu_idle_minutes,
            "info",
            "{{ $labels.Hostname }} runs its GPUs below "
            f"{t.gpu_idle_percent}% for {t.gpu_idle_minutes} minutes: scale the pool down",
        ),
    ]
    drift = [
        # the drift job's latest push per dataset (the Pushgateway keeps it until the next run replaces it)
        _alert(
            "DriftShareHigh",
            f"max by (dataset) (mlplatform_drift_share) >= {t.drift_share}",
            1,
            "warning",
            f"{{{{ $labels.dataset }}}}: at least {t.drift_share:.0%} of the compared features drifted",
        ),
        _alert(
            "DriftStale",
            f"(time() - max by (dataset) (mlplatform_drift_last_success_timestamp_seconds)) > "
            f"{t.drift_stale_hours * 3600} or absent(mlplatform_drift_last_success_timestamp_seconds)",
            t.drift_stale_hours * 60,
            "warning",
            f"no successful drift run for {t.drift_stale_hours} hours: the job fails or its samples are missing",
        ),
    ]
    monitoring = [
        _alert(
            "PrometheusNotIngesting",
            "sum(rate(prometheus_tsdb_head_samples_appended_total[5m])) == 0",
            10,
            "critical",
            "Prometheus appends no samples",
        ),
        _alert(
            "LokiDown",
            'absent(up{job=~".*loki.*"} == 1)',
            5,
            "critical",
            "no Loki replica is up: the cluster's logs are not stored",
        ),
        _alert(
            "LokiNotIngesting",
            "sum(rate(loki_distributor_lines_received_total[10m])) == 0",
            15,
            "warning",
            "Loki has received no log lines for 15 minutes: Alloy is not shipping",
        ),
        _alert(
            "AlertmanagerDown",
            'absent(up{job=~".*alertmanager.*"} == 1)',
            5,
            "critical",
            "no Alertmanager is up: alerts are not delivered",
        ),
    ]
    return [
        {"name": "mlplatform.serving", "rules": serving},
        {"name": "mlplatform.features", "rules": features},
        {"name": "mlplatform.platform", "rules": platform},
        {"name": "mlplatform.drift", "rules": drift},
        {"name": "mlplatform.monitoring", "rules": monitoring},
    ]


SECRETS_DIR = "/etc/alertmanager/secrets"  # where the operator mounts alertmanagerSpec.secrets


def alertmanager_config(receiver: AlertReceiverConfig | None) -> dict[str, Any]:
    """Alertmanager's routing: the platform's critical and warning alerts to the configured receiver, read
    from the Secret the operator mounts (the URL never enters values or state); nothing when none is set."""
    route: dict[str, Any] = {
        "group_by": ["namespace", "alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "12h",
        "receiver": "null",
        "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}],
    }
    receivers: list[dict[str, Any]] = [{"name": "null"}]
    if receiver is not None:
        url_file = f"{SECRETS_DIR}/{receiver.secret_name}/{receiver.secret_key}"
        target = (
            {"webhook_configs": [{"url_file": url_file, "send_resolved": True}]}
            if receiver.kind == "webhook"
            else {"slack_configs": [{"api_url_file": url_file, "send_resolved": True}]}
        )
        receivers.append({"name": "platform", **target})
        route["routes"].append({"receiver": "platform", "matchers": ['severity =~ "critical|warning"']})
    return {"global": {"resolve_timeout": "5m"}, "route": route, "receivers": receivers}
