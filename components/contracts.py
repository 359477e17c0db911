"""Typed contracts between layers. Consumers read these objects; nothing is re-typed as a string.

A GPU pool's labels and taints, a workload's cloud identity and its Kubernetes service account, a
database's endpoint and credentials: each is produced once, by the layer that owns it, and handed on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import pulumi
import pulumi_kubernetes as k8s

# -- namespaces -----------------------------------------------------------------------------------


class Namespace(StrEnum):
    """The platform's namespaces (the design's single-cluster topology)."""

    PLATFORM = "mlplatform"
    SERVING = "model-serving"
    TRAINING = "training"
    DATA = "data"
    MONITORING = "monitoring"
    # node agents that need the host (node-exporter; log and GPU agents later): their own, privileged
    MONITORING_AGENTS = "monitoring-agents"
    # the serving stack's system namespaces (charts and operators, no user workloads)
    CERT_MANAGER = "cert-manager"
    ISTIO = "istio-system"
    KNATIVE = "knative-serving"
    # the Knative operator, apart from the Serving it installs: both own config-logging and
    # config-observability in their namespace, so sharing one lets an operator upgrade reset Serving's
    # (knative/operator#2014)
    KNATIVE_OPERATOR = "knative-operator"
    KSERVE = "kserve"
    # the streaming path: the Flink Kubernetes Operator (chart, webhook) apart from the jobs it runs
    FLINK_OPERATOR = "flink-operator"
    STREAMING = "streaming"


# -- node pools -----------------------------------------------------------------------------------

POOL_LABEL = "mlplatform.io/pool"
ACCELERATOR_LABEL = "mlplatform.io/accelerator"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # Kubernetes spelling: NoSchedule | PreferNoSchedule | NoExecute

    @property
    def api_effect(self) -> str:
        """The effect as the EKS and GKE node-pool APIs spell it (NoSchedule -> NO_SCHEDULE)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.effect).upper()

    def toleration(self) -> dict[str, str]:
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


GPU_TAINT = Taint(GPU_RESOURCE, "present", "NoSchedule")


@dataclass(frozen=True)
class NodePoolContract:
    """What a workload needs to land on a pool: its selector (node_selector) and taints (tolerations).
    `labels` are what the pool's nodes carry (the cloud adapters label the nodes they create with them);
    `selector` the part of them a workload selects on, carried by the contract so that every consumer calls
    node_selector() and none knows how a cloud or a local cluster marks its pools."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()
    accelerator: str | None = None
    gpus_per_node: int = 0
    max_nodes: int = 0  # the autoscaler's upper bound
    # nvidia.com/gpu units each physical GPU advertises: >1 when GPUs are time-sliced or MIG-partitioned
    shares_per_gpu: int = 1
    # the NVIDIA device plugin configuration the pool's nodes select (EKS time-slicing), if any
    device_plugin_config: str | None = None
    # the labels a workload's nodeSelector names: {POOL_LABEL: name} on the clouds (pool_contract); on local,
    # the pool's configured nodeLabels, which may be empty (any node)
    selector: Mapping[str, str] | None = None

    @property
    def gpu_units_per_node(self) -> int:
        """What a node advertises as nvidia.com/gpu, and so what pods and quotas count."""
        return self.gpus_per_node * self.shares_per_gpu

    @property
    def is_gpu(self) -> bool:
        return self.gpus_per_node > 0

    def node_selector(self) -> dict[str, str]:
        if self.selector is not None:
            return dict(self.selector)
        return {POOL_LABEL: self.labels[POOL_LABEL]}  # a contract made without pool_contract

    def tolerations(self) -> list[dict[str, str]]:
        return [t.toleration() for t in self.taints]


def gpu_node_placement(gpu_pools: Sequence[NodePoolContract]) -> dict[str, object]:
    """Affinity and tolerations for a per-GPU-node agent (device plugin, DCGM exporter): every node the GPU
    pool contracts label as carrying a GPU, tolerating each pool's taints."""
    tolerations = {tuple(t.items()): t for p in gpu_pools for t in p.tolerations()}
    required = {"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]}
    return {
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [required]}}
        },
        "tolerations": list(tolerations.values()),
    }


DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"  # the device plugin's per-node config selector


def pool_contract(
    name: str,
    *,
    accelerator: str | None = None,
    gpus_per_node: int = 0,
    max_nodes: int = 0,
    shares_per_gpu: int = 1,
    device_plugin_config: str | None = None,
    node_labels: Mapping[str, str] | None = None,
) -> NodePoolContract:
    """The one place pool labels and taints are decided; cloud adapters and workloads both read the result.

    `node_labels`: the pool's nodes exist already and carry these labels (cloud: local); the contract selects
    them as they are (empty: any node) instead of the labels a cloud adapter puts on the nodes it creates. A
    GPU pool keeps the GPU taint's toleration there: harmless on an untainted node, and right on a node
    tainted the way the cloud pools are."""
    taints: tuple[Taint, ...] = (GPU_TAINT,) if gpus_per_node else ()
    if node_labels is not None:
        return NodePoolContract(
            name,
            dict(node_labels),
            taints,
            accelerator,
            gpus_per_node,
            max_nodes,
            shares_per_gpu,
            device_plugin_config,
            selector=dict(node_labels),
        )
    labels = {POOL_LABEL: name}
    if gpus_per_node:
        labels |= {ACCELERATOR_LABEL: accelerator or "nvidia", GPU_PRESENT_LABEL: "true"}
    if device_plugin_config is not None:
        labels |= {DEVICE_PLUGIN_CONFIG_LABEL: device_plugin_config}
    return NodePoolContract(
        name,
        labels,
        taints,
        accelerator,
        gpus_per_node,
        max_nodes,
        shares_per_gpu,
        device_plugin_config,
        selector={POOL_LABEL: name},
    )


# -- storage and workload identity -----------------------------------------------------------------


class BucketPurpose(StrEnum):
    ARTIFACTS = "artifacts"  # MLflow artifacts and registered models
    DATASETS = "datasets"  # datasets and Feast offline features
    LOGS = "logs"  # Loki chunks and Airflow remote task logs
    # in-cluster PostgreSQL's base backups and WAL (the Barman Cloud plugin, components/data/in_cluster/
    # backups.py); made only where a workload is granted it (on_demand_purposes)
    BACKUPS = "backups"


# Buckets that exist only where some workload's grant names them: a stack whose PostgreSQL is managed (RDS and
# Cloud SQL back themselves up) has no backups bucket
ON_DEMAND_PURPOSES = frozenset({BucketPurpose.BACKUPS})


class Access(StrEnum):
    READ = "read"
    READ_WRITE = "read-write"


class ObjectStore(StrEnum):
    """The bucket's API, spelt as Loki, Feast and fsspec name it."""

    S3 = "s3"
    GCS = "gcs"


@dataclass(frozen=True)
class Bucket:
    purpose: BucketPurpose
    name: pulumi.Output[str]
    uri: pulumi.Output[str]  # s3://name or gs://name
    store: ObjectStore
    region: str  # the bucket's region (S3 clients sign requests for it)
    # the S3-compatible endpoint URL clients send requests to when the store is not the cloud's own (the local
    # stack's in-cluster store); None on AWS and GCP, where the SDKs find the cloud's endpoint themselves
    endpoint: str | None = None


@dataclass(frozen=True)
class SeedObject:
    """A file of this repository the storage layer uploads into a bucket on `up` (an example dataset the
    platform's own definitions read), so a fresh stack works without a manual copy."""

    purpose: BucketPurpose
    key: str  # the object's name in the bucket
    source: Path  # the file in this repository

    @property
    def slug(self) -> str:
        """The key as a resource-name part: `feast/examples/driver_stats.parquet` -> `feast-examples-driver_stats`."""
        return self.key.rsplit(".", 1)[0].replace("/", "-")


