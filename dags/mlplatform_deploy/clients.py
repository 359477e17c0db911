"""The three services the deployment flow talks to, each over its own API with the library the Airflow image
already has: MLflow's REST API (the image has no `mlflow` package), Prometheus' HTTP query API, and the
Kubernetes API for InferenceServices (the `kubernetes` client, server-side apply)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import requests

log = logging.getLogger("mlplatform.deploy")


class MlflowError(RuntimeError):
    """MLflow answered with an error (or not at all)."""


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version as MLflow's REST API returns it (the fields mlplatform_client.models reads:
    `source`, `model_id`)."""

    name: str
    version: str
    source: str
    model_id: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ModelVersion:
        return cls(
            name=doc["name"],
            version=str(doc["version"]),
            source=doc.get("source", ""),
            model_id=doc.get("model_id") or None,
            run_id=doc.get("run_id") or None,
            tags={t["key"]: t.get("value", "") for t in doc.get("tags", [])},
        )


class MlflowRegistry:
    """MLflow 3.15's model registry over REST (mlflow/server/handlers.py routes under /api/2.0/mlflow). Its
    `get_logged_model` and `get_run` answer like MlflowClient's where mlplatform_client.models reads them
    (`.artifact_location`, `.info.artifact_uri`), so that module resolves versions for both."""

    def __init__(self, tracking_uri: str, session: requests.Session | None = None, timeout: float = 30) -> None:
        self.base = tracking_uri.rstrip("/") + "/api/2.0/mlflow"
        self.session = session or requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, f"{self.base}/{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise MlflowError(f"MLflow at {self.base} unreachable: {e}") from e

    def _json(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise MlflowError(
                f"MLflow {response.request.method} {response.url}: {response.status_code} {response.text}"
            )
        return response.json()

    def version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version holding `alias`; None when no version does (MLflow 3.15 answers 400 INVALID_PARAMETER_VALUE
        "Registered model alias ... not found") or the model is not registered (404 RESOURCE_DOES_NOT_EXIST)."""
        response = self._call("GET", "registered-models/alias", params={"name": name, "alias": alias})
        if response.status_code in (400, 404):
            error = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            if response.status_code == 404 or "not found" in str(error.get("message", "")):
                log.info("MLflow: %s", error.get("message", response.text))
                return None
        return ModelVersion.from_json(self._json(response)["model_version"])

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        response = self._call("GET", "model-versions/get", params={"name": name, "version": version})
        return ModelVersion.from_json(self._json(response)["model_version"])

    def get_logged_model(self, model_id: str) -> SimpleNamespace:
        """MLflow 3's LoggedModel: `GET logged-models/<id>` answers {"model": {"info": {"artifact_uri"}}}."""
        info = self._json(self._call("GET", f"logged-models/{model_id}"))["model"]["info"]
        return SimpleNamespace(model_id=model_id, artifact_location=info["artifact_uri"])

    def get_run(self, run_id: str) -> SimpleNamespace:
        info = self._json(self._call("GET", "runs/get", params={"run_id": run_id}))["run"]["info"]
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id, artifact_uri=info["artifact_uri"]))

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._json(self._call("POST", "model-versions/set-tag", json=body))


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or refused the query."""


class Prometheus:
    """Instant queries against Prometheus' HTTP API (GET /api/v1/query)."""

    def __init__(self, url: str, session: requests.Session | None = None, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    def value(self, expr: str) -> float | None:
        """The query's value; None when it has no series or is NaN (no traffic in the window). Several series
        (one revision per query, so only on a relabelling surprise): the highest, the conservative reading."""
        try:
            response = self.session.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=self.timeout)
        except requests.RequestException as e:
            raise PrometheusError(f"Prometheus at {self.url} unreachable: {e}") from e
        if response.status_code != 200:
            raise PrometheusError(f"Prometheus at {self.url} answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {expr!r}: {body.get('error')}")
        values = [float(r["value"][1]) for r in body["data"]["result"]]
        values = [v for v in values if not math.isnan(v)]
        return max(values) if values else None


GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
# The deployment flow's own field manager: it owns spec.predictor.model.storageUri,
# spec.predictor.canaryTrafficPercent and the mlplatform.io/ annotations below, and nothing else, so the
# program's own apply of the InferenceService (Pulumi) and this flow do not take each other's fields.
FIELD_MANAGER = "mlplatform-deploy-model"


class InferenceServices:
    """InferenceServices in one namespace through the `kubernetes` client."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def apply(self, name: str, storage_uri: str, canary_percent: int, annotations: dict[str, str]) -> dict[str, Any]:
        """Server-side apply of the fields this flow owns, as FIELD_MANAGER, forcing conflicts (it takes
        storageUri and canaryTrafficPercent from whoever set them last). The client's patch methods send only
        JSON / merge patches, so the apply goes through call_api with the apply content type, which its REST
        layer sends as JSON (YAML's subset)."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": self.namespace, "annotations": annotations},
            "spec": {"predictor": {"canaryTrafficPercent": canary_percent, "model": {"storageUri": storage_uri}}},
        }
        return self.api_client.call_api(
            f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
            "PATCH",
            {"namespace": self.namespace, "name": name},
            [("fieldManager", FIELD_MANAGER), ("force", "true")],
            {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
