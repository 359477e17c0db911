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

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]


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
