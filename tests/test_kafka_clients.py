"""Authentication paths (issue 19 item 8): the Kafka settings the plan hands a pod build a client that
authenticates, and only workloads granted Kafka get them.

- Plan: MSK producers may write idempotently, on the cluster ARN; every pod with KAFKA_* variables runs as
  a workload granted Kafka and every granted workload has such pods (Helm releases rendered from the pinned
  charts, so the pods are the ones the charts make); each mounts the token callbacks' package where its
  PYTHONPATH points.
- Client (slow; .venv-kafka from tests/venvs/kafka.txt, the libraries the contract's requirements name):
  a granted pod's environment as the rendered chart gives it (the brokers resolved from the ConfigMap it
  references) and the package laid out from the plan's ConfigMap as the kubelet mounts it make a real
  confluent-kafka Producer. Its token callback runs for real: on AWS the MSK signer presigns offline with
  static credentials; on GCP google-auth takes the service account's token from a fake GKE metadata server
  (GCE_METADATA_HOST). A second Producer, pointed at a fake broker that speaks Kafka's ApiVersions,
  SaslHandshake and SaslAuthenticate over TLS, must send that token as its OAUTHBEARER initial response.
"""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from packaging.requirements import Requirement

from components import workloads
from components.contracts import Access
from mlplatform.manifests import RenderReport
from mlplatform.plan.document import PlanDocument
from mlplatform.podsecurity import pod_specs
from tests.support.kafka_wire import read_frame
from tests.support.kubelet import mount_config_map
from tests.support.tools import required_tool, venv_python

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mlplatform_client"  # the repository's client package, which pods import the callbacks from
REQUIREMENTS = "tests/venvs/kafka.txt"
STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")
# the stacks whose Kafka is managed (MSK, Managed Kafka): clients log in with a token callback. dev runs Kafka
# in the cluster, where clients log in with SCRAM (tests/test_in_cluster_kafka.py)
TOKEN_STACKS = ("prod", "gcp-prod")
BY_ACCOUNT = {(w.namespace.value, w.service_account): w for w in workloads.ALL}


# -- the plan --------------------------------------------------------------------------------------


def test_msk_producers_may_write_idempotently_on_the_cluster(prod: PlanDocument) -> None:
    """Idempotent producers (the default since Kafka 3.0, KIP-679) send InitProducerId, which MSK IAM
    authorizes as kafka-cluster:WriteDataIdempotently on the CLUSTER: its only resource type is `cluster`
    (docs.aws.amazon.com/service-authorization/latest/reference/list_apachekafkaapisforamazonmskclusters.html)
    and it needs Connect and WriteData (docs.aws.amazon.com/msk/latest/developerguide/kafka-actions.html).
    Consumers get no write right at all."""
    policies = {
        p.name.removeprefix("mlplatform-").removesuffix("-kafka"): json.loads(p.inputs["policy"])
        for p in prod.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("-kafka")
    }
    clients = (*workloads.ALL, workloads.STREAMING)  # streaming is on in prod
    assert set(policies) == {w.key for w in clients if w.kafka is not None}
    for key, policy in policies.items():
        spec = next(w for w in clients if w.key == key)
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        cluster = by_sid["Connect"]["Resource"]
        assert ":cluster/" in cluster
        idempotent = [s for s in policy["Statement"] if "kafka-cluster:WriteDataIdempotently" in s["Action"]]
        if spec.kafka is Access.READ_WRITE:
            assert [s["Resource"] for s in idempotent] == [cluster], key
            assert {"kafka-cluster:Connect", "kafka-cluster:WriteData"} <= {
                a for s in policy["Statement"] for a in s["Action"]
            }
        else:
            assert idempotent == [] and all("Write" not in a for s in policy["Statement"] for a in s["Action"])


