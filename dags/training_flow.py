"""Reference training flow on the platform: MLflow is up -> a Ray job trains on the GPU pool and logs the
run and model to MLflow. Every address comes from the Airflow variables and connections the platform sets
(components/lifecycle/airflow.py); nothing here names a host.

The training code is the job's entrypoint module in your image (`TRAIN_IMAGE` below); it reads features
with Feast (FeatureStore() reads the YAML FEAST_FS_YAML_FILE_PATH names) and logs with mlflow
(MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import dag

TRAIN_IMAGE = "docker.io/rayproject/ray:2.52.0-py311"  # the platform's Ray version; use your training image
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
        cmds=["ray", "job", "submit", "--address", "{{ var.value.ray_address }}", "--"],
        arguments=["python", "-m", "train", "--run-date", "{{ ds }}"],
        env_vars={"MLFLOW_TRACKING_URI": "{{ var.value.mlflow_tracking_uri }}"},
        get_logs=True,
        on_finish_action="delete_pod",
    )
    mlflow_up >> train


training_flow()
