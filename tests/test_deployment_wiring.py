"""What the platform gives the deployment DAG (dags/deploy_model.py), read from the plan: the canary queries are
the alert rules' own expressions, the models it follows come from serving.models[] in the shape the DAG
parses, its Kubernetes rights stop at InferenceServices in `model-serving`, and its packages travel in the DAG
ConfigMap under valid keys, each put back at its path."""

from __future__ import annotations

import ast
import json
import re
import string
from datetime import timedelta
from pathlib import Path

from components.lifecycle.deployment import model_targets
from components.observability.alerts import (
    CANARY_MATCHERS,
    canary_queries,
    revision_error_rate,
    revision_p99,
    revision_requests,
    rule_groups,
)
from dags.mlplatform_deploy.flow import ModelTarget
from mlplatform.config import AlertThresholds
from mlplatform.config.serving import CANARY_WATCH_MAX, READY_TIMEOUT_MAX, ServingModelConfig
from tests.support.graph import helm_release, platform_dags

T = AlertThresholds()
ROOT = Path(__file__).resolve().parents[1]


def airflow_env(doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in helm_release(doc, "airflow").inputs["values"]["env"] if "value" in e}


def test_the_canary_queries_are_the_alert_expressions_for_one_revision(dev) -> None:
    queries = json.loads(airflow_env(dev)["AIRFLOW_VAR_CANARY_QUERIES"])
    assert queries == canary_queries(T)
    one = {"namespace": "model-serving", "revision": "churn-predictor-00002"}
    matchers = string.Template(CANARY_MATCHERS).substitute(one)
    assert string.Template(queries["errorRate"]).substitute(one) == revision_error_rate(matchers)
    assert string.Template(queries["p99Seconds"]).substitute(one) == revision_p99(matchers)
    assert string.Template(queries["requests"]).substitute(one) == revision_requests(matchers)
    rules = {r["alert"]: r["expr"] for g in rule_groups(T) for r in g["rules"] if "alert" in r}
    errors = rules["InferenceRevisionErrorRate"]
    assert errors.startswith(f"{revision_error_rate()} > {queries['maxErrorRate']} and {revision_requests()} > ")
    assert errors.endswith(f" > {queries['minRequestsPerSecond']}")
    assert rules["InferenceRevisionLatencyP99"] == f"{revision_p99()} > {queries['maxP99Seconds']}"


def test_models_that_follow_an_alias_reach_the_dag_in_the_shape_it_parses() -> None:
    follows = ServingModelConfig(
        name="churn", registered_model="churn-classifier", alias="production", canary_percent=20,
        canary_watch_seconds=900, canary_check_seconds=60, ready_timeout_seconds=1200,
    )  # fmt: skip
    pinned = ServingModelConfig(name="fixed", registered_model="churn-deep", version=3)
    [target] = [ModelTarget.from_json(m) for m in json.loads(json.dumps(model_targets([follows, pinned])))]
    assert (target.name, target.registered_model, target.alias, target.canary_percent) == (
        "churn", "churn-classifier", "production", 20,
    )  # fmt: skip
    assert (target.watch_seconds, target.check_seconds, target.ready_seconds) == (900, 60, 1200)


def test_the_longest_configurable_deployment_fits_the_dag_run() -> None:
    """A run starts the new revision, watches it, and on a rollback waits for the restored revision: with the
    longest values config allows, that stays inside the DAG's dagrun_timeout (Airflow fails a run past it)."""
    dag = ast.parse((ROOT / "dags" / "deploy_model.py").read_text())
    [timeout] = [k.value for n in ast.walk(dag) if isinstance(n, ast.Call)
                 for k in n.keywords if k.arg == "dagrun_timeout"]  # fmt: skip
    limit = timedelta(**{k.arg: ast.literal_eval(k.value) for k in timeout.keywords}).total_seconds()
    assert limit > 2 * READY_TIMEOUT_MAX + CANARY_WATCH_MAX


def test_airflow_manages_inference_services_in_model_serving_only(dev) -> None:
    """The deployer Role is the only grant Airflow's service account has in model-serving, for
    InferenceServices alone; no cluster-wide grant."""
    bindings = [
        r.inputs
        for r in dev.resources
        if r.type in ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        and any(s.get("name") == "airflow" and s.get("namespace") == "mlplatform" for s in r.inputs.get("subjects", []))
    ]  # fmt: skip
    assert all(b["metadata"].get("namespace") for b in bindings), "no ClusterRoleBinding for Airflow"
    roles = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["rules"]
        for r in dev.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    }
    serving = [b for b in bindings if b["metadata"]["namespace"] == "model-serving"]
    [deployer] = serving
    rules = roles[("model-serving", deployer["roleRef"]["name"])]
    assert [(r["apiGroups"], r["resources"]) for r in rules] == [(["serving.kserve.io"], ["inferenceservices"])]
    assert set(rules[0]["verbs"]) == {"get", "list", "watch", "patch"}  # no create: the program creates them


def test_the_dag_packages_travel_under_valid_keys_and_come_back_at_their_paths(dev) -> None:
    data, items = platform_dags(dev)
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", key) for key in data), sorted(data)
    assert sorted(i["key"] for i in items) == sorted(data), "every key mounted, no key missing"
    paths = {i["path"] for i in items}
    assert {"deploy_model.py", "mlplatform_deploy/flow.py", "mlplatform_client/models.py"} <= paths
    assert data["mlplatform_client.models.py"] == (ROOT / "mlplatform_client" / "models.py").read_text(), "the one copy"
    ignored = data[".airflowignore"].splitlines()
    assert {"mlplatform_deploy/", "mlplatform_client/"} <= set(ignored)
