"""What the deployment DAG (dags/deploy_model.py) needs from the platform, made by the Airflow component: its
Airflow variables (the models to follow, MLflow's artifacts destination, Prometheus and the canary queries
built from the alert rules), the right to manage InferenceServices in `model-serving` and nothing else there,
and the code it imports, shipped beside it in the DAG ConfigMap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ServiceEndpoint
from components.kube import namespaced_grant

ROOT = Path(__file__).resolve().parents[2]
# The packages the platform's DAGs import, shipped as directories beside them (a ConfigMap is flat: each
# file is a key, placed at its path by the volume's `items`): the deployment flow's logic, and the client
# module whose MLflow 3 resolution it shares with users' code (one copy of it)
DAG_PACKAGES: tuple[tuple[Path, tuple[str, ...]], ...] = (
    (ROOT / "dags" / "mlplatform_deploy", ("__init__.py", "clients.py", "flow.py")),
    (ROOT / "mlplatform_client", ("__init__.py", "models.py")),
)
# InferenceServices only, in `model-serving` only (a Role there): read them and apply the deployment's fields
# (server-side apply is a PATCH). No create: the program creates every configured model's InferenceService.
DEPLOYER_RULES = ((("serving.kserve.io",), ("inferenceservices",), ("get", "list", "watch", "patch")),)


def package_files() -> dict[str, str]:
    """`<package>/<module>.py` -> its text, for every module the DAGs import from DAG_PACKAGES."""
    return {f"{d.name}/{f}": (d / f).read_text() for d, names in DAG_PACKAGES for f in names}


def config_map_key(path: str) -> str:
    """A package file's ConfigMap key: its path with `/` (not allowed in a key) as `.`, e.g.
    `mlplatform_deploy.flow.py`; the volume's `items` put it back at its path."""
    return path.replace("/", ".")


@dataclass(frozen=True)
class ModelDeployment:
    """The deployment DAG's inputs. `models` are the configured models that follow an alias
    (serving.models[] with `alias`), as the DAG's ModelTarget JSON."""

    serving_namespace: k8s.core.v1.Namespace
    artifacts_destination: pulumi.Input[str]  # MLflow's --artifacts-destination (stack output)
    prometheus: ServiceEndpoint | None  # None: Prometheus is not installed, no canary can be judged
    # the alert rules' canary expressions and thresholds (components/observability/alerts.py canary_queries,
    # rendered by the composition: one layer does not import another's modules)
    queries: Mapping[str, Any]
    models: Sequence[dict[str, Any]] = ()


def model_targets(models: Sequence[Any]) -> list[dict[str, Any]]:
    """serving.models[] (mlplatform/config/serving.py ServingModelConfig) as the DAG reads them: only models
    that follow an alias (a fixed version is not the DAG's to move). Their InferenceServices are the
    program's; the DAG moves only their storageUri and canary share."""
    return [
        {
            "name": m.name,
            "registeredModel": m.registered_model,
            "alias": m.alias,
            "canaryPercent": m.canary_percent,
            "watchSeconds": m.canary_watch_seconds,
            "checkSeconds": m.canary_check_seconds,
            "readySeconds": m.ready_timeout_seconds,
        }
        for m in models
        if m.alias is not None
    ]


def deployment_env(d: ModelDeployment) -> list[dict[str, object]]:
    """The DAG's Airflow variables (AIRFLOW_VAR_*) and Prometheus as a connection."""
    env: list[dict[str, object]] = [
        {"name": "AIRFLOW_VAR_SERVING_NAMESPACE", "value": d.serving_namespace.metadata.name},
        {"name": "AIRFLOW_VAR_MLFLOW_ARTIFACTS_DESTINATION", "value": d.artifacts_destination},
        {"name": "AIRFLOW_VAR_SERVING_MODELS", "value": json.dumps(list(d.models))},
        {"name": "AIRFLOW_VAR_CANARY_QUERIES", "value": json.dumps(dict(d.queries))},
    ]
    if d.prometheus is not None:
        conn = {"conn_type": "http", "host": d.prometheus.host, "port": d.prometheus.port, "schema": "http"}
        env += [
            {"name": "AIRFLOW_VAR_PROMETHEUS_URL", "value": d.prometheus.url},
            {"name": "AIRFLOW_CONN_PROMETHEUS_DEFAULT", "value": json.dumps(conn)},
        ]
    return env


def deployer_rbac(
    parent: pulumi.Resource, prefix: str, serving_ns: k8s.core.v1.Namespace, account: k8s.core.v1.ServiceAccount
) -> k8s.rbac.v1.RoleBinding:
    """A Role with DEPLOYER_RULES in the serving namespace, bound to Airflow's service account."""
    return namespaced_grant(parent, prefix, "airflow-deployer", serving_ns, account, DEPLOYER_RULES)
