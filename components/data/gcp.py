"""Cloud SQL PostgreSQL (private IP, SSL required, clients verify its CA), Memorystore Redis (AUTH + TLS
against the instance's CA) and Managed Kafka."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.contracts import (
    ClusterOutputs,
    GcpClusterFacts,
    KafkaClientAuth,
    KafkaEndpoint,
    KafkaTopicApi,
    PostgresEndpoint,
    RedisEndpoint,
)
from components.data.bootstrap import POSTGRES_ADMIN, PostgresBootstrap
from components.data.credentials import SERVICE_DATABASES, service_credentials
from components.data.services import ManagedServices
from components.environment import DataArgs
from components.protection import stateful
from components.secrets import generated_secret
from mlplatform.config import Profile
from mlplatform.pins import CONFLUENT_KAFKA, GOOGLE_AUTH, MANAGED_KAFKA_JAVA_AUTH

GIB = 1024**3
# Managed Kafka's SASL listener takes OAUTHBEARER over TLS with a Google access token wrapped as its Java and
# Python auth handlers wrap it (googleapis/managedkafka), the principal being the pod's Google service account
# (Google's "Authenticate to Managed Service for Apache Kafka" with OAUTHBEARER). Nothing is region-specific.
MANAGED_KAFKA_AUTH = KafkaClientAuth(
    security_protocol="SASL_SSL",
    sasl_mechanism="OAUTHBEARER",
    token_provider="mlplatform_client.kafka_auth:google_token",
    token_provider_config="",
    requirements=(CONFLUENT_KAFKA, *GOOGLE_AUTH),
    # Java clients (Flink): googleapis/managedkafka README, "kafka-java-auth" (tag v1.0.6)
    jvm_sasl_properties=(
        ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"),
        ("sasl.login.callback.handler.class", "com.google.cloud.hosted.kafka.auth.GcpLoginCallbackHandler"),
    ),
    jvm_artifacts=(MANAGED_KAFKA_JAVA_AUTH,),
)


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: DataArgs,
    cluster: ClusterOutputs,
    data_namespace: k8s.core.v1.Namespace,
) -> ManagedServices:
    facts = cluster.facts(GcpClusterFacts)
    managed = cfg.data.managed()
    kafka = _kafka(parent, name, cfg, facts) if "kafka" in managed else None
    if not {"postgres", "redis"} & set(managed):
        return ManagedServices(kafka=kafka)
    child = pulumi.ResourceOptions(parent=parent)
    peering = gcp.servicenetworking.Connection(
        f"{name}-psa",
        network=facts.network_id,
        service="servicenetworking.googleapis.com",
        reserved_peering_ranges=[facts.psa_range_name],
        # Removing the peering fails while Google still holds the producer side (it does for some time
        # after Cloud SQL / Memorystore are deleted); abandoning it lets destroy finish and the VPC's
        # deletion takes the peering with it.
        deletion_policy="ABANDON",
        opts=child,
    )
    return ManagedServices(
        postgres=_postgres(parent, name, cfg, cluster, data_namespace, peering) if "postgres" in managed else None,
        redis=_redis(parent, name, cfg, facts, peering) if "redis" in managed else None,
        kafka=kafka,
    )


def _postgres(
    parent: pulumi.Resource,
    name: str,
    cfg: DataArgs,
    cluster: ClusterOutputs,
    data_namespace: k8s.core.v1.Namespace,
    peering: pulumi.Resource,
) -> PostgresEndpoint:
    facts = cluster.facts(GcpClusterFacts)
    pg = cfg.data.postgres
    prod = cfg.profile is Profile.PROD
    settings = gcp.sql.DatabaseInstanceSettingsArgs(
        # Enterprise edition: custom tiers (db-custom-*) are not offered on Enterprise Plus, which newer
        # PostgreSQL versions default to.
        edition="ENTERPRISE",
        tier=pg.machine_type,
        availability_type="REGIONAL" if pg.high_availability else "ZONAL",
        disk_size=pg.storage_gb,
        disk_autoresize=True,
        disk_autoresize_limit=pg.max_storage_gb,
        ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
            ipv4_enabled=False,
            private_network=facts.network_id,
            ssl_mode="ENCRYPTED_ONLY",
            # the default, stated because clients' sslmode depends on it (cloud_sql_tls)
            server_ca_mode=CLOUD_SQL_CA_MODE,
        ),
        backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
            enabled=True,
            point_in_time_recovery_enabled=prod,
            backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                retained_backups=pg.backup_retention_days
            ),
        ),
        deletion_protection_enabled=pg.deletion_protection,
        insights_config=gcp.sql.DatabaseInstanceSettingsInsightsConfigArgs(query_insights_enabled=True),
        database_flags=[
            gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgs(name="log_min_duration_statement", value="1000")
        ],
        location_preference=gcp.sql.DatabaseInstanceSettingsLocationPreferenceArgs(
            zone=cfg.zones[0], secondary_zone=cfg.zones[1] if pg.high_availability else None
        ),
    )
    primary = gcp.sql.DatabaseInstance(
        f"{name}-postgres",
        database_version=f"POSTGRES_{pg.version}",
        region=cfg.region,
        settings=settings,
        deletion_protection=pg.deletion_protection,
        opts=stateful(cfg, parent, depends_on=[peering]),
    )
    replicas = [
        gcp.sql.DatabaseInstance(
            f"{name}-postgres-replica-{i + 1}",
            database_version=f"POSTGRES_{pg.version}",
            region=cfg.region,
            master_instance_name=primary.name,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                edition="ENTERPRISE",
                tier=pg.machine_type,
                ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False,
                    private_network=facts.network_id,
                    ssl_mode="ENCRYPTED_ONLY",
                    server_ca_mode=CLOUD_SQL_CA_MODE,
                ),
                location_preference=gcp.sql.DatabaseInstanceSettingsLocationPreferenceArgs(
                    zone=cfg.zones[(i + 1) % len(cfg.zones)]
                ),
            ),
            deletion_protection=pg.deletion_protection,
            opts=stateful(cfg, parent),
        )
        for i in range(pg.read_replicas)
    ]
    # Only the admin is a Cloud SQL API user; the services' roles and databases come from the bootstrap Job
    # (components/data/bootstrap.py), owned by their roles and closed to the others.
    admin_password = generated_secret(parent, f"{name}-postgres-admin")
    admin = gcp.sql.User(
        f"{name}-postgres-admin",
        instance=primary.name,
        name=POSTGRES_ADMIN,
        password=admin_password,
        opts=pulumi.ResourceOptions(parent=primary),
    )
    creds = service_credentials(parent, name, SERVICE_DATABASES)
    ca = cloud_sql_ca(parent, primary)
    bootstrap = PostgresBootstrap(
        f"{name}-postgres-bootstrap",
        host=primary.private_ip_address,
        port=5432,
        admin_user=POSTGRES_ADMIN,
        admin_password=admin_password,
        databases=creds,
        cluster=cluster,
        namespace=data_namespace,
        opts=pulumi.ResourceOptions(parent=parent, providers=[cluster.kubernetes_provider]),
        ssl_mode=CLOUD_SQL_SSL_MODE,
        ca_certificate=ca,
        after=[admin],
    )
    return PostgresEndpoint(
        host=primary.private_ip_address,
        port=pulumi.Output.from_input(5432),
        databases=creds,
        ssl_mode=CLOUD_SQL_SSL_MODE,
        ca_certificate=ca,
        # read_hosts' certificates chain to each replica's own CA, which is not distributed: a client of a
        # replica has to add it first
        read_hosts=tuple(r.private_ip_address for r in replicas),
        ready=(bootstrap.job,),
    )


# Clients verify Cloud SQL's certificate against the instance's CA, not its name. With the per-instance CA
# (GOOGLE_MANAGED_INTERNAL_CA, Cloud SQL's default: "an internal CA dedicated to each Cloud SQL instance signs
# the server certificate for that instance", Cloud SQL docs "Authorize with SSL/TLS certificates") the server
# certificate names `<project>:<instance>` and nothing else; Google's own connectors therefore compare that
# CN by hand instead of a host name (GoogleCloudPlatform/cloud-sql-nodejs-connector src/socket.ts, "Legacy CA
# Mode"). libpq's verify-full compares the address it connected to, the private IP, with the certificate's
# names and fails (tests/test_postgres_bootstrap.py runs it). verify-ca checks the chain against a CA that
# signs this instance's certificates only, which authenticates the instance. (The shared-CA modes name the
# instance's DNS name instead, which would need a private DNS zone for it; not used.)
CLOUD_SQL_CA_MODE = "GOOGLE_MANAGED_INTERNAL_CA"
CLOUD_SQL_SSL_MODE = "verify-ca"


def pem_bundle(certificates: list[str]) -> str:
    """PEM certificates one after another, each ending in a newline."""
    return "".join(c if c.endswith("\n") else f"{c}\n" for c in certificates)


def cloud_sql_ca(parent: pulumi.Resource, instance: gcp.sql.DatabaseInstance) -> pulumi.Output[str]:
    """Every CA the instance trusts (Cloud SQL Admin `instances.listServerCas`: the CA in use, one added for
    a rotation but not used yet, and one rotated out), read on every `up`. So the rotation Google documents
    (`gcloud sql ssl server-ca-certs create`, then `up` to hand the new CA to every client, then `rotate`)
    never leaves a client without the CA the server presents."""
    listed = gcp.sql.get_ca_certs_output(instance=instance.name, opts=pulumi.InvokeOutputOptions(parent=parent))
    return listed.apply(lambda result: pem_bundle([c.cert for c in result.certs]))


def _redis(
    parent: pulumi.Resource, name: str, cfg: DataArgs, facts: GcpClusterFacts, peering: pulumi.Resource
) -> RedisEndpoint:
    """BASIC in dev; STANDARD_HA in prod: a primary with automatic failover and read replicas, which
    Memorystore spreads over the region's zones (primary and failover target pinned to two of ours)."""
    r = cfg.data.redis
    ha = r.replicas_per_shard > 0
    instance = gcp.redis.Instance(
        f"{name}-redis",
        tier="STANDARD_HA" if ha else "BASIC",
        memory_size_gb=r.memory_size_gb,
        region=cfg.region,
        location_id=cfg.zones[0],
        alternative_location_id=cfg.zones[1] if ha else None,
        redis_version=f"REDIS_{r.version.replace('.', '_')}",
        authorized_network=facts.network_id,
        connect_mode="PRIVATE_SERVICE_ACCESS",
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
        replica_count=r.replicas_per_shard if ha else None,
        read_replicas_mode="READ_REPLICAS_ENABLED" if ha else None,
        opts=stateful(cfg, parent, depends_on=[peering]),
    )
    return RedisEndpoint(
        host=instance.host,
        port=instance.port,
        auth_token=instance.auth_string,
        tls=True,
        # every CA the instance lists: Memorystore publishes a new CA five years before the old one expires
        # and both stay valid meanwhile ("About in-transit encryption", Certificate Authority rotation)
        ca_certificate=instance.server_ca_certs.apply(lambda certs: pem_bundle([c.cert for c in certs])),
        # Memorystore's server certificate, from the instance's own CA, names the instance's IP in its CN
        # only (envoyproxy/ratelimit#409 added a switch for exactly this); OpenSSL matches an address against
        # iPAddress subjectAltNames only, so a host-name check fails every connection (redis-py checks by
        # default since 6.0, redis/redis-py#3626). The CA is the instance's alone: the chain authenticates.
        check_hostname=False,
    )


