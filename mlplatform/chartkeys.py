"""The values keys each pinned Helm chart accepts, kept in the repo as key trees, and the check against them.

Helm silently ignores a values key the chart does not read, so a misspelt key deploys as a default. The
repo keeps, per pinned chart version, the tree of keys the chart's own values.yaml and values schema
declare (key names only, regenerated from upstream by `python -m mlplatform chart-keys --from DIR`), so
the check runs anywhere, CI included, without the upstream files.

A tree node is a dict of known child keys, or None where anything goes below (free-form maps such as
annotations, nodeSelector, Kubernetes objects such as affinity, and lists).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlplatform.mappings import deep_merge
from mlplatform.pins import ChartPin, pin_at

KEYS_DIR = Path(__file__).resolve().parent / "chart_keys"

Tree = dict[str, Any] | None

# Maps upstream ships with example defaults but reads as arbitrary key/value pairs (so a snapshot of its
# default keys would wrongly reject others). Path -> why it is free-form.
FREE_FORM: dict[str, dict[str, str]] = {
    "cluster-autoscaler": {"extraArgs": "every key becomes a --flag of the autoscaler binary"},
    "flink-kubernetes-operator": {
        "podSecurityContext": "templates/controller/deployment.yaml writes it as the pod's securityContext, verbatim",
    },
    "grafana": {
        "grafana.ini": "templates/_config.tpl ranges over every section and key into grafana.ini (any setting)"
    },
    "istiod": {
        "meshConfig": "templates/configmap.yaml writes it into istiod's mesh config (Istio MeshConfig: any field)"
    },
    "kserve-resources": {
        "kserve.storage.containerSecurityContext": (
            "files/common/storagecontainer-patch.yaml writes it as the ClusterStorageContainer's securityContext, "
            "verbatim (toYaml)"
        )
    },
    "prometheus-pushgateway": {
        "securityContext": "templates/_helpers.tpl writes it as the pod's securityContext, verbatim",
        "containerSecurityContext": "templates/_helpers.tpl writes it as the container's securityContext, verbatim",
    },
}


# Kubernetes types whose fields charts pass through as is: a default that sets only `limits` must not make
# `requests` look unknown, while a misspelt field below still is.
KUBERNETES_SHAPES: dict[str, dict[str, Any]] = {
    "resources": {"requests": None, "limits": None, "claims": None},
    "affinity": dict.fromkeys(("nodeAffinity", "podAffinity", "podAntiAffinity")),
}

# Subcharts whose values a parent chart passes through under the subchart's name: their keys are the
# subchart's own (its values.yaml, a directory beside the parent's in the upstream copies), at the version
# the parent's Chart.yaml depends on.
SUBCHARTS: dict[str, tuple[str, ...]] = {
    "kube-prometheus-stack": ("grafana", "kube-state-metrics", "prometheus-node-exporter"),
}

# Keys a chart's templates read that its values.yaml does not declare (found reading the templates at the
# pinned version). Path -> where the template reads it; the key is then known, with anything below it.
TEMPLATE_KEYS: dict[str, dict[str, str]] = {
    "grafana": {
        "rbac.useExistingRole": "templates/role.yaml (no Role made) and rolebinding.yaml (binds the named Role)",
    },
    "oauth2-proxy": {
        # values.yaml only mentions it in a comment
        "config.existingSecret": "templates/_helpers.tpl oauth2-proxy.secretName (secret.yaml then makes none)",
    },
    "knative-operator": {
        "knative_operator.knative_operator.securityContext": "templates/operator.yaml: the pod's securityContext",
        "knative_operator.operator_webhook.securityContext": "templates/operator.yaml: the pod's securityContext",
    },
}


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follows chart-local $refs; a Kubernetes API type ($ref to io.k8s.*) counts as free-form (None)."""
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < 20:
        ref = schema["$ref"]
        if "io.k8s." in ref or not ref.startswith("#/"):
            return None
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema, seen = node, seen + 1
    return schema