@dataclass(frozen=True)
class BucketGrant:
    purpose: BucketPurpose
    access: Access


@dataclass(frozen=True)
class DnsGrant:
    """Write access to the records of one DNS zone (cert-manager's ACME DNS-01 TXT records): a Route 53
    hosted zone on AWS, Cloud DNS in a project on GCP (None: the stack's own project)."""

    hosted_zone_id: str | None = None
    project: str | None = None


@dataclass(frozen=True)
class WorkloadSpec:
    """A platform workload's Kubernetes service account and the buckets it may touch."""

    key: str
    namespace: Namespace
    service_account: str
    grants: tuple[BucketGrant, ...]
    kafka: Access | None = None  # READ consumes topics; READ_WRITE also produces and creates topics
    dns: DnsGrant | None = None  # the DNS zone whose records it writes


def bucket_purposes(workloads: Sequence[WorkloadSpec]) -> tuple[BucketPurpose, ...]:
    """The buckets a stack makes: every purpose, but an on-demand one (ON_DEMAND_PURPOSES) only where one of
    `workloads` is granted it. The storage adapters (aws, gcp, local) all make exactly these."""
    granted = {g.purpose for w in workloads for g in w.grants}
    return tuple(p for p in BucketPurpose if p not in ON_DEMAND_PURPOSES or p in granted)


@dataclass(frozen=True)
class AccessKey:
    """A static S3 access key pair, where no cloud hands pods an identity (the local stack's in-cluster store).
    The Secret `secret_name` in the workload's namespace holds it under the AWS SDKs' own variable names; it is
    made beside the workload's service account (components/kube.py identity_service_account)."""

    secret_name: str
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]  # secret
    endpoint: str  # the store's S3 endpoint URL
    region: str  # the region requests are signed for

    ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
    SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"

    def env(self) -> list[dict[str, object]]:
        """Container env under which the AWS SDKs (boto3/botocore, s3fs, the Go and Java SDKs) and the AWS CLI
        use this key at this endpoint. AWS_ENDPOINT_URL_S3 is the SDKs' service-specific endpoint setting
        (botocore >= 1.31 reads it as the client's endpoint_url); with an endpoint given, botocore addresses
        buckets path-style unless told otherwise (botocore args.py compute_endpoint_resolver_builtin_defaults),
        which is what the store serves (no per-bucket host names)."""
        key = {"name": self.secret_name}
        return [
            {"name": self.ACCESS_KEY_ID, "valueFrom": {"secretKeyRef": {**key, "key": self.ACCESS_KEY_ID}}},
            {"name": self.SECRET_ACCESS_KEY, "valueFrom": {"secretKeyRef": {**key, "key": self.SECRET_ACCESS_KEY}}},
            {"name": "AWS_ENDPOINT_URL_S3", "value": self.endpoint},
            {"name": "AWS_REGION", "value": self.region},
            {"name": "AWS_DEFAULT_REGION", "value": self.region},
        ]


@dataclass(frozen=True)
class WorkloadIdentity:
    """A service account bound to its cloud principal: created together, consumed together."""

    spec: WorkloadSpec
    principal: pulumi.Output[str]  # IAM role ARN, Google service account email, or the local store's key id
    service_account_annotations: pulumi.Output[dict[str, str]]
    # where the cloud injects nothing (local): the static key the pods present; None on AWS (IRSA) and GCP
    # (Workload Identity), whose credentials come through the service account's annotation
    access_key: AccessKey | None = None

    @property
    def env(self) -> list[dict[str, object]]:
        """What every container acting as this identity adds to its env: the access key and the store's
        endpoint on local, nothing on AWS and GCP."""
        return [] if self.access_key is None else self.access_key.env()


# -- data services ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseCredentials:
    database: str
    username: str
    password: pulumi.Output[str]  # secret


VERIFYING_SSL_MODES = ("verify-ca", "verify-full")  # libpq's sslmode values that authenticate the server


