"""Feast's objects in every stack's plan: the feature repository reaches the apply Job whole, a change to it
makes a new Job, and every Feast client gets the YAML the library it runs reads (tests/test_feast_store.py
runs the dev stack's containers with the pinned Feast)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.lifecycle.feast import CLIENT_IMAGE_DIR, FEATURE_REPO, REPO_DIR, client_image, repo_digest
from mlplatform.pins import SERVICE_CHARTS
from mlplatform.plan.document import PlanDocument
from tests.support.graph import helm_release

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind
# a bucket object per seed file (local seeds by a Job into the in-cluster store: tests/test_local_object_store.py)
CLOUD_STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")
FS_YAML_ENV = "FEAST_FS_YAML_FILE_PATH"  # feast/constants.py FEAST_FS_YAML_FILE_PATH_ENV_NAME (v0.66.0)


def apply_job(doc: PlanDocument) -> dict[str, Any]:
    return doc.one("kubernetes:batch/v1:Job", "mlplatform-feast-apply").inputs


def cron_pod(doc: PlanDocument) -> dict[str, Any]:
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").inputs
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def config_maps(doc: PlanDocument, namespace: str) -> dict[str, dict[str, str]]:
    return {
        c.inputs["metadata"]["name"]: c.inputs.get("data") or {}
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("namespace") == namespace
    }


def mounted_file(doc: PlanDocument, namespace: str, pod: dict[str, Any], container: dict[str, Any], path: str) -> str:
    """The text a container reads at `path`, from the ConfigMap volume mounted over it."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        source = volumes[mount["name"]].get("configMap")
        if source and path.startswith(prefix):
            relative = path.removeprefix(prefix)
            keys = {i["path"]: i["key"] for i in source.get("items", [])} or {relative: relative}
            return config_maps(doc, namespace)[source["name"]][keys[relative]]
    raise AssertionError(f"nothing mounted at {path}")


def chart_yaml(doc: PlanDocument) -> str:
    return base64.b64decode(
        helm_release(doc, "feast-feature-server").inputs["values"]["feature_store_yaml_base64"]
    ).decode()


@pytest.mark.parametrize("stack", STACKS)
def test_the_apply_job_carries_the_feature_repository_under_a_name_that_follows_it(plan, stack: str) -> None:
    doc = plan(stack)
    job = apply_job(doc)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    on_disk = {p.name: p.read_text() for p in FEATURE_REPO.iterdir() if p.is_file()}
    assert {".feastignore", "features.py"} <= set(on_disk)
    # every file of feature_repo/ is in the repository the Job reads, at --chdir, not at the mount's root
    chdir = container["command"][container["command"].index("--chdir") + 1]
    assert chdir == REPO_DIR
    for name, text in on_disk.items():
        assert mounted_file(doc, "mlplatform", pod, container, f"{chdir}/{name}") == text, name
    [repo_volume] = [v for v in pod["volumes"] if v["name"] == "feature-repo"]
    assert all(i["path"].startswith("feature_repo/") for i in repo_volume["configMap"]["items"])
    # a changed file is a new Job (and a new ConfigMap), an unchanged repository the same one
    digest = job["metadata"]["name"].removeprefix("feast-apply-")
    assert repo_volume["configMap"]["name"] == f"feast-repo-{digest}"
    assert digest == repo_digest(on_disk, container["image"])
    assert digest != repo_digest({**on_disk, "features.py": on_disk["features.py"] + "\n"}, container["image"])
    assert container["command"][-2:] == ["apply", "--skip-source-validation"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_apply_job_runs_as_the_materialization_does_and_before_it(plan, stack: str) -> None:
    doc = plan(stack)
    job = apply_job(doc)
    pod, cron = job["spec"]["template"]["spec"], cron_pod(doc)
    assert pod["serviceAccountName"] == cron["serviceAccountName"] == "feast"
    # the apply Job needs no bucket: the feature server's image; the materialization reads it: the client
    # image built FROM that one (images/feast-client, tests/test_feast_client_image.py)
    assert pod["containers"][0]["image"] == client_image(SERVICE_CHARTS["feast"])
    assert f"{CLIENT_IMAGE_DIR}-" in cron["containers"][0]["image"]
    secret_refs = [
        {e["name"]: e["valueFrom"] for e in p["containers"][0]["env"] if "valueFrom" in e} for p in (pod, cron)
    ]
    assert secret_refs[0] == secret_refs[1]
    [datasets] = [e["value"] for e in pod["containers"][0]["env"] if e["name"] == "DATASETS_URI"]
    assert datasets == doc.outputs["buckets"]["datasets"]
    applied = doc.one("kubernetes:batch/v1:Job", "mlplatform-feast-apply")
    assert applied.urn in doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").dependencies
    assert doc.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap").urn in applied.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_every_feast_client_reads_the_platforms_yaml_from_a_mounted_file(plan, stack: str) -> None:
    """FeatureStore() and `feast apply` never read FEATURE_STORE_YAML_BASE64 (only the CLI's
    create_feature_store does: feast-dev/feast v0.66.0 repo_operations.py); they read the file that
    FEAST_FS_YAML_FILE_PATH names (utils.get_default_yaml_file_path)."""
    doc = plan(stack)
    expected = chart_yaml(doc)
    assert yaml.safe_load(expected)["offline_store"] == {"type": "file"}
    clients = [("mlplatform", apply_job(doc)["spec"]["template"]["spec"]), ("mlplatform", cron_pod(doc))]
    ray = doc.one("kubernetes:ray.io/v1:RayCluster").inputs["spec"]
    clients += [("training", ray["headGroupSpec"]["template"]["spec"])]
    clients += [("training", g["template"]["spec"]) for g in ray["workerGroupSpecs"]]
    for namespace, pod in clients:
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert "FEATURE_STORE_YAML_BASE64" not in env
        assert mounted_file(doc, namespace, pod, container, env[FS_YAML_ENV]) == expected
    airflow = helm_release(doc, "airflow").inputs["values"]
    env = {e["name"]: e.get("value") for e in airflow["env"]}
    path = Path(env[FS_YAML_ENV])
    [mount] = [m for m in airflow["volumeMounts"] if m["mountPath"] == str(path.parent)]
    [volume] = [v for v in airflow["volumes"] if v["name"] == mount["name"]]
    assert config_maps(doc, "mlplatform")[volume["configMap"]["name"]][path.name] == expected


def _features_sample_path() -> str:
    """SAMPLE_PATH as feature_repo/features.py sets it (read without importing feast)."""
    import ast

    tree = ast.parse((FEATURE_REPO / "features.py").read_text())
    [value] = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SAMPLE_PATH" for t in node.targets)
    ]
    return value


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_the_example_rows_are_uploaded_where_the_feature_view_reads_them(plan, stack: str) -> None:
    """A fresh stack's materialization has data: the storage layer uploads the sample into the datasets
    bucket at the path the example feature view's source names."""
    doc = plan(stack)
    kind = (
        "aws:s3/bucketObjectv2:BucketObjectv2" if stack in ("dev", "prod") else "gcp:storage/bucketObject:BucketObject"
    )
    # the example's rows (and, where streaming is on, its push source's empty batch source: test_streaming_plan.py)
    [seeded] = [
        r for r in doc.by_type(kind) if (r.inputs.get("key") or r.inputs.get("name")) == _features_sample_path()
    ]
    datasets = next(r for r in doc.resources if r.type.endswith(":Bucket") and r.name.endswith("-datasets"))
    assert datasets.urn in seeded.dependencies
    source = Path(seeded.inputs["source"]["path"])
    assert source.is_file() and source.read_bytes()[:4] == b"PAR1"  # a Parquet file


