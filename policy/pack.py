"""The CrossGuard policy pack: each rule as a `pulumi_policy` policy (resource rules as
ResourceValidationPolicy, stack rules as StackValidationPolicy), built only by `build()`, which the entry
point calls (constructing a PolicyPack starts its gRPC server and blocks).

A finding that may rest on a value unknown during the preview (`policy.view`: `Resource.unknown`, read
with the resource's dependencies and dependents) is not reported at the rule's level: the policy raises
the SDK's UnknownValueError after the certain findings, which the SDK turns into one advisory "can't run
policy ... during preview" diagnostic carrying them (pulumi_policy/policy.py Analyze/AnalyzeStack @
1.21.0). `pulumi up` analyzes the same resources with every value known (the engine resolves a
resource's inputs before registering it outside a preview), and the offline plan checks them first."""

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
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

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


class UnknownDuringPreview(UnknownValueError):
    """The findings a rule could not decide during a preview, and the unknown values they may rest on."""

    def __init__(self, findings: list[str], unknown: list[str]) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        shown = ", ".join(sorted(set(unknown))[:8]) + (" ..." if len(set(unknown)) > 8 else "")
        self.message = f"{'; '.join(findings)} (not decided: {shown} unknown until `pulumi up`)"


def resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        res = from_policy_resource(args)
        messages = list(rule.check(res, context_from_environment()))
        if messages and res.unknown:
            raise UnknownDuringPreview(messages, list(res.unknown))
        for message in messages:
            report(message, None)

    return ResourceValidationPolicy(rule.name, rule.description, validate, _level(rule))


def stack_policy(rule: Rule, render: Any) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        stack = Stack(context_from_environment(), [from_policy_resource(r) for r in args.resources], render)
        undecided: list[str] = []
        unknown: list[str] = []
        for res, message in rule.check(stack):  # type: ignore[operator]
            uncertain = stack.uncertain(res)
            if uncertain:
                undecided.append(f"{res.name}: {message}" if res else message)
                unknown += uncertain
            else:
                report(message, res.urn if res else None)
        if undecided:
            raise UnknownDuringPreview(undecided, unknown)

    return StackValidationPolicy(rule.name, rule.description, validate, _level(rule))


def policies() -> list[Any]:
    render = chart_renderer(_charts_dir(), pull=os.environ.get("MLPLATFORM_PULL_CHARTS", "1") == "1")
    return [resource_policy(r) if isinstance(r, ResourceRule) else stack_policy(r, render) for r in all_rules()]


def build() -> None:
    """Serves the pack (blocks): the Pulumi CLI reads the port it prints."""
    PolicyPack(PACK_NAME, policies(), EnforcementLevel.ADVISORY, description=__doc__)
