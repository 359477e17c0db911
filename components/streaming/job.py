"""The feature-push job as a FlinkDeployment (Flink 2.2, application mode, PyFlink): its image built from
streaming/, its service account bound to the streaming workload's cloud identity (Kafka read on the
feature-event topics, the datasets bucket for checkpoints), and the environment the job's settings come
from (streaming/feature_push/settings.py): the brokers and Java SASL login from the data layer's
KafkaEndpoint, the push endpoint from the lifecycle layer's feature server ServiceEndpoint.

Why PyFlink, not Java: the transform and the push client are plain Python (streaming/feature_push/events.py,
push.py), tested for real in this repository's CI against Feast's own feature server, in the language of the
rest of the platform and of the feature repository; the repository has no JVM build. The Kafka source is
still Flink's Java connector (in the image's lib/), so the Kafka login is Java's (KafkaClientAuth
.jvm_sasl_properties). The cost: a Python worker beside each TaskManager, fine at feature-event rates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Bucket, KafkaEndpoint, ObjectStore, ServiceEndpoint, WorkloadIdentity
from components.guardrails import FLINK_JOBMANAGER_PODS
from components.kube import PART_OF, RESTRICTED_CONTAINER, RESTRICTED_POD, identity_service_account
from components.lifecycle.kafka import JAAS_KEY, credentials_secret, secret_env
from components.placement import Placement
from mlplatform.config.streaming import StreamingConfig
from mlplatform.pins import FLINK_CRD_VERSION, FLINK_VERSION

DEPLOYMENT = "feature-push"
PUSH_SOURCE = "driver_trips_push"  # feature_repo/streaming.py
GROUP_ID = "mlplatform-feature-push"
FLINK_UID = 9999  # the flink image's `flink` user (streaming/Dockerfile runs as it)
PYTHON = "/opt/venv/bin/python"  # streaming/Dockerfile's venv with PyFlink
JOB_FILE = "/opt/flink/usrlib/feature_push/job.py"
MAIN_CONTAINER = "flink-main-container"  # the container name Flink's pod templates must use
# Flink's bundled filesystem plugins (opt/ of the flink image), enabled by the image's entrypoint from
# ENABLE_BUILT_IN_PLUGINS: checkpoints and savepoints on the datasets bucket with the pod's workload identity
PLUGINS = {
    ObjectStore.S3: f"flink-s3-fs-hadoop-{FLINK_VERSION}.jar",
    ObjectStore.GCS: f"flink-gs-fs-hadoop-{FLINK_VERSION}.jar",
}
# How the filesystem plugin authenticates as the pod's workload identity. flink-s3-fs-hadoop bundles Hadoop
# 3.3.x's S3A with AWS SDK v1 (the move to Hadoop 3.4 / SDK v2 is apache/flink#27026, open in 2026), whose
# default provider chain has no web-identity provider, so IRSA's token (AWS_WEB_IDENTITY_TOKEN_FILE) would go
# unused and the metadata service the platform blocks would be tried instead; Flink forwards `fs.s3a.*` keys to
# S3A (apache/flink#16592, FLINK-23487: "fs.s3a.aws.credentials.provider:
# com.amazonaws.auth.WebIdentityTokenCredentialsProvider" for IRSA). flink-gs-fs-hadoop uses Application
# Default Credentials, which GKE's metadata server answers for Workload Identity.
CREDENTIALS: dict[ObjectStore, dict[str, str]] = {
    ObjectStore.S3: {"fs.s3a.aws.credentials.provider": "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"},
    ObjectStore.GCS: {},
}
CHECKPOINT_INTERVAL = "60s"
JAAS_ENV = "KAFKA_SASL_JAAS_CONFIG"  # streaming/feature_push/settings.py reads it into sasl.jaas.config


def filesystem_settings(datasets: Bucket) -> dict[str, str]:
    """The filesystem plugin's settings for the datasets bucket. An S3-compatible store in the cluster (local)
    is S3A with its endpoint, path-style requests (the store serves no per-bucket host names) and the key from
    the environment (the identity's env: SDK v1's EnvironmentVariableCredentialsProvider reads
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); S3A's own keys (hadoop-aws 3.3 core-default.xml: fs.s3a.endpoint,
    fs.s3a.path.style.access, fs.s3a.connection.ssl.enabled, fs.s3a.endpoint.region), forwarded by Flink."""
    if datasets.endpoint is None:
        return CREDENTIALS[datasets.store]
    return {
        "fs.s3a.endpoint": datasets.endpoint,
        "fs.s3a.endpoint.region": datasets.region,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": str(datasets.endpoint.startswith("https://")).lower(),
        "fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    }


@dataclass(frozen=True)
class FeaturePushArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity
    kafka: KafkaEndpoint
    feature_server: ServiceEndpoint
    datasets: Bucket
    image: pulumi.Input[str]
    config: StreamingConfig
    placement: Placement
    topics: tuple[pulumi.Resource, ...]  # the job starts only once every topic it may read exists
    operator: pulumi.Resource  # the operator's release: its CRDs and its webhook


def kafka_properties(kafka: KafkaEndpoint) -> dict[str, pulumi.Input[str]]:
    """The Java Kafka client's login, from the Kafka contract (the brokers go separately: an Output). A token
    login is the cloud library's callback handler; SCRAM trusts the in-cluster CA as a PEM trust store, given
    inline (Kafka's ssl.truststore.type PEM with ssl.truststore.certificates, KIP-651), while its JAAS line,
    which holds the password, comes from the workload's Secret (JAAS_ENV, read by the job's settings)."""
    auth = kafka.auth
    props: dict[str, pulumi.Input[str]] = {
        "security.protocol": auth.security_protocol,
        "sasl.mechanism": auth.sasl_mechanism,
        **dict(auth.jvm_sasl_properties),
    }
    if auth.scram is not None:
        props |= {"ssl.truststore.type": "PEM", "ssl.truststore.certificates": auth.scram.ca_certificate_pem}
    return props


def kafka_secret_env(kafka: KafkaEndpoint) -> list[dict[str, object]]:
    """SCRAM: the JAAS line from the workload's Secret (components/lifecycle/kafka.py credentials_secret)."""
    user = kafka.auth.user
    if kafka.auth.scram is None:
        return []
    if user is None:
        raise ValueError("the job's Kafka endpoint must be granted() to its workload, which picks its user")
    return [secret_env(JAAS_ENV, user.secret_name, JAAS_KEY)]


