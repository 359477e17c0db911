"""The mlflow-3 runtime's server run for real: a scikit-learn model logged with MLflow 3, laid out as KServe's
storage initializer leaves it, and MLServer started from .venv-mlserver (the image's requirements.txt) with
the command, arguments and environment of the planned ServingRuntime's container."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.serving.kserve import ISVC_NAME, MODEL_DIR
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ".venv-mlserver"
REQUIREMENTS = "images/mlserver-mlflow/requirements.txt"
PORT_VARIABLES = ("MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT")

# Trains and logs a classifier with MLflow 3 (a sqlite tracking store: MLflow 3 refuses its file store by
# default), then prints where the logged model's artifacts are and what the model answers for INPUTS.
LOG_MODEL = """
import json, sys
import mlflow, numpy as np
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

work = sys.argv[1]
mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")
mlflow.set_experiment("runtime-test")
X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0], [-1.0, -1.0]] * 4)
y = (X.sum(axis=1) > 0.5).astype(np.int64)
model = LogisticRegression().fit(X, y)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)))
inputs = [[0.0, 0.0], [2.0, 2.0], [-1.0, -1.0], [1.0, 1.0]]
print(json.dumps({
    "artifacts": mlflow.get_logged_model(info.model_id).artifact_location,
    "inputs": inputs,
    "predictions": model.predict(np.array(inputs)).tolist(),
}))
"""


@dataclass(frozen=True)
class LoggedModel:
    directory: Path  # as the storage initializer leaves it: the artifact prefix's files, MLmodel at the top
    inputs: list[list[float]]
    predictions: list[int]  # what the model answered in the process that logged it


def log_model(python: str, work: Path) -> LoggedModel:
    """Log a model with MLflow 3 and copy its artifacts to `work/mnt/models`, as KServe's storage initializer
    copies every object under the storageUri prefix into /mnt/models."""
    done = subprocess.run(
        [python, "-c", LOG_MODEL, str(work)], capture_output=True, text=True, timeout=180, cwd=work, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logged = json.loads(done.stdout.strip().splitlines()[-1])
    source = Path(logged["artifacts"].removeprefix("file://"))
    target = work / MODEL_DIR.lstrip("/")
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return LoggedModel(target, logged["inputs"], logged["predictions"])


@dataclass(frozen=True)
class Server:
    url: str  # the REST (V2) endpoint
    metrics_url: str
    name: str  # the model's name, as KServe fills it in
    container: Mapping[str, Any]  # the container as KServe fills it in (placeholders replaced)
    log: Path


def filled(container: Mapping[str, Any], isvc: str) -> dict[str, Any]:
    """The container as KServe's ReplacePlaceholders leaves it for an InferenceService named `isvc`."""
    return json.loads(json.dumps(container).replace(ISVC_NAME, isvc))


@contextmanager
def serve(
    container: Mapping[str, Any], model_dir: Path, isvc: str, venv: Path, work: Path, timeout: float = 120
) -> Iterator[Server]:
    """Run the container's command with its args and env, the model directory where /mnt/models is mounted,
    and free ports in place of the container's (the only other change). Yields once the readiness probe's
    path answers 200; stops the server on exit."""
    spec = filled(container, isvc)
    env = {e["name"]: e["value"].replace(MODEL_DIR, str(model_dir)) for e in spec.get("env", [])}
    ports = {name: free_port() for name in PORT_VARIABLES if name in env}
    env |= {name: str(port) for name, port in ports.items()}
    argv = [*spec.get("command", []), *spec.get("args", [])]
    argv = [str(venv / "bin" / argv[0]), *(a.replace(MODEL_DIR, str(model_dir)) for a in argv[1:])]
    home = work / "home"  # the image's writable WORKDIR and HOME
    home.mkdir(exist_ok=True)
    base = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log = work / "server.log"
    http = ports.get("MLSERVER_HTTP_PORT", 8080)
    probe = (spec.get("readinessProbe") or {}).get("httpGet", {}).get("path", "/")
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=base | env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{http}"
        wait_ready(f"{url}{probe}", process, log, timeout)
        yield Server(url, f"http://127.0.0.1:{ports.get('MLSERVER_METRICS_PORT', 0)}", isvc, spec, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout} s:\n{log.read_text()[-4000:]}")


def venv_dir(python: str) -> Path:
    return Path(python).parent.parent
