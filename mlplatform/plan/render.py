"""Human-readable plan: resources as a tree grouped by layer, counts per layer and type, stack outputs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration


def render(doc: PlanDocument, *, summary_only: bool = False) -> str:
    lines = [f"{doc.project} · stack {doc.stack} · {len(doc.resources)} resources · synthesized in {doc.seconds:.2f}s"]
    top = [r for r in doc.resources if r.parent == doc.stack_urn]
    stack_level = [r for r in top if r.custom or r.type.startswith("pulumi:providers:")]
    if stack_level:
        lines.append("")
        lines.append("stack-level")
        lines.extend(f"  {_label(r)}" for r in sorted(stack_level, key=_order))
    for layer in sorted((r for r in top if r not in stack_level), key=_layer_rank):
        members = list(doc.descendants(layer.urn))
        lines.append("")
        lines.append(f"{_label(layer)}  ({len(members)} resources)")
        if summary_only:
            for type_, n in sorted(Counter(m.type for m in members).items()):
                lines.append(f"    {n:4d}  {type_}")
        else:
            lines.extend(_tree(doc, layer.urn, "  "))
    lines.append("")
    lines.append("Outputs:")
    for key, value in sorted(doc.outputs.items()):
        lines.append(f"  {key}: {_short(value)}")
    return "\n".join(lines)


LAYER_ORDER = ("cluster", "storage", "data", "lifecycle", "serving", "observability")


def _layer_rank(r: Registration) -> tuple[int, str]:
    layer = r.type.split(":")[1] if r.type.startswith("mlplatform:") else ""
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), r.name)


def _order(r: Registration) -> tuple[str, str]:
    return (r.type, r.name)


def _label(r: Registration) -> str:
    flags = [f for f, on in (("protect", r.protect), ("retain", r.retain_on_delete)) if on]
    suffix = f"  [{', '.join(flags)}]" if flags else ""
    return f"{r.type}  {r.name}{suffix}"


def _tree(doc: PlanDocument, parent_urn: str, indent: str) -> list[str]:
    out = []
    children = sorted(doc.children(parent_urn), key=_order)
    for i, child in enumerate(children):
        last = i == len(children) - 1
        out.append(f"{indent}{'└─' if last else '├─'} {_label(child)}")
        out.extend(_tree(doc, child.urn, indent + ("   " if last else "│  ")))
    return out


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
