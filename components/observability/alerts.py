"""The platform's alert rules, generated from config thresholds. One source for the PrometheusRule the
program declares and for `promtool check rules` / `promtool test rules` in tests/test_alerts.py, which
prove each alert fires on a bad series and stays silent on a healthy one, with series shaped as the pinned
exporters and the platform's scrapes really label them.

Labels, per exporter (each read in its source at the pinned version):
- Knative 1.21/1.22 queue-proxy (request-metrics-protocol prometheus): `kn_serving_invocation_duration_
  seconds_*` with only `http_response_status_code` (pkg/queue/request_metric.go); the revision, its
  configuration and namespace are OpenTelemetry resource attributes, which the Prometheus exporter puts on
  `target_info` only; its outermost handler, otelhttp v0.64.0 on the same meter, records every answer the
  client gets (the timeout handler's 504s too) as `http_server_request_duration_seconds_*` with
  `http_response_status_code` (pkg/queue/sharedmain/handlers.go), which the error-rate alert counts. The
  `model-requests` PodMonitor copies the revision pod's Knative labels onto every
  series instead (components/guardrails.py KNATIVE_REVISION_LABELS), and the operator adds `namespace`.
  Chosen over a `target_info` join (every query would need `* on (job, instance) group_left (...)`, and
  target_info's own kn_* labels collide with nothing here but would have to be kept in step) and over OTLP
  push with promoted resource attributes (a second ingestion path and Prometheus-side config for one
  exporter, while the pull scrape and its NetworkPolicy flow already exist).
- Feast 0.66 feature server (sdk/python/feast/metrics.py): `feast_feature_server_request_total{endpoint,
  status}` with status `success` or `error`, and `..._request_latency_seconds{endpoint, ...}` over every
  endpoint (online reads, /push, /materialize...). Scraped through its Service, whose ServiceMonitor sets
  the target label `endpoint` (the port name), so Prometheus stores Feast's as `exported_endpoint`
  (prometheus/prometheus scrape/scrape.go, mutateSampleLabels).
- Airflow's StatsD exporter: `airflow_scheduler_heartbeat{type="counter"}` (airflow chart 1.19.0
  files/statsd-mappings.yml). DCGM: `Hostname` is the node's name (NODE_NAME). The drift job's Pushgateway
  series keep the job's `job` and `dataset` (honor_labels).

Waits: where the README promises "no X for N minutes", the window inside the expression and `for:` add up
to N, so the alert fires N minutes after the last X, not 2N.
"""

from __future__ import annotations

from typing import Any

from components.guardrails import KNATIVE_REVISION_LABELS
from mlplatform.config import AlertReceiverConfig, AlertThresholds

CANARY = "kn_serving_invocation_duration_seconds"
# every answer queue-proxy gives, its own timeout (504) and breaker (503) answers included: its outermost
# handler is otelhttp with the same meter (knative/serving pkg/queue/sharedmain/handlers.go mainHandler;
# otelhttp v0.64.0, stable HTTP semconv), while CANARY is recorded innermost, for requests the model got
ANSWERS = "http_server_request_duration_seconds"
FEAST = "feast_feature_server_request"
# per revision: the operator's namespace label and the revision pod's Knative labels (as relabelled)
CONFIGURATION = KNATIVE_REVISION_LABELS["serving.knative.dev/configuration"]
REVISION = KNATIVE_REVISION_LABELS["serving.knative.dev/revision"]
BY_REVISION = f"namespace, {CONFIGURATION}, {REVISION}"
# Feast's endpoint label, as stored behind the ServiceMonitor's own `endpoint`; the online reads
FEAST_ENDPOINT = "exported_endpoint"
ONLINE_READS = "/get-online-features"


# A revision judged on less traffic than this (requests per second over the window) is not judged at all:
# a handful of requests make any share meaningless
MIN_REVISION_RPS = 0.1


def _selector(metric: str, *matchers: str) -> str:
    """`metric{m1, m2}`, or the bare name when no matcher is given (the alert rules' form)."""
    present = [m for m in matchers if m]
    return f"{metric}{{{', '.join(present)}}}" if present else metric


def revision_requests(matchers: str = "") -> str:
    """Requests per second per revision: every answer queue-proxy gives (ANSWERS), `matchers` (PromQL label
    matchers, e.g. one revision's) narrowing the series."""
    return f"sum by ({BY_REVISION}) (rate({_selector(f'{ANSWERS}_count', matchers)}[5m]))"


def revision_error_rate(matchers: str = "") -> str:
    """Share of 5xx answers per revision, over the same series as `revision_requests`."""
    errors = _selector(f"{ANSWERS}_count", 'http_response_status_code=~"5.."', matchers)
    return f"(sum by ({BY_REVISION}) (rate({errors}[5m])) / {revision_requests(matchers)})"


