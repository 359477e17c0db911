"""The Feast transformer (images/feast-transformer) run for real between a client and the mlflow-3 runtime:
a real Feast feature server (the pinned Feast, .venv-feast) on a local Redis with a feature repository this
test writes, applies and materializes; the predictor is MLServer from .venv-mlserver run with the planned
ServingRuntime's container (tests/support/mlserver.py) on a model logged with MLflow 3, behind a proxy that
records what it is sent; the transformer runs from .venv-transformer (its image's requirements.txt) with
the arguments KServe's controller gives a custom transformer and the one JSON variable it is configured by.

What this sees that unit tests cannot: the feature server's real response shape, MLServer's MLflow runtime
decoding the merged inputs as a DataFrame with the model's columns, and the transformer's answers when the
feature server is gone or hangs (bounded by the configured timeout, never by the client's patience)."""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlplatform.config.serving import TimeoutsConfig
from tests.support import feast_serving as fs
from tests.support.mlserver import REQUIREMENTS as MLSERVER_REQUIREMENTS
from tests.support.mlserver import ROOT, serve, venv_dir
from tests.support.mlserver import VENV as MLSERVER_VENV
from tests.support.net import free_port, request
from tests.support.tools import required_tool, venv_python
from tests.test_mlserver_runtime import runtime_container

IMAGE = ROOT / "images" / "feast-transformer"
VENV, REQUIREMENTS = ".venv-transformer", "images/feast-transformer/requirements.txt"
ISVC = "driver-model"
MODEL_FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]
QUERY = [1001, 1005, 1010, 1013]

# Trains on the three feature columns by name (the signature's columns are the model's feature names) and
# prints where the logged model is and what it predicts for the given rows.
LOG_MODEL = """
import json, sys
import mlflow, numpy as np, pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

work, rows = sys.argv[1], json.loads(sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")
mlflow.set_experiment("transformer-test")
rng = np.random.default_rng(0)
X = pd.DataFrame({"conv_rate": rng.random(400), "acc_rate": rng.random(400),
                  "avg_daily_trips": rng.integers(0, 23, 400).astype("int64")})
y = ((X.conv_rate + X.acc_rate) > 1.0).astype("int64")
model = LogisticRegression().fit(X, y)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)))
print(json.dumps({"artifacts": mlflow.get_logged_model(info.model_id).artifact_location,
                  "predictions": model.predict(pd.DataFrame(rows)[list(X.columns)]).tolist()}))
"""


