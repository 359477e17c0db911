"""The streaming layer as planned on every stack: on in prod, off in dev; topics as cloud resources with
the configured retention, created before the job; the FlinkDeployment valid against the operator's pinned
CRD, running as the streaming identity, pointed at the brokers and the feature server through the typed
contracts; its pods admitted by its namespace's Pod Security level; every connection it needs allowed by
the flow table's NetworkPolicies (as the CNI evaluates them) and nothing more; versions in step."""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest

from components import workloads
from components.cluster.aws.network import VPC_CIDR
from components.cluster.gcp import NODE_CIDR
from components.contracts import WEBHOOK_PORTS, KafkaTopicApi, Namespace
from components.guardrails import FEATURE_SERVER_PORT, FLINK_JOBMANAGER_PODS, FLINK_OPERATOR_PODS, MLFLOW_PORT
from components.streaming.job import DEPLOYMENT, MAIN_CONTAINER, PUSH_SOURCE
from components.streaming.operator import operator_values
from components.streaming.topics import replication
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.config.errors import ConfigError
from mlplatform.config.profiles import profile_defaults
from mlplatform.config.streaming import StreamingConfig
from mlplatform.connections import addresses
from mlplatform.netpol import Cni, Outside, Pod, PolicySet
from mlplatform.pins import (
    FLINK_CRD_VERSION,
    FLINK_KAFKA_CONNECTOR,
    FLINK_OPERATOR,
    FLINK_VERSION,
    MANAGED_KAFKA_JAVA_AUTH,
    MSK_IAM_JAVA_AUTH,
)
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from mlplatform.podsecurity import check_pod
from tests.support.crds import plain, spec_schema
from tests.support.graph import depends

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "streaming"))
from feature_push.settings import Settings  # noqa: E402

FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
RELEASE = "kubernetes:helm.sh/v3:Release"
TOPICS = {"aws": "aws:msk/topic:Topic", "gcp": "gcp:managedkafka/topic:Topic"}
ON, OFF = ("prod", "gcp-prod"), ("dev", "gcp-dev")


def _cloud(stack: str) -> str:
    return "gcp" if stack.startswith("gcp") else "aws"


def _job(doc: PlanDocument) -> Registration:
    return doc.one(FLINK, "mlplatform-feature-push")


def _env(doc: PlanDocument) -> dict[str, str]:
    [main] = _job(doc).inputs["spec"]["podTemplate"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in main["env"]}


@pytest.mark.parametrize("stack", OFF)
def test_off_in_dev_nothing_is_made(plan, stack: str) -> None:
    doc = plan(stack)
    assert not doc.by_type(FLINK) and not doc.by_type(TOPICS[_cloud(stack)])
    assert not [r for r in doc.by_type(RELEASE) if r.inputs["chart"] == FLINK_OPERATOR.chart]


def test_the_profiles_turn_it_on_in_prod_only() -> None:
    from mlplatform.config import Cloud, Profile

    assert [profile_defaults(p, Cloud.AWS)["streaming"]["enabled"] for p in (Profile.DEV, Profile.PROD)] == [
        False,
        True,
    ]


def test_config_needs_kafka_and_feast_and_a_known_source_topic() -> None:
    raw = {"profile": "dev", "cloud": "aws", "streaming": {"enabled": True}, "data": {"kafka": {"enabled": False}}}
    with pytest.raises(ConfigError, match=r"streaming\.enabled needs data\.kafka\.enabled"):
        load_config(raw, "dev")
    with pytest.raises(ValueError, match="sourceTopic 'clicks' is not one of topics"):
        StreamingConfig.model_validate({"sourceTopic": "clicks"})
    with pytest.raises(ValueError, match="repeat"):
        StreamingConfig.model_validate({"topics": [{"name": "a"}, {"name": "a"}], "sourceTopic": "a"})
    with pytest.raises(ValueError):
        StreamingConfig.model_validate({"topics": [{"name": "Bad.Name"}], "sourceTopic": "Bad.Name"})