def _kafka(parent: pulumi.Resource, name: str, cfg: DataArgs, facts: GcpClusterFacts) -> KafkaEndpoint:
    """Managed Service for Apache Kafka rather than Strimzi: Google runs and patches the brokers, always across
    three zones of the region, TLS is always on, and clients authenticate as their Google service account
    (SASL OAUTHBEARER via Workload Identity), so no broker, ZooKeeper/KRaft or certificate operations land
    on the platform team and no Kafka password exists. Strimzi would put stateful brokers and their disks
    in the cluster's own failure domain."""
    k = cfg.data.kafka
    cluster = gcp.managedkafka.Cluster(
        f"{name}-kafka",
        cluster_id=f"{name}-kafka",
        location=cfg.region,
        capacity_config=gcp.managedkafka.ClusterCapacityConfigArgs(
            vcpu_count=str(k.vcpu_count), memory_bytes=str(k.memory_gb * GIB)
        ),
        gcp_config=gcp.managedkafka.ClusterGcpConfigArgs(
            access_config=gcp.managedkafka.ClusterGcpConfigAccessConfigArgs(
                network_configs=[gcp.managedkafka.ClusterGcpConfigAccessConfigNetworkConfigArgs(subnet=facts.subnet_id)]
            )
        ),
        opts=stateful(cfg, parent),
    )
    return KafkaEndpoint(
        # as the provider reports it (SASL on 9092), not rebuilt from the cluster ID by hand
        bootstrap_servers=cluster.bootstrap_address,
        auth=MANAGED_KAFKA_AUTH,
        cluster_id=cluster.cluster_id,
        topics=KafkaTopicApi.MANAGED_KAFKA,
    )
