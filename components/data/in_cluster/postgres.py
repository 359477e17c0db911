"""PostgreSQL in the cluster: a CloudNativePG Cluster in `data`, behind the same PostgresEndpoint as RDS and
Cloud SQL (verify-full TLS against the platform's CA, one role and database per service, made by the same
bootstrap Job).

What it makes, in order:
1. The CloudNativePG operator (chart 0.29.0) in `data`, watching `data` only (cnpg.py says what it sets).
   helm.v3.Release, not helm.v4.Chart: the chart ships its ten CRDs as templates (templates/crds/crds.yaml,
   `crds.create`) annotated `helm.sh/resource-policy: keep`. Helm honours that annotation, so removing the
   release leaves the CRDs, and with them every Cluster and its volumes; as objects of a helm.v4.Chart they
   would be Pulumi resources, deleted with it, and the API server would delete every Cluster with its CRD.
   Helm also waits (the timeout below) for the operator's Deployment, whose readiness probe is its webhook
   server, before the Cluster is sent through that webhook.
2. The server certificate (the platform CA's, tls.py) and the admin role's password, as Secrets the Cluster
   names, then the Cluster. Pulumi waits for its Ready condition (cnpg.cluster_metadata_annotations).
3. The bootstrap Job (components/data/bootstrap.py), as on RDS and Cloud SQL, connecting to the -rw Service
   with verify-full. It depends on the Cluster; the admin role is reconciled by the instance manager just
   after the primary is up, which the Job's backoff (6 retries, up to 15 minutes) covers.

Not here: backups. CloudNativePG backs up to an object store through the Barman Cloud plugin, but the storage
layer, which makes the buckets and the workload identities that may write them, is built after the data layer
(an identity may need the managed Kafka's ARN), so no bucket exists yet when this runs. backups.py, built after
the storage layer, installs the plugin and attaches it (and the backup identity) to this Cluster.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Namespace, PostgresEndpoint
from components.data.bootstrap import POSTGRES_ADMIN, PostgresBootstrap
from components.data.credentials import SERVICE_DATABASES, service_credentials
from components.data.in_cluster import InClusterArgs
from components.data.in_cluster.cnpg import (
    ADMIN_SECRET,
    CLUSTER_NAME,
    OPERATOR_RELEASE,
    SERVER_TLS_SECRET,
    cluster_metadata_annotations,
    cluster_spec,
    operator_values,
    server_dns_names,
    service_host,
)
from components.guardrails import POSTGRES_PORT
from components.kube import PART_OF, pinned_release
from components.secrets import generated_secret
from mlplatform.pins import CLOUDNATIVE_PG

# the operator's one small Deployment on a pool that may be scaling up from zero, plus the image pull
OPERATOR_TIMEOUT_SECONDS = 600
# the instances: volumes provisioned, the operand image (~150 MB) pulled, initdb, then each replica's clone
CLUSTER_TIMEOUT_SECONDS = 1200
# CloudNativePG reloads a Secret the Cluster uses when it carries this label (docs/src/certificates.md)
RELOAD = {"cnpg.io/reload": "true"}


class CloudNativePostgres(pulumi.ComponentResource):
    endpoint: PostgresEndpoint
    cluster: k8s.apiextensions.CustomResource
    operator: k8s.helm.v3.Release

    def __init__(self, name: str, args: InClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:data:CloudNativePG", name, None, opts)
        pg = args.config.data.postgres
        ns = args.namespace
        # the platform's own services and the operator share the CPU pool; the database stays there as a
        # long-running service (the system pool is sized for cluster add-ons)
        pool = args.cluster.cpu_pool
        self.operator = operator = pinned_release(
            self,
            f"{name}-operator",
            CLOUDNATIVE_PG,
            ns.metadata.name,
            operator_values(pool),
            args.cluster.kubernetes_provider,
            release_name=OPERATOR_RELEASE,
            timeout_seconds=OPERATOR_TIMEOUT_SECONDS,
        )
        namespace = Namespace.DATA.value  # the Namespace's fixed name: the certificate names its Services now
        tls = args.ca.server_secret(
            self, f"{name}-server-tls", SERVER_TLS_SECRET, ns, server_dns_names(namespace), labels=RELOAD
        )
        admin_password = generated_secret(self, f"{name}-admin")
        admin = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ADMIN_SECRET, namespace=ns.metadata.name, labels={**PART_OF, **RELOAD}
            ),
            # a managed role's password Secret is basic-auth with both keys (the Cluster CRD's
            # managed.roles[].passwordSecret)
            type="kubernetes.io/basic-auth",
            string_data={"username": POSTGRES_ADMIN, "password": admin_password},
            opts=pulumi.ResourceOptions(parent=self),
        )
        protect = pg.deletion_protection
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CLUSTER_NAME,
                namespace=ns.metadata.name,
                labels=PART_OF,
                annotations=dict(cluster_metadata_annotations(CLUSTER_TIMEOUT_SECONDS)),
            ),
            spec=cluster_spec(
                pg,
                pool=pool,
                storage_class=args.cluster.block_storage_class,
                admin_user=POSTGRES_ADMIN,
            ),
            # data.postgres.deletionProtection: Pulumi refuses to delete the Cluster (and keeps it in the
            # cluster if it leaves the program), as RDS and Cloud SQL refuse to delete their instances
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[operator, tls, admin], protect=protect, retain_on_delete=protect
            ),
        )
        host = pulumi.Output.from_input(service_host("rw", namespace))
        port = pulumi.Output.from_input(POSTGRES_PORT)
        databases = service_credentials(self, name, SERVICE_DATABASES)
        bootstrap = PostgresBootstrap(
            f"{name}-bootstrap",
            host=host,
            port=port,
            admin_user=POSTGRES_ADMIN,
            admin_password=admin_password,
            databases=databases,
            cluster=args.cluster,
            namespace=ns,
            opts=pulumi.ResourceOptions(parent=self),
            ssl_mode="verify-full",
            ca_certificate=args.ca.certificate_pem,
            after=[self.cluster],
        )
        self.endpoint = PostgresEndpoint(
            host=host,
            port=port,
            databases=databases,
            ssl_mode="verify-full",
            ca_certificate=args.ca.certificate_pem,
            # the -ro Service: the replicas only (it has no endpoints with a single instance)
            read_hosts=(pulumi.Output.from_input(service_host("ro", namespace)),) if pg.instances > 1 else (),
            ready=(bootstrap.job,),
        )
        self.register_outputs({"host": host, "instances": pg.instances})