@dataclass(frozen=True)
class PostgresEndpoint:
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    databases: Mapping[str, DatabaseCredentials]
    # libpq's sslmode for every client: verify-full where the server's certificate names the address clients
    # use (RDS), verify-ca where it cannot (Cloud SQL's per-instance CA), require (encrypted, the server not
    # authenticated) only where the platform has no CA to verify against
    ssl_mode: str = "require"
    read_hosts: tuple[pulumi.Output[str], ...] = ()
    # What must exist before a service connects: the per-service roles and databases (a bootstrap Job on
    # AWS, Cloud SQL users and databases on GCP). Consumers put these in depends_on.
    ready: tuple[pulumi.Resource, ...] = ()
    # PEM of the CA certificates the server's certificate chains to (libpq's sslrootcert), which every
    # client mounts; set exactly when ssl_mode verifies
    ca_certificate: pulumi.Output[str] | None = None

    def __post_init__(self) -> None:
        has_ca = self.ca_certificate is not None
        if (self.ssl_mode in VERIFYING_SSL_MODES) != has_ca:
            raise ValueError(f"sslmode {self.ssl_mode} {'with' if has_ca else 'without'} a CA certificate")


@dataclass(frozen=True)
class RedisEndpoint:
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    auth_token: pulumi.Output[str]  # secret
    tls: bool = True
    cluster_mode: bool = False
    # PEM of the CA that signs the server's TLS certificate when it is private (Memorystore); None when the
    # server presents a publicly trusted certificate (ElastiCache).
    ca_certificate: pulumi.Output[str] | None = None
    # Whether the server's certificate names the address clients connect to, so that clients match it
    # (redis-py's ssl_check_hostname). False only where it cannot match and the CA alone authenticates.
    check_hostname: bool = True


class KafkaTopicApi(StrEnum):
    """How topics are made on a Kafka cluster, which the cluster's maker knows and the streaming layer must not
    guess from the cloud: the MSK topic API, Managed Kafka's, or Strimzi's KafkaTopic resources."""

    MSK = "msk"
    MANAGED_KAFKA = "managed-kafka"
    STRIMZI = "strimzi"


@dataclass(frozen=True)
class KafkaScramUser:
    """One SCRAM user of an in-cluster cluster: a workload granted Kafka, and its password (a Pulumi secret)."""

    username: str
    password: pulumi.Output[str]

    @property
    def secret_name(self) -> str:
        """The Secret a client's namespace holds the password in (components/lifecycle/kafka.py makes it)."""
        return f"kafka-{self.username}"


@dataclass(frozen=True)
class KafkaScram:
    """SASL/SCRAM-SHA-512 over TLS (in-cluster Kafka by Strimzi): a user per workload granted Kafka, by
    WorkloadSpec.key, and the CA the brokers' certificate chains to, which clients verify host names against."""

    users: Mapping[str, KafkaScramUser]
    ca_certificate_pem: pulumi.Output[str]


