"""In-cluster PostgreSQL's monitoring (components/observability/postgres.py): the alerts on WAL archiving and base
backups proven with the real promtool on series shaped as CloudNativePG 1.30.0's instance manager and the Barman
Cloud plugin v0.13.0 emit them (components/observability/alerts.py cites where), merged with the target labels of
the PodMonitor the program declares (tests/support/scrape.py); the scrape's flow decided against the planned
NetworkPolicies (Prometheus reaches the instances' 9187, nothing else opens); and none of it on a stack whose
PostgreSQL is managed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.contracts import Namespace
from components.guardrails import CNPG_INSTANCE_PODS, CNPG_METRICS_PORT, CNPG_SCRAPE, PROMETHEUS_PODS
from components.observability.alerts import (
    BACKUP_STALE_HOURS,
    LAST_BACKUP,
    WAL_ARCHIVE_FAILING_MINUTES,
    postgres_rule_groups,
)
from components.observability.postgres import RULE_NAME
from mlplatform.connections import addresses
from mlplatform.netpol import Pod as NetPod
from mlplatform.netpol import PolicySet
from tests.support.crds import spec_schema
from tests.support.scrape import Pod, series_text, stored, target_labels
from tests.test_alerts import case, fires, promtool

IN_CLUSTER, MANAGED = ("dev", "gcp-dev", "local"), ("prod", "gcp-prod")
DATA = Namespace.DATA.value
ARCHIVER = "cnpg_pg_stat_archiver"
FAILING = "postgres-1 fails to archive WAL: pg_wal grows until the volume is full"
STALE = f"no successful PostgreSQL base backup for {BACKUP_STALE_HOURS} hours: the daily backup fails"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def instance(n: int, role: str) -> Pod:
    """An instance pod as the operator labels it (cloudnative-pg v1.30.0 pkg/specs/pods.go buildInstance; the
    instance manager adds cnpg.io/instanceRole) with the postgres container's ports."""
    name = f"postgres-{n}"
    labels = {
        **CNPG_INSTANCE_PODS,
        "cnpg.io/instanceName": name,
        "cnpg.io/instanceRole": role,
        "app.kubernetes.io/name": "postgresql",
        "app.kubernetes.io/instance": "postgres",
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/managed-by": "cloudnative-pg",
    }
    ports = {"postgresql": 5432, "metrics": CNPG_METRICS_PORT, "status": 8000}
    return Pod(DATA, name, labels, "postgres", ports, ip=f"10.1.3.{n}")


PRIMARY, REPLICA = instance(1, "primary"), instance(2, "replica")


def series(pod: Pod, metric: str, values: str) -> dict[str, str]:
    """One series as stored: neither the archiver's metrics nor the plugin's carry a label of their own."""
    return {"series": series_text(metric, stored({}, target_labels(CNPG_SCRAPE, pod))), "values": values}


def archiver(archived: str, failed: str) -> list[dict[str, str]]:
    """The primary's pg_stat_archiver epochs (the query runs on the primary only; -1 while never set)."""
    return [
        series(PRIMARY, f"{ARCHIVER}_last_archived_time", archived),
        series(PRIMARY, f"{ARCHIVER}_last_failed_time", failed),
    ]


def last_backup(values: str) -> list[dict[str, str]]:
    """The plugin's timestamp, the same on every instance (each asks the plugin over CNPG-I)."""
    return [series(PRIMARY, LAST_BACKUP, values), series(REPLICA, LAST_BACKUP, values)]


def cases() -> list[dict[str, Any]]:
    w, h = WAL_ARCHIVE_FAILING_MINUTES, BACKUP_STALE_HOURS
    # archiving works for 5 minutes (a segment a minute, epochs in seconds), then every attempt fails
    archived, failing = "60+60x5 360x60", "-1x5 420+60x60"
    # one failure at minute 3, retried successfully the next minute
    healthy_archived, blip = "60+60x65", "-1x2 200x63"
    minutes = h * 60 + 30
    frozen = f"60x{minutes}"  # a backup ended at second 60, none since
    fresh = f"60+60x{minutes}"  # one ends every minute (any newer-than-h-hours one does)
    pod = {"namespace": DATA, "pod": PRIMARY.name}
    return [
        # the failure is newer than the last success from minute 6: pending w minutes, firing after
        case(
            archiver(archived, failing),
            f"{6 + w + 1}m",
            "PostgresWalArchivingFailing",
            fires(FAILING, "critical", **pod),
        ),
        case(archiver(archived, failing), f"{6 + w - 2}m", "PostgresWalArchivingFailing", []),
        case(archiver(healthy_archived, blip), "60m", "PostgresWalArchivingFailing", []),
        # never archived, never failed (-1 both): nothing to say
        case(archiver("-1x60", "-1x60"), "30m", "PostgresWalArchivingFailing", []),
        # the documented wait: firing h hours after the last backup (within the minute), not before
        case(last_backup(frozen), f"{h * 60 + 2}m", "PostgresBackupStale", fires(STALE, "warning", namespace=DATA)),
        case(last_backup(frozen), f"{h * 60}m", "PostgresBackupStale", []),
        case(last_backup(fresh), f"{minutes}m", "PostgresBackupStale", []),
        # never a backup: the plugin reports 0 (no recovery window yet), for h hours
        case(last_backup(f"0x{minutes}"), f"{h * 60 + 1}m", "PostgresBackupStale", fires(STALE, "warning")),
        case(last_backup(f"0x{minutes}"), f"{h * 60 - 1}m", "PostgresBackupStale", []),
    ]


