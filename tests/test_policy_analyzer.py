"""The pack runs the way the Pulumi CLI runs it: `python -u -m pulumi.policy <engine> policy/` in the pack's
own environment (.venv-policy, from policy/requirements.txt) builds the PolicyPack, which serves Pulumi's
Analyzer gRPC service on 127.0.0.1 and prints its port (pulumi_policy/policy.py PolicyPack.__init__ @
1.21.0; pulumi/policy/__main__.py runs the pack directory with runpy @ pulumi 3.272.0). The test then calls
it as the engine does, Analyze per resource and AnalyzeStack once, with the plan's registrations as
protobuf Structs, and compares every verdict with the in-process run of the same rules."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mlplatform.cli import default_charts
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from mlplatform.plan.synth import PROJECT_DIR
from policy.engine import evaluate, stack_from_plan
from policy.rules import all_rules
from tests.support.policy_cases import weaken
from tests.support.tools import venv_python

Verdict = tuple[str, str, str, bool]  # rule, URN, message, mandatory


def _struct(inputs: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(json.loads(json.dumps(inputs)), struct_pb2.Struct())


def _options(reg: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=reg.protect, ignoreChanges=list(reg.ignore_changes), parent=reg.parent or ""
    )


def _message(diagnostic: analyzer_pb2.AnalyzeDiagnostic) -> str:
    """The violation's own message: the SDK prefixes it with the policy's description and a newline."""
    return diagnostic.message.removeprefix(diagnostic.description + "\n")


def _verdicts(stub: analyzer_pb2_grpc.AnalyzerStub, doc: PlanDocument) -> set[Verdict]:
    found: set[Verdict] = set()
    for reg in doc.resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=reg.type, properties=_struct(reg.inputs), urn=reg.urn, name=reg.name, options=_options(reg)
        )
        for d in stub.Analyze(request).diagnostics:
            found.add((d.policyName, d.urn or reg.urn, _message(d), d.enforcementLevel == analyzer_pb2.MANDATORY))
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            properties=_struct(r.inputs),
            urn=r.urn,
            name=r.name,
            options=_options(r),
            parent=r.parent or "",
            dependencies=list(r.dependencies),
        )
        for r in doc.resources
    ]
    response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    for d in response.diagnostics:
        found.add((d.policyName, d.urn, _message(d), d.enforcementLevel == analyzer_pb2.MANDATORY))
    return found


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    python = venv_python(".venv-policy", "policy/requirements.txt")
    charts = default_charts(PROJECT_DIR)
    env = {k: v for k, v in os.environ.items() if k != "MLPLATFORM_CHARTS"}
    # what the CLI hands an analyzer: the stack, and its config as JSON (pulumi_policy reads both); the
    # charts from the same packages as the in-process run, never pulled (no network here)
    env |= {"PULUMI_STACK": "prod", "PULUMI_CONFIG": json.dumps({"mlplatform:profile": "prod"})}
    env |= {"MLPLATFORM_PULL_CHARTS": "0", **({"MLPLATFORM_CHARTS": str(charts)} if charts else {})}
    proc = subprocess.Popen(
        [python, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PROJECT_DIR / "policy")],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            proc.kill()
            raise AssertionError(f"the pack printed {line!r}, not a port: {proc.stderr.read() if proc.stderr else ''}")
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_the_pack_describes_every_rule_with_its_enforcement_level(analyzer) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlplatform"
    served = {p.name: p.enforcementLevel == analyzer_pb2.MANDATORY for p in info.policies}
    assert served == {r.name: r.mandatory for r in all_rules()}


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["prod", "gcp-prod"])
def test_the_served_pack_gives_the_in_process_verdicts(analyzer, plan, stack: str) -> None:
    """On a weakened copy of the stack, so the verdicts include a violation of every rule it can break."""
    weak = weaken(plan(stack))
    expected = {
        (f.rule, f.urn, f.message, f.mandatory)
        for f in evaluate(stack_from_plan(weak, {"mlplatform:profile": "prod"}, default_charts(PROJECT_DIR)))
    }
    served = _verdicts(analyzer, weak)
    assert served == expected
    assert len({v[0] for v in served if v[3]}) >= 15  # mandatory rules violated, each with the same verdicts


def test_the_pack_builds_only_in_its_entry_point() -> None:
    """Importing the rules starts nothing: only policy/__main__.py constructs the PolicyPack (which serves and
    blocks), so the tests and `plan` import the same functions."""
    sources = {p.name: p.read_text() for p in (PROJECT_DIR / "policy").rglob("*.py")}
    assert [name for name, text in sources.items() if "PolicyPack(" in text] == ["pack.py"]
    assert "\nbuild()\n" in sources["__main__.py"]
    assert not [name for name, text in sources.items() if "\nbuild()" in text and name != "__main__.py"]
    assert Path(PROJECT_DIR / "policy" / "PulumiPolicy.yaml").is_file()
