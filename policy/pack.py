"""The CrossGuard policy pack: each rule as a `pulumi_policy` policy (resource rules as
ResourceValidationPolicy, stack rules as StackValidationPolicy), built only by `build()`, which the entry
point calls (constructing a PolicyPack starts its gRPC server and blocks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.charts import chart_renderer
from policy.rules import ResourceRule, Rule, all_rules
from policy.view import Stack, context_from_environment, from_policy_resource

PACK_NAME = "mlplatform"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _level(rule: Rule) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY


def _charts_dir() -> Path | None:
    """MLPLATFORM_CHARTS, else the pinned packages beside the project (`../shared/charts`); None: pull."""
    configured = os.environ.get("MLPLATFORM_CHARTS")
    if configured:
        return Path(configured)
    shared = PROJECT_DIR.parent / "shared" / "charts"
    return shared if shared.is_dir() else None


def resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        for message in rule.check(from_policy_resource(args), context_from_environment()):
            report(message, None)

    return ResourceValidationPolicy(rule.name, rule.description, validate, _level(rule))


def stack_policy(rule: Rule, render: Any) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        stack = Stack(context_from_environment(), [from_policy_resource(r) for r in args.resources], render)
        for res, message in rule.check(stack):  # type: ignore[operator]
            report(message, res.urn if res else None)

    return StackValidationPolicy(rule.name, rule.description, validate, _level(rule))


def policies() -> list[Any]:
    render = chart_renderer(_charts_dir(), pull=os.environ.get("MLPLATFORM_PULL_CHARTS", "1") == "1")
    return [resource_policy(r) if isinstance(r, ResourceRule) else stack_policy(r, render) for r in all_rules()]


def build() -> None:
    """Serves the pack (blocks): the Pulumi CLI reads the port it prints."""
    PolicyPack(PACK_NAME, policies(), EnforcementLevel.ADVISORY, description=__doc__)
