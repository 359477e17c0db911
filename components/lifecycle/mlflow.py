"""MLflow tracking server and model registry: backend on the platform PostgreSQL, artifacts proxied to the
artifacts bucket through the `mlflow` workload identity (no static keys anywhere).

helm.v4.Chart, deliberately: the community chart ships no CRDs, so Pulumi can render it and a pull
request's preview shows each object's diff. A v4 Chart applies no Helm hooks (pulumi-kubernetes
provider/pkg/provider/helm/v4/chart.go renders with hooks disabled; pulumi/pulumi-kubernetes#3284), so
nothing the chart makes only as a hook may be needed by its pods:
- templates/flask_secret.yaml makes `<fullname>-flask-server-secret-key`, which both the migration init
  container and the server load with a non-optional `envFrom`, only as a `pre-install,pre-upgrade` hook.
  The program makes that Secret itself (same name and key) from a key it generates once and keeps as a
  Pulumi secret; the key never passes through Helm values.
- The schema migration is a Job of the program's (`mlflow-db-upgrade`), run to completion before the
  chart: the chart's init container would run once per replica, and two replicas starting on a fresh
  database race to create the same tables; it also gets only the chart's env ConfigMap, not `PGSSLMODE`.

Both the Job and the server verify the database as the data layer says (PGSSLMODE, PGSSLROOTCERT: the CA
from the `mlflow-postgres-ca` ConfigMap, mounted through the chart's extraVolumes).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import AccessKey, Bucket, Namespace, PostgresEndpoint, ServiceEndpoint, WorkloadIdentity
from components.guardrails import flow
from components.kube import (
    PART_OF,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    access_key_values,
    database_ca,
    database_ca_volume,
    database_secret,
    identity_service_account,
    libpq_env,
    opaque_secret,
    spread_affinity,
    tls_env,
)
from components.placement import Placement, replicated_chart
from components.secrets import generated_secret
from mlplatform.config import ServiceConfig
from mlplatform.pins import MLFLOW_IMAGE_UID, MLFLOW_REPOSITORY, ChartPin

FLOW = flow("mlflow")
ENDPOINT = ServiceEndpoint("mlflow", Namespace.PLATFORM, 80)
ARTIFACTS_PREFIX = "mlflow"  # runs and registered models live under <artifacts bucket>/mlflow/
# the Secret the chart's Deployment loads with a non-optional envFrom (templates/deployment.yaml) and makes
# only as a hook (templates/flask_secret.yaml): `<fullname>-flask-server-secret-key`
FLASK_SECRET = f"{ENDPOINT.name}-flask-server-secret-key"
FLASK_SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# what the chart's migration init container runs (templates/configmap.yaml `migrations.py`): create the
# tables of a fresh database, then Alembic's upgrade to the installed MLflow's head; idempotent. libpq
# takes the server, database and TLS mode from the PG* variables.
MIGRATE = (
    "from mlflow.store.db import utils; "
    'utils._initialize_tables(utils.create_sqlalchemy_engine_with_retry("postgresql://"))'
)


# What MLflow itself allows when MLFLOW_SERVER_ALLOWED_HOSTS is unset (mlflow/server/security_utils.py
# get_default_allowed_hosts at 3.15.1): loopback (what `kubectl port-forward` sends) and the private address
# ranges (Prometheus scrapes a pod by its IP, so the Host header is `<pod IP>:5000`). A DNS-rebinding
# attack sends the attacker's own domain as Host, which none of these match, so the guard stays on.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
PRIVATE_ADDRESS_HOSTS = ("10.*", "192.168.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*")
WORKERS = 2  # uvicorn workers: MLflow's default of 4 does not fit the memory limit below (measured)


def allowed_hosts(endpoint: ServiceEndpoint, public_host: str | None = None) -> list[str]:
    """The Host headers MLflow 3 accepts: `serverAllowedHosts` replaces MLflow's defaults, so they are listed
    again beside every in-cluster spelling of the Service, each with and without a port; and the UI's
    public host where the client layer exposes it (its gateway route passes the browser's Host on:
    mlflow/server/fastapi_security.py HostValidationMiddleware answers 403 to any other)."""
    names = [
        endpoint.name,
        f"{endpoint.name}.{endpoint.namespace.value}",
        f"{endpoint.name}.{endpoint.namespace.value}.svc",
        endpoint.host,
        *LOOPBACK_HOSTS,
        *([public_host] if public_host else []),
    ]
    # an entry with `*` is a glob (fnmatch) and one without is compared literally
    # (security_utils.py), so only the port pattern escapes the IPv6 brackets
    return [h for n in names for h in (n, f"{glob.escape(n)}:*")] + list(PRIVATE_ADDRESS_HOSTS)


def mlflow_values(
    *,
    pin: ChartPin,
    replicas: int,
    postgres: PostgresEndpoint,
    database_secret: str,
    artifacts: Bucket,
    service_account: pulumi.Input[str],
    placement: Placement,
    ca_config_map: pulumi.Input[str] | None = None,
    public_host: str | None = None,
    access_key: AccessKey | None = None,
) -> dict[str, object]:
    database = postgres.databases["mlflow"].database
    ca_volumes, ca_mounts = database_ca_volume(ca_config_map)
    return {
        "nameOverride": FLOW.app,
        "fullnameOverride": ENDPOINT.name,
        "replicaCount": replicas,
        "image": {"tag": pin.app_version},
        "initImages": {"mlflowDbMigration": {"tag": pin.app_version}},
        "serviceAccount": {"create": False, "name": service_account},
        "service": {"port": ENDPOINT.port, "containerPort": FLOW.port},
        "podSecurityContext": RESTRICTED_POD,
        "backendStore": {
            # No dbchecker init container: the chart gives it no resources (templates/deployment.yaml), and
            # the chart waits for the migration Job, which waits for the database (PostgresEndpoint.ready).
            # No migration init container either: the program's Job has migrated before any pod starts.
            "databaseConnectionCheck": False,
            "databaseMigration": False,
            "postgres": {"enabled": True, "host": postgres.host, "port": postgres.port, "database": database},
            "existingDatabaseSecret": {"name": database_secret, "usernameKey": "username", "passwordKey": "password"},
        },
        # libpq reads them: TLS to the database, verified against the mounted CA where the data layer has one
        # and where the store is not the cloud's (local), its endpoint (MLflow's own MLFLOW_S3_ENDPOINT_URL,
        # mlflow/store/artifact/s3_artifact_repo.py, beside the SDK's) and the key from its Secret
        "extraEnvVars": {e["name"]: e["value"] for e in tls_env(postgres)} | s3_endpoint_env(access_key),
        **({"extraSecretNamesForEnvFrom": [access_key.secret_name]} if access_key is not None else {}),
        "extraVolumes": ca_volumes,
        "extraVolumeMounts": ca_mounts,
        "artifactRoot": {
            # --serve-artifacts: clients upload and download through MLflow, so only MLflow's identity
            # touches the bucket. s3://... or gs://... works as is with the pod's workload identity.
            "proxiedArtifactStorage": True,
            "defaultArtifactsDestination": artifacts_destination(artifacts),
        },
        "serverAllowedHosts": allowed_hosts(ENDPOINT, public_host),
        # the UI's own origin: browsers send Origin on same-origin POSTs, and MLflow's CORS check refuses an
        # origin it was not given (security_utils.should_block_cors_request); in-cluster clients send none
        "corsAllowedOrigins": [f"https://{public_host}"] if public_host else [],
        # `--expose-prometheus <dir>`: /metrics on the server port; gunicorn's workers share the directory
        # (the chart mounts an emptyDir on /tmp)
        "extraArgs": {"exposePrometheus": "/tmp/mlflow-metrics", "workers": str(WORKERS)},
        "resources": placement.resources("500m", "1Gi", "2Gi", small=("100m", "384Mi")),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "affinity": spread_affinity(FLOW.app) if placement.spread else {},
    }


def migration_job_spec(
    pin: ChartPin,
    database_secret: pulumi.Input[str],
    postgres: PostgresEndpoint,
    placement: Placement,
    ca_config_map: pulumi.Input[str] | None = None,
) -> dict[str, object]:
    """One run of MLflow's schema migration with the server's image, database user and TLS settings (the
    libpq variables of the `mlflow-postgres` Secret and the endpoint, the CA mounted)."""
    env = libpq_env(database_secret, postgres)
    volumes, mounts = database_ca_volume(ca_config_map)
    return {
        "backoffLimit": 6,
        "activeDeadlineSeconds": 900,
        "template": {
            "metadata": {"labels": {**PART_OF, "app.kubernetes.io/name": "mlflow-db-upgrade"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "nodeSelector": placement.node_selector,
                "tolerations": placement.tolerations,
                "securityContext": {**RESTRICTED_POD, "runAsUser": MLFLOW_IMAGE_UID},
                "containers": [
                    {
                        "name": "migrate",
                        "image": f"{MLFLOW_REPOSITORY}:{pin.app_version}",  # the server's own image
                        "command": ["python", "-c", MIGRATE],
                        "env": [*env, {"name": "HOME", "value": "/tmp"}],
                        "resources": placement.resources("100m", "256Mi", "1Gi"),
                        "securityContext": RESTRICTED_CONTAINER,
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": volumes,
            },
        },
    }


def s3_endpoint_env(access_key: AccessKey | None) -> dict[str, str]:
    """The key's plain variables and MLFLOW_S3_ENDPOINT_URL, which MLflow's S3 artifact repository passes to
    boto3 as endpoint_url; nothing on AWS and GCP."""
    if access_key is None:
        return {}
    return access_key_values(access_key) | {"MLFLOW_S3_ENDPOINT_URL": access_key.endpoint}


def artifacts_destination(artifacts: Bucket) -> pulumi.Output[str]:
    """The server's --artifacts-destination: the mlflow/ prefix of the artifacts bucket."""
    return pulumi.Output.concat(artifacts.uri, f"/{ARTIFACTS_PREFIX}")


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
    # the UI's host on the ingress gateway (`mlflow.<domain>`) when the client layer exposes it
    public_host: str | None = None


