"""The pull-request comment on real plan pairs: dev vs prod (a large diff) and dev vs dev with one config
override (a small edit); its size bound, policy findings, and the in-place update against a fake GitHub."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlplatform.cli import main
from mlplatform.config import read_stack_file
from mlplatform.estimate.cost import estimate_cost
from mlplatform.estimate.timing import estimate_up
from mlplatform.plan.comment import GITHUB_LIMIT, MARKER, Labels, diff_lines, render_comment
from mlplatform.plan.compare import Finding, Side, StackComparison, compare
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize

ROOT = Path(__file__).resolve().parents[1]
ON = date(2026, 12, 3)


def _money(value: float) -> str:
    rounded = round(value)
    return "±$0" if rounded == 0 else f"{'+' if rounded > 0 else '-'}${abs(rounded):,}"


def _row(body: str, stack: str) -> str:
    return next(line for line in body.splitlines() if line.startswith(f"| **{stack}** |"))


@pytest.fixture(scope="module")
def dev_bigger_system_pool() -> PlanDocument:
    """dev with one config override: two system nodes at least instead of one."""
    config = read_stack_file(PROJECT_DIR, "dev")
    config["mlplatform:cluster"] = {"systemPool": {"minNodes": 2, "maxNodes": 3}}
    return synthesize("dev", config_map=config)


@pytest.fixture(scope="module")
def dev_to_prod(dev: PlanDocument, prod: PlanDocument) -> StackComparison:
    return compare("dev", Side(dev), Side(prod), ON)


def test_large_diff_lists_every_change_and_the_deltas_of_the_documents(
    dev: PlanDocument, prod: PlanDocument, dev_to_prod: StackComparison
) -> None:
    c = dev_to_prod
    assert c.diff is not None and c.diff.added and c.diff.removed and c.diff.changed
    body = render_comment([c], Labels("main @ abc1234", "#7 @ def5678"))
    assert body.startswith(MARKER + "\n")
    assert len(body.encode()) <= GITHUB_LIMIT and "Truncated" not in body
    lines = set(body.splitlines())
    for key in c.diff.added:
        assert f"+ {key}" in lines
    for key in c.diff.removed:
        assert f"- {key}" in lines
    for change in c.diff.changed:
        assert f"~ {change.key}" in lines
    # the deltas are head minus base, each estimated from its own plan document
    base_cost, head_cost = estimate_cost(dev, ON), estimate_cost(prod, ON)
    assert c.cost_delta == pytest.approx(head_cost.minimum - base_cost.minimum)
    assert c.cost_with_pods_delta == pytest.approx(head_cost.with_pods - base_cost.with_pods)
    assert c.up_delta == pytest.approx(estimate_up(prod).minutes - estimate_up(dev).minutes)
    row = _row(body, "dev")
    assert f"${base_cost.minimum:,.0f} → ${head_cost.minimum:,.0f} ({_money(c.cost_delta)})" in row
    assert f"({_money(c.cost_with_pods_delta)})" in row
    assert f"+{len(c.diff.added)} -{len(c.diff.removed)} ~{len(c.diff.changed)}" in row


def test_small_edit_shows_the_changed_pool_and_its_price(
    dev: PlanDocument, dev_bigger_system_pool: PlanDocument
) -> None:
    c = compare("dev", Side(dev), Side(dev_bigger_system_pool), ON)
    assert c.diff is not None and not c.diff.added and not c.diff.removed
    (change,) = c.diff.changed
    assert change.key.endswith("aws:eks/nodeGroup:NodeGroup::mlplatform-system")
    body = render_comment([c])
    lines = body.splitlines()
    assert f"~ {change.key}" in lines
    assert "    scalingConfig.minSize: 1.0 -> 2.0" in lines  # every changed property path, old -> new
    assert len(change.changes) == sum(line.startswith("    scalingConfig.") for line in lines)
    # one more system node a month, as the cost model prices it from the two documents
    delta = estimate_cost(dev_bigger_system_pool, ON).minimum - estimate_cost(dev, ON).minimum
    assert delta > 0
    assert c.cost_delta == pytest.approx(delta)
    assert f"({_money(delta)})" in _row(body, "dev") and "| +0 -0 ~1 |" in _row(body, "dev")
    assert f"cluster/mlplatform-system {_money(delta)}" in body  # attributed to the pool
    assert len(body.encode()) < 5_000


def test_unchanged_stacks_say_so_and_have_no_details(dev: PlanDocument, gcp_dev: PlanDocument) -> None:
    body = render_comment(
        [compare("dev", Side(dev), Side(dev), ON), compare("gcp-dev", Side(gcp_dev), Side(gcp_dev), ON)]
    )
    assert "0 of 2 stacks change" in body
    assert "| no changes |" in _row(body, "dev") and "(±$0)" in _row(body, "gcp-dev")
    assert "<details>" not in body


def test_size_stays_under_the_limit_and_the_cut_is_stated(
    dev: PlanDocument, prod: PlanDocument, gcp_dev: PlanDocument, gcp_prod: PlanDocument
) -> None:
    comparisons = [
        compare("dev", Side(dev), Side(prod), ON),
        compare("gcp-dev", Side(gcp_dev), Side(gcp_prod), ON),
        # a stack new in the pull request lists every resource as added: well over the limit alone
        compare("new-a", Side(), Side(prod), ON),
        compare("new-b", Side(), Side(gcp_prod), ON),
    ]
    full = sum(len("\n".join(diff_lines(c)).encode()) for c in comparisons)
    assert full > GITHUB_LIMIT
    body = render_comment(comparisons)
    assert len(body.encode()) <= GITHUB_LIMIT
    assert "**Truncated** to fit GitHub's 65,536-character comment limit" in body
    assert body.count("more lines not shown") >= 2
    assert body.startswith(MARKER) and body.count("<details>") == body.count("</details>") == 4
    # each cut says how much of its diff it shows; the new stacks (the longest) are cut
    cuts = re.findall(r"… ([\d,]+) more lines not shown \(([\d,]+) of ([\d,]+)\)", body)
    assert len(cuts) >= 2
    for hidden, shown, total in cuts:
        assert int(hidden.replace(",", "")) + int(shown.replace(",", "")) == int(total.replace(",", ""))
    assert "(new-a, new-b)" in body or "new-a, new-b)" in body
    # a tighter limit still holds, with every section's summary kept
    small = render_comment(comparisons, limit=12_000)
    assert len(small.encode()) <= 12_000
    assert all(f"| **{c.stack}** |" in small for c in comparisons)


def test_policy_findings_new_and_fixed(dev: PlanDocument) -> None:
    a = Finding("bucket-private", "mlplatform-models", "public ACL", True)
    b = Finding("requests-set", "mlflow", "no memory request", False)
    c = Finding("database-backups", "mlplatform-postgres", "backups 7 days < 14", True)
    d1 = Finding("charts-rendered", "airflow", "not rendered", False)
    d2 = Finding("charts-rendered", "loki", "not rendered", False)
    comparison = compare("prod", Side(dev, findings=[a, b, d1, d2]), Side(dev, findings=[a, c, d1, d2]), ON)
    body = render_comment([comparison])
    assert "❌ 2 mandatory (1 new), 2 advisory, 1 fixed" in _row(body, "prod")
    assert "- **bucket-private** (mandatory) `mlplatform-models`: public ACL" in body  # every mandatory one
    # advisory findings both sides have are counted per rule, not listed
    assert "- advisory, unchanged: charts-rendered (2)" in body and "`loki`" not in body
    assert "- new: **database-backups** (mandatory) `mlplatform-postgres`: backups 7 days < 14" in body
    assert "- fixed: **requests-set** (advisory) `mlflow`: no memory request" in body
    clean = render_comment([compare("dev", Side(dev, findings=[]), Side(dev, findings=[]), ON)])
    assert "✅ 0 mandatory" in _row(clean, "dev")


def test_failed_head_plan_is_shown_with_its_error(dev: PlanDocument) -> None:
    error = "invalid configuration for stack 'dev' (1 problem):\n  - mlplatform:clustr: unknown key"
    body = render_comment([compare("dev", Side(dev), Side(error=error), ON)])
    assert "❌ plan failed" in _row(body, "dev")
    assert "mlplatform:clustr: unknown key" in body


def test_comment_command_reads_plan_directories(dev: PlanDocument, tmp_path: Path) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    dev.write(base / "dev.json")
    dev.write(head / "dev.json")
    (head / "dev.policy.json").write_text(
        json.dumps([{"rule": "x", "resource": "r", "message": "m", "level": "mandatory"}])
    )
    (head / "prod.error").write_text("boom")
    out = tmp_path / "comment.md"
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform", "comment", "--base", str(base), "--head", str(head), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = out.read_text()
    assert body.startswith(MARKER)
    assert "❌ 1 mandatory" in _row(body, "dev") and "❌ plan failed" in _row(body, "prod")


# -- posting and updating in place, against a fake GitHub --------------------------------------------------


class FakeGitHub:
    """Issue comments of one pull request, served as GitHub's REST API serves them (2 per page)."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [
            {"id": 1, "body": f"quoting {MARKER}", "user": {"login": "someone", "type": "User"}},
            {"id": 2, "body": "LGTM", "user": {"login": "someone", "type": "User"}},
            {"id": 3, "body": "other bot", "user": {"login": "other[bot]", "type": "Bot"}},
        ]
        self.requests: list[tuple[str, str, str | None]] = []

    def serve(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any, link: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if link:
                    self.send_header("Link", link)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, self.headers.get("Authorization")))
                found = re.search(r"[?&]page=(\d+)", self.path)
                page = int(found[1]) if found else 1
                chunk = fake.comments[(page - 1) * 2 : page * 2]
                more = page * 2 < len(fake.comments)
                host = f"http://127.0.0.1:{self.server.server_port}"
                link = (
                    f'<{host}/repos/o/r/issues/7/comments?per_page=100&page={page + 1}>; rel="next"' if more else None
                )
                self._send(200, chunk, link)

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path, self.headers.get("Authorization")))
                new = {"id": 100 + len(fake.comments), "body": self._body()["body"], "user": {"type": "Bot"}}
                fake.comments.append(new)
                self._send(201, new)

            def do_PATCH(self) -> None:
                fake.requests.append(("PATCH", self.path, self.headers.get("Authorization")))
                comment_id = int(self.path.rsplit("/", 1)[1])
                found = next(c for c in fake.comments if c["id"] == comment_id)
                found["body"] = self._body()["body"]
                self._send(200, found)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    yield from ((fake, url) for url in fake.serve())