@dataclass(frozen=True)
class KafkaClientAuth:
    """How a Kafka client in the cluster authenticates, in the clients' own terms, so that in-cluster layers
    hand it on without knowing the cloud or the mode. Two logins exist:

    - OAUTHBEARER (the managed services): both take SASL/OAUTHBEARER over TLS from non-Java clients, the
      token made from the pod's cloud identity. MSK's `AWS_MSK_IAM` is the Java library's mechanism
      (aws-msk-iam-auth), which librdkafka (confluent-kafka) rejects; it sends an OAUTHBEARER token that a
      callback makes. The callback is `token_provider` ("module:function", confluent-kafka's `oauth_cb`, in
      the platform's mlplatform_client package that the consumers mount); librdkafka passes it
      `token_provider_config` (its `sasl.oauthbearer.config`). The cloud's IAM then decides access.
    - SCRAM-SHA-512 (in-cluster): `scram` holds each granted workload's user and the CA; Kafka ACLs decide
      access. `user` is set on the endpoint one workload is handed (components/lifecycle/kafka.py granted).

    `requirements` are the pip requirements of the client and of the callback's imports: the platform's images
    carry none of the Kafka clients."""

    security_protocol: str  # SASL_SSL
    sasl_mechanism: str  # OAUTHBEARER or SCRAM-SHA-512, as librdkafka (sasl.mechanism) and Java's client name it
    requirements: tuple[str, ...]
    token_provider: str = ""  # OAUTHBEARER: e.g. mlplatform_client.kafka_auth:msk_iam_token
    token_provider_config: str = ""  # space-separated key=value pairs, e.g. "region=us-east-1"; may be ""
    # The same OAUTHBEARER login for a Java client (the Flink Kafka connector): the SASL properties beyond
    # security.protocol and sasl.mechanism (sasl.jaas.config, the login callback handler class of the cloud's
    # Java library) and that library's Maven coordinates, for the image that runs the client.
    jvm_sasl_properties: tuple[tuple[str, str], ...] = ()
    jvm_artifacts: tuple[str, ...] = ()
    scram: KafkaScram | None = None
    user: KafkaScramUser | None = None  # SCRAM: the one workload's user (None on the cluster-wide endpoint)

    @property
    def cloud_identity(self) -> bool:
        """The client logs in as its cloud identity (a token), so access is the cloud IAM's to grant; with
        SCRAM the cluster's own ACLs grant it and no cloud grant exists."""
        return self.scram is None

    def for_workload(self, key: str) -> KafkaClientAuth:
        """This login as workload `key` uses it: its SCRAM user picked out (a token login is the same for all)."""
        if self.scram is None:
            return self
        user = self.scram.users.get(key)
        if user is None:
            raise KeyError(f"no Kafka user for workload {key!r}; users: {sorted(self.scram.users)}")
        return replace(self, user=user)


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap_servers: pulumi.Output[str]
    auth: KafkaClientAuth
    # MSK cluster ARN, the managed Kafka cluster's ID on GCP, or the Strimzi Kafka resource's name
    cluster_id: pulumi.Output[str]
    topics: KafkaTopicApi  # how the streaming layer makes this cluster's topics


# -- in-cluster services ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceEndpoint:
    """An in-cluster Service: the name a chart is told to use, its namespace and port. Clients get the URL
    from here; the chart gets the name and port from here; so the two cannot drift apart."""

    name: str
    namespace: Namespace
    port: int
    scheme: str = "http"

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace.value}.svc.cluster.local"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


# -- network facts NetworkPolicies need ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeLocalEndpoint:
    """An address:port on the node that pods must reach (e.g. the GKE metadata server)."""

    cidr: str
    port: int
    why: str


@dataclass(frozen=True)
class PodPeer:
    """Pods outside the platform's namespaces a policy must name by selector (never by address: under GKE
    Dataplane V2 an ipBlock matches no pod)."""

    namespace: str
    labels: Mapping[str, str]


# Where admission webhooks listen in the platform's charts (kube-prometheus-stack's operator 10250,
# cert-manager 10250, KServe 9443, Knative and its operator 8443, istiod 15017, plain 443); the API server is
# the only caller admitted.
WEBHOOK_PORTS = (443, 8443, 9443, 10250, 15017)


