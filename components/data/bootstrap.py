"""Per-service roles and databases inside the managed PostgreSQL, created from inside the cluster.

The same Job on both clouds. RDS has no API for roles or databases. Cloud SQL has one, but every user it
creates joins `cloudsqlsuperuser` and every database it creates is owned by that role, so mlflow, feast,
airflow and grafana could read each other's data; roles made by SQL join nothing. The instance is reachable
only from the cluster's nodes, so a Kubernetes Job in the `data` namespace runs idempotent SQL with psql
over TLS, verifying the server as every client does (the endpoint's sslmode and CA, the CA from a
ConfigMap in `data`), so the admin password goes to the instance only. The admin password and each
service's password reach the Job only as Secret references. Pulumi
waits for a Job to complete, so consumers that depend on `PostgresEndpoint.ready` start after their database
exists. The pod template carries a checksum of the SQL and the passwords: rotating a password re-runs the
Job (a replacement).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import VERIFYING_SSL_MODES, ClusterOutputs, DatabaseCredentials
from components.kube import PART_OF, POSTGRES_CA_DIR, POSTGRES_CA_FILE, POSTGRES_CA_KEY, opaque_secret
from mlplatform.pins import POSTGRES_CLIENT_IMAGE, POSTGRES_CLIENT_UID

# psql variables: svc (role and database name, one per service), pw (its password). Safe to re-run:
# roles and databases are created only when missing; the password is (re)set every run.
BOOTSTRAP_SQL = """\
SELECT format('CREATE ROLE %I LOGIN', :'svc') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'svc')
\\gexec
ALTER ROLE :"svc" WITH LOGIN PASSWORD :'pw';
-- PostgreSQL 16+: the admin may create a database owned by a role only if it can SET ROLE to it.
GRANT :"svc" TO CURRENT_USER;
SELECT format('CREATE DATABASE %I OWNER %I', :'svc', :'svc')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'svc')
\\gexec
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"svc" TO :"svc";
"""
ADMIN_PASSWORD_KEY = "ADMIN_PASSWORD"
CA_CONFIG_MAP = "postgres-bootstrap-ca"  # the data layer's PostgreSQL CA in `data`, for the Job
# The admin the Job connects as: the RDS master user; on Cloud SQL the one user made through its API
# (a cloudsqlsuperuser member, which may create roles and databases).
POSTGRES_ADMIN = "platform_admin"


def password_key(service: str) -> str:
    return f"{service.upper()}_PASSWORD"


def bootstrap_script(services: tuple[str, ...]) -> str:
    """One psql run per service; the service names are the platform's own constants, never user input."""
    runs = [f'psql -v ON_ERROR_STOP=1 -v svc={s} -v pw="${password_key(s)}" -f /sql/bootstrap.sql' for s in services]
    return "set -eu\n" + "\n".join(runs) + "\n"


