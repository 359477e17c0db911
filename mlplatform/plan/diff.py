"""Desired-state diff of two plan documents: added, removed and changed resources, and for the changed
ones the property paths that differ. Resources are matched by type path and name, not by URN, so the
plans of two different stacks (dev vs prod) compare meaningfully."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration

_OPTION_FIELDS = ("protect", "retain_on_delete", "delete_before_replace", "ignore_changes")


@dataclass
class Change:
    key: str
    changes: dict[str, tuple[Any, Any]]


@dataclass
class PlanDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    outputs: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old key, new key), same inputs

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs or self.renamed)


def resource_key(r: Registration) -> str:
    """`type$path::name` without the stack and project parts of the URN."""
    return r.urn.split("::", 2)[2]


def object_key(r: Registration) -> str:
    """`type::name`: the object whatever component it sits in (for --ignore-parents)."""
    return f"{r.type}::{r.name}"


def diff_plans(old: PlanDocument, new: PlanDocument, *, ignore_parents: bool = False) -> PlanDiff:
    """With ignore_parents, only cloud and Kubernetes objects are compared, matched by type and logical
    name wherever they sit in the component tree; an object whose logical name changed but whose inputs did
    not is listed as renamed. That is the proof that a move between components changed nothing deployed."""
    if ignore_parents:
        before = {object_key(r): r for r in old.resources if r.custom}
        after = {object_key(r): r for r in new.resources if r.custom}
    else:
        before = {resource_key(r): r for r in old.resources}
        after = {resource_key(r): r for r in new.resources}
    result = PlanDiff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
    )
    if ignore_parents:
        _pair_renames(result, before, after)
    for key in sorted(before.keys() & after.keys()):
        changes = flat_diff(before[key].inputs, after[key].inputs, "")
        for opt in _OPTION_FIELDS:
            a, b = getattr(before[key], opt), getattr(after[key], opt)
            if a != b:
                changes[f"<{opt}>"] = (a, b)
        if changes:
            result.changed.append(Change(key, changes))
    result.outputs = flat_diff(old.outputs, new.outputs, "")
    return result


def _pair_renames(result: PlanDiff, before: dict[str, Registration], after: dict[str, Registration]) -> None:
    """Moves (removed, added) pairs of one type with equal inputs and options from added/removed to renamed."""
    for old_key in list(result.removed):
        old = before[old_key]
        for new_key in result.added:
            new = after[new_key]
            same_options = all(getattr(old, o) == getattr(new, o) for o in _OPTION_FIELDS)
            if new.type == old.type and new.inputs == old.inputs and same_options:
                result.renamed.append((old_key, new_key))
                result.removed.remove(old_key)
                result.added.remove(new_key)
                break


def flat_diff(a: Any, b: Any, path: str) -> dict[str, tuple[Any, Any]]:
    """Leaf-level differences between two JSON values, keyed by dotted/indexed path."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for k in sorted(a.keys() | b.keys()):
            sub = f"{path}.{k}" if path else k
            out |= flat_diff(a.get(k, _ABSENT), b.get(k, _ABSENT), sub)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = {}
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out |= flat_diff(x, y, f"{path}[{i}]")
        return out
    return {} if a == b else {path: (a, b)}


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def render_diff(d: PlanDiff, old: PlanDocument, new: PlanDocument) -> str:
    lines = [
        f"diff {old.stack} -> {new.stack}: +{len(d.added)} added, -{len(d.removed)} removed, ~{len(d.changed)} changed"
        + (f", {len(d.renamed)} renamed" if d.renamed else "")
    ]
    lines += [f"  > {a} -> {b.rsplit('::', 1)[-1]}" for a, b in d.renamed]
    lines += [f"  + {k}" for k in d.added]
    lines += [f"  - {k}" for k in d.removed]
    for c in d.changed:
        lines.append(f"  ~ {c.key}")
        lines += [f"      {p}: {_show(a)} -> {_show(b)}" for p, (a, b) in c.changes.items()]
    if d.outputs:
        lines.append("  outputs:")
        lines += [f"      {p}: {_show(a)} -> {_show(b)}" for p, (a, b) in d.outputs.items()]
    if d.empty:
        lines.append("  no differences")
    elif not (d.added or d.removed or d.changed or d.outputs):
        lines.append("  no differences but the renamed logical names")
    return "\n".join(lines)


def _show(v: Any, limit: int = 100) -> str:
    text = repr(v) if isinstance(v, _Absent) else json.dumps(v, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
