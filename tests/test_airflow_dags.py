"""Airflow's DAG processor as it would run: the platform's DAG ConfigMap laid out the way the kubelet mounts
a ConfigMap volume (`..data` -> a timestamped directory, each key a link through `..data`), under the DAGs
folder, with the environment the chart gives every Airflow container; then Airflow 3.1.7's own
`airflow dag-processor` (its own venv, .venv-airflow) parses it, and the parsed DAGs' tasks are rendered
with the platform's variables.

The layout matters: Airflow 3.1.7 follows links while walking the DAGs folder and stops with "Detected
recursive loop when walking DAG directory" when one directory is reached twice (airflow/utils/file.py
`_find_path_from_directory`), which `..data` and its target are.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from components.lifecycle.airflow import DAGS_FOLDER, PLATFORM_DAGS_MOUNT
from mlplatform.pins import AIRFLOW
from tests.support.graph import helm_release, platform_dags
from tests.support.kubelet import mount_config_map
from tests.support.tools import venv_python

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = "tests/venvs/airflow.txt"

pytestmark = pytest.mark.slow


def test_the_test_venv_runs_the_pinned_airflow() -> None:
    pins = dict(line.split("==") for line in (ROOT / REQUIREMENTS).read_text().splitlines() if "==" in line)
    assert pins["apache-airflow"] == AIRFLOW.app_version


def airflow_env(doc, home: Path, dags: Path) -> dict[str, str]:
    """The plain env the chart gives every Airflow container (the platform's connections and variables),
    with the metadata database on SQLite and the DAGs folder at `dags` instead of the image's."""
    values = helm_release(doc, "airflow").inputs["values"]
    env = {e["name"]: str(e["value"]) for e in values.get("env", []) if "value" in e}
    for section, options in (values.get("config") or {}).items():
        if section == "logging":
            continue  # remote logging needs the cloud provider packages and a bucket; not what is tested here
        env |= {f"AIRFLOW__{section.upper()}__{key.upper()}": str(v) for key, v in options.items()}
    return env | {
        "PATH": os.environ["PATH"],
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


@pytest.fixture(scope="module")
def parsed(dev, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str], Path]:
    python = venv_python(".venv-airflow", REQUIREMENTS)
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    mount_config_map(dags / Path(PLATFORM_DAGS_MOUNT).relative_to(DAGS_FOLDER), *platform_dags(dev))
    env = airflow_env(dev, home, dags)
    airflow = str(Path(python).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run(
        [airflow, "dag-processor", "--num-runs", "1"], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "Detected recursive loop" not in run.stdout + run.stderr
    return python, env, dags


def test_the_dag_processor_parses_every_platform_dag(dev, parsed) -> None:
    python, env, _ = parsed
    script = textwrap.dedent(
        """
        import json
        from airflow.models.dag import DagModel
        from airflow.models.errors import ParseImportError
        from airflow.utils.session import create_session
        with create_session() as s:
            print(json.dumps({
                "dags": sorted(d.dag_id for d in s.query(DagModel).filter(DagModel.is_stale.is_(False))),
                "errors": {e.filename: e.stacktrace[-500:] for e in s.query(ParseImportError)},
            }))
        """
    )
    out = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["errors"], result["errors"]
    # the DAG files at the mount's top (the packages beside them are imported by them, not parsed)
    data, items = platform_dags(dev)
    paths = [i["path"] for i in items or []] or list(data)
    shipped = {p.removesuffix(".py") for p in paths if p.endswith(".py") and "/" not in p}
    assert "deploy_model" in shipped
    assert shipped <= set(result["dags"]), result


def test_every_templated_value_is_in_a_templated_field(parsed) -> None:
    """A Jinja string in an operator argument that is not one of its template_fields reaches Kubernetes
    literally (e.g. a service account named `{{ var.value.training_service_account }}`)."""
    python, env, _ = parsed
    script = textwrap.dedent(
        """
        import json
        from airflow.models.dagbag import DagBag
        bag = DagBag(include_examples=False)  # the DAGs folder of AIRFLOW__CORE__DAGS_FOLDER
        found = []
        for dag in bag.dags.values():
            for task in dag.tasks:
                for attr, value in vars(task).items():
                    if attr.startswith("_") or attr in task.template_fields:
                        continue
                    if isinstance(value, str) and "{{" in value:
                        found.append(f"{dag.dag_id}.{task.task_id}.{attr} = {value}")
        print(json.dumps(found))
        """
    )
    out = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_ray_job_ships_the_module_it_runs(dev, parsed) -> None:
    """`ray job submit` runs its entrypoint on the Ray cluster (the head's image has no `train` module): the
    module must travel as the job's working_dir, a directory of the submitting pod the CLI packs, here the
    platform's training ConfigMap mounted there; its runtime_env must parse."""
    python, env, _ = parsed
    script = textwrap.dedent(
        """
        import json, os
        import jinja2
        from airflow.models.dagbag import DagBag
        class Variables:
            def __getattr__(self, key):
                return os.environ["AIRFLOW_VAR_" + key.upper()]
        render = lambda text: jinja2.Template(text).render(var={"value": Variables()}, ds="2026-01-01")
        task = DagBag(include_examples=False).dags["training_flow"].get_task("train_on_ray")
        print(json.dumps({
            "namespace": render(task.namespace),
            "command": [render(c) for c in task.cmds] + [render(a) for a in task.arguments],
            "volumes": [v.to_dict() for v in task.volumes],
            "mounts": [m.to_dict() for m in task.volume_mounts],
        }))
        """
    )
    out = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    task = json.loads(out.stdout.strip().splitlines()[-1])
    command = task["command"]
    assert command[:3] == ["ray", "job", "submit"]
    entry = command[command.index("--") + 1 :]
    assert entry[:2] == ["python", "-m"]
    working_dir = Path(command[command.index("--working-dir") + 1])
    json.loads(command[command.index("--runtime-env-json") + 1])  # Ray parses it as JSON
    # the files the pod has under the working dir: its ConfigMap volumes' items, as the kubelet places them
    files: dict[Path, str] = {}
    config_maps = {
        r.inputs["metadata"]["name"]: r.inputs.get("data") or {}
        for r in dev.by_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"].get("namespace") == task["namespace"]
    }
    for mount in task["mounts"]:
        [volume] = [v for v in task["volumes"] if v["name"] == mount["name"]]
        source = volume["config_map"]
        for item in source["items"]:
            files[Path(mount["mount_path"]) / item["path"]] = config_maps[source["name"]][item["key"]]
    module = working_dir / f"{entry[2]}.py"
    assert module in files, f"python -m {entry[2]} in {working_dir}: the pod has {sorted(map(str, files))}"
    assert files[module] == (ROOT / "training" / module.name).read_text()


def test_the_deployment_dag_imports_its_packages_from_the_mount(parsed) -> None:
    """dags/deploy_model.py runs its logic from the packages shipped beside it (mlplatform_deploy, and
    mlplatform_client for MLflow 3's resolution): importable from the mounted layout as a task would import
    them, with nothing from this repository on the path; its tasks are chained as the flow's steps."""
    python, env, dags = parsed
    script = textwrap.dedent(
        """
        import importlib.util, json, sys
        from airflow.models.dagbag import DagBag
        dag = DagBag(include_examples=False).dags["deploy_model"]
        spec = importlib.util.spec_from_file_location("deploy_model_file", dag.fileloc)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        flow = module._flow()
        import mlplatform_client.models as client_models
        print(json.dumps({
            "flow": flow.__file__,
            "client": client_models.__file__,
            "resolve": flow.storage_location("mlflow-artifacts:/1/models/m-1/artifacts", "s3://b/mlflow"),
            "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
            "schedule": str(dag.timetable.summary),
        }))
        """
    )
    out = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True, cwd=dags
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    mount = str(dags / Path(PLATFORM_DAGS_MOUNT).relative_to(DAGS_FOLDER))
    assert found["flow"].startswith(mount) and found["client"].startswith(mount), found
    assert found["resolve"] == "s3://b/mlflow/1/models/m-1/artifacts"
    assert found["tasks"] == {
        "find_new_versions": ["roll_out"],
        "roll_out": ["watch_canary"],
        "watch_canary": ["promote_or_roll_back"],
        "promote_or_roll_back": [],
    }