@pytest.mark.parametrize("stack", ON)
def test_topics_are_cloud_resources_with_the_configured_retention(plan, stack: str) -> None:
    doc, cloud = plan(stack), _cloud(stack)
    cfg = load_config(namespace_values(read_stack_file(ROOT, stack)), stack)
    [topic] = doc.by_type(TOPICS[cloud])
    configured = cfg.streaming.topic(cfg.streaming.source_topic)
    if cloud == "aws":
        inputs, configs = topic.inputs, json.loads(topic.inputs["configs"])
        assert inputs["name"] == configured.name and "mlplatform:data:Data$aws:msk/cluster" in str(topic.dependencies)
        assert inputs["clusterArn"].startswith("arn:aws:kafka:")
    else:
        inputs, configs = topic.inputs, topic.inputs["configs"]
        assert inputs["topicId"] == configured.name and inputs["location"] == cfg.region
    assert int(inputs["partitionCount"]) == configured.partitions
    assert configs["retention.ms"] == str(configured.retention_hours * 3_600_000)
    factor, min_insync = replication(cfg, KafkaTopicApi.MSK if cloud == "aws" else KafkaTopicApi.MANAGED_KAFKA)
    assert int(inputs["replicationFactor"]) == factor == 3 and configs["min.insync.replicas"] == str(min_insync)
    assert topic.protect and topic.retain_on_delete  # events producers cannot resend
    assert f"pulumi:providers:{cloud}" in topic.provider


@pytest.mark.parametrize("stack", ON)
def test_topics_and_the_operator_exist_before_the_job(plan, stack: str) -> None:
    doc = plan(stack)
    job = _job(doc)
    operator = doc.one(RELEASE, "mlplatform-flink-operator")
    for earlier in [*doc.by_type(TOPICS[_cloud(stack)]), operator]:
        assert depends(doc, job, earlier), earlier.name
    # the operator's webhook is served with a cert-manager Certificate: after cert-manager answers
    assert depends(doc, operator, doc.one(RELEASE, "mlplatform-cert-manager"))


@pytest.mark.parametrize("stack", ON)
def test_the_flink_deployment_validates_against_the_pinned_crd(plan, stack: str) -> None:
    schema = spec_schema("flink.apache.org_flinkdeployments.yaml", "v1beta1")
    spec = plain(_job(plan(stack)).inputs["spec"])
    jsonschema.validate(spec, schema)
    assert (
        spec["flinkVersion"] == FLINK_CRD_VERSION and FLINK_CRD_VERSION in schema["properties"]["flinkVersion"]["enum"]
    )
    # the pod template's main container is the one Flink merges into its JobManager and TaskManager pods
    assert [c["name"] for c in spec["podTemplate"]["spec"]["containers"]] == [MAIN_CONTAINER]
    assert spec["job"]["upgradeMode"] == "last-state" and spec["flinkConfiguration"]["high-availability.type"]


@pytest.mark.parametrize("stack", ON)
def test_the_job_reaches_kafka_and_feast_through_the_contracts(plan, stack: str) -> None:
    doc = plan(stack)
    env = _env(doc)
    settings = Settings.from_env(env)  # the job's own reader accepts what the component writes
    assert settings.bootstrap_servers == doc.outputs["kafkaBootstrapServers"]
    assert settings.push_url == doc.outputs["featureServerUrl"]
    handler = "GcpLoginCallbackHandler" if _cloud(stack) == "gcp" else "IAMOAuthBearerLoginCallbackHandler"
    props = settings.kafka_properties
    assert props["security.protocol"] == "SASL_SSL" and props["sasl.mechanism"] == "OAUTHBEARER"
    assert props["sasl.login.callback.handler.class"].endswith(handler)
    assert "OAuthBearerLoginModule required" in props["sasl.jaas.config"]
    # the push source the job names is the one feature_repo/streaming.py declares
    tree = ast.parse((ROOT / "feature_repo" / "streaming.py").read_text())
    declared = [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PushSource"
        for kw in node.keywords
        if kw.arg == "name"
    ]
    assert declared == [settings.push_source] == [PUSH_SOURCE]
    assert settings.topic in [t.inputs.get("name", t.inputs.get("topicId")) for t in doc.by_type(TOPICS[_cloud(stack)])]
    # checkpoints on the datasets bucket, through the filesystem plugin for its store
    bucket = doc.outputs["buckets"]["datasets"]
    assert _job(doc).inputs["spec"]["flinkConfiguration"]["execution.checkpointing.dir"].startswith(bucket)
    assert env["ENABLE_BUILT_IN_PLUGINS"].startswith("flink-gs-fs" if bucket.startswith("gs://") else "flink-s3-fs")


