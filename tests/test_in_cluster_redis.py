"""In-cluster Redis (components/data/in_cluster/redis.py) as the plan of a stack with
`data: {redis: {mode: in-cluster}}` declares it, run for real.

A real redis-server (Debian's 7.0) starts on the planned pod's own command and files: the ConfigMap, the
password Secret and the TLS Secret laid out as the kubelet mounts them (tests/support/kubelet.py), the TLS
files being the plan's own certificate and key (tests/support/plan_tls.py). The only changes: every mount
path is moved under the layout's root (checked: nothing else in the file differs), `valkey-server` is
Debian's `redis-server`, and the TLS port is a free one. Every directive the plan writes has the same name and
meaning in Redis 7.0 and Valkey 8.1 (Valkey forked Redis 7.2.4 and kept its configuration: valkey.conf @ 8.1
documents bind, port, tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file, tls-auth-clients,
tls-protocols, dir, save, appendonly, appendfsync, maxmemory, maxmemory-policy, loglevel, logfile, include).

Feast's own client (.venv-feast: Feast 0.66, redis-py 7.4) connects with the planned feature_store.yaml's
connection string, unchanged: only name resolution is local (the Service's name resolves to 127.0.0.1, as
the cluster's DNS resolves it to the Service), so the host name the client checks is the planned one.
Each kind of check is also run on a broken variant, to show it can fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from components.contracts import Namespace
from components.data.in_cluster.redis import (
    AUTH_SECRET,
    CONFIG_FILE,
    CONFIG_MAP,
    DATA_DIR,
    ENDPOINT,
    TLS_DIR,
    TLS_SECRET,
    auth_config,
    maxmemory_bytes,
    probe_command,
)
from components.data.in_cluster.tls import CA_CERT, TLS_CERT, TLS_KEY
from components.guardrails import POD_SECURITY
from mlplatform.config.loader import read_stack_file
from mlplatform.netpol import Cni, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import mock_password
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from mlplatform.podsecurity import check_pod, missing_requests
from tests.conftest import _plan as stack_plan
from tests.support.kubelet import container_env, lay_out_mounts
from tests.support.net import free_port
from tests.support.plan_tls import server_certificate
from tests.support.postgres import CertificateAuthority
from tests.support.tools import required_tool, venv_python

REQUIREMENTS = "tests/venvs/feast.txt"
STACK = "dev-redis-in-cluster"
OVERRIDES = {"mlplatform:data": {"redis": {"mode": "in-cluster"}}}
PREFIX = "mlplatform-redis"  # the Valkey component's resource names (stacks/platform.py names the data layer)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP_TYPE, SECRET_TYPE = "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"
FEAST_PODS = {"app.kubernetes.io/name": "feast-feature-server"}

# Feast's client construction for a connection string, then PING and the requested commands; the planned
# Service name resolves to the local server (argv[1] = "host:port=127.0.0.1:port")
PROBE = """\
import json, socket, sys
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from redis.backoff import NoBackoff
from redis.retry import Retry

planned_host, planned_port = sys.argv[1].rsplit(":", 1)
local = {}
real = socket.getaddrinfo
def resolve(host, port, *args, **kwargs):
    if host == planned_host and int(port) == int(planned_port):
        return real("127.0.0.1", local["port"], *args, **kwargs)
    return real(host, port, *args, **kwargs)
socket.getaddrinfo = resolve

def plain(reply):
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, (list, tuple)):
        return [plain(r) for r in reply]
    if isinstance(reply, dict):
        return {plain(k): plain(v) for k, v in reply.items()}
    return reply

out = {}
for spec in json.loads(sys.argv[2]):
    local["port"] = spec["port"]
    config = RedisOnlineStoreConfig(redis_type="redis", connection_string=spec["connection_string"])
    kwargs = RedisOnlineStore._parse_connection_string(config.connection_string)[1]
    result = out[spec["label"]] = {"kwargs": {k: v for k, v in kwargs.items() if k != "password"}}
    try:
        client = RedisOnlineStore()._get_client(config)
        # one attempt: redis-py retries a refused connection with backoff (seconds), the error is the same
        client.connection_pool.connection_kwargs["retry"] = Retry(NoBackoff(), 0)
        result["ping"] = client.ping()
        result["replies"] = [plain(client.execute_command(*c)) for c in spec.get("commands", [])]
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


