"""The mlflow-3 ServingRuntime speaks KServe's Open Inference Protocol (V2) for MLflow 3 models.

For real: a scikit-learn model logged with MLflow 3, laid out as the storage initializer leaves it, served
by MLServer started with the planned runtime container's command, arguments and environment, and asked
over V2 the way KServe's readiness, transformers and clients ask. Then what the plan builds around it: the
image from this repository (pins in one place, a non-root USER), tagged by content, pushed to the stack's
registry, and run by digest.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from components.serving.images import IMAGES_DIR, PLATFORM_IMAGES, RUNTIME, context_hash
from components.serving.kserve import MLFLOW_RUNTIME
from mlplatform.pins import MLFLOW, MLSERVER_MLFLOW_UID, MLSERVER_TAG, TRAINING_REQUIREMENTS
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import ACCOUNT
from tests.support.mlserver import REQUIREMENTS, ROOT, VENV, log_model, serve, venv_dir
from tests.support.net import request
from tests.support.tools import venv_python

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]
SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
IMAGE = "docker-build:index:Image"
ISVC = "churn"  # the InferenceService the test stands for


def requirement_pins(path: Path) -> dict[str, str]:
    """name (normalised as pip does) -> version of every `name==version` line."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def runtime_container(doc: PlanDocument) -> dict[str, Any]:
    [runtime] = [r for r in doc.by_type(SERVING_RUNTIME) if r.inputs["metadata"]["name"] == MLFLOW_RUNTIME]
    [container] = runtime.inputs["spec"]["containers"]
    return container


# --- for real ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_runtime_serves_an_mlflow_3_model_over_v2(dev: PlanDocument, tmp_path: Path) -> None:
    python = venv_python(VENV, REQUIREMENTS)
    work = tmp_path
    model = log_model(python, work)
    container = runtime_container(dev)
    with serve(container, model.directory, ISVC, venv_dir(python), work) as server:
        # KServe's V2 health and metadata (the readiness probe's path answered before serve() returned)
        assert request(f"{server.url}/v2/health/live")[0] == 200
        assert request(f"{server.url}/v2/health/ready")[0] == 200
        status, ready = request(f"{server.url}/v2/models/{ISVC}/ready")
        assert status == 200, ready
        status, metadata = request(f"{server.url}/v2/models/{ISVC}")
        assert status == 200 and metadata["name"] == ISVC, metadata
        assert [i["shape"] for i in metadata["inputs"]] == [[-1, 2]]  # from the logged signature
        # a V2 inference request, as a transformer or client sends it
        body = {
            "parameters": {"content_type": "np"},
            "inputs": [
                {"name": "features", "shape": [len(model.inputs), 2], "datatype": "FP64",
                 "data": [v for row in model.inputs for v in row]},
            ],
        }  # fmt: skip
        status, answer = request(f"{server.url}/v2/models/{ISVC}/infer", body)
        assert status == 200, answer
        assert answer["model_name"] == ISVC
        [output] = answer["outputs"]
        assert [int(v) for v in output["data"]] == model.predictions
        assert len(set(model.predictions)) == 2  # the inputs tell the classes apart: not a constant answer
        # Prometheus scrapes the port the runtime's annotation names, where MLServer counts the request
        status, _ = request(f"{server.url}/v2/models/not-{ISVC}/ready")
        assert status == 404
        with urllib.request.urlopen(f"{server.metrics_url}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        counted = rf'model_infer_request_success_total\{{[^}}]*model="{ISVC}"[^}}]*\}} 1\.0'
        assert re.search(counted, metrics), metrics[:2000]


def test_metrics_annotation_names_the_metrics_port(plan) -> None:
    for stack in STACKS:
        [runtime] = [r for r in plan(stack).by_type(SERVING_RUNTIME) if r.inputs["metadata"]["name"] == MLFLOW_RUNTIME]
        env = {e["name"]: e["value"] for e in runtime.inputs["spec"]["containers"][0]["env"]}
        assert runtime.inputs["spec"]["annotations"]["prometheus.kserve.io/port"] == env["MLSERVER_METRICS_PORT"]
        assert runtime.inputs["spec"]["protocolVersions"] == ["v2"]


# --- the image: one list of pins -------------------------------------------------------------------------


def test_the_images_pins_are_the_platforms() -> None:
    pins = requirement_pins(ROOT / REQUIREMENTS)
    assert pins["mlserver"] == pins["mlserver-mlflow"] == MLSERVER_TAG
    assert pins["mlflow"] == pins["mlflow-skinny"] == MLFLOW.app_version  # models served by the MLflow that logs them
    # the training job's libraries at its versions: a model loads with the scikit-learn (and skops) that saved it
    training = dict(r.split("==", 1) for r in TRAINING_REQUIREMENTS if "==" in r)
    assert "scikit-learn" in training
    assert {name: pins.get(name) for name in training} == training
    assert int(pins["uvloop"].split(".")[1]) < 22 and pins["uvloop"].startswith("0.")  # see requirements.txt
    assert int(pins["fastapi"].split(".")[1]) < 116  # mlserver 1.7.1 requires fastapi<0.116.0


@pytest.mark.slow
def test_the_test_venv_is_the_images_list() -> None:
    """.venv-mlserver holds exactly requirements.txt's versions: the test serves with what the image runs."""
    import subprocess

    python = venv_python(VENV, REQUIREMENTS)
    listing = "import importlib.metadata as m; print('\\n'.join(f'{d.name}=={d.version}' for d in m.distributions()))"
    out = subprocess.run([python, "-c", listing], capture_output=True, text=True, check=True, timeout=60).stdout
    installed = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in (line.split("==", 1) for line in out.split())}
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)
    assert installed == requirement_pins(ROOT / REQUIREMENTS)


