"""Cloud SQL PostgreSQL (private IP, SSL required), Memorystore Redis (AUTH + TLS) and Managed Kafka."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.contracts import (
    ClusterOutputs,
    DataOutputs,
    GcpClusterFacts,
    KafkaClientAuth,
    KafkaEndpoint,
    PostgresEndpoint,
    RedisEndpoint,
)
from components.data.bootstrap import POSTGRES_ADMIN, PostgresBootstrap
from components.data.credentials import SERVICE_DATABASES, service_credentials
from components.environment import DataArgs
from components.protection import stateful
from components.secrets import generated_secret
from mlplatform.config import Profile
from mlplatform.pins import CONFLUENT_KAFKA, GOOGLE_AUTH

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
)


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: DataArgs,
    cluster: ClusterOutputs,
    data_namespace: k8s.core.v1.Namespace,
) -> DataOutputs:
    facts = cluster.facts(GcpClusterFacts)
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
    postgres = _postgres(parent, name, cfg, cluster, data_namespace, peering)
    redis = _redis(parent, name, cfg, facts, peering)
    kafka = _kafka(parent, name, cfg, facts) if cfg.data.kafka.enabled else None
    return DataOutputs(postgres=postgres, redis=redis, kafka=kafka)


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
            ipv4_enabled=False, private_network=facts.network_id, ssl_mode="ENCRYPTED_ONLY"
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
                    ipv4_enabled=False, private_network=facts.network_id, ssl_mode="ENCRYPTED_ONLY"
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
        after=[admin],
    )
    return PostgresEndpoint(
        host=primary.private_ip_address,
        port=pulumi.Output.from_input(5432),
        databases=creds,
        read_hosts=tuple(r.private_ip_address for r in replicas),
        ready=(bootstrap.job,),
    )


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
        ca_certificate=instance.server_ca_certs.apply(lambda certs: certs[0].cert),
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
    )
