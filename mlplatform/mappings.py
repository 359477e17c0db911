"""The one deep merge the program uses: stack config over profile defaults (config.loader), chart values over
a chart's internal defaults in key snapshots (chartkeys), and Helm's CLI merge of values files and values
(manifests: helm/helm pkg/cli/values/options.go `mergeMaps`, vendored by pulumi-kubernetes as
provider/pkg/helm/upstream.go `MergeMaps`), which all follow the same rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `override` (a list, a scalar, a null) replaces the base
    value whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