# -- the plan --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> PlanDocument:
    return synthesize(STACK, config_map=read_stack_file(PROJECT_DIR, "dev") | OVERRIDES)


@dataclass(frozen=True)
class Planned:
    """The server's pod and every file it reads, as the plan holds them (secrets from the plan's mocks)."""

    pod: Mapping[str, Any]
    container: Mapping[str, Any]
    config: str  # valkey.conf, from the ConfigMap
    password: str
    secrets: Mapping[str, Mapping[str, str]]  # Secret name -> its values, as the kubelet decodes them
    connection_string: str  # Feast's online store
    memory_limit: int  # bytes


def _memory_bytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2]) * 1024**2


def planned(doc: PlanDocument) -> Planned:
    deployment = doc.one(DEPLOYMENT, f"{PREFIX}-server").inputs
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    config = doc.one(CONFIG_MAP_TYPE, f"{PREFIX}-config").inputs["data"][CONFIG_FILE]
    password = mock_password(f"{PREFIX}-auth", 64)  # the RandomPassword's result in the plan's mocks
    cert = server_certificate(doc, f"{PREFIX}-tls")
    [store] = [
        c.inputs["data"]["feature_store.yaml"]
        for c in doc.by_type(CONFIG_MAP_TYPE)
        if c.inputs["metadata"].get("name") == "feast-store"
        and c.inputs["metadata"]["namespace"] == Namespace.PLATFORM.value
    ]
    return Planned(
        pod=pod,
        container=container,
        config=config,
        password=password,
        secrets={
            AUTH_SECRET: {"password": password, "auth.conf": auth_config(password)},
            TLS_SECRET: {TLS_CERT: cert.cert_pem, TLS_KEY: cert.key_pem, CA_CERT: cert.ca_pem},
        },
        connection_string=yaml.safe_load(store)["online_store"]["connection_string"],
        memory_limit=_memory_bytes(container["resources"]["limits"]["memory"]),
    )


@pytest.fixture(scope="module")
def plan(doc: PlanDocument) -> Planned:
    return planned(doc)


def test_the_endpoint_is_the_service_with_tls_auth_and_the_platform_ca(doc: PlanDocument, plan: Planned) -> None:
    """The same shape Feast gets from ElastiCache (host name checked) plus a private CA (as Memorystore)."""
    options = dict(p.split("=", 1) for p in plan.connection_string.split(",")[1:])
    assert plan.connection_string.split(",")[0] == f"{ENDPOINT.host}:6379"
    assert options["ssl"] == "true" and options["ssl_cert_reqs"] == "required"
    assert options["ssl_check_hostname"] == "true"
    assert options["password"] == "${FEAST_REDIS_PASSWORD}"
    # the CA Feast mounts is the one that signed the server's certificate, which names the Service
    [ca_map] = [
        c.inputs["data"]["ca.crt"]
        for c in doc.by_type(CONFIG_MAP_TYPE)
        if c.inputs["metadata"].get("name") == "feast-redis-ca"
        and c.inputs["metadata"]["namespace"] == Namespace.PLATFORM.value
    ]
    cert = server_certificate(doc, f"{PREFIX}-tls")
    assert ca_map == cert.ca_pem and ENDPOINT.host in cert.dns_names
    issued = x509.load_pem_x509_certificate(cert.cert_pem.encode())
    assert issued.issuer == x509.load_pem_x509_certificate(cert.ca_pem.encode()).subject