@pytest.mark.parametrize("stack", ON)
def test_the_job_runs_as_the_streaming_identity_which_only_reads_kafka(plan, stack: str) -> None:
    doc = plan(stack)
    spec = workloads.STREAMING
    assert _job(doc).inputs["spec"]["serviceAccount"] == spec.service_account
    account = doc.one("kubernetes:core/v1:ServiceAccount", "mlplatform-feature-push-service-account")
    assert account.inputs["metadata"]["namespace"] == Namespace.STREAMING.value
    principal = doc.outputs["workloadIdentities"][spec.key]
    assert principal in json.dumps(account.inputs["metadata"]["annotations"])
    if _cloud(stack) == "aws":
        policy = json.loads(doc.one("aws:iam/rolePolicy:RolePolicy", "mlplatform-streaming-kafka").inputs["policy"])
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert "kafka-cluster:ReadData" in actions and not {a for a in actions if "Write" in a or "Create" in a}
    else:
        acl = doc.one("gcp:managedkafka/acl:Acl", "mlplatform-kafka-allTopics").inputs["aclEntries"]
        mine = {e["operation"] for e in acl if principal in e["principal"]}
        assert mine == {"READ", "DESCRIBE"}


@pytest.mark.parametrize("stack", ON)
def test_checkpoints_authenticate_as_the_pods_workload_identity(plan, stack: str) -> None:
    """S3A's default chain (Hadoop 3.3, in flink-s3-fs-hadoop) has no web-identity provider, and the platform
    blocks the metadata service: on EKS the provider is named (apache/flink#16592); GCS's plugin uses
    Application Default Credentials, which GKE's Workload Identity serves. The state is on the datasets
    bucket, which the streaming identity may write."""
    doc = plan(stack)
    conf = _job(doc).inputs["spec"]["flinkConfiguration"]
    bucket = doc.outputs["buckets"]["datasets"]
    assert conf["execution.checkpointing.dir"].startswith(bucket)
    assert conf["high-availability.storageDir"].startswith(bucket)
    provider = conf.get("fs.s3a.aws.credentials.provider")
    if _cloud(stack) == "aws":
        assert provider == "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"
    else:
        assert provider is None and bucket.startswith("gs://")


@pytest.mark.parametrize("stack", ON)
def test_every_new_pod_passes_its_namespaces_pod_security(plan, stack: str) -> None:
    doc = plan(stack)
    level = {
        r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for r in doc.by_type("kubernetes:core/v1:Namespace")
    }
    assert level[Namespace.STREAMING.value] == level[Namespace.FLINK_OPERATOR.value] == "restricted"
    spec = plain(_job(doc).inputs["spec"])
    pod = spec["podTemplate"]["spec"]
    # what Flink runs: the template's main container with the deployment's image and Flink's command
    pod = {**pod, "containers": [{**pod["containers"][0], "image": spec["image"]}]}
    assert check_pod(pod, level[Namespace.STREAMING.value], f"FlinkDeployment {DEPLOYMENT}") == []
    # the operator's pods, from the values (the chart's templates write these verbatim: rendered by
    # test_render_stacks.py once ../shared/charts holds the package)
    values = doc.one(RELEASE, "mlplatform-flink-operator").inputs["values"]
    operator_pod = {
        "securityContext": values["podSecurityContext"],
        "containers": [
            {"name": "flink-kubernetes-operator", "image": "x", "securityContext": values["operatorSecurityContext"]},
            {"name": "flink-webhook", "image": "x", "securityContext": values["webhookSecurityContext"]},
        ],
    }
    assert check_pod(plain(operator_pod), level[Namespace.FLINK_OPERATOR.value], "flink operator") == []


