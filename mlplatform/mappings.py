"""The one deep merge the program uses: stack config over profile defaults (config.loader), chart values over
a chart's internal defaults in key snapshots (chartkeys), and Helm's CLI merge of values files and values
(manifests: helm/helm pkg/cli/values/options.go `mergeMaps`, vendored by pulumi-kubernetes as
provider/pkg/helm/upstream.go `MergeMaps`), which all follow the same rule; and the one merge that refuses to
replace anything (sign-on's additions to chart values)."""

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


def add_sections(base: Mapping[str, Any], added: Mapping[str, Mapping[str, Any]], what: str) -> dict[str, Any]:
    """`base` with each section of `added` merged into the same-named mapping of `base` one level deep; a key
    `base` already sets in a section is an error naming `what`, never silently replaced."""
    out = dict(base)
    for key, section in added.items():
        current = base.get(key, {})
        assert isinstance(current, Mapping)
        clash = set(current) & set(section)
        if clash:
            raise ValueError(f"{what}'s {key} values already set {sorted(clash)}")
        out[key] = {**current, **section}
    return out