def directives(config: str) -> dict[str, str]:
    pairs = (line.split(" ", 1) for line in config.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_the_config_serves_tls_only_where_the_pod_declares_and_includes_the_mounted_password(
    plan: Planned,
) -> None:
    """No plaintext listener; TLS on the port the container and the flow declare; the included password file
    is where the Secret volume puts it; the TLS files are where the TLS Secret is mounted."""
    conf = directives(plan.config)
    [port] = plan.container["ports"]
    assert conf["port"] == "0" and int(conf["tls-port"]) == port["containerPort"] == ENDPOINT.port
    mounts = {m["name"]: m["mountPath"] for m in plan.container["volumeMounts"]}
    volumes = {v["name"]: v for v in plan.pod["volumes"]}
    [item] = volumes["auth"]["secret"]["items"]
    assert (
        conf["include"] == f"{mounts['auth']}/{item['path']}" and volumes["auth"]["secret"]["secretName"] == AUTH_SECRET
    )
    assert volumes["tls"]["secret"]["secretName"] == TLS_SECRET
    for key, file in (("tls-cert-file", TLS_CERT), ("tls-key-file", TLS_KEY), ("tls-ca-cert-file", CA_CERT)):
        assert conf[key] == f"{mounts['tls']}/{file}"
    assert conf["dir"] == mounts["data"] and "persistentVolumeClaim" in volumes["data"]
    assert list(directives(plan.config)).index("include") == len(conf) - 1, "include last: nothing overrides it"


def test_no_secret_in_the_pod_spec_or_the_config(plan: Planned) -> None:
    spec = json.dumps(plan.pod)
    assert plan.password not in spec and plan.password not in plan.config
    assert "requirepass" not in plan.config  # it comes from the included Secret file
    env = {e["name"]: e for e in plan.container["env"]}
    assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": AUTH_SECRET, "key": "password"}


def test_restarts_follow_config_certificate_and_password(doc: PlanDocument, plan: Planned) -> None:
    annotations = doc.one(DEPLOYMENT, f"{PREFIX}-server").inputs["spec"]["template"]["metadata"]["annotations"]

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    assert annotations == {
        "checksum/config": sha(plan.config),
        "checksum/tls": sha(plan.secrets[TLS_SECRET][TLS_CERT]),
        "checksum/auth": sha(plan.password),
    }


def test_memory_limit_leaves_headroom_above_maxmemory(plan: Planned) -> None:
    requests = plan.container["resources"]["requests"]
    assert requests["memory"] == plan.container["resources"]["limits"]["memory"]  # memory: request = limit
    assert "cpu" not in plan.container["resources"]["limits"]  # no CPU throttling
    [line] = [line for line in plan.config.splitlines() if line.startswith("maxmemory ")]
    assert int(line.split()[1]) == maxmemory_bytes(plan.memory_limit / 1024**3) == plan.memory_limit * 3 // 4


# -- Pod Security and NetworkPolicies ----------------------------------------------------------------------


def _level(doc: PlanDocument, namespace: str) -> str:
    [ns] = [n for n in doc.by_type("kubernetes:core/v1:Namespace") if n.inputs["metadata"]["name"] == namespace]
    return ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]


def test_the_pod_passes_pod_security_at_the_data_namespaces_level(doc: PlanDocument, plan: Planned) -> None:
    deployment = doc.one(DEPLOYMENT, f"{PREFIX}-server").inputs
    level = _level(doc, deployment["metadata"]["namespace"])
    assert level == POD_SECURITY[Namespace.DATA] == "restricted"
    assert check_pod(plan.pod, level, "valkey") == []
    assert missing_requests(plan.pod, "valkey") == []

    # broken variants: the checker refuses a pod that may run as root, or keeps its capabilities
    def without(context: Mapping[str, Any], key: str) -> dict[str, Any]:
        return {k: v for k, v in context.items() if k != key}

    container = {**plan.container, "securityContext": without(plan.container["securityContext"], "runAsNonRoot")}
    as_root = {**plan.pod, "securityContext": without(plan.pod["securityContext"], "runAsNonRoot")}
    assert check_pod({**as_root, "containers": [container]}, level, "valkey") != []
    caps = {**plan.container, "securityContext": {**plan.container["securityContext"], "capabilities": {}}}
    assert check_pod({**plan.pod, "containers": [caps]}, level, "valkey") != []


@pytest.mark.parametrize("cni", [Cni.VPC_CNI, Cni.CILIUM])
def test_redis_clients_reach_the_server_and_nothing_else_does(doc: PlanDocument, cni: Cni) -> None:
    """By the pods' own labels (the Deployment's template), under both CNIs' semantics (selectors, not the
    managed services' address ranges: under Cilium an ipBlock never matches a pod)."""
    deployment = doc.one(DEPLOYMENT, f"{PREFIX}-server").inputs
    server = Pod(deployment["metadata"]["namespace"], deployment["spec"]["template"]["metadata"]["labels"], "10.0.9.9")
    policies = PolicySet(doc, cni)
    feast = Pod(Namespace.PLATFORM.value, FEAST_PODS, "10.0.1.1")
    ray = Pod(Namespace.TRAINING.value, {"ray.io/node-type": "worker"}, "10.0.1.2")
    for client in (feast, ray):
        verdict = policies.decide(client, server, ENDPOINT.port)
        assert verdict.allowed, verdict.why
    # not on the design: a model server, or another port of the server's pod
    model = Pod(Namespace.SERVING.value, {"component": "predictor"}, "10.0.1.3")
    assert not policies.decide(model, server, ENDPOINT.port).allowed
    assert not policies.decide(feast, server, 6380).allowed
    # broken variant: a pod without the server's labels is not admitted, so the labels are what matters
    other = Pod(server.namespace, {"app.kubernetes.io/name": "other"}, "10.0.9.8")
    assert not policies.decide(feast, other, ENDPOINT.port).allowed