def test_the_webhook_is_made_only_with_cert_manager_and_never_with_the_default_password() -> None:
    from components.contracts import pool_contract
    from components.placement import Placement

    placement = Placement(pool_contract("cpu"), spread=False)
    common = {
        "pin": FLINK_OPERATOR,
        "watched": "streaming",
        "job_service_account": "feature-push",
        "placement": placement,
    }
    on, off = operator_values(**common, webhook=True), operator_values(**common, webhook=False)
    assert (on["webhook"]["create"], off["webhook"]["create"]) == (True, False)
    assert on["webhook"]["keystore"]["useDefaultPassword"] is False
    assert on["image"]["tag"] == FLINK_OPERATOR.app_version != "latest"


# -- connections, as the CNI evaluates the flow table's policies ------------------------------------------


def _broker(doc: PlanDocument) -> str:
    """An address a broker has: MSK's ENIs in the VPC (EKS); Managed Kafka's endpoints in the node subnet (GKE)."""
    return str(ipaddress.ip_network(NODE_CIDR)[200]) if _is_gke(doc) else str(ipaddress.ip_network(VPC_CIDR)[9000])


def _is_gke(doc: PlanDocument) -> bool:
    return bool(doc.by_type("gcp:container/cluster:Cluster"))


@pytest.mark.parametrize("stack", ON)
def test_connections_the_streaming_path_needs_pass_and_others_do_not(plan, stack: str) -> None:
    doc = plan(stack)
    a = addresses(doc)
    policies = PolicySet(doc, a.cni)
    stream = Namespace.STREAMING.value
    jobmanager = Pod(stream, {"app": DEPLOYMENT, **FLINK_JOBMANAGER_PODS}, a.pod)
    taskmanager = Pod(stream, {"app": DEPLOYMENT, "type": "flink-native-kubernetes", "component": "taskmanager"}, a.pod)
    operator = Pod(Namespace.FLINK_OPERATOR.value, FLINK_OPERATOR_PODS, a.pod)
    feature_server = Pod(Namespace.PLATFORM.value, {"app.kubernetes.io/name": "feast-feature-server"}, a.pod)
    mlflow = Pod(Namespace.PLATFORM.value, {"app.kubernetes.io/name": "mlflow"}, a.pod)
    kafka_port = 9092 if _is_gke(doc) else 9098
    broker = Outside(_broker(doc), "Kafka broker")
    allowed = [
        ("operator -> JobManager REST", operator, jobmanager, 8081),
        ("TaskManager -> feature server /push", taskmanager, feature_server, FEATURE_SERVER_PORT),
        ("TaskManager -> Kafka", taskmanager, broker, kafka_port),
        ("JobManager -> Kafka (split discovery)", jobmanager, broker, kafka_port),
        ("TaskManager -> JobManager RPC", taskmanager, jobmanager, 6123),
        ("JobManager -> Kubernetes API / STS", jobmanager, Outside("203.0.113.20", "cloud API"), 443),
        ("operator -> Kubernetes API", operator, Outside(a.control_plane, "API server"), 443),
    ]
    if a.cni is Cni.VPC_CNI:  # the API server calls the webhook from its ENIs (GKE: konnectivity, in webhook_calls)
        allowed.append(("API server -> operator webhook", Outside(a.control_plane, "API server"), operator, 9443))
    refused = [
        ("TaskManager -> PostgreSQL", taskmanager, Outside(_broker(doc), "PostgreSQL"), 5432),
        ("TaskManager -> MLflow", taskmanager, mlflow, MLFLOW_PORT),
        ("training -> JobManager REST", Pod(Namespace.TRAINING.value, {}, a.pod), jobmanager, 8081),
        ("operator -> the internet", operator, Outside("203.0.113.20", "anywhere"), 443),
    ]
    assert 9443 in WEBHOOK_PORTS
    problems = [f"{n}: {v.why}" for n, s, t, p in allowed if not (v := policies.decide(s, t, p)).allowed]
    problems += [f"{n} is allowed" for n, s, t, p in refused if policies.decide(s, t, p).allowed]
    assert problems == []


