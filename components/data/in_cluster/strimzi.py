"""What the program asks of Strimzi, as plain data: the operator chart's values and the specs of the Kafka,
KafkaNodePool, KafkaUser and KafkaTopic resources (kafka.strimzi.io/v1, the only version Strimzi 1.x serves).

Kept apart from the component (kafka.py) so tests read them as Helm and the API server receive them. Sources
are strimzi/strimzi-kafka-operator at tag 1.2.0 unless said otherwise.

- The operator runs in `data` and watches only `data`: the chart's STRIMZI_NAMESPACE is the release namespace
  plus `watchNamespaces` (templates/_helpers.tpl strimzi.watchNamespacesList), left empty.
- Pod Security restricted: the operator's container has the restricted shape by default (values.yaml
  securityContext); the pods it makes get it from STRIMZI_POD_SECURITY_PROVIDER_CLASS=restricted
  (ClusterOperatorConfig.java: the `restricted` shortcut selects RestrictedPodSecurityProvider, which gives
  every Kafka, init and entity-operator container allowPrivilegeEscalation false, runAsNonRoot, a
  RuntimeDefault seccomp profile and every capability dropped; the default provider is baseline).
- generateNetworkPolicy false: Strimzi would add a NetworkPolicy per cluster whose listener rule admits every
  pod when no networkPolicyPeers are given (KafkaCluster.java generateNetworkPolicy); the platform's flow table
  (components/guardrails.py) is the one place traffic into `data` is allowed.
- KRaft and node pools are all Strimzi 1.x runs: the `strimzi.io/kraft` and `strimzi.io/node-pools`
  annotations "are not required anymore and will be ignored if set" (CHANGELOG.md, 0.48.0), so none is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from components.contracts import Access, NodePoolContract, WorkloadSpec
from components.guardrails import KAFKA_TLS_PORT, STRIMZI_CLUSTER
from components.kube import zone_spread
from mlplatform.config.models import InClusterSize, KafkaConfig
from mlplatform.config.streaming import TopicConfig
from mlplatform.pins import STRIMZI_KAFKA_METADATA_VERSION, STRIMZI_KAFKA_VERSION, ChartPin

API_VERSION = "kafka.strimzi.io/v1"
OPERATOR_RELEASE = "strimzi-kafka-operator"
CLUSTER_NAME = STRIMZI_CLUSTER  # the Kafka resource: its Services are mlplatform-kafka-bootstrap and -brokers
POOL_NAME = "nodes"  # the one KafkaNodePool: pods mlplatform-nodes-<id>, each broker and controller
LISTENER, TLS_PORT = "tls", KAFKA_TLS_PORT  # the port the flow table admits clients on
SERVER_TLS_SECRET = f"{CLUSTER_NAME}-kafka-listener-tls"
CLUSTER_LABEL = "strimzi.io/cluster"  # what binds a node pool, topic or user to its Kafka
CLUSTER_DOMAIN = "cluster.local"
MAX_REPLICATION = 3


def bootstrap_host(namespace: str) -> str:
    """The bootstrap Service as Strimzi reports an internal listener's address: `<service>.<ns>.svc`, no
    cluster domain unless useServiceDnsDomain (KafkaListenersReconciler.java internalServicesReady)."""
    return f"{CLUSTER_NAME}-kafka-bootstrap.{namespace}.svc"


def bootstrap_servers(namespace: str) -> str:
    return f"{bootstrap_host(namespace)}:{TLS_PORT}"


def broker_domain(namespace: str) -> str:
    """Where clients are sent after bootstrap: each broker advertises `<pod>.<cluster>-kafka-brokers.<ns>.svc`
    (KafkaListenersReconciler.java: DnsNameGenerator.podDnsNameWithoutClusterDomain on the brokers Service)."""
    return f"{CLUSTER_NAME}-kafka-brokers.{namespace}.svc"


def server_dns_names(namespace: str) -> list[str]:
    """The listener certificate's names: the bootstrap host clients are given first (its common name), then
    the bootstrap Service's other spellings and every broker by wildcard (the advertised names, and with the
    cluster domain), so a client verifies whichever broker it is sent to."""
    bootstrap = bootstrap_host(namespace)
    service = f"{CLUSTER_NAME}-kafka-bootstrap"
    brokers = broker_domain(namespace)
    return [
        bootstrap,
        service,
        f"{service}.{namespace}",
        f"{bootstrap}.{CLUSTER_DOMAIN}",
        f"*.{brokers}",
        f"*.{brokers}.{CLUSTER_DOMAIN}",
    ]


def operator_values(pin: ChartPin, pool: NodePoolContract) -> dict[str, Any]:
    """The chart's values (keys: mlplatform/chart_keys/strimzi-kafka-operator-1.2.0.json)."""
    return {
        "defaultImageTag": pin.app_version,  # the chart's own default, stated: every image at the pinned release
        "watchNamespaces": [],
        "generateNetworkPolicy": False,
        "extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}],
        # the chart's defaults (values.yaml resources), with the platform's rule of no CPU limit: None deletes
        # the chart's 1000m (Helm merges maps; components/kube.py split_nulls)
        "resources": {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"memory": "384Mi", "cpu": None}},
        "nodeSelector": pool.node_selector(),
        "tolerations": pool.tolerations(),
    }


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(gib: float) -> str:
    return f"{round(gib * 1024)}Mi"


