"""A stack's offline plan at two commits compared: the resource diff, the policy findings, the idle cost per
month and the time to `up` from empty on each side (for the pull-request comment, `comment.py`).

Input is two directories, the base commit's and the head commit's, each holding per stack what
`.github/scripts/offline-plans.sh` leaves there: `<stack>.json` (the plan document `plan --out` wrote),
`<stack>.error` (why the plan failed, when it did) and optionally `<stack>.policy.json` (the policy findings,
a list of {rule, resource, message, mandatory}). Each side is planned with its own commit's program and stack
files, so the diff is what merging the pull request changes. Estimates are recomputed here from both
documents with one price table and one date, so a delta is the program's change alone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mlplatform.estimate.cost import estimate_cost
from mlplatform.estimate.timing import estimate_up
from mlplatform.plan.diff import PlanDiff, diff_plans
from mlplatform.plan.document import PlanDocument


@dataclass(frozen=True)
class Finding:
    """One policy result: `rule` broken by `resource`; mandatory ones fail `plan`."""

    rule: str
    resource: str
    message: str
    mandatory: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.rule, self.resource

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Finding:
        level = str(item.get("level", item.get("enforcement", ""))).lower()
        mandatory = bool(item["mandatory"]) if "mandatory" in item else level == "mandatory"
        return cls(str(item["rule"]), str(item.get("resource", "")), str(item.get("message", "")), mandatory)


@dataclass
class Side:
    """One stack at one commit: its plan, or why there is none, and its policy findings if given."""

    doc: PlanDocument | None = None
    error: str | None = None
    findings: list[Finding] | None = None  # None: no policy results were given for this side


@dataclass(frozen=True)
class Estimates:
    minimum: float
    with_pods: float
    up_minutes: float
    slowest: str  # the slowest single resource, e.g. "mlplatform-kafka (Cluster, 28 min)"
    by_service: dict[str, float]  # "layer/service" -> monthly, pods placed
    not_priced: int  # resources the price table does not know
    priced: bool = True  # False on the local cloud: no cloud resource, nothing to price (as `plan` says)


def estimates(doc: PlanDocument, on: date) -> Estimates:
    """The figures `plan` prints (mlplatform/estimate/report.py), from the Helm values' requests."""
    up = estimate_up(doc)
    slow = up.slowest
    services: dict[str, float] = defaultdict(float)
    priced = doc.outputs.get("cloud") != "local"
    cost = estimate_cost(doc, on) if priced else None
    for line in cost.lines + cost.placed_extra if cost else []:
        services[f"{line.layer}/{line.service}"] += line.monthly
    return Estimates(
        priced=priced,
        minimum=cost.minimum if cost else 0.0,
        with_pods=cost.with_pods if cost else 0.0,
        up_minutes=up.minutes,
        slowest=f"{slow.resource.name} ({slow.resource.type.rsplit(':', 1)[-1]}, {slow.minutes:g} min)",
        by_service=dict(services),
        not_priced=len(cost.missing) if cost else 0,
    )


@dataclass
class StackComparison:
    stack: str
    base: Side
    head: Side
    diff: PlanDiff | None = None
    base_est: Estimates | None = None
    head_est: Estimates | None = None
    estimate_errors: list[str] = field(default_factory=list)

    def _delta(self, attr: str) -> float | None:
        """Head minus base (minus nothing for a stack new in head); None when a side has no price."""
        head, base = self.head_est, self.base_est
        if head is None or not head.priced or (base is not None and not base.priced):
            return None
        return getattr(head, attr) - (getattr(base, attr) if base is not None else 0.0)

    @property
    def cost_delta(self) -> float | None:
        return self._delta("minimum")

    @property
    def cost_with_pods_delta(self) -> float | None:
        return self._delta("with_pods")

    @property
    def up_delta(self) -> float | None:
        if self.head_est is None or self.base_est is None:
            return None
        return self.head_est.up_minutes - self.base_est.up_minutes

    @property
    def new_findings(self) -> list[Finding]:
        """Head's findings the base did not have (all of them when the base has no policy results)."""
        before = {f.key for f in self.base.findings or []}
        return [f for f in self.head.findings or [] if f.key not in before]

    @property
    def fixed_findings(self) -> list[Finding]:
        if self.head.findings is None:
            return []
        after = {f.key for f in self.head.findings}
        return [f for f in self.base.findings or [] if f.key not in after]


def compare(stack: str, base: Side, head: Side, on: date) -> StackComparison:
    """The resource diff (base → head; a stack new in head diffs against an empty plan) and both estimates."""
    result = StackComparison(stack, base, head)
    if head.doc is not None:
        old = base.doc or PlanDocument(head.doc.project, stack, [], {})
        result.diff = diff_plans(old, head.doc)
    for name, side in (("base", base), ("head", head)):
        if side.doc is None:
            continue
        try:
            est = estimates(side.doc, on)
        except Exception as e:  # an estimate that cannot run is reported, not fatal
            result.estimate_errors.append(f"{name}: {type(e).__name__}: {e}")
            continue
        if name == "base":
            result.base_est = est
        else:
            result.head_est = est
    return result


# -- reading the workflow's directories ------------------------------------------------------------------


def stacks_in(*directories: Path) -> list[str]:
    """Every stack either side planned or tried to plan (a `<stack>.json` or a `<stack>.error`)."""
    names: set[str] = set()
    for d in directories:
        for path in d.glob("*.json"):
            if not path.name.endswith(".policy.json"):
                names.add(path.stem)
        names |= {p.stem for p in d.glob("*.error")}
    return sorted(names, key=_stack_order)


def _stack_order(stack: str) -> tuple[int, str]:
    known = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]
    return (known.index(stack), "") if stack in known else (len(known), stack)


def read_side(directory: Path, stack: str) -> Side:
    plan, error, policy = (directory / f"{stack}{s}" for s in (".json", ".error", ".policy.json"))
    side = Side()
    if plan.is_file():
        side.doc = PlanDocument.read(plan)
    if error.is_file():
        side.error = error.read_text().strip() or "the plan failed without a message"
    if policy.is_file():
        side.findings = read_findings(policy)
    return side


def read_findings(path: Path) -> list[Finding]:
    """A JSON list of findings, or an object holding one under `violations` or `findings`."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("violations", data.get("findings", []))
    return [Finding.from_json(item) for item in data]


def compare_directories(base: Path, head: Path, on: date) -> list[StackComparison]:
    return [compare(s, read_side(base, s), read_side(head, s), on) for s in stacks_in(base, head)]