def declared_and_rendered_pods(doc: PlanDocument, report: RenderReport) -> Iterator[tuple[str, str, dict]]:
    """(where, namespace, pod spec) of every pod the plan declares directly or its charts render."""
    for r in doc.resources:
        if not r.type.startswith("kubernetes:") or "helm.sh" in r.type:
            continue
        obj = {**r.inputs, "kind": r.inputs.get("kind") or r.type.rsplit(":", 1)[-1]}
        namespace = (obj.get("metadata") or {}).get("namespace")
        for label, spec, _ in pod_specs(obj):
            yield f"{r.name} {label}", str(namespace), spec
    for release in report.releases:
        for obj in release.objects:
            namespace = (obj.get("metadata") or {}).get("namespace") or release.namespace
            for label, spec, _ in pod_specs(obj):
                yield f"release {release.release}: {label}", str(namespace), spec


def containers(pod: dict) -> list[dict]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def kafka_env_names(container: dict) -> set[str]:
    return {e["name"] for e in container.get("env") or [] if e["name"].startswith("KAFKA_")}


@pytest.mark.parametrize("stack", STACKS)
def test_kafka_settings_reach_exactly_the_workloads_granted_kafka(plan, rendered, stack: str) -> None:
    """A pod with Kafka settings but no grant (Ray had them, through the feature store's environment) is
    handed brokers it cannot use; a grant without settings is a client that cannot connect."""
    with_settings = set()
    for where, namespace, pod in declared_and_rendered_pods(plan(stack), rendered(stack)):
        if not any(kafka_env_names(c) for c in containers(pod)):
            continue
        spec = BY_ACCOUNT.get((namespace, pod.get("serviceAccountName")))
        assert spec is not None and spec.kafka is not None, f"{where}: Kafka settings without a Kafka grant"
        with_settings.add(spec.key)
    assert with_settings == {w.key for w in workloads.ALL if w.kafka is not None}


@pytest.mark.parametrize("stack", TOKEN_STACKS)
def test_every_kafka_client_mounts_its_token_callback(plan, rendered, stack: str) -> None:
    """The callback the environment names is importable in the pod: the package is mounted from the plan's
    ConfigMap, file for file as in this repository, below a PYTHONPATH entry."""
    doc = plan(stack)
    maps = {
        (c.inputs["metadata"]["namespace"], c.inputs["metadata"].get("name")): c.inputs.get("data") or {}
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
    }
    checked = 0
    for where, namespace, pod in declared_and_rendered_pods(doc, rendered(stack)):
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for c in containers(pod):
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            if "KAFKA_OAUTH_CALLBACK" not in env:
                continue
            module = env["KAFKA_OAUTH_CALLBACK"].split(":")[0]
            assert module == f"{PACKAGE}.kafka_auth", where
            path = (env.get("PYTHONPATH") or "").split(":")
            [mount] = [m for m in c.get("volumeMounts") or [] if m["mountPath"] in {f"{p}/{PACKAGE}" for p in path}]
            config_map = volumes[mount["name"]]["configMap"]["name"]
            shipped = maps[(namespace, config_map)]
            assert {"__init__.py", "kafka_auth.py"} <= set(shipped), where
            assert shipped == {f: (ROOT / PACKAGE / f).read_text() for f in shipped}, where
            checked += 1
    assert checked >= 2


def venv_pins() -> dict[str, Requirement]:
    lines = (ROOT / REQUIREMENTS).read_text().splitlines()
    pins = [Requirement(line) for line in lines if "==" in line and not line.startswith("#")]
    return {pin.name: pin for pin in pins}