class PostgresBootstrap(pulumi.ComponentResource):
    """The bootstrap SQL, the Secret holding the passwords, and the Job, in the `data` namespace (made, with
    its guard rails, by the Namespaces component)."""

    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        *,
        host: pulumi.Input[str],
        port: pulumi.Input[int],
        admin_user: str,
        admin_password: pulumi.Input[str],
        databases: Mapping[str, DatabaseCredentials],
        cluster: ClusterOutputs,
        namespace: k8s.core.v1.Namespace,
        opts: pulumi.ResourceOptions,
        ssl_mode: str,
        ca_certificate: pulumi.Input[str] | None,
        after: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__("mlplatform:data:PostgresBootstrap", name, None, opts)
        if (ssl_mode in VERIFYING_SSL_MODES) != (ca_certificate is not None):
            raise ValueError(f"sslmode {ssl_mode} needs a CA exactly when it verifies the server")
        ns = namespace
        pool = cluster.system_pool
        services = tuple(databases)
        sql = k8s.core.v1.ConfigMap(
            f"{name}-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=ns.metadata.name, labels=PART_OF),
            data={"bootstrap.sql": BOOTSTRAP_SQL},
            opts=pulumi.ResourceOptions(parent=self),
        )
        passwords = {ADMIN_PASSWORD_KEY: admin_password} | {password_key(s): c.password for s, c in databases.items()}
        secret = opaque_secret(self, f"{name}-passwords", "postgres-bootstrap", ns, passwords)
        # the CA the server's certificate chains to, mounted where PGSSLROOTCERT names it
        tls_env = [k8s.core.v1.EnvVarArgs(name="PGSSLMODE", value=ssl_mode)]
        ca_mounts: list[k8s.core.v1.VolumeMountArgs] = []
        ca_volumes: list[k8s.core.v1.VolumeArgs] = []
        ca_ready: list[pulumi.Resource] = []
        if ca_certificate is not None:
            ca = k8s.core.v1.ConfigMap(
                f"{name}-ca",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CA_CONFIG_MAP, namespace=ns.metadata.name, labels=PART_OF),
                data={POSTGRES_CA_KEY: ca_certificate},
                opts=pulumi.ResourceOptions(parent=self),
            )
            tls_env.append(k8s.core.v1.EnvVarArgs(name="PGSSLROOTCERT", value=POSTGRES_CA_FILE))
            ca_mounts.append(
                k8s.core.v1.VolumeMountArgs(name="postgres-ca", mount_path=POSTGRES_CA_DIR, read_only=True)
            )
            source = k8s.core.v1.ConfigMapVolumeSourceArgs(name=ca.metadata.name)
            ca_volumes.append(k8s.core.v1.VolumeArgs(name="postgres-ca", config_map=source))
            ca_ready.append(ca)
        checksum = pulumi.Output.secret(
            pulumi.Output.all(*passwords.values()).apply(
                lambda values: hashlib.sha256("\0".join([BOOTSTRAP_SQL, *services, *values]).encode()).hexdigest()
            )
        )

        def from_secret(env: str, key: str) -> k8s.core.v1.EnvVarArgs:
            ref = k8s.core.v1.SecretKeySelectorArgs(name=secret.metadata.name, key=key)
            return k8s.core.v1.EnvVarArgs(name=env, value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=ref))

        env = [
            k8s.core.v1.EnvVarArgs(name="PGHOST", value=host),
            k8s.core.v1.EnvVarArgs(name="PGPORT", value=pulumi.Output.from_input(port).apply(lambda p: str(int(p)))),
            k8s.core.v1.EnvVarArgs(name="PGUSER", value=admin_user),
            k8s.core.v1.EnvVarArgs(name="PGDATABASE", value="postgres"),
            *tls_env,
            k8s.core.v1.EnvVarArgs(name="PGCONNECT_TIMEOUT", value="10"),
            k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
            from_secret("PGPASSWORD", ADMIN_PASSWORD_KEY),
            *(from_secret(password_key(s), password_key(s)) for s in services),
        ]
        self.job = k8s.batch.v1.Job(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=ns.metadata.name, labels=PART_OF),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=6,
                active_deadline_seconds=900,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**PART_OF, "app.kubernetes.io/name": "postgres-bootstrap"},
                        annotations={"mlplatform.io/inputs-sha256": checksum},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        node_selector=pool.node_selector(),
                        tolerations=[k8s.core.v1.TolerationArgs(**t) for t in pool.tolerations()],
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=POSTGRES_CLIENT_UID,
                            run_as_group=POSTGRES_CLIENT_UID,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="psql",
                                image=POSTGRES_CLIENT_IMAGE,
                                command=["/bin/sh", "-c", bootstrap_script(services)],
                                env=env,
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "50m", "memory": "64Mi"},
                                    limits={"cpu": "500m", "memory": "128Mi"},
                                ),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="sql", mount_path="/sql", read_only=True),
                                    k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                                    *ca_mounts,
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="sql", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=sql.metadata.name)
                            ),
                            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                            *ca_volumes,
                        ],
                    ),
                ),
            ),
            # `after`: what must exist in the database first (the Cloud SQL admin user); a component's own
            # depends_on does not hold back its children
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, sql, *ca_ready, *after]),
        )
        self.register_outputs({"job": self.job.metadata.name})