def test_the_dockerfile_installs_the_list_as_a_numeric_non_root_user(dev: PlanDocument) -> None:
    dockerfile = (ROOT / IMAGES_DIR / RUNTIME / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    [base] = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"[\w./-]+:3\.11\.\d+-slim-\w+", base), base  # pinned by tag, the venv's Python minor
    assert "pip install --no-deps -r /tmp/requirements.txt" in dockerfile and "pip check" in dockerfile
    [user] = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user.isdigit() and int(user) == MLSERVER_MLFLOW_UID != 0
    security = runtime_container(dev)["securityContext"]
    assert security["runAsUser"] == MLSERVER_MLFLOW_UID and security["runAsNonRoot"] is True


# --- built, pushed, run by digest ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_runtime_runs_the_image_built_from_this_repository_by_digest(plan, stack: str) -> None:
    doc = plan(stack)
    # the serving layer's images (other layers build their own: the Feast client, tests/test_feast_client_image.py)
    images = {
        r.name.removeprefix("mlplatform-images-"): r
        for r in doc.by_type(IMAGE)
        if r.name.startswith("mlplatform-images-")
    }
    shipped = [i for i in PLATFORM_IMAGES if (ROOT / IMAGES_DIR / i / "Dockerfile").is_file()]
    assert sorted(images) == sorted(shipped) and RUNTIME in images
    registry = registry_url(doc)
    for name, image in images.items():
        [tag] = image.inputs["tags"]
        expected = f"{registry}:{name}-" if stack in ("dev", "prod") else f"{registry}/{name}:"
        assert tag == expected + context_hash(ROOT / IMAGES_DIR / name)  # a changed directory, a new tag
        assert image.inputs["push"] is True and image.inputs["context"]["location"] == f"{IMAGES_DIR}/{name}"
        [login] = image.inputs["registries"]
        assert tag.startswith(login["address"] + "/") and login["password"] == "[secret]"
    runtime = next(r for r in doc.by_type(SERVING_RUNTIME) if r.inputs["metadata"]["name"] == MLFLOW_RUNTIME)
    built = images[RUNTIME]
    assert built.urn in runtime.dependencies
    image_ref = runtime.inputs["spec"]["containers"][0]["image"]
    [tag] = built.inputs["tags"]
    # by digest: KServe leaves a digest reference alone (kserve v0.20.0 UpdateImageTag) and nodes pull exactly it
    assert re.fullmatch(re.escape(tag) + r"@sha256:[0-9a-f]{64}", image_ref), image_ref


def registry_url(doc: PlanDocument) -> str:
    """The repository images are pushed under, as the cloud reports it."""
    if doc.by_type("aws:ecr/repository:Repository"):
        repo = doc.one("aws:ecr/repository:Repository")
        return f"{ACCOUNT}.dkr.ecr.{doc.outputs['region']}.amazonaws.com/{repo.inputs.get('name', repo.name)}"
    repo = doc.one("gcp:artifactregistry/repository:Repository").inputs
    return f"{repo['location']}-docker.pkg.dev/{repo['project']}/{repo['repositoryId']}"


def test_the_context_hash_follows_the_files_and_ignores_caches(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = context_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert context_hash(tmp_path) == first
    (tmp_path / "requirements.txt").write_text("a==1\n")
    assert context_hash(tmp_path) != first


# --- the registry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ecr_repository_is_immutable_scanned_encrypted_and_cleaned(plan, stack: str) -> None:
    import json

    doc = plan(stack)
    repo = doc.one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
    [rule] = json.loads(doc.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert rule["selection"]["tagStatus"] == "untagged" and rule["action"] == {"type": "expire"}
    # nodes pull (the kubelet, with the node role); no workload's role is given the registry
    attachments = {a.inputs["policyArn"] for a in doc.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly" in attachments
    for policy in doc.by_type("aws:iam/rolePolicy:RolePolicy"):
        assert "ecr:" not in str(policy.inputs.get("policy")), policy.name


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_artifact_registry_is_immutable_scanned_and_cleaned(plan, stack: str) -> None:
    from components.cluster.gcp import NODE_ROLES

    doc = plan(stack)
    repo = doc.one("gcp:artifactregistry/repository:Repository")
    assert repo.inputs["format"] == "DOCKER" and repo.inputs["dockerConfig"] == {"immutableTags": True}
    [cleanup] = repo.inputs["cleanupPolicies"]
    assert cleanup["action"] == "DELETE" and cleanup["condition"]["tagState"] == "UNTAGGED"
    assert repo.inputs.get("cleanupPolicyDryRun") is False
    enabled = {s.inputs["service"] for s in doc.by_type("gcp:projects/service:Service")}
    assert {"artifactregistry.googleapis.com", "containerscanning.googleapis.com"} <= enabled
    assert "roles/artifactregistry.reader" in NODE_ROLES  # the kubelet pulls as the node service account
    grants = doc.by_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert not grants  # no workload is given the registry