@pytest.mark.parametrize("stack", STACKS)
def test_the_test_venv_holds_what_pods_are_told_to_install(plan, stack: str) -> None:
    """KAFKA_CLIENT_REQUIREMENTS, as the plan hands it to pods, is what the client test below runs with."""
    pins = venv_pins()
    told = {
        e["value"]
        for r in plan(stack).resources
        if r.type.startswith("kubernetes:")
        for _, pod, _ in pod_specs({**r.inputs, "kind": r.inputs.get("kind") or r.type.rsplit(":", 1)[-1]})
        for c in containers(pod)
        for e in c.get("env") or []
        if e["name"] == "KAFKA_CLIENT_REQUIREMENTS"
    }
    assert len(told) == 1, told
    names = set()
    for text in told.pop().split():
        requirement = Requirement(text)
        names.add(requirement.name)
        pin = pins.get(requirement.name)
        assert pin is not None, f"{REQUIREMENTS} lacks {text}"
        [version] = [s.version for s in pin.specifier]
        assert requirement.specifier.contains(version) and requirement.extras <= pin.extras, f"{text} vs {pin}"
    assert "confluent-kafka" in names


# -- a real client from a pod's settings ------------------------------------------------------------

# What a pod runs: the client config exactly as the platform's environment makes it, a Producer from it,
# then (with the fake broker's address and CA only) one that authenticates.
CLIENT = r"""
import json, os, sys, time
import confluent_kafka

# the settings as plain librdkafka properties: the library must know the mechanism
plain = {"bootstrap.servers": "BOOTSTRAP_SERVERS", "security.protocol": "SECURITY_PROTOCOL", "sasl.mechanism":
         "SASL_MECHANISM"}
confluent_kafka.Producer({key: os.environ[f"KAFKA_{name}"] for key, name in plain.items()})

import mlplatform_client.kafka_auth as kafka_auth

overrides = json.loads(sys.argv[1])
done = overrides.pop("_done")
calls = []

def run(config, until):
    callback = config["oauth_cb"]

    def recording(oauth_config):
        calls.append([oauth_config, *callback(oauth_config)])
        return tuple(calls[-1][1:])

    producer = confluent_kafka.Producer({**config, "oauth_cb": recording})
    deadline = time.time() + 15
    while not until() and time.time() < deadline:
        producer.poll(0.1)

config = kafka_auth.client_config()
run(config, lambda: calls)
first = len(calls)
run(kafka_auth.client_config(**overrides), lambda: len(calls) > first and os.path.exists(done))
settings = {k: v for k, v in config.items() if k != "oauth_cb"}
print(json.dumps({"module": kafka_auth.__file__, "settings": settings, "calls": calls}))
"""


def pod_environment(doc: PlanDocument, namespace: str, pod: dict, container: dict, root: Path) -> dict[str, str]:
    """The container's plain and ConfigMap-referenced variables, its plan-made ConfigMap volumes laid out
    under `root` and PYTHONPATH pointing there."""
    maps = {
        c.inputs["metadata"].get("name"): c.inputs.get("data") or {}
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["namespace"] == namespace
    }
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "configMapKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = maps[ref["name"]][ref["key"]]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        source = volumes[m["name"]].get("configMap")
        if source and source["name"] in maps:
            mount_config_map(root / m["mountPath"].lstrip("/"), maps[source["name"]])
    if "PYTHONPATH" in env:
        env["PYTHONPATH"] = ":".join(str(root / p.lstrip("/")) for p in env["PYTHONPATH"].split(":"))
    return env


def granted_pods(doc: PlanDocument, report: RenderReport) -> Iterator[tuple[str, str, dict, dict]]:
    """One container per workload granted Kafka that holds its settings (its pods share one environment)."""
    seen = set()
    for _, namespace, pod in declared_and_rendered_pods(doc, report):
        spec = BY_ACCOUNT.get((namespace, pod.get("serviceAccountName")))
        if spec is None or spec.kafka is None or spec.key in seen:
            continue
        for c in containers(pod):
            if kafka_env_names(c) and spec.key not in seen:
                seen.add(spec.key)
                yield spec.key, namespace, pod, c


# -- a fake broker: Kafka's SASL handshake over TLS (https://kafka.apache.org/protocol) ---------------

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36


