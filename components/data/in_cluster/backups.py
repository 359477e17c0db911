"""Backups of in-cluster PostgreSQL to the platform's object store: the Barman Cloud plugin (CNPG-I) archives
every WAL segment and takes a daily base backup of the CloudNativePG Cluster into the backups bucket, and keeps
data.postgres.backupRetentionDays of them.

Why the plugin: the operator's in-tree `spec.backup.barmanObjectStore` is deprecated since 1.26 and removed in
1.31, and the operand images pinned in mlplatform/pins.py (CNPG_POSTGRES_TAGS, "system" images) carry no
barman-cloud. The plugin (mlplatform/pins.py BARMAN_CLOUD) injects its own sidecar, with barman-cloud, into each
instance pod.

Why here, after the storage layer: the bucket and the identity that may write it (components/workloads.py
postgres_backup_workloads) are made by the storage layer, which is built after the data layer (an identity may
need the managed Kafka's ARN). So the Cluster is created by components/data/in_cluster/postgres.py without
backups, and this component attaches them: a server-side-apply patch of the Cluster (its own field manager,
so the data layer's fields stay the data layer's) adds the plugin as WAL archiver and the identity's
annotation to the service account CloudNativePG makes for the Cluster.

What it makes, in order:
1. The plugin's two mTLS Secrets, signed by the platform's CA (tls.py): the server's (SERVER_SECRET, for the
   name `barman-cloud`: the operator dials `<service>.<namespace>.svc:<port>` and verifies the Service's name;
   it trusts exactly the server Secret's tls.crt and presents the client Secret's pair, TLS 1.3:
   cloudnative-pg v1.30.0 internal/controller/plugin_controller.go reconcile), and the client's (clientAuth;
   the plugin trusts exactly its tls.crt: chart templates/deployment.yaml `--client-cert`). The operator reads
   them once, when it registers the plugin (a changed Secret is "already registered", not reloaded), so after
   a certificate is reissued the operator is restarted.
   cert-manager, which the chart would otherwise ask for, is installed later and only with KServe.
2. The plugin's chart as a helm.v3.Release (its CRD ships as a template with `helm.sh/resource-policy: keep`,
   as the operator's do), its Certificates off and its unconditional cert-manager Issuer dropped by a
   post-renderer (drop_cert_manager_issuer.py).
3. On `cloud: local`, the backup identity's S3 key as a Secret in `data` (the store is in-cluster, plain HTTP:
   components/storage/seaweedfs.py, so no endpointCA).
4. The ObjectStore (barmancloud.cnpg.io/v1): the bucket, the credentials (AWS: IRSA through the service
   account; GCP: Workload Identity; local: the key), compression, the retention policy and the sidecar's
   resources.
5. The Cluster patch, then a daily ScheduledBackup (method plugin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import AccessKey, Bucket, ClusterOutputs, Namespace, NodePoolContract, WorkloadIdentity
from components.data.in_cluster.cnpg import CLUSTER_NAME
from components.data.in_cluster.postgres import CloudNativePostgres
from components.data.in_cluster.tls import PlatformCa
from components.guardrails import BARMAN_CLOUD_PORT, BARMAN_CLOUD_SERVICE
from components.kube import PART_OF, access_key_secret, pinned_release
from mlplatform.pins import BARMAN_CLOUD

PLUGIN_NAME = "barman-cloud.cloudnative-pg.io"  # the Service's cnpg.io/pluginName (chart templates/service.yaml)
RELEASE_NAME = "plugin-barman-cloud"  # contains the chart's name: the chart's fullname is this, unchanged
# the Secrets the chart's Service annotations (cnpg.io/pluginServerSecret, pluginClientSecret) and Deployment
# volumes name, fixed in chart 0.7.0 (templates/service.yaml, templates/deployment.yaml)
SERVER_SECRET, CLIENT_SECRET = "barman-cloud-server-tls", "barman-cloud-client-tls"
CLIENT_NAME = "barman-cloud-client"  # the chart's own client certificate's commonName
OBJECT_STORE = f"{CLUSTER_NAME}-backups"
# six-field cron with seconds (the ScheduledBackup CRD's `schedule`: robfig/cron with seconds): daily, 03:00 UTC
SCHEDULE = "0 0 3 * * *"
# Helm runs it by this path from the provider's working directory, the project's (where `pulumi` runs)
POSTRENDER = "components/data/in_cluster/drop_cert_manager_issuer.py"
# the plugin's one small Deployment on a pool that may be scaling up from zero, plus the image pull
PLUGIN_TIMEOUT_SECONDS = 600
# requests as idle: the plugin is one Go controller answering the operator's few calls; the sidecar's own Go
# process idles between WAL segments, and the barman-cloud Python processes it starts for a segment (or for the
# daily base backup) burst into its limit. The local stack's laptop budget (tests/test_local_budget.py) has room
# for no more than these.
PLUGIN_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}
SIDECAR_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}


def server_dns_names(namespace: str) -> list[str]:
    """The plugin's server certificate names: the Service's bare name first, which is what the operator
    verifies (tls.Config.ServerName, the Service's name without a cnpg.io/pluginServerName annotation), then the
    address it dials (`<service>.<namespace>.svc`) and the fully qualified one."""
    svc = BARMAN_CLOUD_SERVICE
    return [svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local"]


def plugin_values(pool: NodePoolContract) -> dict[str, Any]:
    """The chart's values (keys: mlplatform/chart_keys/plugin-barman-cloud-0.7.0.json). Certificates are the
    platform CA's (SERVER_SECRET, CLIENT_SECRET), the security contexts stay the chart's (restricted: non-root,
    RuntimeDefault seccomp, no privilege escalation, every capability dropped, read-only root; values.yaml)."""
    return {
        "crds": {"create": True},
        # the Service's name is fixed (`barman-cloud`, values.yaml: "DO NOT CHANGE"); its port is the flow's
        "service": {"port": BARMAN_CLOUD_PORT},
        "certificate": {"createClientCertificate": False, "createServerCertificate": False},
        "resources": PLUGIN_RESOURCES,
        "nodeSelector": pool.node_selector(),
        "tolerations": pool.tolerations(),
    }


def object_store_spec(
    destination: str, retention_days: int, *, access_key: AccessKey | None, store: str, endpoint: str | None
) -> dict[str, Any]:
    """The ObjectStore's spec (barmancloud.cnpg.io/v1, tests/support/upstream_crds). `store` is the bucket's API
    (s3 or gcs); with an access key the credentials are its Secret's (local), without, the pod's identity: IRSA
    (`inheritFromIAMRole`) or GKE Workload Identity (`gkeEnvironment`)."""
    configuration: dict[str, Any] = {
        "destinationPath": destination,
        "wal": {"compression": "gzip"},
        "data": {"compression": "gzip"},
    }
    if store == "gcs":
        configuration["googleCredentials"] = {"gkeEnvironment": True}
    elif access_key is None:
        configuration["s3Credentials"] = {"inheritFromIAMRole": True}
    else:
        secret = access_key.secret_name
        configuration["s3Credentials"] = {
            "accessKeyId": {"name": secret, "key": AccessKey.ACCESS_KEY_ID},
            "secretAccessKey": {"name": secret, "key": AccessKey.SECRET_ACCESS_KEY},
        }
    if endpoint is not None:
        configuration["endpointURL"] = endpoint
    return {
        "configuration": configuration,
        "retentionPolicy": f"{retention_days}d",
        "instanceSidecarConfiguration": {"resources": SIDECAR_RESOURCES},
    }


def cluster_plugins() -> list[dict[str, Any]]:
    """The Cluster's `spec.plugins`: the plugin archives WAL (isWALArchiver) to OBJECT_STORE."""
    return [{"name": PLUGIN_NAME, "isWALArchiver": True, "parameters": {"barmanObjectName": OBJECT_STORE}}]


def scheduled_backup_spec() -> dict[str, Any]:
    """A daily base backup through the plugin, owned by the ScheduledBackup (`self`), the first taken at once."""
    return {
        "cluster": {"name": CLUSTER_NAME},
        "schedule": SCHEDULE,
        "method": "plugin",
        "pluginConfiguration": {"name": PLUGIN_NAME},
        "backupOwnerReference": "self",
        "immediate": True,
    }


@dataclass(frozen=True)
class PostgresBackupsArgs:
    cluster: ClusterOutputs
    namespace: k8s.core.v1.Namespace  # `data`
    ca: PlatformCa  # the data layer's CA, which signs the plugin's certificates
    postgres: CloudNativePostgres  # its Cluster and operator release
    bucket: Bucket  # the backups bucket
    identity: WorkloadIdentity  # postgres_backup_workloads' identity
    retention_days: int  # data.postgres.backupRetentionDays


class PostgresBackups(pulumi.ComponentResource):
    object_store: k8s.apiextensions.CustomResource
    scheduled_backup: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: PostgresBackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:data:PostgresBackups", name, None, opts)
        ns = args.namespace
        namespace = Namespace.DATA.value
        server = args.ca.server_secret(self, f"{name}-server-tls", SERVER_SECRET, ns, server_dns_names(namespace))
        client = args.ca.server_secret(self, f"{name}-client-tls", CLIENT_SECRET, ns, [CLIENT_NAME], client=True)
        release = pinned_release(
            self,
            f"{name}-plugin",
            BARMAN_CLOUD,
            ns.metadata.name,
            plugin_values(args.cluster.cpu_pool),
            args.cluster.kubernetes_provider,
            release_name=RELEASE_NAME,
            timeout_seconds=PLUGIN_TIMEOUT_SECONDS,
            # the plugin registers with the operator, whose webhooks must be up; its pod mounts both Secrets
            depends_on=[args.postgres.operator, server, client],
            postrender=POSTRENDER,
        )
        key = args.identity.access_key
        credentials = [access_key_secret(self, f"{name}-access-key", key, ns)] if key is not None else []
        spec = args.bucket.uri.apply(
            lambda uri: object_store_spec(
                uri,
                args.retention_days,
                access_key=key,
                store=args.bucket.store.value,
                endpoint=args.bucket.endpoint,
            )
        )
        self.object_store = k8s.apiextensions.CustomResource(
            f"{name}-object-store",
            api_version="barmancloud.cnpg.io/v1",
            kind="ObjectStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=OBJECT_STORE, namespace=ns.metadata.name, labels=PART_OF),
            spec=spec,
            # the CRD is the release's
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release, *credentials]),
        )
        cluster_spec: dict[str, Any] = {"plugins": cluster_plugins()}
        if key is None:
            # IRSA / Workload Identity: the service account CloudNativePG makes for the Cluster carries the
            # identity's annotation (the Cluster CRD's serviceAccountTemplate.metadata.annotations)
            annotations = args.identity.service_account_annotations
            cluster_spec["serviceAccountTemplate"] = {"metadata": {"annotations": annotations}}
        patch = k8s.apiextensions.CustomResourcePatch(
            f"{name}-cluster",
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=CLUSTER_NAME, namespace=ns.metadata.name),
            spec=cluster_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.postgres.cluster, self.object_store]),
        )
        self.scheduled_backup = k8s.apiextensions.CustomResource(
            f"{name}-daily",
            api_version="postgresql.cnpg.io/v1",
            kind="ScheduledBackup",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{CLUSTER_NAME}-daily", namespace=ns.metadata.name, labels=PART_OF
            ),
            spec=scheduled_backup_spec(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[patch]),
        )
        self.register_outputs({"objectStore": OBJECT_STORE, "destination": args.bucket.uri})