def revision_p99(matchers: str = "") -> str:
    """p99 latency per revision of the requests the model got (CANARY, queue-proxy's inner histogram)."""
    return f"histogram_quantile(0.99, sum by (le, {BY_REVISION}) (rate({_selector(f'{CANARY}_bucket', matchers)}[5m])))"


# Placeholders of the canary query templates (string.Template syntax; PromQL itself never uses `$`)
CANARY_MATCHERS = f'namespace="${{namespace}}", {REVISION}="${{revision}}"'


def canary_queries(t: AlertThresholds) -> dict[str, Any]:
    """What the deployment DAG (dags/deploy_model.py) judges a canary revision with: the expressions of the
    InferenceRevision* alerts narrowed to one revision (`${namespace}` and `${revision}` to substitute) and
    the same thresholds, so a canary the DAG promotes is one the alerts would not fire on."""
    return {
        "requests": revision_requests(CANARY_MATCHERS),
        "errorRate": revision_error_rate(CANARY_MATCHERS),
        "p99Seconds": revision_p99(CANARY_MATCHERS),
        "minRequestsPerSecond": MIN_REVISION_RPS,
        "maxErrorRate": t.canary_error_rate,
        "maxP99Seconds": t.canary_p99_seconds,
    }


def _alert(name: str, expr: str, minutes: int, severity: str, summary: str) -> dict[str, Any]:
    """An alert rule; `minutes` is its `for:` (none when 0: the wait is already inside the expression)."""
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if minutes:
        rule["for"] = f"{minutes}m"
    return rule | {"labels": {"severity": severity}, "annotations": {"summary": summary}}