class FakeBroker(socketserver.ThreadingTCPServer):
    """Answers ApiVersions (v3, flexible), SaslHandshake v1 (OAUTHBEARER) and SaslAuthenticate v1, keeps each
    initial client response, then hangs up: enough for a client to authenticate, nothing more."""

    daemon_threads = allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, done: Path) -> None:
        self.context, self.done, self.auth_bytes = context, done, []
        super().__init__(("127.0.0.1", 0), FakeBrokerHandler)


class FakeBrokerHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: FakeBroker = self.server  # type: ignore[assignment]
        try:
            conn = server.context.wrap_socket(self.request, server_side=True)
            while (frame := read_frame(conn)) is not None:
                api_key, version, correlation = struct.unpack(">hhi", frame[:8])
                if api_key == API_VERSIONS:
                    keys = [(API_VERSIONS, 0, 3), (SASL_HANDSHAKE, 0, 1), (SASL_AUTHENTICATE, 0, 1)]
                    body = struct.pack(">h", 0) + bytes([len(keys) + 1])
                    body += b"".join(struct.pack(">hhh", *k) + b"\x00" for k in keys) + struct.pack(">i", 0) + b"\x00"
                    if version < 3:  # the client asked for an older version: answer in v0's layout
                        body = struct.pack(">hi", 0, len(keys)) + b"".join(struct.pack(">hhh", *k) for k in keys)
                elif api_key == SASL_HANDSHAKE:
                    body = struct.pack(">hi", 0, 1) + struct.pack(">h", 11) + b"OAUTHBEARER"
                elif api_key == SASL_AUTHENTICATE:
                    (client_id_len,) = struct.unpack(">h", frame[8:10])
                    at = 10 + max(client_id_len, 0)
                    (length,) = struct.unpack(">i", frame[at : at + 4])
                    server.auth_bytes.append(frame[at + 4 : at + 4 + length])
                    server.done.write_text("authenticated")
                    body = struct.pack(">hhiq", 0, -1, 0, 3_600_000)
                else:
                    return
                conn.sendall(struct.pack(">ii", 4 + len(body), correlation) + body)
        except (ssl.SSLError, ConnectionError, OSError):
            return


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[FakeBroker, Path]]:
    openssl = required_tool("openssl", "openssl")
    cert, key = tmp_path / "broker.crt", tmp_path / "broker.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FakeBroker(context, tmp_path / "broker-authenticated")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, cert
    server.shutdown()
    server.server_close()


# -- a fake GKE metadata server (what Workload Identity answers a pod) ------------------------------


