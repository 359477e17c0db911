"""The training flow as each stack plans it: what the platform tells Airflow about the flow's two steps (the
feature step's pod, the Ray job's GPUs) refers to objects that exist where the pods run, and agrees with the
RayCluster's worker groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.contracts import GPU_RESOURCE
from components.lifecycle.training import FEATURE_POD_VARIABLE, NUM_GPUS_VARIABLE, TRAINING_CODE_CONFIG_MAP
from mlplatform.plan.document import PlanDocument

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind


def airflow_env(doc: PlanDocument) -> dict[str, Any]:
    [release] = [
        r for r in doc.resources if r.type.startswith("kubernetes:helm.sh/") and r.name == "mlplatform-airflow"
    ]
    return {e["name"]: e.get("value") for e in release.inputs["values"]["env"]}


def in_namespace(doc: PlanDocument, type_: str, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        r.inputs["metadata"]["name"]: r.inputs
        for r in doc.by_type(type_)
        if r.inputs["metadata"].get("namespace") == namespace
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_feature_step_pod_loads_what_exists_in_training(plan, stack: str) -> None:
    """Every Secret key and ConfigMap the feature step's pod template names is planned in `training` (where
    the DAG starts the pod), and its image is the one the platform's own offline-store reader (the
    materialization CronJob) runs."""
    doc = plan(stack)
    template = json.loads(airflow_env(doc)[FEATURE_POD_VARIABLE])
    [container] = template["spec"]["containers"]
    assert container["name"] == "base", "merged with KubernetesPodOperator's own container"
    secrets = in_namespace(doc, "kubernetes:core/v1:Secret", "training")
    config_maps = in_namespace(doc, "kubernetes:core/v1:ConfigMap", "training")
    for env in container["env"]:
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in secrets, env["name"]  # its data is a Pulumi secret in the plan
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            assert volume["configMap"]["name"] in config_maps, mount
    assert {"FEAST_FS_YAML_FILE_PATH", "HOME"} <= {e["name"] for e in container["env"]}
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").inputs
    [reader] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == reader["image"]
    code = config_maps[TRAINING_CODE_CONFIG_MAP]["data"]
    assert {"train.py", "features.py", "driver_labels.csv"} <= set(code)


@pytest.mark.parametrize("stack", STACKS)
def test_the_ray_job_asks_for_a_gpu_only_where_a_worker_group_has_one(plan, stack: str) -> None:
    """The entrypoint's GPU request lands on a GPU group: Ray's autoscaler counts a group's GPUs from its
    container limits (ray python/ray/autoscaler/_private/kuberay/autoscaling_config.py _get_num_gpus), and
    the head (num-cpus 0) and the CPU group have none."""
    doc = plan(stack)
    spec = doc.one("kubernetes:ray.io/v1:RayCluster", "mlplatform-kuberay-cluster").inputs["spec"]
    gpus = {
        group["groupName"]: int(group["template"]["spec"]["containers"][0]["resources"]["limits"].get(GPU_RESOURCE, 0))
        for group in spec["workerGroupSpecs"]
    }
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    # the driver waits for a worker to take it; a GPU node from zero takes longer than Ray's default 900 s
    head_env = {e["name"]: e.get("value") for e in head["template"]["spec"]["containers"][0]["env"]}
    assert int(head_env["RAY_JOB_START_TIMEOUT_SECONDS"]) > 900
    assert GPU_RESOURCE not in head["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    asked = int(airflow_env(doc)[NUM_GPUS_VARIABLE])
    assert asked == (1 if any(gpus.values()) else 0), gpus
    assert asked <= max(gpus.values()), "the job's GPUs fit on one worker"
