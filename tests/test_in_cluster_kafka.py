"""Kafka in the cluster (Strimzi 1.2.0), planned on dev (whose default it is) and on prod with
`data.kafka.mode: in-cluster` (streaming on: the Flink job, its topic and its user), checked as the API server,
admission, the CNI and real clients would meet it.

- Every Strimzi resource validates strictly against the pinned CRDs (kafka.strimzi.io/v1, the only version).
- Each workload granted Kafka is a KafkaUser whose ACLs follow its grant, and whose password is the one its
  own namespace's Secret hands its pods; no workload without a grant is a user; no cloud grant exists.
- The listener certificate is the platform CA's and verifies for the bootstrap host clients are given and
  for every broker name Strimzi advertises.
- Every pod Strimzi makes passes `data`'s Pod Security level, built as Strimzi builds it; the flows admit the
  clients and the operator's connections and nothing else.
- Topics are KafkaTopics because the endpoint says so; the Flink job logs in with SCRAM and trusts the CA.
- (slow) Each granted pod's environment, with the password its Secret holds, makes a confluent-kafka client
  in .venv-kafka that librdkafka's parser accepts, that verifies a TLS server presenting the plan's
  certificate by the bootstrap host name, and that completes a real SCRAM-SHA-512 exchange (RFC 5802/7677)
  with a server holding the KafkaUser's password. A real Kafka broker would be better: Maven Central is not
  reachable from this machine or CI (only PyPI, Debian and npm are), so no Kafka jar can be fetched.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import secrets
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509

from components import workloads
from components.contracts import Access, Namespace
from components.data.in_cluster.strimzi import CLUSTER_NAME, SERVER_TLS_SECRET
from components.guardrails import POD_SECURITY, STRIMZI_BROKER_PODS, flow
from components.lifecycle.kafka import JAAS_KEY, PASSWORD_KEY
from mlplatform.config.loader import deep_merge, load_config, namespace_values, read_stack_file
from mlplatform.connections import connections, strimzi_connections
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan import tls_mocks
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import mock_password
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from mlplatform.podsecurity import check_pod, missing_requests
from streaming.feature_push.settings import Settings
from tests.support.crds import plain, spec_schema
from tests.support.kafka_wire import read_frame
from tests.support.plan_tls import server_certificate
from tests.support.tools import venv_python
from tests.test_kafka_clients import REQUIREMENTS, containers, declared_and_rendered_pods, pod_environment

STRIMZI = "kubernetes:kafka.strimzi.io/v1:"
CRDS = {
    "Kafka": "kafka.strimzi.io_kafkas.yaml",
    "KafkaNodePool": "kafka.strimzi.io_kafkanodepools.yaml",
    "KafkaTopic": "kafka.strimzi.io_kafkatopics.yaml",
    "KafkaUser": "kafka.strimzi.io_kafkausers.yaml",
}
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
KEY = "tls:index/privateKey:PrivateKey"
UPSTREAM_CHART = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "charts" / "strimzi-kafka-operator"
_plans: dict[str, PlanDocument] = {}
_configs: dict[str, dict[str, Any]] = {}


def kafka_plan(stack: str) -> PlanDocument:
    """dev as it is (Kafka in-cluster by default); prod with data.kafka.mode in-cluster (and the opt-in
    prod requires), planned once."""
    if stack not in _plans:
        config = read_stack_file(PROJECT_DIR, stack)
        if stack != "dev":
            data = deep_merge(
                config.get("mlplatform:data") or {}, {"kafka": {"mode": "in-cluster"}, "allowInClusterInProd": True}
            )
            config = {**config, "mlplatform:data": data}
        _configs[stack] = config
        _plans[stack] = synthesize(stack if stack == "dev" else f"{stack}-kafka-in-cluster", config_map=config)
    return _plans[stack]


def kafka_config(stack: str) -> Any:
    kafka_plan(stack)
    return load_config(namespace_values(_configs[stack]), stack)


@pytest.fixture(scope="module", params=["dev", "prod"])
def doc(request: pytest.FixtureRequest) -> PlanDocument:
    return kafka_plan(request.param)


def strimzi(doc: PlanDocument, kind: str) -> list[Mapping[str, Any]]:
    return [plain(r.inputs) for r in doc.by_type(f"{STRIMZI}{kind}")]


def clients(doc: PlanDocument) -> dict[str, Access]:
    """The workloads granted Kafka in this stack: the platform's, and streaming's where its job runs."""
    specs = [*workloads.ALL, *([workloads.STREAMING] if strimzi(doc, "KafkaTopic") else [])]
    return {w.key: w.kafka for w in specs if w.kafka is not None}


# -- the resources, as the API server takes them -----------------------------------------------------


def test_every_strimzi_resource_validates_against_the_pinned_crd(doc: PlanDocument) -> None:
    kinds = {r.type.rsplit(":", 1)[-1] for r in doc.resources if "strimzi.io" in r.type}
    assert {"Kafka", "KafkaNodePool", "KafkaUser"} <= kinds <= set(CRDS)
    assert all(r.type.startswith(STRIMZI) for r in doc.resources if "strimzi.io" in r.type)  # v1 only
    for kind, crd in CRDS.items():
        schema = spec_schema(crd, "v1")
        for obj in strimzi(doc, kind):
            jsonschema.validate(obj["spec"], schema)


def test_a_misspelt_field_is_refused() -> None:
    """The strict schema is what catches a field the API server would prune silently."""
    spec = copy.deepcopy(strimzi(kafka_plan("dev"), "Kafka")[0]["spec"])
    spec["kafka"]["listeners"][0]["authentication"]["tipe"] = "scram-sha-512"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, spec_schema(CRDS["Kafka"], "v1"))


def test_one_kraft_pool_of_broker_controllers_sized_from_config(doc: PlanDocument) -> None:
    cfg = kafka_config(doc.stack.removesuffix("-kafka-in-cluster"))
    kafka_cfg = cfg.data.kafka
    [kafka], [pool] = strimzi(doc, "Kafka"), strimzi(doc, "KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    spec = pool["spec"]
    assert spec["roles"] == ["controller", "broker"] and spec["replicas"] == kafka_cfg.brokers
    assert spec["storage"]["type"] == "persistent-claim" and spec["storage"]["size"] == f"{kafka_cfg.storage_gb}Gi"
    prod = cfg.profile.value == "prod"
    assert spec["storage"]["deleteClaim"] is not prod  # prod keeps its events' disks; dev leaves none behind
    [registration] = doc.by_type(f"{STRIMZI}KafkaNodePool")
    assert registration.protect is prod and doc.one(f"{STRIMZI}Kafka").protect is prod
    size = kafka_cfg.in_cluster
    assert spec["resources"]["requests"]["memory"] == spec["resources"]["limits"]["memory"]
    assert spec["resources"]["requests"]["memory"] == f"{round(size.memory_gb * 1024)}Mi"
    assert spec["resources"]["requests"]["cpu"] == f"{round(size.cpu * 1000)}m"
    # the storage class is the cluster's (a StorageClass the program or the cloud made)
    assert spec["storage"]["class"] in {"gp3", "pd-balanced", "standard"}
    k = kafka["spec"]["kafka"]
    # KRaft needs no ZooKeeper key and Strimzi 1.x ignores the old opt-in annotations: none set
    assert not (kafka["metadata"].get("annotations") or {}).keys() & {"strimzi.io/kraft", "strimzi.io/node-pools"}
    assert k["metadataVersion"].split("-")[0] == ".".join(k["version"].split(".")[:2])
    [listener] = k["listeners"]
    assert (listener["port"], listener["type"], listener["tls"]) == (9093, "internal", True)
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert k["authorization"] == {"type": "simple"}
    factor = min(3, kafka_cfg.brokers)
    assert k["config"]["default.replication.factor"] == factor == k["config"]["offsets.topic.replication.factor"]
    for container in ("topicOperator", "userOperator"):
        assert kafka["spec"]["entityOperator"][container]["resources"]["requests"]


def test_users_and_acls_follow_each_workloads_grant(doc: PlanDocument) -> None:
    users = {u["metadata"]["name"]: u["spec"] for u in strimzi(doc, "KafkaUser")}
    assert {k: None for k in users} == {k: None for k in clients(doc)}  # exactly the granted workloads
    for name, spec in users.items():
        access = clients(doc)[name]
        assert spec["authentication"]["type"] == "scram-sha-512"
        acls = {a["resource"]["type"]: set(a["operations"]) for a in spec["authorization"]["acls"]}
        assert all(
            a["resource"]["name"] == "*" and a.get("type", "allow") == "allow" for a in spec["authorization"]["acls"]
        )
        assert {"Read", "Describe"} <= acls["topic"] and acls["group"] == {"Read"}
        writes = acls["topic"] & {"Write", "Create", "Delete", "Alter", "All", "AlterConfigs"}
        assert writes == ({"Write", "Create"} if access is Access.READ_WRITE else set()), name
        assert "cluster" not in acls and "transactionalId" not in acls


def _password_of(doc: PlanDocument, secret: Any) -> str:
    """The generated password a Secret was made from (its one RandomPassword dependency), as the plan's mocks
    generate it: the plan redacts Secret data, so this is how a test reads what the Secret holds."""
    [urn] = [d for d in secret.dependencies if "random:index/randomPassword:RandomPassword::" in d]
    password = doc.by_urn(urn)
    return mock_password(password.name, int(password.inputs.get("length", 16)))


def _secret(doc: PlanDocument, namespace: str, name: str) -> Any:
    [found] = [
        s
        for s in doc.by_type(SECRET)
        if s.inputs["metadata"]["namespace"] == namespace and s.inputs["metadata"]["name"] == name
    ]
    return found


def test_every_client_holds_its_own_users_password(doc: PlanDocument) -> None:
    """The KafkaUser's password Secret (in `data`) and the Secret its workload's pods read (in their own
    namespace) hold the same generated password, and no two users share one."""
    by_key = {w.key: w for w in (*workloads.ALL, workloads.STREAMING)}
    seen = set()
    for user in strimzi(doc, "KafkaUser"):
        name = user["metadata"]["name"]
        ref = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == "password"
        broker_side = _password_of(doc, _secret(doc, "data", ref["name"]))
        client_side = _password_of(doc, _secret(doc, by_key[name].namespace.value, f"kafka-{name}"))
        assert broker_side == client_side and broker_side not in seen
        seen.add(broker_side)


def test_no_cloud_grant_for_in_cluster_kafka(doc: PlanDocument) -> None:
    """SCRAM users and ACLs are the cluster's own: the storage layer makes no MSK IAM policy."""
    assert not [p for p in doc.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-kafka")]
    assert not doc.by_type("aws:msk/cluster:Cluster") and not doc.by_type("aws:msk/topic:Topic")


# -- the listener certificate ----------------------------------------------------------------------------


def _listener_certificate(doc: PlanDocument) -> tuple[str, str, str]:
    """(certificate, PKCS #8 key, CA) the plan hands the listener, as its tls mocks made them."""
    [kafka] = strimzi(doc, "Kafka")
    ref = kafka["spec"]["kafka"]["listeners"][0]["configuration"]["brokerCertChainAndKey"]
    assert ref["secretName"] == SERVER_TLS_SECRET and (ref["certificate"], ref["key"]) == ("tls.crt", "tls.key")
    resource = next(s.name for s in doc.by_type(SECRET) if s.inputs["metadata"]["name"] == ref["secretName"])
    certificate = server_certificate(doc, resource)
    key = doc.one(KEY, resource)
    return certificate.cert_pem, tls_mocks._private_key(key.name, key.inputs)["privateKeyPemPkcs8"], certificate.ca_pem


def test_the_listener_key_is_pkcs8() -> None:
    """Kafka's PEM key store reads only unencrypted PKCS #8 (the Kafka CRD's `key` description); the tls
    provider's default private_key_pem for ECDSA is SEC1, so the Secret must carry private_key_pem_pkcs8."""
    doc = kafka_plan("dev")
    _, key, _ = _listener_certificate(doc)
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    key_resource = doc.one(KEY, "mlplatform-kafka-listener-tls")
    sec1 = tls_mocks._private_key(key_resource.name, key_resource.inputs)["privateKeyPem"]
    assert sec1.startswith("-----BEGIN EC PRIVATE KEY-----")  # what the Secret must not hold


def _client_env_values(doc: PlanDocument, name: str) -> set[str]:
    """Every plain value of variable `name` in any container env the plan declares (Helm values included)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("name") == name and "value" in value:
                found.add(str(value["value"]))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for r in doc.resources:
        walk(r.inputs)
    return found


def broker_hosts(doc: PlanDocument) -> list[str]:
    """Every host name Strimzi advertises for the brokers of the plan's node pool: `<cluster>-<pool>-<id>.
    <cluster>-kafka-brokers.<ns>.svc` (node ids from 0, KafkaListenersReconciler.java)."""
    [kafka], [pool] = strimzi(doc, "Kafka"), strimzi(doc, "KafkaNodePool")
    cluster, ns = kafka["metadata"]["name"], kafka["metadata"]["namespace"]
    return [
        f"{cluster}-{pool['metadata']['name']}-{i}.{cluster}-kafka-brokers.{ns}.svc"
        for i in range(pool["spec"]["replicas"])
    ]


def _tls_server(cert: str, key: str, work: Path) -> tuple[socketserver.TCPServer, int]:
    (work / "tls.crt").write_text(cert)
    (work / "tls.key").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(work / "tls.crt", work / "tls.key")

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as conn:
                    conn.recv(1)
            except (ssl.SSLError, OSError):
                return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _handshake(port: int, ca: str, host: str) -> str | None:
    context = ssl.create_default_context(cadata=ca)
    try:
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as e:
        return e.verify_message


def test_clients_verify_the_listener_by_every_name_they_are_sent_to(tmp_path: Path) -> None:
    """TLS to a server presenting the plan's listener certificate, trusting only the CA the pods are handed
    (KAFKA_SSL_CA_PEM), succeeds by the bootstrap host the pods are given and by every advertised broker
    name, with and without the cluster domain; any other name fails."""
    doc = kafka_plan("prod")
    cert, key, ca = _listener_certificate(doc)
    assert _client_env_values(doc, "KAFKA_SSL_CA_PEM") == {ca}
    [bootstrap] = {b.rsplit(":", 1)[0] for b in _client_env_values(doc, "KAFKA_BOOTSTRAP_SERVERS")}
    server, port = _tls_server(cert, key, tmp_path)
    try:
        hosts = [bootstrap, *broker_hosts(doc)]
        hosts += [f"{h}.cluster.local" for h in hosts]
        assert {h: _handshake(port, ca, h) for h in hosts} == dict.fromkeys(hosts)
        for wrong in (
            "kafka.data.svc",
            f"{CLUSTER_NAME}-kafka-bootstrap.other.svc",
            "a.b.mlplatform-kafka-brokers.data.svc",
        ):
            assert _handshake(port, ca, wrong) is not None, wrong
    finally:
        server.shutdown()
        server.server_close()


# -- Pod Security ----------------------------------------------------------------------------------------

# RestrictedPodSecurityProvider's container context for every Kafka, init and entity-operator container
# (api/.../security/profiles/impl/RestrictedPodSecurityProvider.java @ 1.2.0), and the pod context of a Kafka
# node with persistent storage (BaselinePodSecurityProvider.createStatefulPodSecurityContext: fsGroup 0)
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
    "capabilities": {"drop": ["ALL"]},
}


def _provider(values: Mapping[str, Any]) -> str:
    env = {e["name"]: e["value"] for e in values.get("extraEnvs") or []}
    return env.get("STRIMZI_POD_SECURITY_PROVIDER_CLASS", "baseline")  # ClusterOperatorConfig's default


def strimzi_pods(doc: PlanDocument) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pods Strimzi makes from the plan, as it makes them: a Kafka node (the pool's resources and
    template) and the entity operator (topic and user operator containers), each container with the
    provider's context; and the operator's own pod from the chart's defaults with the planned values."""
    values = doc.one(RELEASE, "mlplatform-kafka-operator").inputs["values"]
    restricted = _provider(values) == "restricted"
    context = RESTRICTED_CONTAINER if restricted else {}
    [kafka], [pool] = strimzi(doc, "Kafka"), strimzi(doc, "KafkaNodePool")
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}},
        {"name": "strimzi-tmp", "emptyDir": {"medium": "Memory"}},
        {"name": "kafka-metrics-and-logging", "configMap": {"name": "x"}},
    ]
    yield (
        "kafka node",
        {
            "securityContext": {"fsGroup": 0},
            "containers": [{"name": "kafka", "resources": pool["spec"]["resources"], "securityContext": context}],
            "volumes": volumes,
        },
    )
    eo = kafka["spec"]["entityOperator"]
    yield (
        "entity operator",
        {
            "containers": [
                {"name": name, "resources": eo[key]["resources"], "securityContext": context}
                for name, key in (("topic-operator", "topicOperator"), ("user-operator", "userOperator"))
            ],
            "volumes": [{"name": "strimzi-tmp", "emptyDir": {}}, {"name": "eo-certs", "secret": {"secretName": "x"}}],
        },
    )
    if UPSTREAM_CHART.exists():
        merged = deep_merge(yaml.safe_load((UPSTREAM_CHART / "values.yaml").read_text()), dict(values))
        yield (
            "operator",
            {
                "securityContext": merged["podSecurityContext"],
                "containers": [
                    {
                        "name": "strimzi-cluster-operator",
                        "resources": merged["resources"],
                        "securityContext": merged["securityContext"],
                    }
                ],
                "volumes": [
                    {"name": "strimzi-tmp", "emptyDir": {}},
                    {"name": "co-config-volume", "configMap": {"name": "x"}},
                ],
            },
        )


def test_every_strimzi_pod_passes_the_data_namespaces_pod_security_level(doc: PlanDocument) -> None:
    level = POD_SECURITY[Namespace.DATA]
    assert level == "restricted"
    found = []
    for what, pod in strimzi_pods(doc):
        found += check_pod(pod, level, what) + missing_requests(pod, what)
    assert found == [], [str(v) for v in found]


def test_strimzis_default_provider_would_be_caught() -> None:
    """Without STRIMZI_POD_SECURITY_PROVIDER_CLASS the operator's baseline provider gives containers no
    context at all: the check above would refuse those pods, as admission would."""
    doc = copy.deepcopy(kafka_plan("dev"))
    release = doc.one(RELEASE, "mlplatform-kafka-operator")
    release.inputs["values"]["extraEnvs"] = []
    found = [v for what, pod in strimzi_pods(doc) if what != "operator" for v in check_pod(pod, "restricted", what)]
    assert {v.container for v in found} >= {"kafka", "topic-operator", "user-operator"}


def test_strimzi_makes_no_network_policy_of_its_own(doc: PlanDocument) -> None:
    """Strimzi's own policy would open the listener to every pod (no networkPolicyPeers): it is off."""
    values = doc.one(RELEASE, "mlplatform-kafka-operator").inputs["values"]
    assert values["generateNetworkPolicy"] is False and values["watchNamespaces"] == []
    assert doc.one(RELEASE, "mlplatform-kafka-operator").inputs["namespace"] == "data"


# -- NetworkPolicies -------------------------------------------------------------------------------------


def test_every_upstream_connection_passes_the_policies_with_kafka_in_the_cluster(doc: PlanDocument) -> None:
    addrs, found = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    mine = strimzi_connections(doc, addrs)
    assert len(mine) >= 9 and {c.name for c in mine} <= {c.name for c in found}
    failures = [f"{c.name}: {v.why}" for c in found if not (v := policies.decide(c.source, c.to, c.port)).allowed]
    assert failures == []


def test_kafka_clients_reach_the_brokers_and_nobody_else_does(doc: PlanDocument) -> None:
    addrs, _ = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    broker = Pod("data", {**STRIMZI_BROKER_PODS, "strimzi.io/kind": "Kafka"}, addrs.pod)
    granted = {w.namespace.value for w in (*workloads.ALL, workloads.STREAMING) if w.kafka is not None}
    assert {n.value for n in flow("kafka-in-cluster").sources} == granted
    for ns in (n.value for n in Namespace):
        client = Pod(ns, {"app": "client"}, addrs.pod)
        verdict = policies.decide(client, broker, 9093)
        assert verdict.allowed == (ns in granted | {"data"}), (ns, verdict.why)
    for port in (9090, 9091, 8443):  # Strimzi's internal ports: from `data` only
        assert not policies.decide(Pod("mlplatform", {"app": "client"}, addrs.pod), broker, port).allowed
    # the API server for Strimzi's pods, not for every pod in `data`
    api = Outside(addrs.control_plane, "API server")
    assert policies.decide(broker, api, 443).allowed
    assert not policies.decide(Pod("data", {"app": "other"}, addrs.pod), api, 443).allowed


# -- topics and the streaming job ------------------------------------------------------------------------


def test_topics_are_kafka_topics_bound_to_the_cluster() -> None:
    doc = kafka_plan("prod")
    cfg = kafka_config("prod")
    [kafka] = strimzi(doc, "Kafka")
    topics = {t["spec"]["topicName"]: t for t in strimzi(doc, "KafkaTopic")}
    assert set(topics) == {t.name for t in cfg.streaming.topics}
    for t in cfg.streaming.topics:
        topic = topics[t.name]
        assert topic["metadata"]["namespace"] == kafka["metadata"]["namespace"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert topic["spec"]["partitions"] == t.partitions and topic["spec"]["replicas"] <= cfg.data.kafka.brokers
        assert topic["spec"]["config"]["retention.ms"] == str(t.retention_ms)
    registrations = doc.by_type(f"{STRIMZI}KafkaTopic")
    assert all(r.protect and r.retain_on_delete for r in registrations)
    job = doc.one("kubernetes:flink.apache.org/v1beta1:FlinkDeployment")
    assert {r.urn for r in registrations} <= set(job.dependencies)


def test_the_flink_job_logs_in_with_its_scram_user_and_trusts_the_ca() -> None:
    doc = kafka_plan("prod")
    job = doc.one("kubernetes:flink.apache.org/v1beta1:FlinkDeployment").inputs
    [container] = job["spec"]["podTemplate"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    props = json.loads(env["KAFKA_PROPERTIES"]["value"])
    _, _, ca = _listener_certificate(doc)
    assert props == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": ca,
    }
    ref = env["KAFKA_SASL_JAAS_CONFIG"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "kafka-streaming", "key": JAAS_KEY}
    secret = _secret(doc, job["metadata"]["namespace"], ref["name"])
    password = _password_of(doc, secret)
    jaas = (
        f'org.apache.kafka.common.security.scram.ScramLoginModule required username="streaming" password="{password}";'
    )
    plain_env = {k: str(e["value"]) for k, e in env.items() if "value" in e} | {"KAFKA_SASL_JAAS_CONFIG": jaas}
    settings = Settings.from_env(plain_env)
    assert settings.kafka_properties["sasl.jaas.config"] == jaas and settings.bootstrap_servers.endswith(":9093")


# -- a real client: parser, TLS host name check and a SCRAM-SHA-512 exchange (slow) ---------------------

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 18, 17, 36, 3
SCRAM_ITERATIONS = 4096  # Kafka's minimum for SCRAM credentials (ScramMechanism.minIterations)


def _scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) as a broker keeps a SCRAM-SHA-512 credential (RFC 5802 section 3)."""
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    return hashlib.sha512(client_key).digest(), hmac.new(salted, b"Server Key", "sha512").digest()


class ScramBroker(socketserver.ThreadingTCPServer):
    """Kafka's ApiVersions, SaslHandshake (SCRAM-SHA-512 only) and SaslAuthenticate over TLS, as a broker
    with the given users: it verifies each client's proof and answers with its own signature, which the
    client checks in turn (RFC 5802 mutual authentication). It records who authenticated and whether the client
    went on (it accepted the server's signature), then hangs up."""

    daemon_threads = allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, users: Mapping[str, str], done: Path) -> None:
        self.context, self.done, self.authenticated, self.refused = context, done, [], []
        self.credentials = {}
        for user, password in users.items():
            salt = secrets.token_bytes(16)
            self.credentials[user] = (salt, *_scram_keys(password, salt, SCRAM_ITERATIONS))
        super().__init__(("127.0.0.1", 0), ScramHandler)


class ScramHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ScramBroker = self.server  # type: ignore[assignment]
        state: dict[str, Any] = {}
        try:
            conn = server.context.wrap_socket(self.request, server_side=True)
            while (frame := read_frame(conn)) is not None:
                api_key, version, correlation = struct.unpack(">hhi", frame[:8])
                if state.get("user"):
                    server.done.write_text(state["user"])  # a request after SASL: the signature was accepted
                    return
                if api_key == API_VERSIONS:
                    # Metadata too, so that an authenticated client goes on to ask for it
                    keys = [(API_VERSIONS, 0, 3), (SASL_HANDSHAKE, 0, 1), (SASL_AUTHENTICATE, 0, 1), (METADATA, 0, 9)]
                    body = struct.pack(">h", 0) + bytes([len(keys) + 1])
                    body += b"".join(struct.pack(">hhh", *k) + b"\x00" for k in keys) + struct.pack(">i", 0) + b"\x00"
                    if version < 3:
                        body = struct.pack(">hi", 0, len(keys)) + b"".join(struct.pack(">hhh", *k) for k in keys)
                elif api_key == SASL_HANDSHAKE:
                    mechanism = b"SCRAM-SHA-512"
                    body = struct.pack(">hi", 0, 1) + struct.pack(">h", len(mechanism)) + mechanism
                elif api_key == SASL_AUTHENTICATE:
                    (client_id_len,) = struct.unpack(">h", frame[8:10])
                    at = 10 + max(client_id_len, 0)
                    (length,) = struct.unpack(">i", frame[at : at + 4])
                    reply, error = self.scram(state, frame[at + 4 : at + 4 + length].decode())
                    message = struct.pack(">h", -1) if error is None else struct.pack(">h", len(error)) + error.encode()
                    code = 0 if error is None else 58  # SASL_AUTHENTICATION_FAILED
                    body = (
                        struct.pack(">h", code) + message + struct.pack(">i", len(reply)) + reply + struct.pack(">q", 0)
                    )
                else:
                    return
                conn.sendall(struct.pack(">ii", 4 + len(body), correlation) + body)
        except (ssl.SSLError, ConnectionError, OSError):
            return

    def scram(self, state: dict[str, Any], message: str) -> tuple[bytes, str | None]:
        server: ScramBroker = self.server  # type: ignore[assignment]
        if "first" not in state:  # client-first-message: n,,n=<user>,r=<nonce>
            bare = message.split(",", 2)[2]
            fields = dict(part.split("=", 1) for part in bare.split(","))
            user = fields["n"].replace("=2C", ",").replace("=3D", "=")
            if user not in server.credentials:
                server.refused.append(user)
                return b"", f"unknown user {user}"
            salt = server.credentials[user][0]
            nonce = fields["r"] + base64.b64encode(secrets.token_bytes(18)).decode()
            first = f"r={nonce},s={base64.b64encode(salt).decode()},i={SCRAM_ITERATIONS}"
            state.update(first=first, bare=bare, user_name=user, nonce=nonce)
            return first.encode(), None
        fields = dict(part.split("=", 1) for part in message.split(","))
        without_proof = message.rsplit(",p=", 1)[0]
        _, stored_key, server_key = server.credentials[state["user_name"]]
        auth_message = f"{state['bare']},{state['first']},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha512").digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(fields["p"]), signature, strict=True))
        if fields["r"] != state["nonce"] or hashlib.sha512(client_key).digest() != stored_key:
            server.refused.append(state["user_name"])
            return b"", "authentication failed"
        server.authenticated.append(state["user_name"])
        state["user"] = state["user_name"]
        return f"v={base64.b64encode(hmac.new(server_key, auth_message, 'sha512').digest()).decode()}".encode(), None


# What a pod runs: librdkafka's parser takes the platform's config as is; then a Producer from it (only the
# port moved to the test broker's) authenticates or gives up.
CLIENT = r"""
import json, os, sys, time
import confluent_kafka
import mlplatform_client.kafka_auth as kafka_auth

overrides = json.loads(sys.argv[1])
done = overrides.pop("_done")
seconds = float(overrides.pop("_seconds", 15))
config = kafka_auth.client_config()
confluent_kafka.Producer(config)  # librdkafka's own parser accepts every key and value
errors = []
producer = confluent_kafka.Producer({**config, **overrides, "error_cb": lambda e: errors.append(str(e))})
deadline = time.time() + seconds
while not os.path.exists(done) and time.time() < deadline:
    producer.poll(0.1)
shown = {k: v for k, v in config.items() if k not in ("sasl.password", "ssl.ca.pem")}
print(json.dumps({"module": kafka_auth.__file__, "settings": shown, "ca": config.get("ssl.ca.pem"),
                  "done": os.path.exists(done), "errors": errors[:5]}))
"""


def _resolve_secrets(doc: PlanDocument, namespace: str, container: Mapping[str, Any]) -> dict[str, str]:
    """The container's secretKeyRef variables, as the kubelet reads them from the plan's Secrets."""
    found = {}
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref and e["name"].startswith("KAFKA_"):
            assert ref["key"] == PASSWORD_KEY, e
            found[e["name"]] = _password_of(doc, _secret(doc, namespace, ref["name"]))
    return found


def _in_mount_namespace(hosts: Path, command: list[str]) -> list[str]:
    """`command` in a private mount namespace whose /etc/hosts is `hosts`: the client resolves the plan's
    Service names to this machine, and nothing outside the process sees it."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
            str(hosts), *command]  # fmt: skip


def _can_unshare() -> bool:
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.fixture
def scram_broker(tmp_path: Path) -> Iterator[ScramBroker]:
    doc = kafka_plan("dev")
    cert, key, _ = _listener_certificate(doc)
    (tmp_path / "tls.crt").write_text(cert)
    (tmp_path / "tls.key").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    # the brokers' users: each KafkaUser with the password its `data` Secret holds
    users = {}
    for user in strimzi(doc, "KafkaUser"):
        ref = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        users[user["metadata"]["name"]] = _password_of(doc, _secret(doc, "data", ref["name"]))
    server = ScramBroker(context, users, tmp_path / "authenticated")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _run(python: str, env: dict[str, str], hosts: Path, overrides: dict[str, Any], cwd: Path) -> dict[str, Any]:
    command = _in_mount_namespace(hosts, [python, "-P", "-c", CLIENT, json.dumps(overrides)])
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_granted_pods_authenticate_with_scram_over_verified_tls(rendered, scram_broker, tmp_path: Path) -> None:
    python = venv_python(".venv-kafka", REQUIREMENTS)
    if not _can_unshare():
        if os.environ.get("CI"):
            pytest.fail("unshare -m is refused: the test needs a private mount namespace (CI runs as root)")
        pytest.skip("unshare -m is not permitted here")
    doc = kafka_plan("dev")
    _, _, ca = _listener_certificate(doc)
    by_account = {(w.namespace.value, w.service_account): w for w in workloads.ALL}
    tried: set[str] = set()
    for _, namespace, pod in declared_and_rendered_pods(doc, rendered("dev")):
        spec = by_account.get((namespace, pod.get("serviceAccountName")))
        for c in containers(pod):
            names = {e["name"] for e in c.get("env") or []}
            if spec is None or "KAFKA_SASL_USERNAME" not in names or spec.key in tried:
                continue
            root = tmp_path / spec.key
            env = pod_environment(doc, namespace, pod, c, root) | _resolve_secrets(doc, namespace, c)
            env |= {"PATH": "/usr/bin:/bin", "HOME": str(root)}
            host, port = env["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)
            assert port == "9093" and env["KAFKA_SASL_USERNAME"] == spec.key
            hosts = tmp_path / f"{spec.key}.hosts"
            hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1 {host}\n127.0.0.1 kafka.example.svc\n")
            scram_broker.done.unlink(missing_ok=True)
            test_port = scram_broker.server_address[1]
            result = _run(
                python,
                env,
                hosts,
                {"bootstrap.servers": f"{host}:{test_port}", "_done": str(scram_broker.done)},
                tmp_path,
            )
            assert Path(result["module"]).resolve().is_relative_to(root), result["module"]  # the mounted package
            assert result["settings"]["sasl.mechanism"] == "SCRAM-SHA-512" and result["ca"] == ca
            assert result["done"] and scram_broker.done.read_text() == spec.key, (
                result["errors"],
                scram_broker.refused,
            )
            assert scram_broker.authenticated[-1] == spec.key
            tried.add(spec.key)
    assert tried == {w.key for w in workloads.ALL if w.kafka is not None}
    # the host name check is on: the same client, sent to a name the certificate lacks, never authenticates
    before = len(scram_broker.authenticated)
    scram_broker.done.unlink(missing_ok=True)
    overrides = {
        "bootstrap.servers": f"kafka.example.svc:{scram_broker.server_address[1]}",
        "_done": str(scram_broker.done),
        "_seconds": 6,
    }
    result = _run(python, env, hosts, overrides, tmp_path)
    assert not result["done"] and len(scram_broker.authenticated) == before
    assert any("certificate" in e.lower() or "ssl" in e.lower() for e in result["errors"]), result["errors"]


def test_scram_broker_refuses_a_wrong_password(tmp_path: Path) -> None:
    """The test broker really checks the proof: a client with another password is refused (in-process, with
    the RFC 5802 client computation)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    doc = kafka_plan("dev")
    cert, key, ca = _listener_certificate(doc)
    (tmp_path / "c").write_text(cert)
    (tmp_path / "k").write_text(key)
    context.load_cert_chain(tmp_path / "c", tmp_path / "k")
    broker = ScramBroker(context, {"feast": "right"}, tmp_path / "done")
    handler = ScramHandler.__new__(ScramHandler)
    handler.server = broker

    def exchange(password: str) -> str | None:
        state: dict[str, Any] = {}
        first, refused = handler.scram(state, "n,,n=feast,r=abc")
        assert refused is None
        fields = dict(p.split("=", 1) for p in first.decode().split(","))
        salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha512").digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth = f"n=feast,r=abc,{first.decode()},{without_proof}".encode()
        signature = hmac.new(hashlib.sha512(client_key).digest(), auth, "sha512").digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
        return handler.scram(state, f"{without_proof},p={proof}")[1]

    assert exchange("right") is None and exchange("wrong") == "authentication failed"
    assert x509.load_pem_x509_certificate(ca.encode()).subject  # the CA parses: the plan's, as the pods get it