@pytest.mark.slow
def test_the_committed_sample_is_what_sample_data_writes(tmp_path: Path) -> None:
    """The uploaded file is sample_data.py's output (regenerated with the pinned Feast's pyarrow)."""
    import subprocess

    from tests.support.tools import venv_python

    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    fresh = tmp_path / "driver_stats.parquet"
    subprocess.run([python, str(FEATURE_REPO / "sample_data.py"), str(fresh)], check=True, timeout=60)
    compare = (
        "import sys, pyarrow.parquet as pq; "
        "sys.exit(0 if pq.read_table(sys.argv[1]).equals(pq.read_table(sys.argv[2])) else 1)"
    )
    committed = FEATURE_REPO / "data" / "driver_stats.parquet"
    assert subprocess.run([python, "-c", compare, str(fresh), str(committed)], timeout=60).returncode == 0


def test_a_client_image_runs_the_materialization() -> None:
    from mlplatform.config import read_stack_file
    from mlplatform.plan.synth import synthesize

    image = "registry.example.com/ml/feast-client:0.66.0-s3"
    config = read_stack_file(Path("."), "dev") | {"mlplatform:services": {"feast": {"clientImage": image}}}
    cron = synthesize("dev-feast-image", config_map=config).one(
        "kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize"
    )
    spec = cron.inputs["spec"]
    assert spec["suspend"] is False
    [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image


@pytest.mark.parametrize("stack", STACKS)
def test_the_feature_server_starts_after_the_repository_is_applied(plan, stack: str) -> None:
    """Both create the SQL registry's tables on a new database (Feast 0.66 infra/registry/sql.py
    metadata.create_all): run together, one fails on "relation already exists"."""
    doc = plan(stack)
    apply = doc.one("kubernetes:batch/v1:Job", "mlplatform-feast-apply")
    chart = helm_release(doc, "feast-feature-server")
    assert apply.urn in chart.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_no_cronjob_starts_a_stale_run_when_resumed(plan, stack: str) -> None:
    """Without startingDeadlineSeconds a CronJob resumed (or its controller back) starts its most recent missed
    run at once: setting services.feast.clientImage would start a full materialization immediately."""
    for cron in plan(stack).by_type("kubernetes:batch/v1:CronJob"):
        deadline = cron.inputs["spec"].get("startingDeadlineSeconds")
        assert deadline is not None and 0 < deadline <= 600, cron.name