def job_settings(config: StreamingConfig, feature_server: ServiceEndpoint) -> dict[str, object]:
    """FEATURE_PUSH: exactly the fields streaming/feature_push/settings.py Settings reads."""
    return {
        "topic": config.source_topic,
        "group_id": GROUP_ID,
        "push_url": feature_server.url,
        "push_source": PUSH_SOURCE,
        "push_to": config.push_to,
        "window_minutes": config.window_minutes,
        "out_of_orderness_seconds": config.out_of_orderness_seconds,
        "flush_seconds": config.flush_seconds,
        "batch_rows": config.batch_rows,
    }


def job_env(
    kafka: KafkaEndpoint, config: StreamingConfig, feature_server: ServiceEndpoint, store: ObjectStore
) -> list[dict[str, object]]:
    return [
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": kafka.bootstrap_servers},
        {
            "name": "KAFKA_PROPERTIES",
            "value": pulumi.Output.from_input(kafka_properties(kafka)).apply(lambda p: json.dumps(p, sort_keys=True)),
        },
        *kafka_secret_env(kafka),
        {"name": "FEATURE_PUSH", "value": json.dumps(job_settings(config, feature_server), sort_keys=True)},
        {"name": "ENABLE_BUILT_IN_PLUGINS", "value": PLUGINS[store]},
    ]


