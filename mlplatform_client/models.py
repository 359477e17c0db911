"""From a registered MLflow model version to the storage URI an InferenceService loads it from.

MLflow 3 logs a model as a LoggedModel: `log_model` writes it under
`<experiment>/models/<model id>/artifacts/` and the registered version's `source` is `models:/<model id>`,
which no storage initializer understands. With `--serve-artifacts` (the platform's setting) the model's
`artifact_location` is the proxy's `mlflow-artifacts:/<experiment>/models/<model id>/artifacts`, a path
below the server's `--artifacts-destination` (mlflow/store/artifact/artifact_repository_registry.py maps
`mlflow-artifacts` to the proxy; mlflow/server/handlers.py `_get_proxied_run_artifact_destination_path`
joins the path onto the destination). KServe's storage initializer reads the bucket directly with the
serving identity (read-only on artifacts), so the URI it needs is that destination joined with the path:
`s3://<artifacts bucket>/mlflow/<experiment>/models/<model id>/artifacts` (the stack output
`mlflowArtifactsDestination` is the destination).

Versions registered from a run (`runs:/<run id>/<path>`, MLflow 2 style) resolve through the run's artifact
URI the same way.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

PROXY_SCHEME = "mlflow-artifacts"


def storage_location(artifact_uri: str, artifacts_destination: str) -> str:
    """An artifact URI as the bucket's own URI: a proxied `mlflow-artifacts:` URI (with or without the
    server's host) joined onto the destination; a bucket URI as it is."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != PROXY_SCHEME:
        return artifact_uri
    path = parsed.path.lstrip("/")
    return f"{artifacts_destination.rstrip('/')}/{path}" if path else artifacts_destination.rstrip("/")


def model_version(client: Any, name: str, *, alias: str | None = None, version: str | None = None) -> Any:
    """The registered version by alias (the deployment flow promotes by alias) or by number."""
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias and version")
    if alias is not None:
        return client.get_model_version_by_alias(name, alias)
    return client.get_model_version(name, version)


def model_artifact_uri(client: Any, version: Any) -> str:
    """Where the version's files (its MLmodel) are, as MLflow records it."""
    source = version.source
    # MLflow 3: a LoggedModel. The version's `model_id` is not filled in over the REST API (3.15: None from
    # get_model_version), its source `models:/<model id>` is
    model_id = getattr(version, "model_id", None) or _logged_model_id(source)
    if model_id:
        return client.get_logged_model(model_id).artifact_location
    if source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        base = client.get_run(run_id).info.artifact_uri.rstrip("/")
        return f"{base}/{path}" if path else base
    return source


def _logged_model_id(source: str) -> str | None:
    """`m-<hex>` of a `models:/m-<hex>` source; None for `models:/<name>/<version>` and other sources."""
    match = re.fullmatch(r"models:/(m-[0-9a-f]+)", source)
    return match.group(1) if match else None


def storage_uri(
    client: Any, name: str, artifacts_destination: str, *, alias: str | None = None, version: str | None = None
) -> str:
    """The `storageUri` for an InferenceService serving registered model `name` at `alias` or `version`.

    `client` is an `mlflow.MlflowClient` for the platform's tracking URI; `artifacts_destination` is the
    stack output `mlflowArtifactsDestination`."""
    found = model_version(client, name, alias=alias, version=version)
    return storage_location(model_artifact_uri(client, found), artifacts_destination)
