"""The `models:/` storage container run for real: a real MLflow tracking server (the pinned version, from
.venv-mlflow, with the platform's proxied artifact store) holds a registered model with two versions and an
alias; the planned ClusterStorageContainer's command runs, with KServe's arguments, in .venv-mlserver (the
mlflow-3 runtime image's packages, which the container runs in); then the planned mlflow-3 runtime serves
what it downloaded and answers over V2. Only the tracking server's address and the destination directory
differ from the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlplatform.plan.document import PlanDocument
from tests.support.mlserver import REQUIREMENTS, VENV, serve, venv_dir, wait_ready
from tests.support.net import free_port, request
from tests.support.tools import venv_python

pytestmark = pytest.mark.slow

CSC = "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer"
RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
MODEL = "churn-classifier"

# Registers two versions of a classifier whose answers differ (version 1 says 1 for every row, version 2 says
# 0), and points the `production` alias at version 1, the older: an alias that resolved to "latest" would
# show. Logged through the tracking server, so the artifacts go through its proxy, as in the platform.
REGISTER = """
import json, sys
import mlflow, numpy as np
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.dummy import DummyClassifier

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("storage-test")
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
for constant in (1, 0):
    model = DummyClassifier(strategy="constant", constant=constant).fit(X, np.array([0, 1, constant]))
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, model.predict(X)), registered_model_name=sys.argv[2]
        )
MlflowClient().set_registered_model_alias(sys.argv[2], "production", "1")
print(json.dumps({"inputs": X.tolist()}))
"""


@dataclass(frozen=True)
class Registry:
    url: str
    inputs: list[list[float]]
    work: Path


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """`mlflow server` as the platform runs it for this purpose: artifacts proxied (--serve-artifacts) to a
    destination only the server writes, so clients get `mlflow-artifacts:/` locations."""
    server_python = venv_python(".venv-mlflow", "tests/venvs/mlflow.txt")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-model-storage-", dir="/tmp"))
    port = free_port()
    argv = [str(Path(server_python).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{work}/mlflow.db", "--serve-artifacts",
            "--artifacts-destination", f"file://{work}/artifacts", "--workers", "1"]  # fmt: skip
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/health", process, log, 120)
        done = subprocess.run(
            [server_python, "-c", REGISTER, url, MODEL], capture_output=True, text=True, timeout=180, cwd=work
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield Registry(url, json.loads(done.stdout.strip().splitlines()[-1])["inputs"], work)
    finally:
        process.terminate()
        process.wait(timeout=30)


def storage_container(doc: PlanDocument) -> dict[str, Any]:
    return doc.one(CSC).inputs["spec"]["container"]


def run_storage_container(
    doc: PlanDocument, registry: Registry, uri: str, destination: Path
) -> subprocess.CompletedProcess:
    """The planned container as KServe runs it: its command with KServe's arguments `<uri> <destination>`
    (storage_initializer_injector.go), its environment with the tracking server's address made local."""
    python = venv_python(VENV, REQUIREMENTS)
    container = storage_container(doc)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == doc.outputs["mlflowTrackingUri"]
    env["MLFLOW_TRACKING_URI"] = registry.url
    env["HOME"] = str(registry.work)
    command = container["command"]
    assert command[0] == "python"
    destination.mkdir(parents=True)  # the emptyDir KServe mounts there
    return subprocess.run(
        [python, *command[1:], uri, str(destination)],
        env={"PATH": f"{Path(python).parent}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def predictions(doc: PlanDocument, registry: Registry, model_dir: Path, name: str) -> list[int]:
    """What the planned mlflow-3 runtime answers over V2 for the registry's inputs, serving `model_dir`."""
    python = venv_python(VENV, REQUIREMENTS)
    runtime = next(r.inputs["spec"] for r in doc.by_type(RUNTIME) if r.inputs["metadata"]["name"] == "mlflow-3")
    [container] = runtime["containers"]
    work = registry.work / f"serve-{name}"
    work.mkdir()
    with serve(container, model_dir, name, venv_dir(python), work) as server:
        body = {
            "inputs": [
                {"name": "input-0", "shape": [len(registry.inputs), 2], "datatype": "FP64", "data": registry.inputs}
            ]
        }
        status, answer = request(f"{server.url}/v2/models/{name}/infer", body)
    assert status == 200, answer
    return [int(v) for v in answer["outputs"][0]["data"]]


def test_an_alias_resolves_to_its_version_and_is_served(plan, registry: Registry) -> None:
    doc = plan("dev")
    destination = registry.work / "alias" / "mnt" / "models"
    done = run_storage_container(doc, registry, f"models:/{MODEL}@production", destination)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (destination / "MLmodel").is_file(), sorted(p.name for p in destination.iterdir())
    # version 1, which the alias names, not version 2, the latest
    assert predictions(doc, registry, destination, "churn") == [1] * len(registry.inputs)


# What a downloaded model answers, loaded with MLflow's own loader (as the runtime's MLflow runtime does): cheaper
# than a second server, which the alias test already runs
PREDICT = """
import json, sys
import mlflow, numpy as np
print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(np.array(json.loads(sys.argv[2]))).tolist()))
"""


def test_a_version_uri_downloads_that_version(plan, registry: Registry) -> None:
    doc = plan("dev")
    destination = registry.work / "version" / "mnt" / "models"
    done = run_storage_container(doc, registry, f"models:/{MODEL}/2", destination)
    assert done.returncode == 0, done.stdout + done.stderr
    python = venv_python(VENV, REQUIREMENTS)
    loaded = subprocess.run(
        [python, "-c", PREDICT, str(destination), json.dumps(registry.inputs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == [0] * len(registry.inputs)


def test_an_unknown_alias_fails_the_pod_start_with_the_reason(plan, registry: Registry) -> None:
    """The init container exits non-zero with MLflow's reason in its last line (KServe sets
    terminationMessagePolicy FallbackToLogsOnError), so the revision's status says why."""
    done = run_storage_container(plan("dev"), registry, f"models:/{MODEL}@champion", registry.work / "missing")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mlflow-models: cannot download models:/{MODEL}@champion") and "champion" in last
    assert not os.listdir(registry.work / "missing")
