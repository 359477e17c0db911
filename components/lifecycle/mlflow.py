"""MLflow tracking server and model registry: backend on the platform PostgreSQL, artifacts proxied to the
artifacts bucket through the `mlflow` workload identity (no static keys anywhere).

helm.v4.Chart, deliberately: the community chart ships no CRDs and its migrations run as an init
container, so Pulumi can render it and a pull request's preview shows each object's diff. Its one hook,
templates/flask_secret.yaml (`pre-install,pre-upgrade`), makes the Flask session key Secret with a fresh
random key at every render unless `lookup` finds the Secret in the cluster, which a client-side render
never does: under helm.v4.Chart (hooks become ordinary objects) that is a new key at every `up`. The
program therefore passes `flaskServerSecretKey`, a value it generates once and keeps as a Pulumi secret,
so every render yields the same Secret object. The chart has no existing-Secret option for this key; the
value stays a Pulumi secret in the values and in the rendered Secret (a v4 Chart keeps no Helm release
Secret holding values in the cluster).
"""

from __future__ import annotations

import pulumi

from components.contracts import Bucket, Namespace, PostgresEndpoint, ServiceEndpoint
from components.guardrails import flow
from components.kube import RESTRICTED_POD, spread_affinity
from components.lifecycle.placement import Placement
from mlplatform.pins import ChartPin

FLOW = flow("mlflow")
ENDPOINT = ServiceEndpoint("mlflow", Namespace.PLATFORM, 80)
ARTIFACTS_PREFIX = "mlflow"  # runs and registered models live under <artifacts bucket>/mlflow/


def allowed_hosts(endpoint: ServiceEndpoint) -> list[str]:
    """MLflow 3 rejects requests whose Host header it does not know (DNS-rebinding guard); these are every
    in-cluster spelling of the Service, with and without a port."""
    names = [
        endpoint.name,
        f"{endpoint.name}.{endpoint.namespace.value}",
        f"{endpoint.name}.{endpoint.namespace.value}.svc",
        endpoint.host,
    ]
    return [h for n in names for h in (n, f"{n}:*")]


def mlflow_values(
    *,
    pin: ChartPin,
    replicas: int,
    postgres: PostgresEndpoint,
    database_secret: str,
    artifacts: Bucket,
    service_account: pulumi.Input[str],
    flask_secret_key: pulumi.Output[str],
    placement: Placement,
) -> dict[str, object]:
    database = postgres.databases["mlflow"].database
    return {
        "nameOverride": FLOW.app,
        "fullnameOverride": ENDPOINT.name,
        "replicaCount": replicas,
        "image": {"tag": pin.app_version},
        "initImages": {"mlflowDbMigration": {"tag": pin.app_version}},
        "serviceAccount": {"create": False, "name": service_account},
        "service": {"port": ENDPOINT.port, "containerPort": FLOW.port},
        "podSecurityContext": RESTRICTED_POD,
        "flaskServerSecretKey": flask_secret_key,
        "backendStore": {
            # No dbchecker init container: the chart gives it no resources (templates/deployment.yaml), and
            # the release already waits for the database (PostgresEndpoint.ready); `mlflow db upgrade`
            # runs before the server starts (idempotent) and retries through the pod's restart.
            "databaseConnectionCheck": False,
            "databaseMigration": True,
            "postgres": {"enabled": True, "host": postgres.host, "port": postgres.port, "database": database},
            "existingDatabaseSecret": {"name": database_secret, "usernameKey": "username", "passwordKey": "password"},
        },
        # libpq reads it: TLS to the database, as the server requires
        "extraEnvVars": {"PGSSLMODE": postgres.ssl_mode},
        "artifactRoot": {
            # --serve-artifacts: clients upload and download through MLflow, so only MLflow's identity
            # touches the bucket. s3://... or gs://... works as is with the pod's workload identity.
            "proxiedArtifactStorage": True,
            "defaultArtifactsDestination": pulumi.Output.concat(artifacts.uri, f"/{ARTIFACTS_PREFIX}"),
        },
        "serverAllowedHosts": allowed_hosts(ENDPOINT),
        "resources": placement.resources("500m", "1Gi", "2Gi"),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "affinity": spread_affinity(FLOW.app) if placement.spread else {},
    }
