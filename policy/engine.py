"""Runs the rules in process: over the offline plan (`python -m mlplatform plan`, the tests) or any list
of resource views. The CLI runs the same rules through `policy/pack.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from policy.charts import chart_renderer
from policy.rules import Finding, ResourceRule, Rule, all_rules
from policy.view import Resource, Stack, context_from_config, resources_from_plan


def evaluate(stack: Stack, rules: Iterable[Rule] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule in all_rules() if rules is None else rules:
        if isinstance(rule, ResourceRule):
            for res in stack.resources:
                if res.type in rule.types:
                    findings += [_finding(rule, res, m) for m in rule.check(res, stack.context)]
        else:
            findings += [_finding(rule, res, m) for res, m in rule.check(stack)]
    return findings


def _finding(rule: Rule, res: Resource | None, message: str) -> Finding:
    return Finding(rule.name, rule.mandatory, res.urn if res else "", f"{res.type} {res.name}" if res else "", message)


def stack_from_plan(doc: Any, config: Mapping[str, Any], charts_dir: Path | None = None) -> Stack:
    """The policy view of an offline plan (`PlanDocument`) with its stack config; charts rendered from
    `charts_dir` when given."""
    return Stack(context_from_config(doc.stack, config), resources_from_plan(doc.resources), chart_renderer(charts_dir))


def report(findings: list[Finding]) -> str:
    mandatory = [f for f in findings if f.mandatory]
    advisory = [f for f in findings if not f.mandatory]
    lines = [f"policies: {len(all_rules())} rules, {len(mandatory)} mandatory and {len(advisory)} advisory violations"]
    lines += [f"  {f}" for f in mandatory + advisory]
    return "\n".join(lines)