def data_pod_resources(size: InClusterSize) -> dict[str, Any]:
    """inCluster: each node's requests, memory also its limit (Strimzi sizes the JVM heap from the limit)."""
    memory = _memory(size.memory_gb)
    return {"requests": {"cpu": _cpu(size.cpu), "memory": memory}, "limits": {"memory": memory}}


def replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas): a replica per node up to 3, writes acknowledged by all but
    one, as on MSK (components/streaming/topics.py)."""
    factor = min(MAX_REPLICATION, brokers)
    return factor, max(1, factor - 1)


def _node_affinity(pool: NodePoolContract) -> dict[str, Any] | None:
    """Strimzi's pod templates take no nodeSelector: the pool's selector as a required node affinity."""
    selector = pool.node_selector()
    if not selector:
        return None
    terms = [{"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in selector.items()]}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def pod_template(pool: NodePoolContract, spread_labels: Mapping[str, str] | None) -> dict[str, Any]:
    pod: dict[str, Any] = {}
    affinity = _node_affinity(pool)
    if affinity is not None:
        pod["affinity"] = affinity
    if pool.tolerations():
        pod["tolerations"] = pool.tolerations()
    if spread_labels is not None:
        pod["topologySpreadConstraints"] = zone_spread(spread_labels)
    return pod


def kafka_spec(kafka: KafkaConfig, *, pool: NodePoolContract) -> dict[str, Any]:
    """The Kafka resource: one TLS listener with SCRAM-SHA-512 on the platform CA's certificate, ACLs on, and
    the entity operator (topics and users) sized explicitly."""
    factor, min_insync = replication(kafka.brokers or 1)
    return {
        "kafka": {
            "version": STRIMZI_KAFKA_VERSION,
            "metadataVersion": STRIMZI_KAFKA_METADATA_VERSION,
            "listeners": [
                {
                    "name": LISTENER,
                    "port": TLS_PORT,
                    "type": "internal",
                    "tls": True,
                    "authentication": {"type": "scram-sha-512"},
                    # the platform CA's certificate, so clients verify host names against the CA they are
                    # handed (KafkaScram.ca_certificate_pem) rather than a CA only the cluster knows
                    "configuration": {
                        "brokerCertChainAndKey": {
                            "secretName": SERVER_TLS_SECRET,
                            "certificate": "tls.crt",
                            "key": "tls.key",
                        }
                    },
                }
            ],
            # ACLs through Kafka's Admin API (KafkaUser acls); the operators' own users are super users
            "authorization": {"type": "simple"},
            "config": {
                "offsets.topic.replication.factor": factor,
                "transaction.state.log.replication.factor": factor,
                "transaction.state.log.min.isr": min_insync,
                "default.replication.factor": factor,
                "min.insync.replicas": min_insync,
                # topics are the program's (KafkaTopic) or a READ_WRITE client's explicit Create
                "auto.create.topics.enable": False,
            },
        },
        "entityOperator": {
            "topicOperator": {
                "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
            },
            "userOperator": {
                "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
            },
            "template": {"pod": pod_template(pool, None)},
        },
    }


def node_pool_spec(
    kafka: KafkaConfig, *, pool: NodePoolContract, storage_class: str, spread: bool, keep_volumes: bool
) -> dict[str, Any]:
    """The one KafkaNodePool: `brokers` nodes, each controller and broker, each with its own volume. The
    volumes outlive the pool where the data is protected (prod: deleting Kafka never deletes its events);
    elsewhere they go with it, so dev tears down without leaving disks behind."""
    if kafka.in_cluster is None or kafka.brokers is None or kafka.storage_gb is None:
        raise ValueError("in-cluster Kafka needs data.kafka.brokers, storageGb and inCluster")
    pods = {CLUSTER_LABEL: CLUSTER_NAME, "strimzi.io/pool-name": POOL_NAME}
    return {
        "replicas": kafka.brokers,
        "roles": ["controller", "broker"],
        "storage": {
            "type": "persistent-claim",
            "size": f"{kafka.storage_gb}Gi",
            "class": storage_class,
            "deleteClaim": not keep_volumes,
        },
        "resources": data_pod_resources(kafka.in_cluster),
        "template": {"pod": pod_template(pool, pods if spread else None)},
    }


# Kafka ACL operations per access level (as the GCP adapter's KAFKA_TOPIC_OPS, in Strimzi's spelling): READ
# reads and describes every topic; READ_WRITE also writes and creates. Every client may use consumer groups.
TOPIC_OPERATIONS: Mapping[Access, tuple[str, ...]] = {
    Access.READ: ("Read", "Describe"),
    Access.READ_WRITE: ("Read", "Describe", "Write", "Create"),
}
GROUP_OPERATIONS = ("Read",)


def user_acls(access: Access) -> list[dict[str, Any]]:
    """A workload's ACLs: every topic at its access level and every consumer group (as managed Kafka's
    `allTopics` / `allConsumerGroups` grants). Idempotent producers need Write on a topic only (KIP-679)."""
    return [
        {
            "resource": {"type": "topic", "name": "*", "patternType": "literal"},
            "operations": list(TOPIC_OPERATIONS[access]),
        },
        {"resource": {"type": "group", "name": "*", "patternType": "literal"}, "operations": list(GROUP_OPERATIONS)},
    ]


def password_secret_name(username: str) -> str:
    """The Secret in `data` the KafkaUser's password comes from; the User Operator writes its own Secret named
    as the user (password and sasl.jaas.config), so this one must be named otherwise."""
    return f"kafka-{username}-password"


PASSWORD_KEY = "password"


def user_spec(access: Access, username: str) -> dict[str, Any]:
    return {
        "authentication": {
            "type": "scram-sha-512",
            # the program's password, so it is an Output clients are handed (not one the operator generates)
            "password": {"valueFrom": {"secretKeyRef": {"name": password_secret_name(username), "key": PASSWORD_KEY}}},
        },
        "authorization": {"type": "simple", "acls": user_acls(access)},
    }


def kafka_clients(workloads: Sequence[WorkloadSpec]) -> dict[str, Access]:
    """Every workload granted Kafka, by key (its user name), with its access; one user per key."""
    found: dict[str, Access] = {}
    for w in workloads:
        if w.kafka is not None:
            if found.get(w.key, w.kafka) is not w.kafka:
                raise ValueError(f"workload {w.key!r} is granted Kafka twice, differently")
            found[w.key] = w.kafka
    return found


def topic_resource_name(topic: str) -> str:
    """A KafkaTopic's metadata.name (a DNS-1123 subdomain) for a Kafka topic name; spec.topicName keeps the
    real one."""
    name = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip("-.")
    return name or "topic"


def topic_spec(topic: TopicConfig, brokers: int, configs: Mapping[str, str]) -> dict[str, Any]:
    factor, _ = replication(brokers)
    return {
        "topicName": topic.name,
        "partitions": topic.partitions,
        "replicas": factor,
        "config": dict(configs),
    }
