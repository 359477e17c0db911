"""The policy pack's rules over real plans: each rule passes on the stack as the program builds it and
fails, naming the edited resource, on a copy with one registration weakened (tests/support/policy_cases.py);
every stack passes with zero mandatory violations; a weakened prod fails naming every mandatory rule."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlplatform.cli import default_charts
from mlplatform.config import read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from policy.engine import evaluate, report, stack_from_plan
from policy.rules import ResourceRule, all_rules
from policy.view import Context, Resource, Stack, from_registration, plain
from tests.support.policy_cases import CASES, Case, find, weaken

# the local stack (issue 22) too, once its stack file is there
STACKS = ("dev", "prod", "gcp-dev", "gcp-prod") + (("local",) if (PROJECT_DIR / "Pulumi.local.yaml").is_file() else ())
RULES = {r.name: r for r in all_rules()}


def findings(doc: PlanDocument, rule: str | None = None, charts: Path | None = None) -> list:
    stack = stack_from_plan(doc, read_stack_file(PROJECT_DIR, doc.stack), charts)
    return evaluate(stack, [RULES[rule]] if rule else None)


def test_every_rule_has_a_case_a_docstring_and_a_unique_name() -> None:
    # the two advisory rules a real plan already breaks have tests of their own below
    assert {c.rule for c in CASES} >= set(RULES) - {"charts-rendered", "gke-secrets-encryption"}
    for rule in RULES.values():
        assert len(rule.why) > 80, f"{rule.name}: say why, citing the doc or design"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}[{c.stack}: {c.what}]")
def test_rule_passes_on_the_plan_and_fails_on_the_weakened_resource(plan, case: Case) -> None:
    doc = plan(case.stack)
    before = findings(doc, case.rule)
    weak = copy.deepcopy(doc)
    edited = case.edit(weak)
    after = findings(weak, case.rule)
    assert edited is not None
    new = [f for f in after if f not in before]
    assert new, f"{case.rule} did not catch: {case.what}"
    assert any(f.urn == edited.urn for f in new), [str(f) for f in new]
    assert all(case.contains in f.message for f in new if f.urn == edited.urn and case.contains)
    if RULES[case.rule].mandatory:
        assert not [f for f in before if f.urn == edited.urn], [str(f) for f in before]


def test_advisory_gke_secrets_rule_passes_with_application_layer_encryption(gcp_prod: PlanDocument) -> None:
    """The one advisory rule every GCP stack fails today (left open): it passes once the cluster has it."""
    rule = RULES["gke-secrets-encryption"]
    cluster = find(gcp_prod, "gcp:container/cluster:Cluster")
    assert findings(gcp_prod, rule.name)
    fixed = copy.deepcopy(cluster)
    fixed.inputs["databaseEncryption"] = {
        "state": "ENCRYPTED",
        "keyName": "projects/p/locations/l/keyRings/r/cryptoKeys/k",
    }
    assert isinstance(rule, ResourceRule)
    assert list(rule.check(from_registration(fixed), Context("gcp-prod", "prod"))) == []


def test_dev_relaxations_apply_only_outside_prod(plan) -> None:
    """Dev buckets are force-destroyed and unversioned and its API is open: each is a prod rule, so dev
    passes and the same resources fail as prod."""
    dev = plan("dev")
    as_prod = stack_from_plan(dev, {"mlplatform:profile": "prod"})
    failed = {f.rule for f in evaluate(as_prod) if f.mandatory}
    assert {"bucket-versioned", "bucket-no-force-destroy", "cluster-api-not-open", "stateful-protected"} <= failed
    assert not [f for f in findings(dev) if f.mandatory]


def test_charts_rendered_names_each_chart_it_could_not_render(prod: PlanDocument) -> None:
    def broken(res: Resource) -> list:
        raise LookupError("no such package")

    stack = Stack(Context("prod", "prod"), [from_registration(r) for r in prod.resources], broken)
    found = evaluate(stack, [RULES["charts-rendered"]])
    helm = prod.by_type("kubernetes:helm.sh/v3:Release") + prod.by_type("kubernetes:helm.sh/v4:Chart")
    assert {f.urn for f in found} == {r.urn for r in helm} and not any(f.mandatory for f in found)
    stack = Stack(Context("prod", "prod"), [from_registration(r) for r in prod.resources], lambda r: [])
    assert evaluate(stack, [RULES["charts-rendered"]]) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_zero_mandatory_violations(plan, stack: str) -> None:
    """What `plan` reports, with the chart pods as rendered where the pinned packages are at hand."""
    found = findings(plan(stack), charts=default_charts(PROJECT_DIR))
    assert not [str(f) for f in found if f.mandatory]


def test_rendered_chart_pods_are_checked(prod: PlanDocument) -> None:
    """The pod rules see the charts' pods: a chart pod made to break its namespace's level is caught."""
    charts = default_charts(PROJECT_DIR)
    if charts is None:
        pytest.skip("no pinned chart packages beside the project")
    stack = stack_from_plan(prod, {"mlplatform:profile": "prod"}, charts)
    [release] = [r for r in stack.resources if r.get("chart") == "mlflow"]
    objects = copy.deepcopy(stack.chart_objects(release))
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"].pop("affinity", None)
    stack._rendered[release.urn] = objects
    found = evaluate(stack, [RULES["pod-security"], RULES["ha-table"]])
    assert {f.rule for f in found if f.urn == release.urn} == {"pod-security", "ha-table"}
    assert any("hostNetwork" in f.message for f in found)
    assert any("no zone spread" in f.message for f in found)


def test_a_weakened_prod_fails_with_every_mandatory_rule_named(prod: PlanDocument, gcp_prod: PlanDocument) -> None:
    """Every mandatory rule that can see a prod stack's resources (the in-cluster Valkey rule applies only
    where the data services run in the cluster, which prod refuses by default) is named."""
    in_cluster_only = {"redis-in-cluster-tls-auth", "database-backups-in-cluster"}
    mandatory = {name for name, rule in RULES.items() if rule.mandatory} - in_cluster_only
    named: set[str] = set()
    for doc in (prod, gcp_prod):
        weak = weaken(doc)
        text = report(findings(weak))
        named |= {name for name in mandatory if f"] {name}:" in text}
    assert named == mandatory
    rows = [c.contains for c in CASES if c.rule == "ha-table"]
    text = report(findings(weaken(prod))) + report(findings(weaken(gcp_prod)))
    assert all(row in text for row in rows)


@pytest.mark.slow
def test_plan_command_exits_nonzero_naming_the_rule(tmp_path: Path) -> None:
    """`python -m mlplatform plan` on a prod stack file serving a model at 1 replica: the HA row is named
    and the command fails; the same stack file as shipped passes."""
    stack = read_stack_file(PROJECT_DIR, "prod")
    stack["mlplatform:serving"] = {
        "models": [{"name": "churn", "registeredModel": "churn", "alias": "production", "minReplicas": 1}]
    }
    # the project as it is, but this stack file (the program runs from --project-dir)
    for entry in PROJECT_DIR.iterdir():
        if not entry.name.startswith(("Pulumi.", ".", "plans", "clients", "rendered")):
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": stack}))
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform", "plan", "--stack", "prod", "--project-dir", str(tmp_path), "--summary"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[mandatory] ha-table:" in result.stdout
    assert "serving pods: 3 per zone over 3 zones: minReplicas 1" in result.stdout


class UnknownValueError(Exception):
    """Stands in for pulumi_policy.proxy.UnknownValueError (the pack's venv has the SDK; `plain` matches
    the exception by name)."""


class _Proxy(dict):
    """A mapping raising as the SDK's proxy does on a value unknown during a preview."""

    def __getitem__(self, key: str) -> object:
        value = super().__getitem__(key)
        if value == "<unknown>":
            raise UnknownValueError(key)
        return value