@dataclass(frozen=True)
class ClusterNetwork:
    """What the platform's NetworkPolicies must know about the cloud under the cluster. The one declared,
    typed difference between the in-cluster layers on AWS and on GCP."""

    # node-local endpoints pods need: on GKE the metadata server that hands out Workload Identity tokens;
    # none on EKS, where pods get AWS credentials by IRSA (STS over 443)
    metadata_endpoints: tuple[NodeLocalEndpoint, ...]
    # addresses no pod may reach on any port (EKS: the instance metadata service, whose node role
    # credentials pods must never borrow)
    blocked_cidrs: tuple[str, ...]
    # where the API server calls admission webhooks from (EKS: its ENIs in the VPC; GKE: the control-plane
    # range of the private cluster)
    control_plane_cidrs: tuple[str, ...]
    # where the managed data services get their private addresses, the only destinations of the data ports
    # (PostgreSQL, Redis, Kafka): EKS: the VPC (RDS, ElastiCache and MSK sit in its private subnets); GKE:
    # the private service access range reserved on the VPC (Cloud SQL, Memorystore) and the node subnet
    # (Managed Kafka's client endpoints)
    data_service_cidrs: tuple[pulumi.Input[str], ...] = ()
    # the nodes' addresses (host-network scrape targets: kubelet, node-exporter)
    node_cidrs: tuple[str, ...] = ()
    # whether an ipBlock of node_cidrs matches a node as a peer. The VPC CNI matches by address; under GKE
    # Dataplane V2 (Cilium) a node has the reserved `remote-node` identity and CIDR rules never select it
    # (docs.cilium.io "Layer 3 Examples", CIDR-based: "CIDR rules do not apply to traffic where both sides
    # of the connection are either managed by Cilium or use an IP belonging to a node in the cluster"), and
    # GKE accepts no CiliumNetworkPolicy (toEntities: remote-node). Where False, the scrape of host-network
    # targets is allowed by port alone.
    nodes_match_ip_blocks: bool = True
    # pods the API server's webhook calls come out of (GKE: the konnectivity agents in kube-system); they
    # are admitted on the webhook ports beside control_plane_cidrs
    webhook_proxies: tuple[PodPeer, ...] = ()
    # the port the cluster DNS (kube-system, k8s-app=kube-dns) serves Prometheus metrics on: EKS's CoreDNS
    # 9153; None on GKE, whose kube-dns serves none there (so nothing scrapes it)
    dns_metrics_port: int | None = None
    # the port pods reach the API server on at control_plane_cidrs, as a NetworkPolicy sees it: after the
    # `kubernetes` Service's DNAT to its endpoints. 443 on EKS and GKE; kind's kubeadm API server listens on
    # 6443 on the control-plane node (the endpoint Prometheus's kubeApiServer monitor scrapes too)
    api_server_port: int = 443


# -- per-cloud facts the same cloud's infra adapters share -------------------------------------------


@dataclass(frozen=True)
class AwsClusterFacts:
    """What the AWS storage and data adapters need from the cluster: IRSA trust and the private network."""

    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]  # https://oidc.eks.<region>.amazonaws.com/id/<id>
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    cluster_security_group_id: pulumi.Output[str]  # nodes of managed node groups carry this group


@dataclass(frozen=True)
class GcpClusterFacts:
    """What the GCP storage and data adapters need: the Workload Identity pool and the VPC."""

    # <project>.svc.id.goog, read from the cluster: the pool exists only once the project's first GKE cluster
    # with Workload Identity does, and a binding naming it before then fails ("Identity Pool does not exist";
    # terraform-google-modules/terraform-google-kubernetes-engine#916)
    workload_pool: pulumi.Output[str]
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    psa_range_name: pulumi.Output[str]  # the private service access range Cloud SQL and Memorystore peer into


@dataclass(frozen=True)
class LocalClusterFacts:
    """What the local storage and data adapters need from a local cluster: only which one it is (the
    kubeconfig context). No identity federation and no private network: workloads get their object-store
    credentials as Kubernetes Secrets, and every data service runs in the cluster."""

    kubeconfig_context: str
    registry: str  # host:port of the registry the nodes pull from and `pulumi up` pushes to (cluster.registry)


CloudFacts = AwsClusterFacts | GcpClusterFacts | LocalClusterFacts
F = TypeVar("F", AwsClusterFacts, GcpClusterFacts, LocalClusterFacts)


@dataclass(frozen=True)
class LoadBalancerProfile:
    """How a Service of type LoadBalancer becomes a cloud load balancer on this cluster: the annotations for
    an internal or internet-facing one, and what must run before such a Service is created."""

    internal_annotations: Mapping[str, str]
    external_annotations: Mapping[str, str]
    ready: tuple[pulumi.Resource, ...] = ()  # EKS: the AWS Load Balancer Controller

    def annotations(self, *, internal: bool) -> dict[str, str]:
        return dict(self.internal_annotations if internal else self.external_annotations)


