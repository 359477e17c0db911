"""Reference training flow on the platform: MLflow is up -> point-in-time features from Feast -> a Ray job
trains (on a GPU worker where the cluster has GPU pools) and logs the metrics, the feature list and the model
to MLflow, registering a new version. Every address comes from the Airflow variables and connections the
platform sets (components/lifecycle/airflow.py, components/lifecycle/training.py); nothing here names a host.

1. `historical_features`: training/features.py in the Feast client image, in `training` with the training
   identity, loads the platform's feature store (the pod template the platform describes in
   AIRFLOW_VAR_TRAINING_FEATURE_POD: the mounted feature_store.yaml, its Secrets and CAs), joins the feature
   service's features onto the label events point in time, and writes the training set to the artifacts
   bucket (the training identity reads the datasets bucket and writes only artifacts).
2. `train_on_ray`: `ray job submit` to the platform's RayCluster through its job API. The entrypoint asks
   for AIRFLOW_VAR_TRAINING_NUM_GPUS GPUs (one where there are GPU pools): the head has no CPUs for jobs and
   the CPU group no GPUs, so Ray's autoscaler starts a worker of a GPU group (one per GPU pool) and the job's
   driver runs there.

`ray job submit` runs its entrypoint on the Ray cluster, not in the pod that submits it, so the code goes
with the job: the pod mounts the platform's `training-reference` ConfigMap (training/*.py and the example
label events) and the CLI packs that directory as the job's working_dir and uploads it through the job API
(Ray's "Dependency management": runtime_env working_dir), with the runtime_env's pip packages installed on
the cluster for the job. The feature step runs the same ConfigMap's features.py. Replace the label events
and modules with your own, or use your image with your code under TRAIN_CODE.
"""

from __future__ import annotations

import json
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
CODE_FILES = ("train.py", "features.py", "driver_labels.csv")
CODE_VOLUME = k8s.V1Volume(
    name="training-code",
    config_map=k8s.V1ConfigMapVolumeSource(
        # the platform sets the variable in every Airflow container; the default keeps the DAG importable
        # elsewhere (`airflow dags test`, a DAG repository's CI)
        name=os.environ.get("AIRFLOW_VAR_TRAINING_CODE", "training-reference"),
        items=[k8s.V1KeyToPath(key=f, path=f"train/{f}") for f in CODE_FILES],
    ),
)
CODE_MOUNT = k8s.V1VolumeMount(name="training-code", mount_path=TRAIN_CODE.rsplit("/", 1)[0], read_only=True)
# `service_account_name` is not a templated field of KubernetesPodOperator (cncf-kubernetes 10.12.3
# operators/pod.py template_fields), so a `{{ var.value... }}` there would reach Kubernetes literally. The
# platform sets this variable as an environment variable of every Airflow container, so it is read here,
# at parse time, without a database call.
TRAINING_SERVICE_ACCOUNT = os.environ["AIRFLOW_VAR_TRAINING_SERVICE_ACCOUNT"]
# The feature step's pod: image, Feast variables and mounts (components/lifecycle/training.py
# feature_pod_template), merged under the operator's own container (its `base`). Read at parse time like the
# service account; absent outside the platform, where FeatureStore() finds feature_store.yaml itself.
FEATURE_POD = json.loads(os.environ.get("AIRFLOW_VAR_TRAINING_FEATURE_POD", "{}"))
FEATURE_IMAGE = next(iter(FEATURE_POD.get("spec", {}).get("containers", [])), {}).get("image", "")
FEATURE_SERVICE = "driver_activity"  # feature_repo/features.py
TRAINING_SET = "{{ var.value.artifacts_uri }}/training-sets/driver-activity/{{ ts_nodash }}.parquet"


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["mlplatform", "reference"])
def training_flow() -> None:
    mlflow_up = HttpSensor(
        task_id="mlflow_up", http_conn_id="mlflow_default", endpoint="health", poke_interval=30, timeout=600
    )
    features = KubernetesPodOperator(
        task_id="historical_features",
        kubernetes_conn_id="kubernetes_default",
        namespace="{{ var.value.training_namespace }}",
        service_account_name=TRAINING_SERVICE_ACCOUNT,
        image=FEATURE_IMAGE or None,  # the template's, which the platform pins
        pod_template_dict=FEATURE_POD or None,
        cmds=["python", "-m", "features"],
        arguments=[
            "--entities",
            f"{TRAIN_CODE}/driver_labels.csv",
            "--feature-service",
            FEATURE_SERVICE,
            "--output",
            TRAINING_SET,
        ],
        env_vars={"PYTHONPATH": TRAIN_CODE},
        volumes=[CODE_VOLUME],
        volume_mounts=[CODE_MOUNT],
        get_logs=True,
        on_finish_action="delete_pod",
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
            "--entrypoint-num-gpus",
            "{{ var.value.training_num_gpus }}",
            # A driver that asks for no resources is pinned to the head node (ray 2.52 dashboard/modules/job/
            # job_manager.py _get_scheduling_strategy), which has num-cpus 0 and 4 GiB here: one CPU sends it
            # to a worker of the autoscaled CPU group (or, with a GPU, of a GPU group)
            "--entrypoint-num-cpus",
            "1",
            "--",
        ],
        arguments=[
            "python",
            "-m",
            "train",
            "--run-date",
            "{{ ds }}",
            "--training-set",
            TRAINING_SET,
        ],
        volumes=[CODE_VOLUME],
        volume_mounts=[CODE_MOUNT],
        env_vars={"MLFLOW_TRACKING_URI": "{{ var.value.mlflow_tracking_uri }}"},
        get_logs=True,
        on_finish_action="delete_pod",
    )
    mlflow_up >> features >> train


training_flow()