def test_a_value_unknown_during_a_preview_is_dropped_and_recorded() -> None:
    unknown: list[str] = []
    props = _Proxy(rules=[_Proxy(kms=_Proxy(keyId="<unknown>", algorithm="aws:kms"))], name="<unknown>")
    assert plain(props, unknown) == {"rules": [{"kms": {"algorithm": "aws:kms"}}]}
    assert unknown == ["rules[0].kms.keyId", "name"]


def test_a_finding_is_uncertain_only_near_an_unknown_value() -> None:
    """A stack finding rests on the resource, what it depends on and what depends on it."""
    bucket = Resource("aws:s3/bucket:Bucket", "b", "urn:b", {})
    config = Resource("enc", "c", "urn:c", {}, dependencies=("urn:b",), unknown=("rules[0].keyId",))
    other = Resource("aws:s3/bucket:Bucket", "o", "urn:o", {})
    stack = Stack(Context("prod", "prod"), [bucket, config, other])
    assert stack.uncertain(bucket) == ["c.rules[0].keyId"]
    assert stack.uncertain(other) == []
    assert stack.uncertain(None) == ["c.rules[0].keyId"]


def test_a_helm_v4_chart_expanded_by_the_engine_owns_its_child_objects() -> None:
    """AnalyzeStack sends a helm.v4.Chart's outputs (`resources` only) and its objects as children: the
    chart is named from their `helm.sh/chart` label and its objects are the children, yielded once."""
    chart = Resource("kubernetes:helm.sh/v4:Chart", "feast", "urn:chart", {"resources": []})
    labels = {"helm.sh/chart": "feast-feature-server-0.66.0"}
    child = Resource(
        "kubernetes:apps/v1:Deployment",
        "feast-deployment",
        "urn:child",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "feast", "labels": labels}},
        parent="urn:chart",
    )
    stack = Stack(Context("prod", "prod"), [chart, child])
    assert stack.resources[0].get("chart") == "feast-feature-server"
    assert [o["metadata"]["name"] for o in stack.chart_objects(stack.resources[0])] == ["feast"]
    assert [(r.name, where) for r, where, _ in stack.kubernetes_objects()] == [
        ("feast", "release feast: Deployment feast")
    ]
    # a finding on one of its objects rests on what is unknown in them (an image digest in a preview)
    pending = Resource(**{**vars(child), "unknown": ("spec.template.spec.containers[0].image",)})
    stack = Stack(Context("prod", "prod"), [chart, pending])
    assert stack.uncertain(stack.resources[0]) == ["feast-deployment.spec.template.spec.containers[0].image"]