@dataclass(frozen=True)
class MLflowOutputs:
    endpoint: ServiceEndpoint  # .url is the tracking URI
    # where the server stores what clients log (--artifacts-destination); a registered version's files are
    # below it (mlplatform_client/models.py turns a version into the storageUri KServe reads)
    artifacts_destination: pulumi.Output[str]
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
        ca = database_ca(self, f"{name}-db-ca", "mlflow-postgres-ca", ns, pg)
        ca_name = ca.metadata.name if ca is not None else None
        tls = [ca] if ca is not None else []
        if args.config.enabled:
            flask = opaque_secret(
                self,
                f"{name}-flask-secret",
                FLASK_SECRET,
                ns,
                {FLASK_SECRET_KEY: generated_secret(self, f"{name}-flask-key", length=64)},
            )
            migration = k8s.batch.v1.Job(
                f"{name}-db-upgrade",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=ns.metadata.name, labels=PART_OF),
                spec=migration_job_spec(args.pin, db.metadata.name, pg, args.placement, ca_name),
                # the Job runs to completion before Pulumi moves on (and a new MLflow version is a new Job)
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*pg.ready, db, *tls]),
            )
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
                    placement=args.placement,
                    ca_config_map=ca_name,
                    public_host=args.public_host,
                    access_key=args.identity.access_key,
                ),
                replicas=args.config.replicas,
                namespace=ns.metadata.name,
                provider=args.provider,
                depends_on=[*pg.ready, db, *tls, account, flask, migration],
            )
        self.outputs = MLflowOutputs(ENDPOINT, artifacts_destination(args.artifacts), account, db)
        self.register_outputs({"trackingUri": ENDPOINT.url})