def _object_shape(schema: Any, root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(properties, open) of an object schema, merging anyOf/oneOf/allOf branches."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping):
        return {}, schema is None
    props = dict(schema.get("properties", {}))
    extra = schema.get("additionalProperties")
    is_open = bool(extra) or "patternProperties" in schema
    for branch in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
        branch_props, branch_open = _object_shape(branch, root)
        props.update(branch_props)
        is_open = is_open or (branch_open and bool(branch_props))
    return props, is_open


def key_tree(values: Any, schema: Any = None, root: Mapping[str, Any] | None = None, path: str = "",
             free_form: frozenset[str] = frozenset()) -> Tree:  # fmt: skip
    """The keys the chart declares at this node: its default values' keys plus its schema's properties."""
    root = root if root is not None else (schema or {})
    if path in free_form:
        return None
    shape = KUBERNETES_SHAPES.get(path.rsplit(".", 1)[-1])
    if shape is not None and (values is None or isinstance(values, Mapping)):
        return dict(shape)
    props, is_open = _object_shape(schema, root) if schema is not None else ({}, False)
    keys = set(values) if isinstance(values, Mapping) else set()
    keys |= set(props)
    if is_open or not keys:
        return None
    sub = values if isinstance(values, Mapping) else {}
    return {k: key_tree(sub.get(k), props.get(k), root, f"{path}.{k}" if path else k, free_form) for k in sorted(keys)}


def unknown_keys(values: Any, tree: Tree, path: str = "") -> list[str]:
    """Paths in `values` that the chart does not declare (empty when every key is known)."""
    if tree is None or not isinstance(values, Mapping):
        return []
    found = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in tree:
            found.append(where)
        else:
            found += unknown_keys(value, tree[key], where)
    return found


def snapshot_path(chart: str, version: str) -> Path:
    return KEYS_DIR / f"{chart}-{version}.json"


def supported_versions(chart: str) -> dict[str, str]:
    """chart version -> app version, for every version of `chart` the repo holds a key snapshot of: the
    versions whose values can be checked, and so the only ones a stack may select."""
    found = {}
    for path in sorted(KEYS_DIR.glob(f"{chart}-*.json")):
        doc = json.loads(path.read_text())
        if doc["chart"] == chart:
            found[doc["version"]] = doc.get("appVersion", "")
    return found


def selected_pin(pin: ChartPin, version: str) -> ChartPin:
    """`pin` at the chart version a stack selected (config guarantees a key snapshot exists for it)."""
    return pin_at(pin, version, supported_versions(pin.chart)[version])


def load_tree(chart: str, version: str) -> Tree:
    return json.loads(snapshot_path(chart, version).read_text())["keys"]


def load_chart_yaml(path: Path) -> Any:
    """A chart's YAML file; release placeholders such as `{{ tag }}` (Knative's source tree) read as text."""
    text = path.read_text()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return yaml.safe_load(re.sub(r"(?<=: )(\{\{ *\w+ *\}\})$", r'"\1"', text, flags=re.M))


def build_snapshot(chart_dir: Path, chart: str, version: str, app_version: str | None = None) -> dict[str, Any]:
    """The snapshot document for one chart directory (Chart.yaml, values.yaml, optional values.schema.json).
    `app_version` stands in for a placeholder appVersion of a chart's source tree."""
    values = load_chart_yaml(chart_dir / "values.yaml") or {}
    # Istio's charts keep their defaults under `_internal_defaults_do_not_set` and merge them under the
    # top-level values at render time (templates/zzz_profile.yaml), so their keys are top-level keys too
    internal = values.get("_internal_defaults_do_not_set")
    if isinstance(internal, dict):
        values = deep_merge(internal, values)
    # z2jh keeps its schema's source as YAML (values.schema.yaml; the package's .json is generated from it at
    # release and only drops `description`s: tools/generate-json-schema.py @ 4.4.0)
    schema_file = next(
        (f for f in (chart_dir / "values.schema.json", chart_dir / "values.schema.yaml") if f.exists()), None
    )
    schema = None
    if schema_file is not None:
        text = schema_file.read_text()
        schema = json.loads(text) if schema_file.suffix == ".json" else yaml.safe_load(text)
    tree = key_tree(values, schema, free_form=frozenset(FREE_FORM.get(chart, {})))
    for sub in SUBCHARTS.get(chart, ()):
        sub_dir = chart_dir.parent / sub
        if not (sub_dir / "values.yaml").exists():
            raise FileNotFoundError(f"{chart} passes values to subchart {sub}: its values.yaml is needed in {sub_dir}")
        sub_tree = build_snapshot(sub_dir, sub, "")["keys"]
        if isinstance(tree, dict) and isinstance(sub_tree, dict):
            tree[sub] = deep_merge(sub_tree, tree.get(sub) or {})
    for path in TEMPLATE_KEYS.get(chart, {}):
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node[part] if node is not None else None
        if node is not None:
            node.setdefault(leaf, None)
    sources = ["values.yaml"] + ([schema_file.name] if schema_file is not None else [])
    app_version = app_version or str((load_chart_yaml(chart_dir / "Chart.yaml") or {}).get("appVersion", ""))
    return {"chart": chart, "version": version, "appVersion": app_version, "derivedFrom": sources, "keys": tree}


def write_snapshot(doc: dict[str, Any]) -> Path:
    path = snapshot_path(doc["chart"], doc["version"])
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def upstream_mismatch(chart_dir: Path, pinned_version: str, placeholder: str | None = None) -> str | None:
    """Why an upstream chart directory cannot stand for the pinned version, or None when it can. A chart
    whose source tree carries a placeholder version (filled in at release) matches on the placeholder; its
    tag is recorded in ../shared/upstream/SOURCES.md."""
    if not (chart_dir / "values.yaml").exists():
        return f"no upstream copy of {chart_dir.name} in {chart_dir.parent}"
    found = str((load_chart_yaml(chart_dir / "Chart.yaml") or {}).get("version", ""))
    if placeholder is not None and found == placeholder:
        return None
    if found.lstrip("v") != pinned_version.lstrip("v"):
        return f"upstream copy of {chart_dir.name} is {found}, pinned {pinned_version}"
    return None