# -- versions in step -------------------------------------------------------------------------------------


def test_the_image_the_requirements_and_the_jvm_libraries_match_the_pins() -> None:
    dockerfile = (ROOT / "streaming" / "Dockerfile").read_text()
    assert re.search(rf"^FROM docker.io/library/flink:{re.escape(FLINK_VERSION)}-java17$", dockerfile, re.M)
    assert f"apache-flink=={FLINK_VERSION}\n" in (ROOT / "streaming" / "requirements.txt").read_text()
    minor = ".".join(FLINK_VERSION.split(".")[:2])
    assert "v" + minor.replace(".", "_") == FLINK_CRD_VERSION
    pom = (ROOT / "streaming" / "jvm" / "pom.xml").read_text()
    declared = {
        f"{g}:{a}:{v}"
        for g, a, v in re.findall(
            r"<dependency>\s*<groupId>([^<]+)</groupId>\s*<artifactId>([^<]+)</artifactId>\s*<version>([^<]+)</version>",
            pom,
        )
    }
    assert declared == {FLINK_KAFKA_CONNECTOR, MSK_IAM_JAVA_AUTH, MANAGED_KAFKA_JAVA_AUTH}


@pytest.mark.slow
def test_the_seed_the_feature_view_and_the_job_agree_on_columns() -> None:
    """The empty batch source the storage layer seeds, the feature view feature_repo/streaming.py declares
    and the job's push frame: one column list, in one order (Feast's file store appends only then)."""
    import subprocess

    from feature_push.events import COLUMNS, FEATURES

    from tests.support.tools import venv_python

    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    probe = (
        "import json, os, sys; sys.path.insert(0, 'feature_repo'); os.environ['DATASETS_URI'] = 's3://b';"
        "import pyarrow.parquet as pq; import streaming as s;"
        "print(json.dumps([pq.read_schema('feature_repo/data/driver_trip_stats.parquet').names,"
        " [f.name for f in s.driver_trip_stats.schema], s.driver_trips_push.batch_source.path]))"
    )
    done = subprocess.run([python, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seed, fields, path = json.loads(done.stdout.strip().splitlines()[-1])
    assert seed == list(COLUMNS)
    assert sorted(f for f in fields if f != "driver_id") == sorted(FEATURES)  # Feast keeps its own order
    from components.streaming import STREAM_DATA

    assert path == f"s3://b/{STREAM_DATA.key}"


@pytest.mark.parametrize("stack", (*ON, *OFF))
def test_the_push_sources_batch_source_is_seeded_wherever_feast_is(plan, stack: str) -> None:
    """feature_repo/streaming.py is applied on every stack with Feast, and the hourly materialization reads
    every view's batch source: the (empty) file exists whether or not the streaming job runs."""
    from components.streaming import STREAM_DATA

    doc = plan(stack)
    kind = "gcp:storage/bucketObject:BucketObject" if _cloud(stack) == "gcp" else "aws:s3/bucketObjectv2:BucketObjectv2"
    seeded = [r for r in doc.by_type(kind) if (r.inputs.get("key") or r.inputs.get("name")) == STREAM_DATA.key]
    assert doc.by_type("kubernetes:batch/v1:CronJob") and len(seeded) == 1
    for r in seeded:
        assert Path(r.inputs["source"]["path"]).resolve() == STREAM_DATA.source
