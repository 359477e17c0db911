"""The reference training flow (dags/training_flow.py) run for real, step by step, with the commands the DAG's
tasks carry (rendered from the DAG as Airflow 3.1.7 parses it, never retyped):

1. the feature step, training/features.py, with the pinned Feast (.venv-feast, the client image's versions)
   against the platform's feature repository (feature_repo/) applied to a local registry, its Parquet source
   on local files (the `file` offline store, as on the datasets bucket); the join it wrote is checked row by
   row against an independent oracle: each label event's features are those of the latest feature row at or
   before the event, counting only rows already created by then;
2. the Ray job, `ray job submit` with the DAG's flags (working dir, runtime_env, entrypoint GPUs as a stack
   without GPU pools sets them) to a local Ray head at the pinned version (.venv-ray), which logs to a real
   MLflow server (.venv-mlflow): the run's metrics, its feature list and the model, registered as a version
   tagged with the feature service.

The code directory is the platform's ConfigMap (components/lifecycle/training.py) laid out at the DAG's
mount as the kubelet writes it, so the Ray CLI packs what the pod would pack.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.lifecycle.training import TRAINING_RUNTIME_ENV, airflow_env, training_code_files
from mlplatform.pins import RAY_VERSION, TRAINING_REQUIREMENTS
from tests.support.kubelet import mount_config_map
from tests.support.net import free_port
from tests.support.tools import venv_python

ROOT = Path(__file__).resolve().parents[1]
RAY_REQUIREMENTS = "tests/venvs/ray.txt"
SAMPLE = ROOT / "feature_repo" / "data" / "driver_stats.parquet"
LOGICAL = {"ds": "2026-01-04", "ts_nodash": "20260104T000000"}

pytestmark = pytest.mark.slow


def test_the_ray_venv_runs_the_pinned_ray_and_the_jobs_requirements() -> None:
    pins = [line for line in (ROOT / RAY_REQUIREMENTS).read_text().splitlines() if "==" in line]
    assert f"ray[default]=={RAY_VERSION}" in pins
    assert set(TRAINING_REQUIREMENTS) <= set(pins), "the job's requirements resolve beside the pinned Ray"


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)


# The DAG's two tasks as Airflow parses them, their templates rendered with the variables given in argv[2]
RENDER = """
import json, sys
import jinja2
from airflow.models.dagbag import DagBag

dag = DagBag(dag_folder=sys.argv[1], include_examples=False).dags["training_flow"]
context = json.loads(sys.argv[2])
render = lambda text: jinja2.Template(text).render(**context)
tasks = {}
for task_id in ("historical_features", "train_on_ray"):
    task = dag.get_task(task_id)
    env = task.env_vars if isinstance(task.env_vars, dict) else {e.name: e.value for e in task.env_vars}
    tasks[task_id] = {
        "upstream": sorted(task.upstream_task_ids),
        "command": [render(c) for c in task.cmds] + [render(a) for a in task.arguments],
        "env": {k: render(v) for k, v in env.items()},
        "volumes": [v.to_dict() for v in task.volumes],
        "mounts": [m.to_dict() for m in task.volume_mounts],
    }
print(json.dumps(tasks))
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training-flow")


@dataclass
class Server:
    url: str
    health: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def ready(self) -> str:
        wait_for(self.health, self.process, self.log)
        return self.url

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)


def start(command: list[str], log: Path, url: str, health: str, env: dict[str, str] | None = None) -> Server:
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return Server(url, health, process, log, time.monotonic())