def config_module() -> Any:
    """feast_transformer/config.py loaded by path, standard library only (as the platform's tests load it)."""
    spec = importlib.util.spec_from_file_location("transformer_config", IMAGE / "feast_transformer" / "config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- fast -----------------------------------------------------------------------------------------------


def test_the_config_parser_takes_the_documented_shape_and_refuses_the_rest() -> None:
    config = config_module()
    good = {"featureServerUrl": "http://feast.mlplatform:80/", "features": fs.FEATURES,
            "entities": {"driver_id": "driver_id"},
            "timeoutSeconds": {"featureServer": 0.5, "predictor": 10}}  # fmt: skip
    parsed = config.parse(json.dumps(good))
    assert parsed.feature_server_url == "http://feast.mlplatform:80"
    assert [parsed.column(f) for f in parsed.features] == MODEL_FEATURES
    assert (parsed.timeouts.feature_server, parsed.timeouts.predictor) == (0.5, 10.0)
    bad = [
        {**good, "extra": 1},
        {**good, "features": []},
        {**good, "features": ["conv_rate"]},
        {**good, "entities": {}},
        {**good, "featureServerUrl": "feast:6566"},
        {**good, "timeoutSeconds": {"featureServer": 0}},
        {**good, "timeoutSeconds": {"feature_server": 1}},
        {**good, "features": ["a:x", "b:x"]},  # two features, one column
    ]
    for doc in bad:
        with pytest.raises(config.ConfigError):
            config.parse(json.dumps(doc))
    with pytest.raises(config.ConfigError):
        config.parse("{not json")


def test_the_image_runs_its_pinned_list_as_a_numeric_non_root_user() -> None:
    dockerfile = (IMAGE / "Dockerfile").read_text()
    assert "pip install --no-deps -r /tmp/requirements.txt" in dockerfile
    [user] = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user.isdigit() and int(user) > 0
    [base] = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert ":" in base and "latest" not in base
    pins = [line for line in (IMAGE / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins and all("==" in line for line in pins)


# --- for real ------------------------------------------------------------------------------------------


class Recorder(http.server.ThreadingHTTPServer):
    """Forwards every request to the predictor and keeps the JSON bodies it was sent."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.bodies = upstream, []
        super().__init__(("127.0.0.1", 0), RecordingHandler)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: Recorder

    def _forward(self, body: bytes | None) -> None:
        req = urllib.request.Request(self.server.upstream + self.path, data=body, method=self.command,
                                     headers={"Content-Type": "application/json"} if body else {})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        self._forward(body)

    def do_GET(self) -> None:
        self._forward(None)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def transformer(python: str, predictor: str, config: dict[str, Any], work: Path) -> Iterator[str]:
    """`python -m feast_transformer` with the arguments KServe's controller appends to a custom transformer
    (kserve v0.20.0 transformer_custom.go GetContainer) and FEAST_TRANSFORMER_CONFIG."""
    port = free_port()
    log = work / f"transformer-{port}.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "FEAST_TRANSFORMER_CONFIG": json.dumps(config)}
    argv = [python, "-m", "feast_transformer", "--model_name", ISVC, "--predictor_host", predictor,
            "--http_port", str(port)]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=IMAGE, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        fs.wait_until(lambda: request(f"{url}/v2/health/ready", timeout=2)[0] == 200, "transformer", process, log, 30)
        yield url
    finally:
        fs.stop(process)


@dataclass
class Path_:
    transformer: str
    recorder: Recorder
    predictions: dict[int, int]
    config: dict[str, Any]
    python: str
    predictor: str
    work: Path


def config_for(feature_server: str, **timeouts: float) -> dict[str, Any]:
    """The transformer's config with the program's default timeouts unless a test overrides one."""
    defaults = TimeoutsConfig()
    return {"featureServerUrl": feature_server, "features": fs.FEATURES, "entities": {"driver_id": fs.JOIN_KEY},
            "timeoutSeconds": {"featureServer": defaults.feature_server, "predictor": defaults.predictor,
                               **timeouts}}  # fmt: skip


@pytest.fixture(scope="module")
def path(dev, tmp_path_factory) -> Iterator[Path_]:
    feast_python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    mlserver_python = venv_python(MLSERVER_VENV, MLSERVER_REQUIREMENTS)
    python = venv_python(VENV, REQUIREMENTS)
    required_tool("redis-server", "redis-server")
    work = tmp_path_factory.mktemp("feast-transformer")
    rows = [fs.latest_row(d) for d in QUERY]
    # MLflow logs the model while Feast applies and materializes: the two slowest steps, side by side
    logging = subprocess.Popen([mlserver_python, "-c", LOG_MODEL, str(work), json.dumps(rows)], cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    with fs.redis(work) as redis_port:
        store = {"provider": "local", "registry": str(work / "registry.db"), "entity_key_serialization_version": 3,
                 "online_store": {"type": "redis", "connection_string": f"127.0.0.1:{redis_port}"},
                 "offline_store": {"type": "file"}}  # fmt: skip
        repo = fs.feature_repo(feast_python, work, store)
        out, err = logging.communicate(timeout=180)
        assert logging.returncode == 0, err[-3000:]
        logged = json.loads(out.strip().splitlines()[-1])
        model_dir = work / "mnt" / "models"
        source = Path(logged["artifacts"].removeprefix("file://"))
        for file in sorted(source.rglob("*")):
            if file.is_file():
                (model_dir / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (model_dir / file.relative_to(source)).write_bytes(file.read_bytes())
        predictions = dict(zip(QUERY, logged["predictions"], strict=True))
        assert len(set(predictions.values())) == 2, predictions  # the features tell the rows apart
        port = free_port()
        serve_args = ["serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log"]
        with (
            fs.feature_server(feast_python, repo, serve_args, port) as features,
            serve(runtime_container(dev), model_dir, ISVC, venv_dir(mlserver_python), work) as predictor,
        ):
            recorder = Recorder(predictor.url)
            threading.Thread(target=recorder.serve_forever, daemon=True).start()
            proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
            config = config_for(features)
            try:
                with transformer(python, proxy, config, work) as url:
                    # The feature server is cold: a Feast worker's first read imports every SQL online store's
                    # module (online_store.py _is_versioned_read_supported, feast v0.66.0), 1-2 s here, at
                    # start and after each --max-requests recycle. The default timeout must let it through.
                    started = time.perf_counter()
                    status, body = infer(url, QUERY[:1])
                    cold = time.perf_counter() - started
                    assert status == 200, f"first request on a cold feature server ({cold:.2f} s): {status} {body}"
                    yield Path_(url, recorder, predictions, config, python, proxy, work)
            finally:
                recorder.shutdown()


def infer(url: str, drivers: list[Any], name: str = "driver_id", timeout: float = 30) -> tuple[int, Any]:
    body = {"id": "req-1", "inputs": [{"name": name, "datatype": "INT64", "shape": [len(drivers)], "data": drivers}]}
    return request(f"{url}/v2/models/{ISVC}/infer", body, timeout=timeout)


@pytest.mark.slow
def test_the_predictor_gets_the_features_and_the_client_the_prediction(path: Path_) -> None:
    path.recorder.bodies.clear()
    status, answer = infer(path.transformer, QUERY)
    assert status == 200, answer
    assert answer["model_name"] == ISVC
    [output] = answer["outputs"]
    assert [int(v) for v in output["data"]] == [path.predictions[d] for d in QUERY]
    # what the predictor was sent: one input per feature, the materialized (newest) values, as a DataFrame
    [sent] = path.recorder.bodies
    assert sent["parameters"]["content_type"] == "pd"
    inputs = {i["name"]: i for i in sent["inputs"]}
    assert list(inputs) == MODEL_FEATURES  # the entity input is not a model feature
    for column in MODEL_FEATURES:
        assert inputs[column]["shape"] == [len(QUERY), 1]
        assert inputs[column]["data"] == [fs.latest_row(d)[column] for d in QUERY]
    assert inputs["avg_daily_trips"]["datatype"] == "INT64" and inputs["conv_rate"]["datatype"] == "FP64"
    # KServe's probes and metadata paths
    assert request(f"{path.transformer}/v2/health/live")[0] == 200
    assert request(f"{path.transformer}/v2/models/{ISVC}/ready")[0] == 200
    status, metadata = request(f"{path.transformer}/v2/models/{ISVC}")
    assert status == 200 and metadata["name"] == ISVC


@pytest.mark.slow
def test_a_missing_entity_input_or_an_unknown_entity_is_the_clients_400(path: Path_) -> None:
    path.recorder.bodies.clear()
    status, answer = infer(path.transformer, [1001], name="driver")
    assert status == 400 and "driver_id" in answer["error"], answer
    status, answer = infer(path.transformer, [1001, 424242])
    assert status == 400 and "unknown entity" in answer["error"] and "424242" in answer["error"], answer
    status, answer = request(f"{path.transformer}/v2/models/other/infer", {"inputs": []})
    assert status == 404, answer
    assert path.recorder.bodies == []  # nothing reached the predictor


def silent_listener() -> tuple[socket.socket, str]:
    """A port that accepts connections (the kernel completes the handshake) and never answers: a feature
    server that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow
def test_a_feature_server_that_is_down_or_hangs_is_a_quick_503(path: Path_) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens
    sock, hanging = silent_listener()
    try:
        for server, bound in ((closed, 1.0), (hanging, 0.5 + 1.0)):
            config = config_for(server, featureServer=0.5)
            with transformer(path.python, path.predictor, config, path.work) as url:
                started = time.monotonic()
                status, answer = infer(url, [1001], timeout=10)
                elapsed = time.monotonic() - started
                assert status == 503 and "feature server" in answer["error"], answer
                assert elapsed < bound, f"{server}: {elapsed:.2f} s"
        # The bound is the configured timeout, not luck: with a long one the same request outlives a 3 s
        # client (this is what the down-server case does without a timeout on the feature-server call).
        slow = config_for(hanging, featureServer=10.0)
        with transformer(path.python, path.predictor, slow, path.work) as url, pytest.raises(TimeoutError):
            infer(url, [1001], timeout=3)
    finally:
        sock.close()


@pytest.mark.slow
def test_a_predictor_that_is_down_is_a_503_not_a_hang(path: Path_) -> None:
    config = path.config
    with transformer(path.python, f"http://127.0.0.1:{free_port()}", config, path.work) as url:
        status, answer = infer(url, [1001], timeout=10)
    assert status == 503 and "predictor" in answer["error"], answer