def test_every_postgres_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = {r["alert"] for g in postgres_rule_groups() for r in g["rules"]}
    tested = [t["alert_rule_test"][0] for t in cases()]
    assert {t["alertname"] for t in tested if t["exp_alerts"]} == alerts
    assert {t["alertname"] for t in tested if not t["exp_alerts"]} == alerts


def test_postgres_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": postgres_rule_groups()}, sort_keys=False))
    check = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases()}))
    result = subprocess.run(
        [promtool(), "test", "rules", str(unit)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_series_carry_the_pod_monitors_labels_only() -> None:
    """The labels the rules group by are the PodMonitor's target labels: the exporter adds none (no cluster or
    server label: the plugin's metric has no variable label, the archiver query no LABEL column)."""
    [stored_series] = last_backup("1")[:1]
    text = stored_series["series"]
    assert f'namespace="{DATA}"' in text and f'pod="{PRIMARY.name}"' in text and 'container="postgres"' in text
    assert 'endpoint="metrics"' in text and f'job="monitoring/{CNPG_SCRAPE.name}"' in text
    assert "cluster" not in text


@pytest.mark.parametrize("stack", IN_CLUSTER)
def test_in_cluster_stacks_scrape_and_alert_on_postgres(plan, stack: str) -> None:
    doc = plan(stack)
    [monitor] = [m for m in doc.by_type(POD_MONITOR) if m.inputs["metadata"]["name"] == CNPG_SCRAPE.name]
    spec = monitor.inputs["spec"]
    assert spec["namespaceSelector"]["matchNames"] == [DATA]
    assert spec["selector"]["matchLabels"] == CNPG_INSTANCE_PODS
    [endpoint] = spec["podMetricsEndpoints"]
    # plain HTTP: the Cluster leaves spec.monitoring.tls off
    assert (endpoint["port"], endpoint.get("scheme", "http")) == ("metrics", "http")
    [cluster] = doc.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert not ((cluster.inputs["spec"].get("monitoring") or {}).get("tls") or {}).get("enabled")
    [rule] = [r for r in doc.by_type(PROMETHEUS_RULE) if r.inputs["metadata"]["name"] == RULE_NAME]
    assert json.loads(json.dumps(rule.inputs["spec"]["groups"])) == json.loads(json.dumps(postgres_rule_groups()))


@pytest.mark.parametrize("stack", MANAGED)
def test_managed_stacks_have_no_postgres_scrape_flow_or_rules(plan, stack: str) -> None:
    doc = plan(stack)
    assert not doc.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")  # the premise: PostgreSQL is managed
    assert CNPG_SCRAPE.name not in {m.inputs["metadata"]["name"] for m in doc.by_type(POD_MONITOR)}
    assert RULE_NAME not in {r.inputs["metadata"]["name"] for r in doc.by_type(PROMETHEUS_RULE)}
    policies = doc.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert not [p.name for p in policies if "scrape-cnpg" in p.inputs["metadata"]["name"]]
    # nothing in any policy admits 9187
    ports = [
        port.get("port")
        for p in policies
        for rule in (p.inputs["spec"].get("ingress") or []) + (p.inputs["spec"].get("egress") or [])
        for port in rule.get("ports") or []
    ]
    assert CNPG_METRICS_PORT not in ports


@pytest.mark.parametrize("stack", IN_CLUSTER)
def test_prometheus_reaches_the_instances_metrics_and_nothing_else_opens(plan, stack: str) -> None:
    doc = plan(stack)
    a = addresses(doc)
    policies = PolicySet(doc, a.cni)
    prometheus = NetPod(Namespace.MONITORING.value, {**PROMETHEUS_PODS, "prometheus": "x"}, a.pod)
    primary = NetPod(DATA, {**CNPG_INSTANCE_PODS, "cnpg.io/instanceRole": "primary"}, a.pod)
    assert policies.decide(prometheus, primary, CNPG_METRICS_PORT).allowed
    # not the instance manager's status port, nor 9187 on the operator's or Valkey's pods
    assert not policies.decide(prometheus, primary, 8000).allowed
    operator = NetPod(DATA, {"app.kubernetes.io/name": "cloudnative-pg"}, a.pod)
    valkey = NetPod(DATA, {"app.kubernetes.io/name": "valkey"}, a.pod)
    assert not policies.decide(prometheus, operator, CNPG_METRICS_PORT).allowed
    assert not policies.decide(prometheus, valkey, CNPG_METRICS_PORT).allowed
    # and from no other namespace
    for ns in (Namespace.PLATFORM, Namespace.SERVING, Namespace.TRAINING):
        assert not policies.decide(NetPod(ns.value, {}, a.pod), primary, CNPG_METRICS_PORT).allowed, ns


def test_pod_monitor_validates_against_its_crd(plan) -> None:
    import jsonschema

    schema = spec_schema("monitoring.coreos.com_podmonitors.yaml", "v1")
    [monitor] = [m for m in plan("dev").by_type(POD_MONITOR) if m.inputs["metadata"]["name"] == CNPG_SCRAPE.name]
    spec = json.loads(json.dumps(monitor.inputs["spec"]))
    jsonschema.validate(spec, schema)
    spec["podMetricsEndpoints"][0]["prot"] = "metrics"  # misspelt: the API server would drop it silently
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_postgres_rule_validates_against_its_crd(plan) -> None:
    import jsonschema

    schema = spec_schema("monitoring.coreos.com_prometheusrules.yaml", "v1")
    [rule] = [r for r in plan("local").by_type(PROMETHEUS_RULE) if r.inputs["metadata"]["name"] == RULE_NAME]
    jsonschema.validate(json.loads(json.dumps(rule.inputs["spec"])), schema)