# -- the real server ---------------------------------------------------------------------------------------


def _mount_paths(container: Mapping[str, Any]) -> list[str]:
    return [m["mountPath"].rstrip("/") for m in container["volumeMounts"]]


def relocate(text: str, root: Path, mounts: Sequence[str]) -> str:
    """Every path in `text` inside one of the mounts moved under `root`, where the kubelet layout puts it."""

    def move(token: str) -> str:
        return f"{root}{token}" if any(token == m or token.startswith(f"{m}/") for m in mounts) else token

    return "\n".join(" ".join(move(t) for t in line.split(" ")) for line in text.split("\n"))


@dataclass(frozen=True)
class Server:
    port: int
    root: Path
    log: Path


@contextmanager
def run_server(plan: Planned, root: Path, config: str | None = None, *, plaintext: bool = False) -> Iterator[Server]:
    """redis-server on the pod's command and mounts under `root` (a fresh root lays the volumes out; an
    existing one is the same pod restarted on its volume), on a free TLS port (`plaintext`: a broken variant
    serving that port without TLS)."""
    required_tool("redis-server", "redis-server")
    mounts = _mount_paths(plan.container)
    if not root.exists():
        root.mkdir(parents=True)
        text = relocate(config if config is not None else plan.config, root, mounts)
        assert text.replace(str(root), "") == (config if config is not None else plan.config), "only paths moved"
        config_maps = {CONFIG_MAP: {CONFIG_FILE: text}}
        lay_out_mounts(root, plan.pod["volumes"], plan.container["volumeMounts"], config_maps, plan.secrets)
    args = [relocate(a, root, mounts) for a in plan.container["args"]]
    assert args[0] == "valkey-server"
    port, log = free_port(), root / f"server-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [
            "redis-server",
            *args[1:],
            *(["--port", str(port), "--tls-port", "0"] if plaintext else ["--tls-port", str(port)]),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
    )
    try:
        deadline = time.monotonic() + 20
        while "Ready to accept connections" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        yield Server(port, root, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def feast_clients(plan: Planned, home: Path, specs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Feast's client on each spec's connection string, the planned host resolving to the spec's local
    server (`port`). One process for all: importing Feast takes seconds."""
    python = venv_python(".venv-feast", REQUIREMENTS)
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    argv = [python, "-c", PROBE, plan.connection_string.split(",", 1)[0], json.dumps(specs)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def client_string(plan: Planned, ca_file: Path, *, password: str | None = None, tls: bool = True) -> str:
    """The planned connection string as the feature server resolves it: ${FEAST_REDIS_PASSWORD} from its
    Secret and the CA file at its mount (here: a file of the test's layout)."""
    parts = plan.connection_string.split(",")
    kept = [parts[0]]
    for part in parts[1:]:
        key = part.split("=", 1)[0]
        if key == "password":
            if password is not None:
                kept.append(f"password={password}")
        elif key == "ssl_ca_certs":
            kept.append(f"ssl_ca_certs={ca_file}")
        elif tls or not key.startswith("ssl"):
            kept.append(part)
    return ",".join(kept)


@pytest.fixture(scope="module")
def work() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlplatform-valkey-", dir="/tmp"))


def _ca_file(plan: Planned, work: Path) -> Path:
    """The platform CA as Feast's pods mount it (the feast-redis-ca ConfigMap holds the plan's CA)."""
    path = work / "feast-ca.crt"
    path.write_text(plan.secrets[TLS_SECRET][CA_CERT])
    return path


@pytest.fixture(scope="module")
def planned_server(plan: Planned, work: Path) -> Iterator[Server]:
    with run_server(plan, work / "pod") as server:
        yield server


@pytest.fixture(scope="module")
def feast(plan: Planned, planned_server: Server, work: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Feast's client against the planned server, and against servers that get it wrong: without the
    password file's include, serving the port without TLS, presenting a certificate that does not name the
    Service (from a CA the client is given) or one the platform's CA did not sign."""
    ca = _ca_file(plan, work)
    other = CertificateAuthority.create(work, "other-ca")
    cert, key = other.issue(work, "other", common_name="other.data.svc.cluster.local",
                            alt_names="DNS:other.data.svc.cluster.local")  # fmt: skip
    misnamed = {**plan.secrets, TLS_SECRET: {TLS_CERT: cert.read_text(), TLS_KEY: key.read_text(),
                                             CA_CERT: other.cert.read_text()}}  # fmt: skip
    no_auth = "\n".join(line for line in plan.config.splitlines() if not line.startswith("include "))
    planned_string = client_string(plan, ca, password=plan.password)
    with ExitStack() as stack:
        open_auth = stack.enter_context(run_server(plan, work / "no-auth", no_auth))
        plaintext = stack.enter_context(run_server(plan, work / "plaintext", plaintext=True))
        other_cert = stack.enter_context(run_server(replace(plan, secrets=misnamed), work / "misnamed"))
        commands = [["SET", "feast:k", "v"], ["GET", "feast:k"], ["CONFIG", "GET", "maxmemory*"]]
        specs = [
            {"label": "feast", "port": planned_server.port, "connection_string": planned_string, "commands": commands},
            {"label": "anonymous", "port": planned_server.port, "connection_string": client_string(plan, ca)},
            {"label": "wrong", "port": planned_server.port,
             "connection_string": client_string(plan, ca, password="not-the-password")},
            {"label": "plaintext", "port": planned_server.port,
             "connection_string": client_string(plan, ca, password=plan.password, tls=False)},
            {"label": "broken: no include", "port": open_auth.port, "connection_string": client_string(plan, ca)},
            {"label": "broken: plaintext", "port": plaintext.port,
             "connection_string": client_string(plan, ca, password=plan.password, tls=False)},
            {"label": "broken: misnamed", "port": other_cert.port,
             "connection_string": client_string(plan, other.cert, password=plan.password)},
            {"label": "impostor", "port": other_cert.port, "connection_string": planned_string},
        ]  # fmt: skip
        yield feast_clients(plan, work, specs)


@pytest.mark.slow
def test_feast_connects_with_the_planned_string_and_checks_the_host_name(feast, plan: Planned) -> None:
    out = feast["feast"]
    assert out.get("ping") is True, out
    assert out["kwargs"]["ssl_check_hostname"] is True and out["kwargs"]["ssl_cert_reqs"] == "required"
    assert out["replies"][:2] == [True, "v"]
    reply = out["replies"][2]
    settings = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
    assert settings["maxmemory"] == str(maxmemory_bytes(plan.memory_limit / 1024**3))
    assert int(settings["maxmemory"]) < plan.memory_limit and settings["maxmemory-policy"] == "volatile-lru"
    # broken variant: a certificate that does not name the Service fails the host-name check
    assert "match" in feast["broken: misnamed"].get("error", ""), feast["broken: misnamed"]


@pytest.mark.slow
def test_only_the_platform_ca_is_trusted(feast) -> None:
    assert "certificate verify failed" in feast["impostor"].get("error", ""), feast["impostor"]


@pytest.mark.slow
def test_auth_is_required(feast) -> None:
    assert "Authentication required" in feast["anonymous"].get("error", ""), feast["anonymous"]
    assert "invalid username-password" in feast["wrong"].get("error", ""), feast["wrong"]
    # broken variant: without the included password file, anyone is served
    assert feast["broken: no include"].get("ping") is True, feast["broken: no include"]


@pytest.mark.slow
def test_plaintext_is_refused(feast) -> None:
    assert "ping" not in feast["plaintext"] and "Connection" in feast["plaintext"]["error"], feast["plaintext"]
    # broken variant: a server with a plaintext port serves the same client
    assert feast["broken: plaintext"].get("ping") is True, feast["broken: plaintext"]


def cli(plan: Planned, server: Server, *command: str) -> str:
    """redis-cli over TLS to a server, the chain checked against the plan's CA, with the planned password."""
    required_tool("redis-cli", "redis-tools")
    ca = server.root / TLS_DIR.lstrip("/") / CA_CERT
    argv = ["redis-cli", "--no-auth-warning", "--tls", "--cacert", str(ca), "-h", "127.0.0.1", "-p", str(server.port)]
    env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": plan.password}
    done = subprocess.run([*argv, *command], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_features_survive_a_restart_on_the_volume(plan: Planned, work: Path) -> None:
    """The append-only file on the data volume: a restarted pod (same volume) serves what was written."""
    root = work / "restart"
    with run_server(plan, root) as server:
        assert cli(plan, server, "HSET", "entity:1", "f", "0.5") == "1"
    assert list((root / DATA_DIR.lstrip("/")).iterdir()), "nothing written to the data volume"
    with run_server(plan, root) as server:
        assert cli(plan, server, "HGET", "entity:1", "f") == "0.5"
    # broken variant: a fresh volume (a pod without the PVC) has lost it
    with run_server(plan, work / "fresh") as server:
        assert cli(plan, server, "HGET", "entity:1", "f") == ""


def run_probe(plan: Planned, server: Server, password: str) -> subprocess.CompletedProcess[str]:
    """The pod's probe command as the kubelet runs it in the container: its env (REDISCLI_AUTH from the
    Secret), the CA at its mount; Debian's redis-cli for valkey-cli, the local port for the planned one."""
    required_tool("redis-cli", "redis-tools")
    command = plan.container["readinessProbe"]["exec"]["command"]
    assert command == plan.container["livenessProbe"]["exec"]["command"] == probe_command()
    script = relocate(command[2], server.root, _mount_paths(plan.container))
    script = script.replace("valkey-cli ", "redis-cli ").replace(f"-p {ENDPOINT.port} ", f"-p {server.port} ")
    env = container_env(plan.container, {"password": password}) | {"PATH": os.environ["PATH"]}
    return subprocess.run([command[0], command[1], script], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.slow
def test_the_probe_passes_with_the_secret_and_fails_without(plan: Planned, planned_server: Server) -> None:
    assert run_probe(plan, planned_server, plan.password).returncode == 0
    # the reply is compared: redis-cli exits 0 on an error reply (NOAUTH), which must not count as alive
    assert run_probe(plan, planned_server, "wrong").returncode != 0


@pytest.mark.parametrize("stack", ["gcp-dev", "local"])
def test_other_stacks_run_the_same_server(doc: PlanDocument, stack: str) -> None:
    """Wherever Redis is in-cluster (dev's default on both clouds, local's only mode): the same configuration
    for the same size, the pod at its namespace's level, reachable from Feast under the stack's CNI."""
    other = stack_plan(stack)  # conftest's session cache (this module's `plan` is the server's)
    if not other.named(f"{PREFIX}-server"):
        pytest.skip(f"{stack} runs a managed Redis")
    mine, theirs = planned(doc), planned(other)
    assert theirs.config == mine.config or theirs.memory_limit != mine.memory_limit
    deployment = other.one(DEPLOYMENT, f"{PREFIX}-server").inputs
    assert check_pod(theirs.pod, _level(other, deployment["metadata"]["namespace"]), "valkey") == []
    server = Pod(deployment["metadata"]["namespace"], deployment["spec"]["template"]["metadata"]["labels"], "10.9.9.9")
    feast = Pod(Namespace.PLATFORM.value, FEAST_PODS, "10.9.1.1")
    for cni in Cni:
        assert PolicySet(other, cni).decide(feast, server, ENDPOINT.port).allowed


def test_the_volume_size_is_its_own_key_not_the_memory_size() -> None:
    """A claim never shrinks, and kind's `standard` (local-path) class does not expand: a change of the
    server's memory must leave its volume claim alone (review: the claim was 3 x memoryGb)."""
    from mlplatform.config.loader import read_stack_file
    from mlplatform.plan.synth import PROJECT_DIR, synthesize

    def claim(memory_gb: float) -> str:
        config = read_stack_file(PROJECT_DIR, "dev")
        redis = {"mode": "in-cluster", "inCluster": {"cpu": 0.1, "memoryGb": memory_gb}}
        doc = synthesize("dev", config_map={**config, "mlplatform:data": {"redis": redis}})
        [pvc] = [
            r
            for r in doc.resources
            if r.type == "kubernetes:core/v1:PersistentVolumeClaim" and r.name.endswith("-redis-data")
        ]
        return pvc.inputs["spec"]["resources"]["requests"]["storage"]

    assert claim(0.25) == claim(2) == "1Gi"
