"""The pull-request comment: for every stack, what the pull request changes in its offline plan (resources,
policy findings, idle cost per month, time to `up` from empty), as one Markdown comment that the
pull-request workflow updates in place (found again by its hidden marker).

GitHub refuses a comment body over 65,536 characters; the comment stays under that (counted in UTF-8 bytes,
never fewer than GitHub's count), cutting the longest resource diffs first and saying where it cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mlplatform.plan.compare import Finding, StackComparison, compare_directories
from mlplatform.plan.diff import render_diff
from mlplatform.plan.document import PlanDocument

# The hidden line the workflow finds its previous comment by (an HTML comment: not shown on GitHub)
MARKER = "<!-- mlplatform:offline-plan -->"
GITHUB_LIMIT = 65_536  # characters in an issue comment's body (the API answers 422 above it)
# room kept under the limit for what the renderer adds after measuring (closing fences, notes)
RESERVE = 1_000
MAX_FINDINGS = 40  # policy findings listed per stack; the rest are counted
COST_ROWS = 8  # services listed with their cost change, largest first
FENCE = "```"


# -- Markdown -----------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _signed_money(value: float) -> str:
    rounded = round(value)
    if rounded == 0:
        return "±$0"
    return f"{'+' if rounded > 0 else '-'}${abs(rounded):,}"


def _signed_minutes(value: float) -> str:
    rounded = round(value, 1)
    if rounded == 0:
        return "±0"
    return f"{'+' if rounded > 0 else '-'}{abs(rounded):g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _changes_cell(c: StackComparison) -> str:
    if c.head.doc is None:
        return "❌ plan failed" if c.head.error else "stack removed"
    d = c.diff
    if d is None or d.empty:
        text = "no changes"
    else:
        text = " ".join(
            ["new stack:"] * (c.base.doc is None) + [f"+{len(d.added)}", f"-{len(d.removed)}", f"~{len(d.changed)}"]
        )
    # a plan document was written, but `plan` did not exit 0 (mandatory policy findings, a failed estimate)
    return text + (", ❌ plan failed" if c.head.error else "")


def _cost_cell(c: StackComparison, attr: str, delta: float | None) -> str:
    """`$base → $head (±delta)`; one figure when the rounded dollars did not move."""
    if c.head_est is None:
        return "—"
    if not c.head_est.priced:
        return "not priced (local)"
    head = getattr(c.head_est, attr)
    base = getattr(c.base_est, attr) if c.base_est is not None and c.base_est.priced else None
    text = _money(head) if base is None or round(base) == round(head) else f"{_money(base)} → {_money(head)}"
    return f"{text} ({_signed_money(delta)})" if delta is not None else text


def _up_cell(c: StackComparison) -> str:
    if c.head_est is None:
        return "—"
    head = c.head_est.up_minutes
    if c.base_est is None:
        return f"~{head:.0f} min"
    base = c.base_est.up_minutes
    span = f"~{head:.0f} min" if round(base) == round(head) else f"~{base:.0f} → {head:.0f} min"
    return f"{span} ({_signed_minutes(c.up_delta or 0.0)})"


def _policy_cell(c: StackComparison) -> str:
    findings = c.head.findings
    if findings is None:
        return "—"
    mandatory = sum(f.mandatory for f in findings)
    advisory = len(findings) - mandatory
    new = sum(f.mandatory for f in c.new_findings)
    text = f"❌ {mandatory} mandatory" if mandatory else "✅ 0 mandatory"
    if new and c.base.findings is not None:
        text += f" ({new} new)"
    if advisory:
        text += f", {advisory} advisory"
    fixed = len(c.fixed_findings)
    return text + (f", {fixed} fixed" if fixed else "")


def summary_table(comparisons: list[StackComparison]) -> list[str]:
    lines = [
        "| stack | resources | idle cost / month | with the platform's pods | `up` from empty | policy |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        cells = [
            f"**{c.stack}**",
            _changes_cell(c),
            _cost_cell(c, "minimum", c.cost_delta),
            _cost_cell(c, "with_pods", c.cost_with_pods_delta),
            _up_cell(c),
            _policy_cell(c),
        ]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return lines


def _cost_changes(c: StackComparison) -> list[str]:
    if c.head_est is None:
        return []
    before = c.base_est.by_service if c.base_est else {}
    after = c.head_est.by_service
    deltas = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in before.keys() | after.keys()}
    moved = sorted(((k, v) for k, v in deltas.items() if round(v)), key=lambda kv: (-abs(kv[1]), kv[0]))
    if not moved:
        return []
    shown = ", ".join(f"{k} {_signed_money(v)}" for k, v in moved[:COST_ROWS])
    more = f" and {len(moved) - COST_ROWS} more" if len(moved) > COST_ROWS else ""
    return [f"Cost per month by layer/service, pods placed: {shown}{more}."]


def _finding_line(f: Finding, tag: str = "") -> str:
    level = "mandatory" if f.mandatory else "advisory"
    where = f" `{_code(f.resource)}`" if f.resource else ""
    return f"- {tag}**{_cell(f.rule)}** ({level}){where}: {_cell(f.message)}"


def _code(text: str) -> str:
    return text.replace("`", "'")


def _findings(c: StackComparison) -> list[str]:
    """Every mandatory finding, each advisory one the pull request adds and each finding it fixes, one a
    line; the advisory findings both sides have, counted per rule (they are in every stack's `plan`)."""
    if c.head.findings is None:
        return []
    new = {f.key for f in c.new_findings} if c.base.findings is not None else set()
    listed = [f for f in c.head.findings if f.mandatory or f.key in new]
    listed.sort(key=lambda f: (not f.mandatory, f.key not in new, f.rule, f.resource))
    lines = [_finding_line(f, "new: " if f.key in new else "") for f in listed[:MAX_FINDINGS]]
    if len(listed) > MAX_FINDINGS:
        lines.append(f"- … and {len(listed) - MAX_FINDINGS} more (the run's `offline-plan` artifact has them all)")
    lines += [_finding_line(f, "fixed: ") for f in c.fixed_findings[:MAX_FINDINGS]]
    counted: dict[str, int] = {}
    for f in c.head.findings:
        if not f.mandatory and f.key not in new:
            counted[f.rule] = counted.get(f.rule, 0) + 1
    if counted:
        what = "advisory, unchanged" if c.base.findings is not None else "advisory"
        lines.append(f"- {what}: " + ", ".join(f"{rule} ({n})" for rule, n in sorted(counted.items())))
    return ["Policy:", *lines] if lines else ["Policy: no findings."]


def diff_lines(c: StackComparison) -> list[str]:
    """The resource diff as `diff` lines (`+ added`, `- removed`, `~ changed` with its property paths)."""
    if c.diff is None or c.diff.empty or c.head.doc is None:
        return []
    old = c.base.doc or PlanDocument(c.head.doc.project, c.stack, [], {})
    text = render_diff(c.diff, old, c.head.doc)
    # render_diff indents entries by two spaces; a diff block colours lines by their first character
    body = [line[2:] if line.startswith("  ") else line for line in text.splitlines()[1:]]
    return [line.replace(FENCE, "'''") for line in body]


@dataclass
class Section:
    """A stack's details: a head (summary, notes, cost changes, findings) and its diff lines, which the
    renderer may cut to fit the comment."""

    stack: str
    head: list[str]
    diff: list[str]
    shown: int | None = None  # diff lines kept; None: all

    @property
    def cut(self) -> bool:
        return self.shown is not None and self.shown < len(self.diff)

    def render(self, shown: int | None = -1) -> str:
        """The section with `shown` diff lines (default: as the section is set; None: all)."""
        shown = self.shown if shown == -1 else shown
        kept = self.diff if shown is None else self.diff[:shown]
        out = [*self.head]
        if self.diff:
            out += ["", f"{FENCE}diff", *kept]
            if len(kept) < len(self.diff):
                out.append(
                    f"… {len(self.diff) - len(kept):,} more lines not shown "
                    f"({len(kept):,} of {len(self.diff):,}): comment size limit"
                )
            out.append(FENCE)
        return "\n".join(["<details>", *out, "", "</details>", ""])


def section(c: StackComparison) -> Section | None:
    """A stack's folded details; None for a stack with nothing to add to its table row (no change, no
    failure, no mandatory finding and none new or fixed)."""
    notes: list[str] = []
    if c.head.error:
        error = c.head.error.replace(FENCE, "'''")
        written = " after writing its plan document" if c.head.doc is not None else ""
        also = " (it fails on the base commit too)" if c.base.error else ""
        notes.append("\n".join([f"`plan` failed on the head commit{written}{also}:", "", FENCE, error, FENCE]))
    elif c.head.doc is None:
        return None
    if c.base.doc is None and c.head.doc is not None:
        why = "its plan failed on the base commit" if c.base.error else "the base commit has no such stack"
        notes.append(f"New to this pull request ({why}): every resource is listed as added.")
    notes += [f"Estimate not made for {e}" for e in c.estimate_errors]
    if c.head_est and c.head_est.not_priced:
        notes.append(f"{c.head_est.not_priced} resources have no price in the table (`plan` lists them).")
    if c.head_est and c.base_est and c.head_est.slowest != c.base_est.slowest:
        notes.append(f"Slowest resource: {c.base_est.slowest} → {c.head_est.slowest}.")
    notes += _cost_changes(c)
    lines = diff_lines(c)
    findings = c.head.findings or []
    if not (notes or lines or c.fixed_findings or any(f.mandatory for f in findings)):
        new = {f.key for f in c.new_findings} if c.base.findings is not None else set()
        if not any(f.key in new for f in findings):
            return None
    notes += _findings(c)
    summary = f"<summary><b>{c.stack}</b>: {_changes_cell(c)}</summary>"
    return Section(c.stack, [summary, "", *_join_paragraphs(notes)], lines)


def _join_paragraphs(notes: Iterable[str]) -> list[str]:
    """Paragraphs separated by blank lines; list items (`- `) kept together under their heading."""
    out: list[str] = []
    for note in notes:
        if out and not note.startswith("- "):
            out.append("")
        out.append(note)
    return out


def _size(text: str) -> int:
    """Bytes in UTF-8: never fewer than the characters (or UTF-16 units) GitHub counts."""
    return len(text.encode())


def _fit(sections: list[Section], budget: int) -> None:
    """Cuts diff lines until the sections fit `budget` together: the shortest diffs stay whole, the longest
    share what is left equally."""
    if sum(_size(s.render(None)) for s in sections) <= budget:
        return
    room = budget - sum(_size(s.render(0)) for s in sections)
    pending = sorted((s for s in sections if s.diff), key=lambda s: _size(s.render(None)))
    for i, s in enumerate(pending):
        share = max(0, room // (len(pending) - i)) - 16  # 16: the cut note's figures may grow
        used, kept = 0, 0
        for line in s.diff:
            if used + _size(line) + 1 > share:
                break
            used, kept = used + _size(line) + 1, kept + 1
        s.shown = None if kept == len(s.diff) else kept
        room -= _size(s.render()) - _size(s.render(0))


@dataclass(frozen=True)
class Labels:
    base: str = "base"
    head: str = "head"
    run_url: str | None = None


def render_comment(comparisons: list[StackComparison], labels: Labels = Labels(), limit: int = GITHUB_LIMIT) -> str:
    changed = [c for c in comparisons if c.head.doc is None or c.head.error or (c.diff and not c.diff.empty)]
    head = [
        MARKER,
        f"### Offline plan: `{_code(labels.base)}` → `{_code(labels.head)}`",
        "",
        f"{len(changed)} of {len(comparisons)} stacks change. Each side is planned from its own commit without "
        "cloud credentials (`python -m mlplatform plan`, the program under the SDK's mocks); cost is the idle "
        "cost per month at list prices, `up` the estimated time of a first `pulumi up`, both recomputed from "
        'the two plan documents (README, "Cost and time").',
        "",
        *summary_table(comparisons),
        "",
    ]
    sections = [s for s in (section(c) for c in comparisons) if s is not None]
    where = f"the [run's]({labels.run_url}) `offline-plan` artifact" if labels.run_url else "`plan`/`diff` locally"
    footer = [f"<sub>Full plans and diffs: {where}. Updated in place on every push.</sub>", ""]
    budget = limit - RESERVE - _size("\n".join(head + footer)) - 300  # 300: the truncation note below
    _fit(sections, budget)

    def body() -> str:
        cut = [s.stack for s in sections if s.cut]
        note = (
            [
                f"**Truncated** to fit GitHub's {limit:,}-character comment limit: the longest resource diffs "
                f"({', '.join(cut)}) are cut; the full ones are in {where}.",
                "",
            ]
            if cut
            else []
        )
        return "\n".join([*head, *note, *(s.render() for s in sections), *footer])

    text = body()
    while _size(text) > limit - RESERVE // 2 and any(s.diff and s.shown != 0 for s in sections):
        # the fixed parts outgrew the estimate: cut the section with the most lines shown by a fifth
        big = max((s for s in sections if s.diff), key=lambda s: len(s.diff) if s.shown is None else s.shown)
        big.shown = int((len(big.diff) if big.shown is None else big.shown) * 0.8)
        text = body()
    if _size(text) > limit:  # only when the fixed parts alone are too long (hundreds of findings)
        text = text.encode()[: limit - 200].decode(errors="ignore") + "\n\n**Truncated** at the size limit.\n"
    return text


def render_directories(base: Path, head: Path, on: date, labels: Labels = Labels()) -> str:
    return render_comment(compare_directories(base, head, on), labels)