# -- layer outputs ---------------------------------------------------------------------------------

# Every platform namespace by its role, made with its guard rails by the Namespaces component; layers put
# their objects in these (a reference to the Namespace object, so each object waits for it).
PlatformNamespaces = Mapping[Namespace, k8s.core.v1.Namespace]


@dataclass(frozen=True)
class ClusterOutputs:
    name: pulumi.Output[str]
    kubernetes_provider: k8s.Provider
    system_pool: NodePoolContract
    cpu_pool: NodePoolContract
    gpu_pools: tuple[NodePoolContract, ...]
    kubernetes_version: str  # the control plane's minor, e.g. "1.33" (Pod Security labels pin to it)
    network: ClusterNetwork
    load_balancer: LoadBalancerProfile
    # the StorageClass persistent volumes of the platform's services use (EKS: gp3; GKE: pd-balanced)
    block_storage_class: str
    # the cloud collects GPU metrics itself (GKE's managed DCGM package, into Cloud Monitoring): the
    # observability layer installs the DCGM exporter only where this is False
    managed_gpu_metrics: bool
    # Cloud-specific facts the same cloud's storage and data adapters need (network, OIDC issuer, workload
    # pool). In-cluster layers never read them; adapters read them through facts().
    cloud_facts: CloudFacts

    def facts(self, kind: type[F]) -> F:
        """This cluster's facts as the adapter of `kind`'s cloud expects them; another cloud's adapter fails
        here, with both names, instead of reading a missing attribute later."""
        if not isinstance(self.cloud_facts, kind):
            raise TypeError(f"{kind.__name__} requested from a cluster with {type(self.cloud_facts).__name__}")
        return self.cloud_facts

    def gpu_pool(self, name: str) -> NodePoolContract:
        for pool in self.gpu_pools:
            if pool.name == name:
                return pool
        raise KeyError(f"no GPU pool named {name!r}; pools: {[p.name for p in self.gpu_pools]}")


@dataclass(frozen=True)
class ContainerRegistry:
    """The stack's own image registry (an ECR repository, an Artifact Registry docker repository) and what
    a build needs to push to it. Images are named `image(name, tag)`; where ECR holds one image name per
    repository, the platform's images share the repository and their names prefix the tag. Tags never
    move (immutable where the cloud supports it): images are tagged by their build context's content hash
    and consumers run them by digest. Pulls need no credentials from here: the kubelet pulls with the node's
    identity, which the cluster layer already grants read on the registry."""

    url: pulumi.Output[str]  # <host>/<repository path>, e.g. 1234.dkr.ecr.us-east-1.amazonaws.com/mlplatform-dev
    address: pulumi.Output[str]  # the registry host `docker login` takes
    # None for both: a registry that takes anonymous pushes (a local cluster's registry container)
    username: pulumi.Output[str] | None
    password: pulumi.Output[str] | None  # secret; short-lived (an ECR token, a Google access token), read at each run
    one_image_per_repository: bool  # ECR: the image's name goes into the tag

    def image(self, name: str, tag: str) -> pulumi.Output[str]:
        """The reference an image called `name` is pushed under with `tag`."""
        if self.one_image_per_repository:
            return self.url.apply(lambda url: f"{url}:{name}-{tag}")
        return self.url.apply(lambda url: f"{url}/{name}:{tag}")


@dataclass(frozen=True)
class StorageOutputs:
    buckets: Mapping[BucketPurpose, Bucket]
    identities: Mapping[str, WorkloadIdentity]
    registry: ContainerRegistry

    def identity(self, spec: WorkloadSpec) -> WorkloadIdentity:
        return self.identities[spec.key]


@dataclass(frozen=True)
class DataOutputs:
    postgres: PostgresEndpoint
    redis: RedisEndpoint
    kafka: KafkaEndpoint | None = None  # None when data.kafka.enabled is false
