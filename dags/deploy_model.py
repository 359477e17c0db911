"""Model deployment: a model version newly given its production alias in MLflow goes to its InferenceService in
`model-serving` as a canary, is watched with the platform's alert expressions, then promoted to 100 % or
rolled back, and the version is tagged in MLflow with the outcome (deployment.status, deployment.reason).

Polled every 5 minutes rather than triggered by an Asset event: nothing in the platform emits an Asset event
when an alias moves (it is set from a notebook, the MLflow UI or a training job), and MLflow reaching
Airflow's API would need a credential and a flow the platform's network policies do not have. A run finds
nothing new in a few REST calls; max_active_runs=1 keeps two runs from deploying the same version.

The logic is plain Python in mlplatform_deploy/ beside this file (tested without Airflow); the platform ships
that package, and mlplatform_client/ whose MLflow 3 resolution it uses, next to this file in the DAG
ConfigMap. This file's directory is put on sys.path for them: Airflow only adds the DAGs folder itself,
and the platform's DAGs are a subdirectory of it (a git-sync checkout is too).
Everything it talks to comes from the Airflow variables the platform sets (components/lifecycle/airflow.py).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Variable, dag, task

HERE = os.path.dirname(os.path.abspath(__file__))  # not resolved: the kubelet's ..data link stays current


def _services() -> Any:
    """The flow's clients, pointed where the platform's variables say (in-cluster Kubernetes credentials:
    Airflow's service account, which may manage InferenceServices in the serving namespace only)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from kubernetes import client, config
    from mlplatform_deploy.clients import InferenceServices, MlflowRegistry, Prometheus
    from mlplatform_deploy.flow import Services

    config.load_incluster_config()
    return Services(
        registry=MlflowRegistry(Variable.get("mlflow_tracking_uri")),
        isvcs=InferenceServices(client.ApiClient(), Variable.get("serving_namespace")),
        prometheus=Prometheus(Variable.get("prometheus_url")),
        artifacts_destination=Variable.get("mlflow_artifacts_destination"),
        queries=json.loads(Variable.get("canary_queries")),
    )


def _flow() -> Any:
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from mlplatform_deploy import flow

    return flow


@dag(
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    # a canary watch takes its window (10 minutes by default) plus the revision's start
    dagrun_timeout=timedelta(hours=2),
    tags=["mlplatform", "reference", "deployment"],
)
def deploy_model() -> None:
    @task
    def find_new_versions() -> list[dict[str, Any]]:
        flow = _flow()
        targets = [flow.ModelTarget.from_json(m) for m in json.loads(Variable.get("serving_models", default="[]"))]
        return flow.find_new_versions(targets, _services())

    @task
    def roll_out(plan: dict[str, Any]) -> dict[str, Any]:
        return _flow().roll_out(plan, _services())

    @task
    def watch_canary(rollout: dict[str, Any]) -> dict[str, Any]:
        verdict = _flow().judge(rollout, _services())
        return rollout | {"verdict": {"healthy": verdict.healthy, "reason": verdict.reason, "checks": verdict.checks}}

    @task
    def promote_or_roll_back(watched: dict[str, Any]) -> dict[str, Any]:
        flow = _flow()
        result = flow.conclude(watched, flow.Verdict(**watched["verdict"]), _services())
        if result["outcome"] != flow.PROMOTED:
            # the run fails so the rollback is seen in Airflow, after everything is done and tagged
            raise RuntimeError(f"{result['model']} version {result['version']} rolled back: {result['reason']}")
        return result

    promote_or_roll_back.expand(watched=watch_canary.expand(rollout=roll_out.expand(plan=find_new_versions())))


deploy_model()
