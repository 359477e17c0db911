"""Kafka in the cluster by Strimzi 1.2.0 (specs in strimzi.py), behind the same KafkaEndpoint as MSK and
Managed Kafka: the operator chart, one KRaft cluster whose node pool holds every broker and controller, the
listener certificate from the platform CA, and a SCRAM-SHA-512 user with ACLs per workload granted Kafka.

Clients log in with SCRAM-SHA-512 over TLS (KafkaScram on the endpoint): the only SASL mechanism Strimzi's
listeners take besides OAuth, which needs an identity provider no in-cluster stack has; mTLS would hand every
client a key and certificate to mount where the managed services need none. Passwords are the program's
(random, Pulumi secrets), handed to each client's namespace by the consumer (components/lifecycle/kafka.py);
Kafka's ACLs, not a cloud IAM, decide what each user may do (strimzi.py user_acls).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import (
    KafkaClientAuth,
    KafkaEndpoint,
    KafkaScram,
    KafkaScramUser,
    KafkaTopicApi,
)
from components.data.in_cluster import InClusterArgs
from components.data.in_cluster.strimzi import (
    API_VERSION,
    CLUSTER_LABEL,
    CLUSTER_NAME,
    OPERATOR_RELEASE,
    PASSWORD_KEY,
    POOL_NAME,
    SERVER_TLS_SECRET,
    bootstrap_servers,
    kafka_clients,
    kafka_spec,
    node_pool_spec,
    operator_values,
    password_secret_name,
    server_dns_names,
    user_spec,
)
from components.kube import PART_OF, opaque_secret, pinned_release
from components.secrets import generated_secret
from mlplatform.config import HaProfile, Profile
from mlplatform.pins import CONFLUENT_KAFKA, STRIMZI_OPERATOR

NAMESPACE = "data"  # the Namespace's fixed name (Namespace.DATA): the broker names must be known at plan time
# helm.v3.Release, not helm.v4.Chart: the chart ships its CRDs in crds/, which Helm installs once and never
# deletes, so removing the release cannot cascade-delete the Kafka resources and their volumes. Its one
# Deployment on a pool that may be scaling up from zero, plus the image pull.
OPERATOR_TIMEOUT_SECONDS = 600
# volumes provisioned, the Kafka image (~700 MB) pulled, each node started and the cluster formed
KAFKA_TIMEOUT_SECONDS = 1200
SCRAM_MECHANISM = "SCRAM-SHA-512"


def _wait_ready(timeout_seconds: int) -> dict[str, str]:
    """Pulumi waits for the operator's Ready condition (pulumi-kubernetes 4.x `pulumi.com/waitFor`)."""
    return {"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": str(timeout_seconds)}


def scram_auth(users: dict[str, KafkaScramUser], ca_certificate_pem: pulumi.Output[str]) -> KafkaClientAuth:
    """SCRAM-SHA-512 over TLS for Python (librdkafka) and Java clients alike: both take the mechanism by name
    and the password from the client's own settings, so no callback and no extra library is needed."""
    return KafkaClientAuth(
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM_MECHANISM,
        requirements=(CONFLUENT_KAFKA,),
        scram=KafkaScram(users=users, ca_certificate_pem=ca_certificate_pem),
    )


class StrimziKafka(pulumi.ComponentResource):
    endpoint: KafkaEndpoint
    kafka: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: InClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:data:Strimzi", name, None, opts)
        cfg = args.config.data.kafka
        ns = args.namespace
        # the operator and the brokers share the CPU pool with the platform's services (the system pool is
        # sized for cluster add-ons), as the in-cluster PostgreSQL does
        pool = args.cluster.cpu_pool
        operator = pinned_release(
            self,
            f"{name}-operator",
            STRIMZI_OPERATOR,
            ns.metadata.name,
            operator_values(STRIMZI_OPERATOR, pool),
            args.cluster.kubernetes_provider,
            release_name=OPERATOR_RELEASE,
            timeout_seconds=OPERATOR_TIMEOUT_SECONDS,
            depends_on=[ns],
        )
        tls = args.ca.server_secret(
            self, f"{name}-listener-tls", SERVER_TLS_SECRET, ns, server_dns_names(NAMESPACE), pkcs8=True
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=[operator])
        # the data layer's protection: prod protects and retains the resources and keeps the volumes, as it
        # does MSK and Managed Kafka; dev tears down cleanly
        protect = args.config.profile is Profile.PROD
        stateful = pulumi.ResourceOptions(
            parent=self, depends_on=[operator, tls], protect=protect, retain_on_delete=protect
        )
        node_pool = k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version=API_VERSION,
            kind="KafkaNodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=POOL_NAME, namespace=ns.metadata.name, labels={**PART_OF, CLUSTER_LABEL: CLUSTER_NAME}
            ),
            spec=node_pool_spec(
                cfg,
                pool=pool,
                storage_class=args.cluster.block_storage_class,
                spread=args.config.ha is HaProfile.MULTI_ZONE,
                keep_volumes=protect,
            ),
            opts=stateful,
        )
        self.kafka = k8s.apiextensions.CustomResource(
            f"{name}-kafka",
            api_version=API_VERSION,
            kind="Kafka",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CLUSTER_NAME,
                namespace=ns.metadata.name,
                labels=PART_OF,
                annotations=_wait_ready(KAFKA_TIMEOUT_SECONDS),
            ),
            spec=kafka_spec(cfg, pool=pool),
            opts=pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(depends_on=[node_pool])),
        )
        users: dict[str, KafkaScramUser] = {}
        for key, access in kafka_clients(args.workloads).items():
            password = generated_secret(self, f"{name}-user-{key}")
            secret = opaque_secret(
                self, f"{name}-user-{key}-password", password_secret_name(key), ns, {PASSWORD_KEY: password}
            )
            k8s.apiextensions.CustomResource(
                f"{name}-user-{key}",
                api_version=API_VERSION,
                kind="KafkaUser",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=key, namespace=ns.metadata.name, labels={**PART_OF, CLUSTER_LABEL: CLUSTER_NAME}
                ),
                spec=user_spec(access, key),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[secret])),
            )
            users[key] = KafkaScramUser(username=key, password=password)
        self.endpoint = KafkaEndpoint(
            # a plain value: clients retry until the brokers answer, so nothing waits for Kafka but its topics
            bootstrap_servers=pulumi.Output.from_input(bootstrap_servers(NAMESPACE)),
            auth=scram_auth(users, args.ca.certificate_pem),
            # the Kafka resource's name, as an Output of it: KafkaTopics made from it wait for the cluster
            cluster_id=self.kafka.id.apply(lambda _: CLUSTER_NAME),
            topics=KafkaTopicApi.STRIMZI,
        )
        self.register_outputs({"bootstrapServers": self.endpoint.bootstrap_servers, "users": sorted(users)})