def metadata_server(email: str, access_token: str) -> ThreadingHTTPServer:
    """The metadata server's endpoints google-auth's compute_engine credentials read
    (google/auth/compute_engine/_metadata.py): the ping, the default account's info and its token."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.send_error(403)
            accounts = "/computeMetadata/v1/instance/service-accounts/"
            if path in ("/", "/computeMetadata/v1/"):
                body = b""
            elif path == "/computeMetadata/v1/project/project-id":
                body = b"mlplatform-test"
            elif path in (f"{accounts}default/", f"{accounts}{email}/"):
                body = json.dumps({"email": email, "scopes": ["cloud-platform"], "aliases": ["default"]}).encode()
            elif path in (f"{accounts}default/token", f"{accounts}{email}/token"):
                body = json.dumps({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}).encode()
            else:
                return self.send_error(404)
            self.send_response(200)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def run_client(python: str, env: dict[str, str], overrides: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The client script in the venv, with only the pod's PYTHONPATH (-P: not the working directory)."""
    done = subprocess.run(
        [python, "-P", "-c", CLIENT, json.dumps(overrides)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("stack", TOKEN_STACKS)
def test_granted_pods_build_a_client_that_authenticates(plan, rendered, stack: str, broker, tmp_path) -> None:
    python = venv_python(".venv-kafka", REQUIREMENTS)
    server, ca = broker
    doc = plan(stack)
    gcp = stack.startswith("gcp")
    accounts = {
        (a.inputs["metadata"]["namespace"], a.inputs["metadata"]["name"]): a.inputs["metadata"].get("annotations")
        for a in doc.by_type("kubernetes:core/v1:ServiceAccount")
    }
    tried = set()
    for key, namespace, pod, container in granted_pods(doc, rendered(stack)):
        root = tmp_path / key
        env = {**pod_environment(doc, namespace, pod, container, root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
        if gcp:
            # the pod's Google service account, as Workload Identity's metadata server reports it
            email = accounts[(namespace, pod["serviceAccountName"])]["iam.gke.io/gcp-service-account"]
            metadata = metadata_server(email, f"ya29.fake-{key}")
            address = f"127.0.0.1:{metadata.server_address[1]}"
            env |= {"GCE_METADATA_HOST": address, "GCE_METADATA_IP": address, "CLOUDSDK_CONFIG": str(root)}
        else:
            env |= {  # static credentials: the signer presigns offline with whatever the default chain finds
                "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        server.done.unlink(missing_ok=True)
        overrides = {
            "bootstrap.servers": f"127.0.0.1:{server.server_address[1]}",
            "ssl.ca.location": str(ca),
            "_done": str(server.done),
        }
        try:
            result = run_client(python, env, overrides, tmp_path)
        finally:
            if gcp:
                metadata.shutdown()
        assert Path(result["module"]).resolve().is_relative_to(root), result["module"]  # the mounted package
        settings = result["settings"]
        assert settings["security.protocol"] == "SASL_SSL" and settings["sasl.mechanism"] == "OAUTHBEARER"
        assert settings["bootstrap.servers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert len(result["calls"]) >= 2, result
        oauth_config, token, expiry = result["calls"][0]
        assert time.time() + 60 < expiry < time.time() + 3600
        if gcp:
            header, claims, access = (b64url(p) for p in token.split("."))
            assert json.loads(header) == {"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}
            assert json.loads(claims)["sub"] == email and access.decode() == f"ya29.fake-{key}"
            acl = doc.one("gcp:managedkafka/acl:Acl", "mlplatform-kafka-allTopics").inputs["aclEntries"]
            assert f"User:{email}" in {e["principal"] for e in acl}  # the principal the ACLs name
        else:
            region = next(
                json.loads(p.inputs["policy"])["Statement"][0]["Resource"].split(":")[3]
                for p in doc.by_type("aws:iam/rolePolicy:RolePolicy")
                if p.name == f"mlplatform-{key}-kafka"
            )
            assert oauth_config == f"region={region}"
            url = urlparse(b64url(token).decode())
            query = parse_qs(url.query)
            assert url.netloc == f"kafka.{region}.amazonaws.com" and query["Action"] == ["kafka-cluster:Connect"]
            assert query["X-Amz-Credential"][0].split("/")[2:] == [region, "kafka-cluster", "aws4_request"]
            assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Signature"]
        # the fake broker received the callback's token as the OAUTHBEARER initial response (RFC 7628)
        sent = [t for _, t, _ in result["calls"][1:]]
        assert any(f"auth=Bearer {t}\x01".encode() in b for b in server.auth_bytes for t in sent), server.auth_bytes
        tried.add(key)
    assert tried == {w.key for w in workloads.ALL if w.kafka is not None}


def test_fake_broker_speaks_the_protocol(broker) -> None:
    """The fake broker's ApiVersions answer parses as Kafka's v3 layout (so a failure above is the client's)."""
    server, ca = broker
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(server.server_address) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        request = struct.pack(">hhih", API_VERSIONS, 3, 7, -1) + b"\x00" + b"\x01\x01\x00"
        conn.sendall(struct.pack(">i", len(request)) + request)
        frame = read_frame(conn)
    assert frame is not None
    correlation, error, count = struct.unpack(">ihB", frame[:7])
    assert (correlation, error, count - 1) == (7, 0, 3)