@pytest.fixture(scope="module")
def servers(work: Path) -> Iterator[dict[str, Server]]:
    """MLflow and a Ray head, started together and early (they come up while the feature step runs).

    MLflow: the pinned server on SQLite, artifacts proxied to a directory. Ray: the pinned head, as small as
    the job API allows: one CPU, no GPUs, and the dashboard (the job API lives in the dashboard head and
    its agent: with `--include-dashboard false` every `ray job submit` is refused), all on free ports, with
    MLFLOW_TRACKING_URI in its environment as in every Ray pod (components/lifecycle/ray.py). Each is
    stopped by its process group, never `ray stop` (which stops every Ray on the machine)."""
    mlflow = Path(venv_python(".venv-mlflow", "tests/venvs/mlflow.txt")).parent / "mlflow"
    ray = Path(venv_python(".venv-ray", RAY_REQUIREMENTS)).parent / "ray"
    port, dashboard, temp = free_port(), free_port(), Path(f"/tmp/ray-{os.getpid()}-{free_port()}")
    tracking = f"http://127.0.0.1:{port}"
    mlflow_command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}", "--artifacts-destination", str(work / "mlflow"),
    ]  # fmt: skip
    ports = {
        "--port": free_port(), "--dashboard-port": dashboard, "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(), "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(), "--node-manager-port": free_port(),
        "--object-manager-port": free_port(), "--ray-client-server-port": free_port(),
    }  # fmt: skip
    ray_command = [
        str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", str(80 * 2**20),
        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--min-worker-port", "0",
        "--temp-dir", str(temp), "--disable-usage-stats", *(str(x) for kv in ports.items() for x in kv),
    ]  # fmt: skip
    ray_env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "RAY_USAGE_STATS_ENABLED": "0"}
    running = {"mlflow": start(mlflow_command, work / "mlflow.log", tracking, f"{tracking}/health")}
    try:
        dashboard_url = f"http://127.0.0.1:{dashboard}"
        running["ray"] = start(ray_command, work / "ray.log", dashboard_url, f"{dashboard_url}/api/version", ray_env)
        yield running
    finally:
        stopping = time.monotonic()
        for server in running.values():  # together: each takes seconds to drain
            server.stop()
        for server in running.values():
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # still draining: nothing of theirs outlives the test
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
        print(f"mlflow and ray stopped and Ray's session removed in {time.monotonic() - stopping:.1f} s")


