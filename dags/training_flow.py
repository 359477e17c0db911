"""Reference training flow on the platform: MLflow is up -> a Ray job trains and logs the run and model to
MLflow, registering a new version. Every address comes from the Airflow variables and connections the
platform sets (components/lifecycle/airflow.py); nothing here names a host.

`ray job submit` runs its entrypoint on the Ray cluster, not in the pod that submits it, so the code goes
with the job: the pod mounts the platform's `training-reference` ConfigMap (training/*.py) and the CLI packs
that directory as the job's working_dir and uploads it through the job API (Ray's "Dependency management":
runtime_env working_dir), with the runtime_env's pip packages installed on the cluster for the job.
Replace the ConfigMap's module with your own, or use your image with your code under TRAIN_CODE.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import dag
from kubernetes.client import models as k8s

TRAIN_IMAGE = "docker.io/rayproject/ray:2.52.0-py311"  # the platform's Ray version: its `ray` CLI submits
TRAIN_CODE = "/opt/mlplatform/train"  # the job's working directory in the submitting pod
# the ConfigMap's files under TRAIN_CODE through `items`: the mount's root also holds the kubelet's
# `..data` and timestamped directories, which would otherwise be packed and uploaded too
CODE_VOLUME = k8s.V1Volume(
    name="training-code",
    config_map=k8s.V1ConfigMapVolumeSource(
        # the platform sets the variable in every Airflow container; the default keeps the DAG importable
        # elsewhere (`airflow dags test`, a DAG repository's CI)
        name=os.environ.get("AIRFLOW_VAR_TRAINING_CODE", "training-reference"),
        items=[k8s.V1KeyToPath(key="train.py", path="train/train.py")],
    ),
)
CODE_MOUNT = k8s.V1VolumeMount(name="training-code", mount_path=TRAIN_CODE.rsplit("/", 1)[0], read_only=True)
# `service_account_name` is not a templated field of KubernetesPodOperator (cncf-kubernetes 10.12.3
# operators/pod.py template_fields), so a `{{ var.value... }}` there would reach Kubernetes literally. The
# platform sets this variable as an environment variable of every Airflow container, so it is read here,
# at parse time, without a database call.
TRAINING_SERVICE_ACCOUNT = os.environ["AIRFLOW_VAR_TRAINING_SERVICE_ACCOUNT"]


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["mlplatform", "reference"])
def training_flow() -> None:
    mlflow_up = HttpSensor(
        task_id="mlflow_up", http_conn_id="mlflow_default", endpoint="health", poke_interval=30, timeout=600
    )
    train = KubernetesPodOperator(
        task_id="train_on_ray",
        kubernetes_conn_id="kubernetes_default",
        namespace="{{ var.value.training_namespace }}",
        service_account_name=TRAINING_SERVICE_ACCOUNT,
        image=TRAIN_IMAGE,
        cmds=[
            "ray",
            "job",
            "submit",
            "--address",
            "{{ var.value.ray_address }}",
            "--working-dir",
            TRAIN_CODE,
            "--runtime-env-json",
            "{{ var.value.training_runtime_env }}",
            "--",
        ],
        arguments=[
            "python",
            "-m",
            "train",
            "--run-date",
            "{{ ds }}",
            "--dataset",
            "{{ var.value.datasets_uri }}/feast/examples/driver_stats.parquet",
        ],
        volumes=[CODE_VOLUME],
        volume_mounts=[CODE_MOUNT],
        env_vars={"MLFLOW_TRACKING_URI": "{{ var.value.mlflow_tracking_uri }}"},
        get_logs=True,
        on_finish_action="delete_pod",
    )
    mlflow_up >> train


training_flow()