def rule_groups(t: AlertThresholds) -> list[dict[str, Any]]:
    """Prometheus rule groups (the PrometheusRule's spec.groups and a promtool rule file's groups)."""
    serving = [
        # the deployment flow's canary signal: a revision's share of 5xx answers, once it has real traffic
        # (the deployment DAG judges its canary with the same expressions: canary_queries)
        _alert(
            "InferenceRevisionErrorRate",
            f"{revision_error_rate()} > {t.canary_error_rate} and {revision_requests()} > {MIN_REVISION_RPS}",
            5,
            "critical",
            f"{{{{ $labels.{REVISION} }}}} answers more than {t.canary_error_rate:.0%} of requests with 5xx",
        ),
        _alert(
            "InferenceRevisionLatencyP99",
            f"{revision_p99()} > {t.canary_p99_seconds}",
            10,
            "warning",
            f"{{{{ $labels.{REVISION} }}}} p99 latency above {t.canary_p99_seconds}s",
        ),
    ]
    by_endpoint = f"sum by ({FEAST_ENDPOINT})"
    features = [
        # per endpoint: a failing /push (the stream's ingestion) or /materialize is as real as failing reads
        _alert(
            "FeatureServerErrorRate",
            f'{by_endpoint} (rate({FEAST}_total{{status="error"}}[5m])) / {by_endpoint} (rate({FEAST}_total[5m])) '
            f"> {t.feature_server_error_rate}",
            5,
            "critical",
            f"{{{{ $labels.{FEAST_ENDPOINT} }}}}: more than {t.feature_server_error_rate:.0%} of feature server "
            "requests fail",
        ),
        # online reads only: /push and /materialize take seconds by design
        _alert(
            "FeatureServerLatencyP99",
            f"histogram_quantile(0.99, sum by (le) "
            f'(rate({FEAST}_latency_seconds_bucket{{{FEAST_ENDPOINT}="{ONLINE_READS}"}}[5m]))) '
            f"> {t.feature_server_p99_seconds}",
            10,
            "warning",
            f"online feature lookups p99 above {t.feature_server_p99_seconds}s",
        ),
    ]
    heartbeat, beat_wait = "airflow_scheduler_heartbeat", t.airflow_heartbeat_minutes
    missing_beat = f"no Airflow scheduler heartbeat for {beat_wait} minutes"
    platform = [
        # the counter stopped: true once the window holds no increase, i.e. beat_wait minutes after the last
        _alert(
            "AirflowSchedulerHeartbeatMissing",
            f"sum(increase({heartbeat}[{beat_wait}m])) == 0",
            0,
            "critical",
            missing_beat,
        ),
        # never beat (no scheduler, or no series at all), for as long
        _alert("AirflowSchedulerHeartbeatMissing", f"absent({heartbeat})", beat_wait, "critical", missing_beat),
        _alert(
            "GpuNodeIdle",
            f"avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL) < {t.gpu_idle_percent}",
            t.gpu_idle_minutes,
            "info",
            "{{ $labels.Hostname }} runs its GPUs below "
            f"{t.gpu_idle_percent}% for {t.gpu_idle_minutes} minutes: scale the pool down",
        ),
    ]
    last_success = "mlplatform_drift_last_success_timestamp_seconds"
    stale = f"no successful drift run for {t.drift_stale_hours} hours: the job fails or its samples are missing"
    drift = [
        # the drift job's latest push per dataset (the Pushgateway keeps it until the next run replaces it)
        _alert(
            "DriftShareHigh",
            f"max by (dataset) (mlplatform_drift_share) >= {t.drift_share}",
            1,
            "warning",
            f"{{{{ $labels.dataset }}}}: at least {t.drift_share:.0%} of the compared features drifted",
        ),
        # the timestamp is the wait itself: no `for:` on top of it
        _alert(
            "DriftStale",
            f"(time() - max by (dataset) ({last_success})) > {t.drift_stale_hours * 3600}",
            0,
            "warning",
            stale,
        ),
        # never a successful run (or the Pushgateway lost it), for as long
        _alert("DriftStale", f"absent({last_success})", t.drift_stale_hours * 60, "warning", stale),
    ]
    monitoring = [
        # 5 m of no appends in the window, held 5 m: "no samples appended for 10 minutes"
        _alert(
            "PrometheusNotIngesting",
            "sum(rate(prometheus_tsdb_head_samples_appended_total[5m])) == 0",
            5,
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
        # 10 m window, held 5 m: "no log lines for 15 minutes"
        _alert(
            "LokiNotIngesting",
            "sum(rate(loki_distributor_lines_received_total[10m])) == 0",
            5,
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


# -- in-cluster PostgreSQL (components/observability/postgres.py): only where PostgreSQL runs in the cluster ------
# The series, as the instance manager's /metrics serves them (cloudnative-pg v1.30.0):
# - `cnpg_pg_stat_archiver_*`: the default monitoring query pg_stat_archiver (config/manager/default-monitoring.yaml,
#   the same in chart cloudnative-pg 0.29.0 values.yaml monitoringQueriesConfigMap), named `cnpg_<query>_<column>`
#   (pkg/management/postgres/metrics/collector.go ParseQueries, mappings.go ToMetricMap) with no label of its own (no
#   LABEL column), COUNTERs without a `_total`; its predicate runs it on the primary only. last_archived_time and
#   last_failed_time are epochs, -1 while never set.
# - `barman_cloud_cloudnative_pg_io_last_available_backup_timestamp`: the Barman Cloud plugin's (plugin-barman-cloud
#   v0.13.0 internal/cnpgi/instance/metrics.go: the plugin name with `.` and `-` as `_`, no labels), the end of the
#   newest base backup in the object store's catalog (recovery_window.go), 0 until there is one. The instance
#   manager asks the plugin for it over CNPG-I on every scrape and serves it beside its own
#   (pkg/management/postgres/metrics/collector.go pluginCollector). The operator's own
#   `cnpg_collector_last_available_backup_timestamp` reads the Cluster's status.lastSuccessfulBackup, which only the
#   in-tree barmanObjectStore and volume snapshots set (pkg/management/postgres/backup.go,
#   internal/controller/backup_controller.go): with the plugin it stays 0.
# Every series carries only the PodMonitor's target labels (namespace, pod, container, endpoint, job, instance).
ARCHIVER = "cnpg_pg_stat_archiver"
LAST_BACKUP = "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
# the archiver retries a failed segment within a minute and CloudNativePG switches segments every 5 minutes
# (archive_timeout): a failure newer than the last success for this long is archiving that stays broken
WAL_ARCHIVE_FAILING_MINUTES = 10
# the ScheduledBackup runs daily (components/data/in_cluster/backups.py SCHEDULE): one missed run plus a day's slack
BACKUP_STALE_HOURS = 48


def postgres_rule_groups() -> list[dict[str, Any]]:
    """The rule group for in-cluster PostgreSQL's WAL archiving and base backups."""
    by_pod = "max by (namespace, pod)"
    stale = f"no successful PostgreSQL base backup for {BACKUP_STALE_HOURS} hours: the daily backup fails"
    rules = [
        # WAL piles up in pg_wal until the volume fills and PostgreSQL stops; point-in-time recovery stops at the
        # last archived segment
        _alert(
            "PostgresWalArchivingFailing",
            f"{by_pod} ({ARCHIVER}_last_failed_time) > {by_pod} ({ARCHIVER}_last_archived_time)",
            WAL_ARCHIVE_FAILING_MINUTES,
            "critical",
            "{{ $labels.pod }} fails to archive WAL: pg_wal grows until the volume is full",
        ),
        # the timestamp is the wait itself: no `for:` on top of it
        _alert(
            "PostgresBackupStale",
            f"(time() - max by (namespace) ({LAST_BACKUP} > 0)) > {BACKUP_STALE_HOURS * 3600}",
            0,
            "warning",
            stale,
        ),
        # never a backup (the plugin reports 0) or no series at all, for as long
        _alert("PostgresBackupStale", f"absent({LAST_BACKUP} > 0)", BACKUP_STALE_HOURS * 60, "warning", stale),
    ]
    return [{"name": "mlplatform.postgres", "rules": rules}]
