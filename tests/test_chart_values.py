"""Every Helm values document the program produces uses only keys its pinned chart declares.

The key trees live in mlplatform/chart_keys/ (derived from upstream values.yaml / values.schema.json), so
these checks run in CI without the upstream copies. Where ../shared/upstream is present, the trees are
also re-derived and compared, and values are validated against the chart's own JSON schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlplatform.chartkeys import build_snapshot, load_tree, snapshot_path, unknown_keys, upstream_mismatch
from mlplatform.pins import ALL_CHARTS, ChartPin
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration

UPSTREAM = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "charts"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")


def helm_releases(doc: PlanDocument) -> Iterator[Registration]:
    return (r for r in doc.resources if r.type in HELM_TYPES)


def _plans(plan: Any) -> list[PlanDocument]:
    return [plan(s) for s in STACKS]


def test_every_release_uses_a_pinned_chart_with_a_key_snapshot(plan: Any) -> None:
    pins = {(p.chart, p.version) for p in ALL_CHARTS}
    for doc in _plans(plan):
        for release in helm_releases(doc):
            chart, version = release.inputs["chart"], release.inputs["version"]
            assert (chart, version) in pins, f"{doc.stack}: {release.name} uses unpinned {chart} {version}"
            assert snapshot_path(chart, version).exists(), f"no key snapshot for {chart} {version}"


def test_every_values_key_is_declared_by_the_chart(plan: Any) -> None:
    problems = []
    for doc in _plans(plan):
        for release in helm_releases(doc):
            tree = load_tree(release.inputs["chart"], release.inputs["version"])
            problems += [f"{doc.stack}/{release.name}: {k}" for k in unknown_keys(release.inputs.get("values"), tree)]
    assert problems == []


def test_a_misspelt_key_is_reported(dev: PlanDocument) -> None:
    release = dev.one("kubernetes:helm.sh/v3:Release", "mlplatform-cluster-autoscaler")
    values = copy.deepcopy(release.inputs["values"])
    values["autoDiscovery"]["clustername"] = values["autoDiscovery"].pop("clusterName")
    values["rbac"]["serviceAccount"]["anotations"] = {}
    values["extraArgs"]["any-flag"] = True  # free-form: every key is a flag
    tree = load_tree(release.inputs["chart"], release.inputs["version"])
    assert sorted(unknown_keys(values, tree)) == ["autoDiscovery.clustername", "rbac.serviceAccount.anotations"]


def _upstream_dir(pin: ChartPin) -> Path:
    chart_dir = UPSTREAM / pin.source_dir
    reason = upstream_mismatch(chart_dir, pin.version, pin.placeholder)
    if reason:
        pytest.skip(reason)
    return chart_dir


@pytest.mark.parametrize("pin", ALL_CHARTS, ids=lambda p: p.chart)
def test_key_snapshot_matches_upstream(pin: ChartPin) -> None:
    chart_dir = _upstream_dir(pin)
    committed = json.loads(snapshot_path(pin.chart, pin.version).read_text())
    app_version = pin.app_version if pin.placeholder else None
    assert build_snapshot(chart_dir, pin.chart, pin.version, app_version) == committed, (
        "run: python -m mlplatform chart-keys"
    )


@pytest.mark.parametrize("pin", ALL_CHARTS, ids=lambda p: p.chart)
def test_values_validate_against_the_chart_schema(pin: ChartPin, plan: Any) -> None:
    chart_dir = _upstream_dir(pin)
    # z2jh keeps the schema's source, values.schema.yaml (its package's .json only drops `description`s)
    schema_file = next(
        (f for f in (chart_dir / "values.schema.json", chart_dir / "values.schema.yaml") if f.exists()), None
    )
    if schema_file is None:
        pytest.skip(f"{pin.chart} ships no values schema")
    schema = yaml.safe_load(schema_file.read_text())  # JSON is YAML
    releases = [r for doc in _plans(plan) for r in helm_releases(doc) if r.inputs["chart"] == pin.chart]
    if not releases:
        pytest.skip(f"no stack installs {pin.chart} yet")
    defaults = yaml.safe_load((schema_file.parent / "values.yaml").read_text())
    for release in releases:
        # Helm validates the merged values (chart defaults overlaid with ours), so do the same.
        merged = _overlay(defaults, release.inputs.get("values") or {})
        jsonschema.validate(merged, schema)


def _overlay(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _overlay(base.get(k), v) for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override