def test_comment_is_posted_once_then_updated_in_place(
    dev: PlanDocument,
    tmp_path: Path,
    github: tuple[FakeGitHub, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = github
    base, head = tmp_path / "base", tmp_path / "head"
    dev.write(base / "dev.json")
    dev.write(head / "dev.json")
    for name, value in {"GITHUB_TOKEN": "t0ken", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": "o/r"}.items():
        monkeypatch.setenv(name, value)

    def post(label: str) -> str:
        argv = ["comment", "--base", str(base), "--head", str(head), "--pr", "7", "--head-label", label]
        assert main(argv) == 0
        return capsys.readouterr().out

    assert "created on o/r#7" in post("first")
    mine = [c for c in fake.comments if MARKER in c["body"] and c["user"]["type"] == "Bot"]
    assert len(mine) == 1 and "`first`" in mine[0]["body"]
    # the workflow renders once (--out) and posts that file (--body)
    rendered = tmp_path / "comment.md"
    render = ["comment", "--base", str(base), "--head", str(head), "--head-label", "second", "--out", str(rendered)]
    assert main(render) == 0
    assert main(["comment", "--body", str(rendered), "--pr", "7"]) == 0
    assert "updated on o/r#7" in capsys.readouterr().out
    mine = [c for c in fake.comments if MARKER in c["body"] and c["user"]["type"] == "Bot"]
    assert len(mine) == 1 and "`second`" in mine[0]["body"]
    # the person's comment quoting the marker was never touched; every call carried the token
    assert fake.comments[0]["body"] == f"quoting {MARKER}"
    assert {auth for _, _, auth in fake.requests} == {"Bearer t0ken"}
    assert [m for m, _, _ in fake.requests].count("POST") == 1
    # the second run found its comment on the second page
    assert any("page=2" in path for m, path, _ in fake.requests if m == "GET")


def test_a_body_without_the_marker_is_not_posted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "comment.md"
    body.write_text("### Offline plan\n")
    assert main(["comment", "--body", str(body), "--pr", "7", "--repo", "o/r"]) == 2
    assert MARKER in capsys.readouterr().err
