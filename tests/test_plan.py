"""The offline plan: every registration recorded whole, secrets redacted, resources grouped by layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.plan import tls_mocks
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import mock_password
from mlplatform.plan.render import render
from tests.support.managed import managed_stack

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "mlplatform:cluster:Cluster",
    "mlplatform:storage:Storage",
    "mlplatform:data:Data",
    "mlplatform:lifecycle:Lifecycle",
    "mlplatform:serving:Serving",
    "mlplatform:observability:Observability",
    "mlplatform:client:Client",
}
NAMESPACES = "mlplatform:platform:Namespaces"  # made by the stack composition before the layers
TOP_LEVEL = LAYERS | {NAMESPACES}
IN_CLUSTER = {
    "mlplatform:lifecycle:Lifecycle",
    "mlplatform:serving:Serving",
    "mlplatform:observability:Observability",
    "mlplatform:client:Client",
    NAMESPACES,
}
# layers the stack makes only when config enables them (stacks/platform.py). Streaming is in-cluster but for
# its topics, cloud resources of the data layer's Kafka cluster (components/streaming/topics.py)
OPTIONAL_LAYERS = {"mlplatform:streaming:Streaming"}
STREAMING_CLOUD_TYPES = {"aws:msk/topic:Topic", "gcp:managedkafka/topic:Topic"}
# pulumi-tls resources compute keys and certificates on the deployer's machine (the platform CA and the
# in-cluster data services' server certificates, components/data/in_cluster/tls.py): like random, they run on
# the default provider, whose one setting (`tls:proxy`, pulumi_tls/config/vars.py @ 5.6.2) is for resources
# that reach external endpoints, which these do not; so no credentials, region or cluster to choose
LOCAL_TLS_TYPES = {
    "tls:index/privateKey:PrivateKey",
    "tls:index/selfSignedCert:SelfSignedCert",
    "tls:index/certRequest:CertRequest",
    "tls:index/locallySignedCert:LocallySignedCert",
}
STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]
REQUIRED_FIELDS = {"urn", "type", "name", "parent", "provider", "dependencies", "protect", "retainOnDelete", "inputs"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_has_the_seven_layers(plan, stack: str) -> None:
    doc = plan(stack)
    top = [r for r in doc.resources if r.parent == doc.stack_urn and not r.type.startswith("pulumi:providers:")]
    assert {r.type for r in top} - OPTIONAL_LAYERS == TOP_LEVEL


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_belongs_to_a_layer_or_is_a_provider(plan, stack: str) -> None:
    doc = plan(stack)
    for r in doc.resources:
        top = doc.top_level_of(r)
        assert top.type in TOP_LEVEL | OPTIONAL_LAYERS or top.type.startswith("pulumi:providers:"), r.urn


@pytest.mark.parametrize("stack", STACKS)
def test_providers_follow_the_layer(plan, stack: str) -> None:
    """Cloud resources use the explicit cloud provider, Kubernetes objects the cluster's provider, and the
    in-cluster layers hold Kubernetes objects only. Locally computed values (random, tls) need no provider
    configuration."""
    doc = plan(stack)
    cloud = doc.outputs["cloud"]
    expected = {
        "kubernetes": doc.one("pulumi:providers:kubernetes").urn,
        cloud: doc.one(f"pulumi:providers:{cloud}", f"mlplatform-{cloud}").urn,
    }
    # on gcp the project's APIs are enabled through their own provider, which the main one waits for
    apis = [r.urn for r in doc.named("mlplatform-gcp-apis")]
    for r in doc.resources:
        if not r.custom or r.type.startswith(("pulumi:providers:", "random:")):
            continue  # the random provider needs no configuration
        if r.type.startswith("tls:"):
            assert r.type in LOCAL_TLS_TYPES and not r.provider, r.urn  # see LOCAL_TLS_TYPES
            assert doc.top_level_of(r).type == "mlplatform:data:Data", r.urn  # the platform CA's certificates
            continue
        if r.type == "gcp:projects/service:Service":
            assert r.provider.startswith(apis[0] + "::"), r.urn
            continue
        package = r.type.split(":")[0]
        if package == "docker-build":
            # the images this repository builds (components/images.py) on the deployer's machine and pushes to
            # the stack's registry, for the in-cluster layers that run them: no cloud or cluster provider
            assert r.type == "docker-build:index:Image" and doc.top_level_of(r).type in IN_CLUSTER | OPTIONAL_LAYERS
            continue
        assert r.provider.startswith(expected[package] + "::"), (r.urn, r.provider)
        if doc.top_level_of(r).type in IN_CLUSTER:
            assert package == "kubernetes", r.urn
        if doc.top_level_of(r).type in OPTIONAL_LAYERS:
            assert package == "kubernetes" or r.type in STREAMING_CLOUD_TYPES, r.urn


def test_plan_json_lists_every_registration_with_required_fields(dev: PlanDocument, tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    dev.write(path)
    doc = json.loads(path.read_text())
    assert doc["stack"] == "dev" and doc["project"] == "mlplatform"
    assert len(doc["resources"]) == len(dev.resources)
    for r in doc["resources"]:
        assert r.keys() >= REQUIRED_FIELDS, r["urn"]
    assert PlanDocument.read(path).to_json() == dev.to_json()  # round-trips


def test_dependencies_are_recorded(dev: PlanDocument) -> None:
    nat = dev.by_type("aws:ec2/natGateway:NatGateway")[0]
    igw = dev.one("aws:ec2/internetGateway:InternetGateway")
    assert igw.urn in nat.dependencies


def test_secrets_are_redacted_everywhere(dev: PlanDocument, tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    dev.write(path)
    text = path.read_text()
    # every generated password (the mocks make each one distinct) appears nowhere, only the redaction marker
    generated = dev.by_type("random:index/randomPassword:RandomPassword")
    assert generated
    for password in generated:
        assert mock_password(password.name, int(password.inputs["length"])) not in text, password.name
    secret = dev.one("kubernetes:core/v1:Secret", "mlplatform-mlflow-db-secret")
    assert secret.inputs["stringData"] == "[secret]"
    # nor does any private key the tls mocks made (the platform CA's, the in-cluster servers'), in either PEM
    keys = dev.by_type("tls:index/privateKey:PrivateKey")
    assert keys
    for key in keys:
        made = tls_mocks._private_key(key.name, key.inputs)
        for pem in (made["privateKeyPem"], made["privateKeyPemPkcs8"]):
            assert pem.splitlines()[1] not in text, key.name  # a line of the key's base64 body
    # the RDS admin's password (dev with RDS, whatever its default mode)
    managed = managed_stack("dev", ("postgres",))
    managed.write(tmp_path / "managed.json")
    text = (tmp_path / "managed.json").read_text()
    for password in managed.by_type("random:index/randomPassword:RandomPassword"):
        assert mock_password(password.name, int(password.inputs["length"])) not in text, password.name
    rds = managed.one("aws:rds/instance:Instance", "mlplatform-postgres")
    assert rds.inputs["password"] == "[secret]"


def test_stack_outputs_are_in_the_plan(dev: PlanDocument) -> None:
    assert dev.outputs["cloud"] == "aws"
    # dev's PostgreSQL is in the cluster: its backups bucket too (components/data/in_cluster/backups.py)
    assert set(dev.outputs["buckets"]) == {"artifacts", "datasets", "logs", "backups"}
    assert all(uri.startswith("s3://") for uri in dev.outputs["buckets"].values())
    # dev's PostgreSQL: the in-cluster Service by default, the RDS instance's address when managed
    assert dev.outputs["postgresHost"].endswith(".data.svc.cluster.local")
    managed = managed_stack("dev", ("postgres",))
    assert managed.outputs["postgresHost"].endswith(".rds.amazonaws.com")
    assert "backups" not in managed.outputs["buckets"]  # RDS keeps its own backups


def test_render_groups_by_layer_with_counts_and_outputs(dev: PlanDocument) -> None:
    text = render(dev)
    for layer in TOP_LEVEL:
        assert f"{layer}  mlplatform  (" in text
    assert "Outputs:" in text and "clusterName: " in text
    summary = render(dev, summary_only=True)
    assert "aws:eks/nodeGroup:NodeGroup" in summary and "├─" not in summary


@pytest.mark.parametrize("stack", STACKS)
def test_plan_is_fast(plan, stack: str) -> None:
    """CPU seconds, not wall time: two test workers and anything else on a 2-core machine stretch the wall
    clock (11 s measured under load for a 6 s synthesis), the CPU the synthesis itself spends does not."""
    assert plan(stack).cpu_seconds < 10


def test_plan_command_prints_tree_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform", "plan", "--stack", "dev", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "mlplatform:cluster:Cluster  mlplatform" in result.stdout
    assert json.loads(out.read_text())["stack"] == "dev"