def flink_deployment_spec(
    *,
    image: pulumi.Input[str],
    service_account: pulumi.Input[str],
    kafka: KafkaEndpoint,
    feature_server: ServiceEndpoint,
    datasets: Bucket,
    config: StreamingConfig,
    placement: Placement,
    identity_env: Sequence[dict[str, object]] = (),
) -> dict[str, object]:
    """`identity_env`: the job identity's WorkloadIdentity.env (the local store's key; nothing elsewhere)."""
    state = datasets.uri.apply(lambda uri: f"{uri}/flink/{DEPLOYMENT}")
    pod = {
        "securityContext": {**RESTRICTED_POD, "runAsUser": FLINK_UID, "runAsGroup": FLINK_UID, "fsGroup": FLINK_UID},
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "containers": [
            {
                "name": MAIN_CONTAINER,
                "securityContext": RESTRICTED_CONTAINER,
                "env": [*job_env(kafka, config, feature_server, datasets.store), *identity_env],
            }
        ],
    }
    return {
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "flinkVersion": FLINK_CRD_VERSION,
        "serviceAccount": service_account,
        "flinkConfiguration": {
            "taskmanager.numberOfTaskSlots": "2",
            # checkpoints hold the Kafka offsets and the open windows (at-least-once into Feast)
            "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
            "execution.checkpointing.mode": "AT_LEAST_ONCE",
            "execution.checkpointing.dir": state.apply(lambda s: f"{s}/checkpoints"),
            "execution.checkpointing.savepoint-dir": state.apply(lambda s: f"{s}/savepoints"),
            # Kubernetes HA (leader election and job metadata in ConfigMaps, the chart's job Role allows them):
            # the operator's last-state upgrades and a JobManager restart resume from the newest checkpoint
            "high-availability.type": "kubernetes",
            "high-availability.storageDir": state.apply(lambda s: f"{s}/ha"),
            "restart-strategy.type": "exponential-delay",
            **filesystem_settings(datasets),
            "python.executable": PYTHON,
            "python.client.executable": PYTHON,
        },
        "podTemplate": {"metadata": {"labels": PART_OF}, "spec": pod},
        # Flink's process sizes (the operator requests them, memory as the limit too); services.sizing small
        # (dev, local): a JobManager of 1 GiB (heap ~450 MiB after Flink's 256 MiB metaspace, 192 MiB minimum
        # JVM overhead and 128 MiB off-heap) and a TaskManager of 1.25 GiB, whose Python workers still get
        # ~330 MiB of managed memory (Flink's 0.4 managed fraction of the 832 MiB left after metaspace and
        # overhead; flink-docs "Set up TaskManager Memory" defaults)
        "jobManager": {
            "replicas": 1,
            "resource": {"cpu": 0.25, "memory": "1024m"} if placement.small else {"cpu": 0.5, "memory": "1536m"},
        },
        "taskManager": {
            "resource": {"cpu": 0.5, "memory": "1280m"} if placement.small else {"cpu": 1, "memory": "2048m"}
        },
        "job": {
            "jarURI": f"local:///opt/flink/opt/flink-python-{FLINK_VERSION}.jar",
            "entryClass": "org.apache.flink.client.python.PythonDriver",
            "args": ["-pyclientexec", PYTHON, "-py", JOB_FILE],
            "parallelism": config.parallelism,
            "upgradeMode": "last-state",
            "state": "running",
        },
    }


class FeaturePush(pulumi.ComponentResource):
    """The job's service account and its FlinkDeployment."""

    deployment: k8s.apiextensions.CustomResource
    service_account: k8s.core.v1.ServiceAccount

    def __init__(self, name: str, args: FeaturePushArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:streaming:FeaturePush", name, None, opts)
        self.service_account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        credentials = credentials_secret(self, f"{name}-kafka-credentials", args.kafka, args.namespace)
        self.deployment = k8s.apiextensions.CustomResource(
            name,
            api_version="flink.apache.org/v1beta1",
            kind="FlinkDeployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DEPLOYMENT, namespace=args.namespace.metadata.name, labels=PART_OF
            ),
            spec=flink_deployment_spec(
                image=args.image,
                service_account=self.service_account.metadata.name,
                kafka=args.kafka,
                feature_server=args.feature_server,
                datasets=args.datasets,
                config=args.config,
                placement=args.placement,
                identity_env=args.identity.env,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    self.service_account,
                    args.operator,
                    *args.topics,
                    *([credentials] if credentials is not None else []),
                ],
            ),
        )
        self.register_outputs({"jobManagerPods": FLINK_JOBMANAGER_PODS})
