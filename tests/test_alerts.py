"""Every platform alert, proven with the real promtool (Debian's `prometheus` package; .ci/run installs it):
the generated rule file passes `promtool check rules`, and each alert fires on a synthetic bad series and
stays silent on a healthy one (`promtool test rules`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability.alerts import alertmanager_config, rule_groups
from mlplatform.config import AlertReceiverConfig, AlertThresholds
from tests.support.tools import required_tool

T = AlertThresholds()
DRIFT_JOB = {"job": "mlplatform-drift", "dataset": "inference", "instance": ""}
REV = {"k8s_namespace_name": "model-serving", "kn_configuration_name": "churn-predictor"}


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def _labels(**labels: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    return {"series": f"{metric}{_labels(**labels)}", "values": values}


def case(inputs: list[dict[str, str]], at: str, alert: str, fires: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": fires}],
    }


def fires(summary: str, severity: str, **labels: str) -> list[dict[str, Any]]:
    return [{"exp_labels": {**labels, "severity": severity}, "exp_annotations": {"summary": summary}}]


def revision(name: str, errors: str, ok: str) -> list[dict[str, str]]:
    metric = "kn_serving_invocation_duration_seconds_count"
    return [
        series(metric, errors, **REV, kn_revision_name=name, http_response_status_code="500"),
        series(metric, ok, **REV, kn_revision_name=name, http_response_status_code="200"),
    ]


def histogram(metric: str, buckets: dict[str, str], **labels: str) -> list[dict[str, str]]:
    return [series(f"{metric}_bucket", values, **labels, le=le) for le, values in buckets.items()]


SLOW = {"0.1": "0x30", "0.5": "0x30", "1": "0x30", "2.5": "0+60x30", "+Inf": "0+60x30"}
FAST = {"0.1": "0+60x30", "0.5": "0+60x30", "1": "0+60x30", "2.5": "0+60x30", "+Inf": "0+60x30"}


def cases() -> list[dict[str, Any]]:
    new, old = "churn-predictor-00002", "churn-predictor-00001"
    canary = f"{new} answers more than {T.canary_error_rate:.0%} of requests with 5xx"
    slow_rev = {"k8s_namespace_name": "model-serving", "kn_revision_name": new}
    knative, feast = "kn_serving_invocation_duration_seconds", "feast_feature_server_request"
    lookups = {"endpoint": "/get-online-features"}
    feast_5xx = f"the feature server answers more than {T.feature_server_error_rate:.0%} of requests with 5xx"
    idle = f"gpu-node-1 runs its GPUs below {T.gpu_idle_percent}% for {T.gpu_idle_minutes} minutes: scale the pool down"
    idle_series, idle_at = f"x{T.gpu_idle_minutes + 20}", f"{T.gpu_idle_minutes + 10}m"
    samples = "prometheus_tsdb_head_samples_appended_total"
    drifted = f"inference: at least {T.drift_share:.0%} of the compared features drifted"
    last_success, stale_after = "mlplatform_drift_last_success_timestamp_seconds", T.drift_stale_hours * 60 + 10
    stale = f"no successful drift run for {T.drift_stale_hours} hours: the job fails or its samples are missing"
    return [
        # canary error rate: the new revision fails half its requests, the stable one none
        case(
            revision(new, "0+60x20", "0+60x20") + revision(old, "0x20", "0+60x20"),
            "15m",
            "InferenceRevisionErrorRate",
            fires(canary, "critical", **REV, kn_revision_name=new),
        ),
        case(revision(old, "0x20", "0+60x20"), "15m", "InferenceRevisionErrorRate", []),
        case(
            histogram(knative, SLOW, **slow_rev),
            "25m",
            "InferenceRevisionLatencyP99",
            fires(f"{new} p99 latency above {T.canary_p99_seconds}s", "warning", **slow_rev),
        ),
        case(histogram(knative, FAST, **slow_rev), "25m", "InferenceRevisionLatencyP99", []),
        case(
            [
                series(f"{feast}_total", "0+30x20", status="500", **lookups),
                series(f"{feast}_total", "0+60x20", status="200", **lookups),
            ],
            "15m",
            "FeatureServerErrorRate",
            fires(feast_5xx, "critical"),
        ),
        case([series(f"{feast}_total", "0+60x20", status="200", **lookups)], "15m", "FeatureServerErrorRate", []),
        case(
            histogram(f"{feast}_latency_seconds", SLOW, **lookups),
            "25m",
            "FeatureServerLatencyP99",
            fires(f"online feature lookups p99 above {T.feature_server_p99_seconds}s", "warning"),
        ),
        case(histogram(f"{feast}_latency_seconds", FAST, **lookups), "25m", "FeatureServerLatencyP99", []),
        # the scheduler stops beating after 10 minutes
        case(
            [series("airflow_scheduler_heartbeat", "0+1x10 10x30")],
            "30m",
            "AirflowSchedulerHeartbeatMissing",
            fires(f"no Airflow scheduler heartbeat for {T.airflow_heartbeat_minutes} minutes", "critical"),
        ),
        case([series("airflow_scheduler_heartbeat", "0+1x40")], "30m", "AirflowSchedulerHeartbeatMissing", []),
        case(
            [series("DCGM_FI_DEV_GPU_UTIL", f"2{idle_series}", Hostname="gpu-node-1", gpu="0")],
            idle_at,
            "GpuNodeIdle",
            fires(idle, "info", Hostname="gpu-node-1"),
        ),
        case([series("DCGM_FI_DEV_GPU_UTIL", f"80{idle_series}", Hostname="n", gpu="0")], idle_at, "GpuNodeIdle", []),
        case(
            [series(samples, "100x30", job="prometheus")],
            "20m",
            "PrometheusNotIngesting",
            fires("Prometheus appends no samples", "critical"),
        ),
        case([series(samples, "0+100x30", job="prometheus")], "20m", "PrometheusNotIngesting", []),
        case(
            [series("up", "0x20", job="alertmanager-operated")],
            "10m",
            "AlertmanagerDown",
            fires("no Alertmanager is up: alerts are not delivered", "critical"),
        ),
        case([series("up", "1x20", job="alertmanager-operated")], "10m", "AlertmanagerDown", []),
        case(
            [series("up", "0x20", job="monitoring/loki")],
            "10m",
            "LokiDown",
            fires("no Loki replica is up: the cluster's logs are not stored", "critical"),
        ),
        case([series("up", "1x20", job="monitoring/loki")], "10m", "LokiDown", []),
        case(
            [series("loki_distributor_lines_received_total", "500x40", tenant="fake")],
            "35m",
            "LokiNotIngesting",
            fires("Loki has received no log lines for 15 minutes: Alloy is not shipping", "warning"),
        ),
        case(
            [series("loki_distributor_lines_received_total", "0+500x40", tenant="fake")], "35m", "LokiNotIngesting", []
        ),
        # the drift job's pushes, as the Pushgateway exposes them (honor_labels keeps job and dataset)
        case(
            [series("mlplatform_drift_share", "0.67x10", **DRIFT_JOB)],
            "5m",
            "DriftShareHigh",
            fires(drifted, "warning", dataset="inference"),
        ),
        case([series("mlplatform_drift_share", "0.2x10", **DRIFT_JOB)], "5m", "DriftShareHigh", []),
        # the last success stops moving at minute 1; healthy, it moves with every (here: minutely) run
        case(
            [series(last_success, f"60x{stale_after * 2}", **DRIFT_JOB)],
            f"{stale_after * 2}m",
            "DriftStale",
            fires(stale, "warning", dataset="inference"),
        ),
        case([series(last_success, f"0+60x{stale_after * 2}", **DRIFT_JOB)], f"{stale_after * 2}m", "DriftStale", []),
    ]


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = {r["alert"] for g in rule_groups(T) for r in g["rules"]}
    tested = [t["alert_rule_test"][0] for t in cases()]
    assert {t["alertname"] for t in tested if t["exp_alerts"]} == alerts
    assert {t["alertname"] for t in tested if not t["exp_alerts"]} == alerts


def test_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    tool = promtool()
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(T)}, sort_keys=False))
    check = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases()}))
    result = subprocess.run(
        [tool, "test", "rules", str(unit)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
