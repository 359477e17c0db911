"""The pack runs the way the Pulumi CLI runs it: `python -u -m pulumi.policy <engine> policy/` in the pack's
own environment (.venv-policy, from policy/requirements.txt) builds the PolicyPack, which serves Pulumi's
Analyzer gRPC service on 127.0.0.1 and prints its port (pulumi_policy/policy.py PolicyPack.__init__ @
1.21.0; pulumi/policy/__main__.py runs the pack directory with runpy @ pulumi 3.272.0). The test then calls
it as the engine does, Analyze per resource and AnalyzeStack once, with the plan's registrations as
protobuf Structs, and compares every verdict with the in-process run of the same rules."""

from __future__ import annotations

import copy
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
from tests.support.policy_cases import find, weaken
from tests.support.registrations import custom_registration
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


# pulumi_policy/proxy.py @ 1.21.0: the string the engine sends for a value not known during a preview
# (pulumi/pulumi sdk/go/common/resource/plugin/rpc.go UnknownStringValue; the analyzer marshals with
# KeepUnknowns)
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def _kms_default(reg: Registration) -> dict:
    return reg.inputs["rules"][0]["applyServerSideEncryptionByDefault"]


@pytest.mark.slow
def test_a_value_unknown_during_a_preview_is_no_mandatory_verdict(analyzer, plan) -> None:
    """In a preview a new KMS key's ARN is unknown: the bucket it encrypts is not failed for it, and the
    finding comes back as the SDK's advisory "can't run policy ... during preview" naming the value; a bucket
    whose key is really missing still fails, mandatory, in the same request."""
    doc = copy.deepcopy(plan("prod"))
    configs = doc.by_type(ENCRYPTION)
    assert len(configs) >= 2
    unknown, missing = configs[0], configs[1]
    _kms_default(unknown)["kmsMasterKeyId"] = UNKNOWN
    del _kms_default(missing)["kmsMasterKeyId"]
    served = _verdicts(analyzer, doc)
    mandatory = {(rule, urn) for rule, urn, _, is_mandatory in served if is_mandatory}
    buckets = {r.urn: r for r in doc.resources if r.type.startswith("aws:s3/bucket:")}
    (unknown_bucket,) = [u for u in unknown.dependencies if u in buckets]
    (missing_bucket,) = [u for u in missing.dependencies if u in buckets]
    assert ("bucket-encrypted", missing_bucket) in mandatory
    assert not [v for v in mandatory if v[1] == unknown_bucket], mandatory
    advisories = [m for rule, _, m, is_mandatory in served if rule == "bucket-encrypted" and not is_mandatory]
    assert any("during preview" in m and "kmsMasterKeyId" in m for m in advisories), advisories


@pytest.mark.slow
def test_an_unknown_input_of_one_resource_is_no_mandatory_verdict(analyzer, plan) -> None:
    """Analyze (one resource, its inputs): a node pool whose service account is a new account's email,
    unknown in a preview, is not reported as running as the default compute account."""
    pool = copy.deepcopy(find(plan("gcp-prod"), "gcp:container/nodePool:NodePool"))
    pool.inputs["nodeConfig"]["serviceAccount"] = UNKNOWN
    request = analyzer_pb2.AnalyzeRequest(
        type=pool.type, properties=_struct(pool.inputs), urn=pool.urn, name=pool.name, options=_options(pool)
    )
    diagnostics = analyzer.Analyze(request).diagnostics
    assert not [d for d in diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY], diagnostics
    assert any(
        d.policyName == "gke-node-service-account" and "nodeConfig.serviceAccount" in d.message for d in diagnostics
    )


