"""Grafana as planned: the platform's dashboards are ConfigMaps the dashboard sidecar loads, every panel
query is valid PromQL (the real promtool checks each as a recording rule), and Grafana's data sources are
this stack's Prometheus, Alertmanager and Loki."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.contracts import POOL_LABEL, Namespace
from components.observability.dashboards import DASHBOARDS, LOKI_UID, POOL, PROMETHEUS_UID
from mlplatform.plan.document import PlanDocument
from tests.support.graph import helm_release
from tests.support.tools import required_tool
from tests.test_alerts import CANARY, FEAST, FEAST_BOUNDS, FEATURE_SERVER, KN, KN_BOUNDS, ONLINE, STABLE, requests

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]  # local: the in-cluster wiring on kind


def grafana_values(doc: PlanDocument) -> dict:
    return helm_release(doc, "kube-prometheus-stack").inputs["values"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = required_tool("promtool", "prometheus")
    rules = [
        {"record": f"dashboard:{d.uid.replace('-', '_')}:{i}", "expr": expr}
        for d in DASHBOARDS
        for i, expr in enumerate(d.prometheus_queries())
    ]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # and promtool does reject a broken one
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (a (b)"}]}]}))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0


def test_per_revision_and_per_endpoint_panels_see_each_one_on_real_series(tmp_path: Path) -> None:
    """On series shaped as the cluster stores them (tests/test_alerts.py: a stable revision and a canary of
    the same Knative Service, scraped by the platform's PodMonitor; Feast behind its ServiceMonitor), every
    Model serving panel shows one line per revision, not one for all, and the feature server's panels one
    per endpoint."""
    promtool = required_tool("promtool", "prometheus")
    model_serving = next(d for d in DASHBOARDS if d.uid == "mlplatform-model-serving")
    feature_server = next(d for d in DASHBOARDS if d.uid == "mlplatform-feature-server")
    inputs = (
        requests(STABLE, 6000, 6)
        + requests(CANARY, 60, 3)
        + STABLE.histogram(KN, KN_BOUNDS, {0.05: 6000.0}, http_response_status_code="200")
        + CANARY.histogram(KN, KN_BOUNDS, {0.5: 60.0}, http_response_status_code="200")
        + [
            FEATURE_SERVER.series(f"{FEAST}_total", "0+60x30", endpoint=e, status="success")
            for e in ("/push", "/get-online-features")
        ]
        + FEATURE_SERVER.histogram(f"{FEAST}_latency_seconds", FEAST_BOUNDS, {0.01: 60.0}, **ONLINE)
        + FEATURE_SERVER.histogram(f"{FEAST}_latency_seconds", FEAST_BOUNDS, {3.0: 6.0}, endpoint="/push")
    )
    expected = [(q, 2) for q in model_serving.prometheus_queries()]
    expected += [(q, 2) for q in feature_server.prometheus_queries() if FEAST in q]
    # every label a panel groups by is on those series (a missing one silently groups as empty) ...
    stored_labels = {name for series in inputs for name in re.findall(r'(\w+)="', series["series"])}
    for query, _ in expected:
        for grouping in re.findall(r"by \(([^)]*)\)", query):
            assert {g.strip() for g in grouping.split(",")} <= stored_labels, query
    # ... and each shows one line per revision / endpoint
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [
                {"expr": f"count({q})", "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": n}]}
                for q, n in expected
            ],
        }
    ]
    (tmp_path / "empty.rules.yaml").write_text(yaml.safe_dump({"groups": []}))
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": ["empty.rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_cover_the_design_and_are_well_formed() -> None:
    assert len({d.uid for d in DASHBOARDS}) == len(DASHBOARDS)
    titles = " ".join(d.title.lower() for d in DASHBOARDS)
    for subject in ("serving", "feature server", "airflow", "gpu", "ray", "overview"):
        assert subject in titles
    for dashboard in DASHBOARDS:
        model = dashboard.model()
        assert model["uid"] == dashboard.uid and model["panels"]
        for panel in model["panels"]:
            assert panel["datasource"]["uid"] in (PROMETHEUS_UID, LOKI_UID) and panel["targets"]
    # the per-pool panels group by the label kube-state-metrics derives from the pool contract's label
    assert "label_" + re.sub(r"[^a-zA-Z0-9]", "_", POOL_LABEL) == POOL


@pytest.mark.parametrize("stack", STACKS)
def test_dashboards_and_data_sources_reach_grafana(plan, stack: str) -> None:
    doc = plan(stack)
    grafana = grafana_values(doc)["grafana"]
    sidecar = grafana["sidecar"]["dashboards"]
    maps = {
        c.inputs["metadata"]["name"]: c.inputs
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("labels", {}).get(sidecar["label"]) == sidecar["labelValue"]
    }
    assert {f"dashboard-{d.uid}" for d in DASHBOARDS} == set(maps)
    for dashboard in DASHBOARDS:
        config_map = maps[f"dashboard-{dashboard.uid}"]
        assert config_map["metadata"]["namespace"] == Namespace.MONITORING.value
        [(key, body)] = config_map["data"].items()
        assert key.endswith(".json") and json.loads(body)["uid"] == dashboard.uid
    # Prometheus and Alertmanager from the chart (not switched off), Loki at the Loki release's Service
    datasources = grafana.get("sidecar", {}).get("datasources", {})
    assert datasources.get("defaultDatasourceEnabled", True) and datasources.get("alertmanager", {}).get(
        "enabled", True
    )
    [loki] = [d for d in grafana["additionalDataSources"] if d["type"] == "loki"]
    release = helm_release(doc, "loki")
    assert loki["uid"] == LOKI_UID
    assert loki["url"].startswith(f"http://{release.inputs['name']}.{release.inputs['namespace']}.svc")
    assert f"nodes=[{POOL_LABEL}]" in grafana_values(doc)["kube-state-metrics"]["metricLabelsAllowlist"]