@pytest.fixture(scope="module")
def tasks(work: Path, servers: dict[str, Server]) -> dict[str, Any]:
    """The DAG's tasks rendered with the platform's variables as a stack without GPU pools sets them; only
    addresses point at this machine (the artifacts bucket is a directory)."""
    python = venv_python(".venv-airflow", "tests/venvs/airflow.txt")
    platform = {e["name"]: e["value"] for e in airflow_env(None, None, ())}
    variables = {
        "training_namespace": "training",
        "artifacts_uri": str(work / "artifacts"),
        "ray_address": "http://ray-head.invalid:8265",  # replaced per test with the local head's
        "training_runtime_env": TRAINING_RUNTIME_ENV,
        "training_num_gpus": platform["AIRFLOW_VAR_TRAINING_NUM_GPUS"],
        "mlflow_tracking_uri": servers["mlflow"].url,
    }
    home = work / "airflow"
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_VAR_TRAINING_SERVICE_ACCOUNT": "training",
    }
    context = json.dumps({**LOGICAL, "var": {"value": variables}})
    done = subprocess.run(
        [python, "-c", RENDER, str(ROOT / "dags" / "training_flow.py"), context],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def local(path: str, root: Path) -> str:
    """A path of the pod (the code mount) under `root`, where this test lays the pod's mounts out."""
    return str(root / path.lstrip("/")) if path.startswith("/opt/") else path


@pytest.fixture(scope="module")
def pod_root(work: Path, tasks: dict[str, Any]) -> Path:
    """The training ConfigMap (as the platform makes it) at the DAG's mount, with the DAG's `items`."""
    root = work / "pod"
    task = tasks["train_on_ray"]
    [mount] = task["mounts"]
    [volume] = [v for v in task["volumes"] if v["name"] == mount["name"]]
    items = [{"key": i["key"], "path": i["path"]} for i in volume["config_map"]["items"]]
    mount_config_map(root / mount["mount_path"].lstrip("/"), training_code_files(), items)
    return root


@pytest.fixture(scope="module")
def feature_store(work: Path) -> Path:
    """feature_repo/ applied to a local registry, its source at the path the view reads under a local
    `datasets` directory; the offline store is the platform's (`file`)."""
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    repo, datasets = work / "feature_repo", work / "datasets"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (datasets / "feast" / "examples").mkdir(parents=True)
    shutil.copy(SAMPLE, datasets / "feast" / "examples" / "driver_stats.parquet")
    store = {
        "project": "mlplatform",
        "provider": "local",
        "entity_key_serialization_version": 3,
        "registry": str(work / "registry.db"),
        "online_store": {"type": "sqlite", "path": str(work / "online.db")},
        "offline_store": {"type": "file"},
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(store))
    feast = str(Path(python).parent / "feast")
    env = {**os.environ, "DATASETS_URI": str(datasets), "HOME": str(work)}
    done = subprocess.run([feast, "apply"], cwd=repo, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return repo / "feature_store.yaml"


@pytest.fixture(scope="module")
def training_set(work: Path, tasks: dict[str, Any], pod_root: Path, feature_store: Path) -> Path:
    """The DAG's feature step: its command and environment, the code from the mounted ConfigMap."""
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    task = tasks["historical_features"]
    assert task["upstream"] == ["mlflow_up"] and tasks["train_on_ray"]["upstream"] == ["historical_features"]
    command = [local(c, pod_root) for c in task["command"]]
    assert command[:3] == ["python", "-m", "features"]
    env = {**os.environ, **{k: local(v, pod_root) for k, v in task["env"].items()}}
    env |= {"FEAST_FS_YAML_FILE_PATH": str(feature_store), "HOME": str(work)}
    done = subprocess.run([python, *command[1:]], env=env, cwd=work, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    output = Path(command[command.index("--output") + 1])
    assert output.is_file() and output.is_relative_to(work / "artifacts"), done.stdout[-2000:]
    return output


# The oracle, independent of Feast: for each entity row, the latest source row of its driver with
# event_timestamp <= the row's and created <= the row's; no such row, no features. It also judges two
# broken joins: Feast's own without the created-time cutoff, and an as-of join that looks forward.
CHECK = """
import json, sys
import pandas as pd
from feast import FeatureStore

sys.path.insert(0, sys.argv[4])
import features as step

source = pd.read_parquet(sys.argv[1])
for column in ("event_timestamp", "created"):
    source[column] = source[column].astype("datetime64[ns, UTC]")
joined = pd.read_parquet(sys.argv[2])
names = json.loads(sys.argv[3])
entities = step.read_entities(sys.argv[5])

def known_then(driver_id, at):
    known = source[(source.driver_id == driver_id) & (source.event_timestamp <= at) & (source.created <= at)]
    return known.sort_values(["event_timestamp", "created"]).iloc[-1] if len(known) else None

def violations(frame):
    found = []
    for row in frame.itertuples(index=False):
        want = known_then(row.driver_id, row.event_timestamp)
        for name in names:
            got = getattr(row, name)
            if want is None and pd.isna(got):
                continue
            if want is None or pd.isna(got) or abs(float(got) - float(want[name])) > 1e-6:
                found.append(f"{row.driver_id} at {row.event_timestamp}: {name}={got}, known then: "
                             f"{None if want is None else want[name]}")
    return found

no_cutoff = FeatureStore().get_historical_features(
    entity_df=entities, features=FeatureStore().get_feature_service(sys.argv[6])).to_df()
ahead = pd.merge_asof(entities.sort_values("event_timestamp"), source.sort_values("event_timestamp"),
                      on="event_timestamp", by="driver_id", direction="forward")
keys = set(zip(joined.driver_id, joined.event_timestamp))
dropped = [(d, t) for d, t in zip(entities.driver_id, entities.event_timestamp) if (d, t) not in keys]
print(json.dumps({
    "entities": len(entities), "rows": len(joined), "dropped": len(dropped),
    "dropped_with_features": [f"{d} at {t}" for d, t in dropped if known_then(d, t) is not None],
    "violations": violations(joined), "no_cutoff": violations(no_cutoff), "forward": violations(ahead),
}))
"""


def test_the_feature_step_joins_point_in_time(work: Path, tasks, pod_root: Path, feature_store: Path, training_set):
    """Every row of the training set the DAG's feature step wrote holds the features known at its event time,
    and the file carries the feature service and its references. Two broken joins, checked by the same
    oracle, are caught: without the created-time cutoff a label event at hh:02 gets the hh:00 row created at
    hh:05 (a value not yet known), and a forward as-of join leaks the next row."""
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    command = tasks["historical_features"]["command"]
    entities = local(command[command.index("--entities") + 1], pod_root)
    service = command[command.index("--feature-service") + 1]
    described = json.loads(
        subprocess.run(
            [python, "-c", "import sys, pyarrow.parquet as pq; print(pq.read_schema(sys.argv[1]).metadata"
             "[b'mlplatform.training_set'].decode())", str(training_set)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    assert described["feature_service"] == service
    assert described["features"] == [f"driver_hourly_stats:{c}" for c in ("conv_rate", "acc_rate", "avg_daily_trips")]
    assert described["entity_columns"] == ["driver_id"] and described["labels"] == ["accepted"]
    env = {**os.environ, "FEAST_FS_YAML_FILE_PATH": str(feature_store), "HOME": str(work)}
    args = [str(SAMPLE), str(training_set), json.dumps(described["columns"]), str(pod_root / "opt/mlplatform/train")]
    done = subprocess.run(
        [python, "-c", CHECK, *args, entities, service], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # the `file` store drops the label events before their driver's first feature row (features.py), and
    # only those
    assert found["rows"] + found["dropped"] == found["entities"] and found["rows"] > 100, found
    assert found["dropped"] > 0 and found["dropped_with_features"] == [], found
    assert found["violations"] == [], found["violations"][:5]
    assert found["no_cutoff"], "the oracle must see a value created after the event"
    assert found["forward"], "the oracle must see a join that looks ahead"


def mlflow_get(url: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{path}", timeout=30) as response:
        return json.load(response)


def test_the_ray_job_logs_and_registers_the_model(
    work: Path, tasks, pod_root: Path, training_set: Path, servers: dict[str, Server]
) -> None:
    """`ray job submit` as the DAG runs it, to a real Ray head: the job trains on the feature step's output and
    MLflow has the run's metrics, its feature list, the model and a new registered version tagged with the
    feature service and references."""
    python = venv_python(".venv-ray", RAY_REQUIREMENTS)
    mlflow_server, address = servers["mlflow"].ready(), servers["ray"].ready()
    head_seconds = time.monotonic() - servers["ray"].started
    command = [local(c, pod_root) for c in tasks["train_on_ray"]["command"]]
    assert command[:3] == ["ray", "job", "submit"]
    command[command.index("--address") + 1] = address
    assert command[command.index("--entrypoint-num-gpus") + 1] == "0", "no GPU pools: the job runs on CPU"
    # a driver asking for no resources runs on the head (ray 2.52 job_manager.py _get_scheduling_strategy),
    # whose num-cpus is 0 on the platform's RayCluster: the job must ask for a CPU to reach a worker
    assert float(command[command.index("--entrypoint-num-cpus") + 1]) >= 1
    started = time.monotonic()
    done = subprocess.run(
        [str(Path(python).parent / "ray"), *command[1:]], cwd=work, capture_output=True, text=True, timeout=300
    )
    job_seconds = time.monotonic() - started
    print(f"ray head up {head_seconds:.1f} s after its start; job (runtime_env, train, log) {job_seconds:.1f} s")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "registered driver-activity version" in done.stdout, done.stdout[-3000:]

    [latest] = mlflow_get(mlflow_server, "registered-models/get?name=driver-activity")["registered_model"][
        "latest_versions"
    ]
    version = mlflow_get(mlflow_server, f"model-versions/get?name=driver-activity&version={latest['version']}")
    tags = {t["key"]: t["value"] for t in version["model_version"].get("tags", [])}
    run = mlflow_get(mlflow_server, f"runs/get?run_id={latest['run_id']}")["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert tags["feast.feature_service"] == "driver_activity"
    assert tags["feast.features"].split(",") == [
        f"driver_hourly_stats:{c}" for c in ("conv_rate", "acc_rate", "avg_daily_trips")
    ]
    # the label events' outcome follows the features known at the time: a point-in-time join learns it
    assert metrics["validation_accuracy"] >= 0.8 and metrics["validation_auc"] >= 0.9, metrics
    assert params["training_set"] == str(training_set)
    experiment = run["info"]["experiment_id"]
    features = json.loads((work / "mlflow" / experiment / latest["run_id"] / "artifacts" / "features.json").read_text())
    assert features["features"] == tags["feast.features"].split(",") and features["label"] == "accepted"
    model_files = list((work / "mlflow" / experiment / "models").glob("m-*/artifacts/MLmodel"))
    assert len(model_files) == 1 and "sklearn" in model_files[0].read_text()
    assert version["model_version"]["source"].startswith("models:/m-")