@pytest.mark.slow
def test_a_helm_v4_chart_expanded_by_the_engine_is_checked_through_its_objects(analyzer, plan) -> None:
    """AnalyzeStack sends outputs; a helm.v4.Chart's outputs are only `resources`, its objects come as
    resources with the Chart as parent. The pack checks those objects as the chart's (no failed render),
    and a container without requests among them is named as the chart's."""
    doc = copy.deepcopy(plan("prod"))
    charts = doc.by_type("kubernetes:helm.sh/v4:Chart")
    assert charts
    chart = charts[0]
    chart.inputs = {"resources": []}
    labels = {"helm.sh/chart": "pushgateway-3.0.0", "app.kubernetes.io/name": "pushgateway"}
    container = {"name": "pushgateway", "image": "quay.io/prometheus/pushgateway:v1.11.0"}
    deployment = custom_registration(
        chart.urn.rsplit("::", 1)[0] + "::kubernetes:apps/v1:Deployment::pushgateway-child",
        "kubernetes:apps/v1:Deployment",
        "pushgateway-child",
        parent=chart.urn,
        inputs={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "pushgateway", "namespace": "monitoring", "labels": labels},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        },
    )
    doc.resources.append(deployment)
    served = _verdicts(analyzer, doc)
    assert not [v for v in served if v[0] == "charts-rendered" and v[1] == chart.urn], served
    requests = [v for v in served if v[0] == "container-requests" and v[1] == chart.urn]
    assert requests and all(f"release {chart.name}: Deployment monitoring/pushgateway" in v[2] for v in requests)


def _expand_charts(doc: PlanDocument) -> PlanDocument:
    """The stack as AnalyzeStack sends it: each helm.v4.Chart with its outputs only (`resources`) and its
    objects (rendered here from the pinned chart, as the provider renders it) as resources it parents."""
    stack = stack_from_plan(doc, {"mlplatform:profile": "prod"}, default_charts(PROJECT_DIR))
    expanded = copy.deepcopy(doc)
    for chart in expanded.by_type("kubernetes:helm.sh/v4:Chart"):
        objects = stack.chart_objects(next(r for r in stack.resources if r.urn == chart.urn))
        chart.inputs = {"resources": []}
        for i, obj in enumerate(objects):
            group, _, version = str(obj["apiVersion"]).rpartition("/")
            type_ = f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"
            name = f"{chart.name}-{i}"
            expanded.resources.append(
                custom_registration(f"{chart.urn}${type_}::{name}", type_, name, copy.deepcopy(obj), parent=chart.urn)
            )
    return expanded


@pytest.mark.slow
def test_the_served_pack_gives_the_in_process_verdicts_on_expanded_charts(analyzer, plan) -> None:
    """The feature server (feast) and the observability agents are helm.v4.Charts: under the CLI they
    arrive expanded, and the HA table, pod and secret rules see the same objects as in the offline plan."""
    weak = weaken(plan("prod"))
    assert weak.by_type("kubernetes:helm.sh/v4:Chart")
    expected = {
        (f.rule, f.urn, f.message, f.mandatory)
        for f in evaluate(stack_from_plan(weak, {"mlplatform:profile": "prod"}, default_charts(PROJECT_DIR)))
    }
    assert _verdicts(analyzer, _expand_charts(weak)) == expected


@pytest.mark.slow
def test_a_releases_pure_outputs_unknown_in_a_preview_leave_its_verdicts(analyzer, plan) -> None:
    """A helm.v3.Release's outputs in a preview carry `status` and `resourceNames` unknown (pulumi-kubernetes
    helm_release.go checkpointRelease); no rule reads them, so its findings stay at their level."""
    weak = weaken(plan("prod"))
    expected = {
        (f.rule, f.urn, f.message, f.mandatory)
        for f in evaluate(stack_from_plan(weak, {"mlplatform:profile": "prod"}, default_charts(PROJECT_DIR)))
    }
    previewed = copy.deepcopy(weak)
    for release in previewed.by_type("kubernetes:helm.sh/v3:Release"):
        release.inputs |= {"status": UNKNOWN, "resourceNames": UNKNOWN}
    releases = {r.urn for r in previewed.by_type("kubernetes:helm.sh/v3:Release")}
    assert any(v[1] in releases and v[3] for v in expected)  # a release's mandatory finding to keep
    assert _verdicts(analyzer, previewed) == expected
