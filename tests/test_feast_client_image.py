"""The Feast client image (images/feast-client): what reads the offline store's bucket. The feature server's
stock image (feast[minimal]) has neither s3fs nor gcsfs, so the platform builds its own client per stack,
with the filesystem of the stack's datasets bucket, and runs it wherever the offline store is read: the
hourly materialization and the training flow's point-in-time feature step.

The s3 requirements are the ones tests/venvs/feast.txt installs, so every Feast test that reads S3 (moto)
runs those versions; the gcs requirements are resolved here beside the Feast the image carries."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from components.contracts import BucketPurpose, ObjectStore
from components.images import IMAGES_DIR, context_hash
from components.lifecycle.feast import CLIENT_IMAGE_DIR, client_image, client_image_spec
from components.lifecycle.training import FEATURE_POD_VARIABLE
from mlplatform.pins import SERVICE_CHARTS
from mlplatform.plan.synth import synthesize
from tests.support.tools import venv_python
from tests.test_training_plan import airflow_env

ROOT = Path(__file__).resolve().parents[1]
DIRECTORY = ROOT / IMAGES_DIR / CLIENT_IMAGE_DIR
IMAGE = "docker-build:index:Image"
STACKS = ("dev", "gcp-dev")  # one per cloud: the filesystem is the only difference
STORE_OF = {"dev": ObjectStore.S3, "gcp-dev": ObjectStore.GCS}


def reader_image(doc) -> str:
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").inputs
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container["image"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_offline_store_is_read_by_the_image_built_for_the_stacks_bucket(plan, stack: str) -> None:
    doc = plan(stack)
    store = STORE_OF[stack]
    assert doc.outputs["buckets"][BucketPurpose.DATASETS.value].startswith(
        f"{'s3' if store is ObjectStore.S3 else 'gs'}://"
    )
    spec = client_image_spec(store)
    [built] = [r for r in doc.by_type(IMAGE) if r.name.endswith(f"-{spec.name}")]
    assert built.inputs["buildArgs"] == {"FILESYSTEM": store.value}
    assert (DIRECTORY / f"requirements-{store.value}.txt").is_file(), "the Dockerfile copies it"
    [tag] = built.inputs["tags"]
    assert tag.endswith(context_hash(DIRECTORY)) and spec.name in tag
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize")
    assert cron.inputs["spec"].get("suspend") is False, "an image that can read the bucket: it runs hourly"
    assert re.fullmatch(re.escape(tag) + r"@sha256:[0-9a-f]{64}", reader_image(doc))
    assert built.urn in cron.dependencies
    feature_step = json.loads(airflow_env(doc)[FEATURE_POD_VARIABLE])
    assert feature_step["spec"]["containers"][0]["image"] == reader_image(doc)


def test_a_configured_client_image_is_run_and_nothing_is_built() -> None:
    from mlplatform.config import read_stack_file
    from mlplatform.plan.synth import PROJECT_DIR

    mine = "registry.example.com/feast-client:1.0@sha256:" + "a" * 64
    stack = read_stack_file(PROJECT_DIR, "dev")
    stack["mlplatform:services"] = {**stack.get("mlplatform:services", {}), "feast": {"clientImage": mine}}
    doc = synthesize("dev", config_map=stack)
    assert not [r for r in doc.by_type(IMAGE) if CLIENT_IMAGE_DIR in r.name]
    assert reader_image(doc) == mine


def test_the_image_extends_the_feature_server_the_platform_runs() -> None:
    """FROM the feature server's image at the chart's app version: the client's feast is the server's."""
    dockerfile = (DIRECTORY / "Dockerfile").read_text()
    [default] = re.findall(r"^ARG FEAST_IMAGE=(\S+)$", dockerfile, re.M)
    assert default == client_image(SERVICE_CHARTS["feast"])
    assert "COPY requirements-${FILESYSTEM}.txt" in dockerfile
    feast_venv = (ROOT / "tests" / "venvs" / "feast.txt").read_text()
    assert f"-r ../../{IMAGES_DIR}/{CLIENT_IMAGE_DIR}/requirements-{ObjectStore.S3.value}.txt" in feast_venv


@pytest.mark.slow
def test_the_gcs_requirements_resolve_beside_the_images_feast() -> None:
    """pip resolves requirements-gcs.txt in the Feast test environment (feast[aws,gcp,redis,postgres] 0.66 at
    the image's lock) without touching Feast or the Google client libraries it pins (feast[gcp] wants
    google-cloud-storage < 3, which gcsfs 2026 would upgrade)."""
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    done = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
         "-r", str(DIRECTORY / f"requirements-{ObjectStore.GCS.value}.txt")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    changed = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(done.stdout)["install"]}
    assert changed.get("gcsfs") == "2025.12.0" and changed.get("fsspec") == "2025.12.0", changed
    assert not {"feast", "google-cloud-storage", "google-auth", "pyarrow", "dask"} & set(changed), changed
