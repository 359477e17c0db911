"""Upstream CRDs (../shared/upstream/crds) as strict JSON schemas for the custom resources the program
declares: unknown fields rejected, as the API server would prune them silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = Path(__file__).resolve().parents[3] / "shared" / "upstream" / "crds"
# CRDs the shared copies lack, committed here with their sources (upstream_crds/SOURCES.md)
PROJECT_CRDS = Path(__file__).resolve().parent / "upstream_crds"


def strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields rejected, as the API server prunes them silently."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items() if k not in ("x-kubernetes-preserve-unknown-fields",)}
        closed = not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in out
        if out.get("type") == "object" and "properties" in out and closed:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def python_patterns(schema: Any) -> Any:
    """The CRD's Go regexes as Python reads them: Go allows an inline flag after `^` (`^(?i)...`)."""
    if isinstance(schema, dict):
        return {
            k: (v.replace("^(?i)", "(?i)^") if k == "pattern" and isinstance(v, str) else python_patterns(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [python_patterns(v) for v in schema]
    return schema


def spec_schema(file_name: str, version: str, directory: Path = CRDS) -> dict[str, Any]:
    """The strict schema of `spec` at `version` of the CRD in `file_name` (in ../shared/upstream/crds, or in
    `directory`); skips when it is absent. Lines of Helm templating around a chart-shipped CRD (`{{ ... }}`)
    are dropped first."""
    crd_file = directory / file_name
    if not crd_file.exists():
        pytest.skip(f"no upstream CRD at {crd_file}")
    text = "\n".join(line for line in crd_file.read_text().splitlines() if not line.strip().startswith("{{"))
    [found] = [v for v in yaml.safe_load(text)["spec"]["versions"] if v["name"] == version]
    return python_patterns(strict(found["schema"]["openAPIV3Schema"]["properties"]["spec"]))


def plain(spec: Any) -> Any:
    """A plan's inputs as the API server sees them: the SDK's wire format makes every number a float."""
    return json.loads(json.dumps(spec), parse_float=lambda f: int(float(f)))
