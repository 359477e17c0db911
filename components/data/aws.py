"""RDS PostgreSQL, ElastiCache Redis and MSK, in the cluster's private subnets, reachable only from nodes."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.contracts import (
    AwsClusterFacts,
    ClusterOutputs,
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
from mlplatform.config.certificates import read_ca_bundle
from mlplatform.pins import CONFLUENT_KAFKA, MSK_IAM_JAVA_AUTH, MSK_IAM_SIGNER

POSTGRES_PORT, REDIS_PORT, KAFKA_IAM_PORT = 5432, 6379, 9098


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: DataArgs,
    cluster: ClusterOutputs,
    data_namespace: k8s.core.v1.Namespace,
) -> ManagedServices:
    facts = cluster.facts(AwsClusterFacts)
    managed = cfg.data.managed()
    if not managed:
        return ManagedServices()
    child = pulumi.ResourceOptions(parent=parent)
    # The group has no inline rules: its ingress rules reference the EKS cluster's security group, which
    # exists only once the cluster does (~10 min). As separate rule resources, the group and the databases
    # it guards (MSK alone takes ~25-30 min) are created at once, beside the cluster.
    sg = aws.ec2.SecurityGroup(
        f"{name}-data",
        description="PostgreSQL, Redis and Kafka: reachable from cluster nodes only",
        vpc_id=facts.vpc_id,
        opts=child,
    )
    ports = {"postgres": POSTGRES_PORT, "redis": REDIS_PORT, "kafka": KAFKA_IAM_PORT}
    for service, port in ports.items():
        if service not in managed:
            continue
        what = "kafka-iam" if service == "kafka" else service
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-data-from-nodes-{what}",
            security_group_id=sg.id,
            referenced_security_group_id=facts.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=f"{what} from the cluster's nodes",
            opts=pulumi.ResourceOptions(parent=sg),
        )
    return ManagedServices(
        postgres=_postgres(parent, name, cfg, cluster, data_namespace, sg) if "postgres" in managed else None,
        redis=_redis(parent, name, cfg, facts, sg) if "redis" in managed else None,
        kafka=_kafka(parent, name, cfg, facts, sg) if "kafka" in managed else None,
    )


def _postgres(
    parent: pulumi.Resource,
    name: str,
    cfg: DataArgs,
    cluster: ClusterOutputs,
    data_namespace: k8s.core.v1.Namespace,
    sg: aws.ec2.SecurityGroup,
) -> PostgresEndpoint:
    facts = cluster.facts(AwsClusterFacts)
    pg = cfg.data.postgres
    if pg.ca_bundle is None:
        pulumi.log.warn(NO_RDS_BUNDLE.format(region=cfg.region))
    admin_password = generated_secret(parent, f"{name}-postgres-admin")
    prod = cfg.profile is Profile.PROD
    child = pulumi.ResourceOptions(parent=parent)
    subnets = aws.rds.SubnetGroup(f"{name}-postgres", subnet_ids=facts.private_subnet_ids, opts=child)
    params = aws.rds.ParameterGroup(
        f"{name}-postgres",
        family=f"postgres{pg.version}",
        parameters=[
            aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
            aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="1000"),
        ],
        opts=child,
    )
    primary = aws.rds.Instance(
        f"{name}-postgres",
        engine="postgres",
        engine_version=pg.version,
        instance_class=pg.machine_type,
        allocated_storage=pg.storage_gb,
        max_allocated_storage=pg.max_storage_gb,
        storage_type="gp3",
        storage_encrypted=True,
        multi_az=pg.high_availability,
        db_subnet_group_name=subnets.name,
        vpc_security_group_ids=[sg.id],
        parameter_group_name=params.name,
        username=POSTGRES_ADMIN,
        password=admin_password,
        backup_retention_period=pg.backup_retention_days,
        deletion_protection=pg.deletion_protection,
        skip_final_snapshot=not prod,
        final_snapshot_identifier=f"{name}-postgres-final" if prod else None,
        copy_tags_to_snapshot=True,
        performance_insights_enabled=prod,
        auto_minor_version_upgrade=True,
        publicly_accessible=False,
        opts=stateful(cfg, parent),
    )
    replicas = [
        aws.rds.Instance(
            f"{name}-postgres-replica-{i + 1}",
            replicate_source_db=primary.identifier,
            instance_class=pg.machine_type,
            availability_zone=cfg.zones[(i + 1) % len(cfg.zones)],
            storage_encrypted=True,
            vpc_security_group_ids=[sg.id],
            parameter_group_name=params.name,
            performance_insights_enabled=prod,
            skip_final_snapshot=True,
            publicly_accessible=False,
            opts=stateful(cfg, parent),
        )
        for i in range(pg.read_replicas)
    ]
    databases = service_credentials(parent, name, SERVICE_DATABASES)
    ssl_mode, ca = rds_tls(pg.ca_bundle)
    bootstrap = PostgresBootstrap(
        f"{name}-postgres-bootstrap",
        host=primary.address,
        port=primary.port,
        admin_user=POSTGRES_ADMIN,
        admin_password=admin_password,
        databases=databases,
        cluster=cluster,
        namespace=data_namespace,
        opts=pulumi.ResourceOptions(parent=parent, providers=[cluster.kubernetes_provider]),
        ssl_mode=ssl_mode,
        ca_certificate=ca,
    )
    return PostgresEndpoint(
        host=primary.address,
        port=primary.port,
        databases=databases,
        ssl_mode=ssl_mode,
        ca_certificate=ca,
        read_hosts=tuple(r.address for r in replicas),
        ready=(bootstrap.job,),
    )


NO_RDS_BUNDLE = (
    "data.postgres.caBundle is not set: database clients encrypt (sslmode=require) but do not authenticate "
    "the RDS instance, so whoever answers at its address gets every service's password. Put the region's "
    "bundle in the repository (curl -fsSL https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem "
    "-o certs/rds-{region}-bundle.pem) and name it in data.postgres.caBundle (README, 'Data layer')."
)


def rds_tls(ca_bundle: str | None) -> tuple[str, pulumi.Output[str] | None]:
    """sslmode and CA for RDS clients. RDS's certificate names the instance endpoint clients connect to
    (RDS User Guide, "Using SSL with a PostgreSQL DB instance": the endpoint is its CN) and chains to the
    region's RDS root CA (rds-ca-rsa2048-g1 unless the instance names another; the regional bundle holds
    every RDS CA of the region), so with the bundle clients verify chain and name: verify-full. The API
    returns no CA, and the program reads nothing from the network, so the bundle is a file in the repository
    (checked when the config loads, mlplatform/config/certificates.py); without one, TLS is unauthenticated
    and the plan warns."""
    if ca_bundle is None:
        return "require", None
    return "verify-full", pulumi.Output.from_input(read_ca_bundle(ca_bundle))


def _redis(
    parent: pulumi.Resource, name: str, cfg: DataArgs, facts: AwsClusterFacts, sg: aws.ec2.SecurityGroup
) -> RedisEndpoint:
    r = cfg.data.redis
    cluster_mode = r.shards > 1
    failover = r.replicas_per_shard > 0
    subnets = aws.elasticache.SubnetGroup(
        f"{name}-redis", subnet_ids=facts.private_subnet_ids, opts=pulumi.ResourceOptions(parent=parent)
    )
    token = generated_secret(parent, f"{name}-redis-auth", length=64)
    group = aws.elasticache.ReplicationGroup(
        f"{name}-redis",
        description=f"{name}: Feast online store",
        engine="redis",
        engine_version=r.version,
        node_type=r.machine_type,
        port=REDIS_PORT,
        num_node_groups=r.shards,
        replicas_per_node_group=r.replicas_per_shard,
        cluster_mode="enabled" if cluster_mode else "disabled",
        parameter_group_name=f"default.redis{r.version.split('.')[0]}{'.cluster.on' if cluster_mode else ''}",
        automatic_failover_enabled=failover,
        multi_az_enabled=failover,
        subnet_group_name=subnets.name,
        security_group_ids=[sg.id],
        at_rest_encryption_enabled=True,
        transit_encryption_enabled=True,
        auth_token=token,
        snapshot_retention_limit=7 if cfg.profile is Profile.PROD else 0,
        opts=stateful(cfg, parent),
    )
    host = group.configuration_endpoint_address if cluster_mode else group.primary_endpoint_address
    return RedisEndpoint(host=host, port=group.port, auth_token=token, tls=True, cluster_mode=cluster_mode)


def _kafka(
    parent: pulumi.Resource, name: str, cfg: DataArgs, facts: AwsClusterFacts, sg: aws.ec2.SecurityGroup
) -> KafkaEndpoint:
    k = cfg.data.kafka
    msk = aws.msk.Cluster(
        f"{name}-kafka",
        kafka_version=k.version,
        number_of_broker_nodes=k.brokers,
        broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
            instance_type=k.machine_type,
            client_subnets=facts.private_subnet_ids,
            security_groups=[sg.id],
            storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                    volume_size=k.storage_gb
                )
            ),
        ),
        encryption_info=aws.msk.ClusterEncryptionInfoArgs(
            encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                client_broker="TLS", in_cluster=True
            ),
        ),
        client_authentication=aws.msk.ClusterClientAuthenticationArgs(
            sasl=aws.msk.ClusterClientAuthenticationSaslArgs(iam=True), unauthenticated=False
        ),
        opts=stateful(cfg, parent),
    )
    return KafkaEndpoint(
        bootstrap_servers=msk.bootstrap_brokers_sasl_iam,
        auth=msk_iam_auth(cfg.region),
        cluster_id=msk.arn,
        topics=KafkaTopicApi.MSK,
    )


def msk_iam_auth(region: str) -> KafkaClientAuth:
    """MSK IAM for Python clients: SASL/OAUTHBEARER over TLS on the IAM listener (9098), the token a
    SigV4-presigned kafka-cluster:Connect request for the cluster's region, made by AWS's
    aws-msk-iam-sasl-signer-python from the pod's IRSA credentials (MSK Developer Guide, "IAM access
    control": non-Java clients on Kafka 2.7.1 and later; the signer's README shows confluent-kafka's
    oauth_cb). `AWS_MSK_IAM` is the Java library's mechanism (aws-msk-iam-auth); librdkafka rejects it
    ("Unsupported SASL mechanism", tests/test_kafka_clients.py)."""
    return KafkaClientAuth(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        token_provider="mlplatform_client.kafka_auth:msk_iam_token",
        token_provider_config=f"region={region}",
        requirements=(CONFLUENT_KAFKA, MSK_IAM_SIGNER),
        # Java clients (Flink): the same OAUTHBEARER mechanism with aws-msk-iam-auth's handler for both
        # callbacks (aws/aws-msk-iam-auth README, "Configuring a Kafka client to use AWS IAM with SASL
        # OAUTHBEARER mechanism", v2.3.6); the region comes from the broker host name (same README)
        jvm_sasl_properties=(
            ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"),
            ("sasl.login.callback.handler.class", "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler"),
            ("sasl.client.callback.handler.class", "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler"),
        ),
        jvm_artifacts=(MSK_IAM_JAVA_AUTH,),
    )
