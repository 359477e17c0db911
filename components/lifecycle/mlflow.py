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

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Bucket, Namespace, PostgresEndpoint, ServiceEndpoint, WorkloadIdentity
from components.guardrails import flow
from components.kube import RESTRICTED_POD, database_secret, identity_service_account, spread_affinity
from components.placement import Placement, replicated_chart
from components.secrets import generated_secret
from mlplatform.config import ServiceConfig
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
        # `--expose-prometheus <dir>`: /metrics on the server port; gunicorn's workers share the directory
        # (the chart mounts an emptyDir on /tmp)
        "extraArgs": {"exposePrometheus": "/tmp/mlflow-metrics"},
        "resources": placement.resources("500m", "1Gi", "2Gi"),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "affinity": spread_affinity(FLOW.app) if placement.spread else {},
    }


@dataclass(frozen=True)
class MLflowArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity
    postgres: PostgresEndpoint
    artifacts: Bucket
    pin: ChartPin
    config: ServiceConfig
    placement: Placement
    provider: k8s.Provider


@dataclass(frozen=True)
class MLflowOutputs:
    endpoint: ServiceEndpoint  # .url is the tracking URI
    service_account: k8s.core.v1.ServiceAccount
    database_secret: k8s.core.v1.Secret


class MLflow(pulumi.ComponentResource):
    """Tracking server and model registry: its service account, database Secret, chart and disruption
    budget."""

    outputs: MLflowOutputs

    def __init__(self, name: str, args: MLflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:MLflow", name, None, opts)
        ns, pg = args.namespace, args.postgres
        account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
        db = database_secret(self, f"{name}-db-secret", ns, pg, "mlflow")
        if args.config.enabled:
            replicated_chart(
                self,
                name,
                pin=args.pin,
                endpoint=ENDPOINT,
                app=FLOW.app,
                values=mlflow_values(
                    pin=args.pin,
                    replicas=args.config.replicas,
                    postgres=pg,
                    database_secret=db.metadata.name,
                    artifacts=args.artifacts,
                    service_account=account.metadata.name,
                    flask_secret_key=generated_secret(self, f"{name}-flask-key", length=64),
                    placement=args.placement,
                ),
                replicas=args.config.replicas,
                namespace=ns.metadata.name,
                provider=args.provider,
                depends_on=[*pg.ready, db, account],
            )
        self.outputs = MLflowOutputs(ENDPOINT, account, db)
        self.register_outputs({"trackingUri": ENDPOINT.url})
