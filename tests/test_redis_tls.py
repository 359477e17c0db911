"""The Feast online store's Redis connection as the program configures it, opened by Feast 0.66 itself
(RedisOnlineStore._get_client, which parses the planned connection_string: online_stores/redis.py
`_parse_connection_string`, each `key=value` JSON-decoded into a redis-py keyword) with the feature-server
image's redis-py (.venv-feast), against a real redis-server that, like both managed services, speaks TLS
only and wants AUTH. The planned pod's CA ConfigMap is mounted as the kubelet mounts it.

Memorystore (transit encryption SERVER_AUTHENTICATION) signs its server certificate with the instance's own
CA and names the instance's IP in the certificate's CN only (no subjectAltName; envoyproxy/ratelimit#409
added a switch for exactly this). Python's ssl, through OpenSSL, matches an address against iPAddress
subjectAltNames only, never the CN, and redis-py checks host names by default since 6.0
(redis/redis-py#3626): such a certificate fails every connection. So for Memorystore alone the program
keeps CA verification (ssl_cert_reqs=required against the instance's CAs) and turns host-name matching off;
the CA is private to the instance, so a certificate it issued is that instance's. A certificate from any
other CA is refused. ElastiCache presents a publicly trusted certificate for its DNS name: full verification.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kubelet import lay_out_mounts
from tests.support.net import free_port
from tests.support.postgres import CertificateAuthority, namespace_config_maps
from tests.support.tools import required_tool, venv_python

REQUIREMENTS = "tests/venvs/feast.txt"
PASSWORD = "redis-Pw-0123456789"

pytestmark = pytest.mark.slow

# Feast's own client construction for the planned online store, then one round trip, per connection string
PROBE = """\
import json, os, sys
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

redis_type, out = sys.argv[1], {}
for label, planned in zip(sys.argv[2::2], sys.argv[3::2]):
    config = RedisOnlineStoreConfig(redis_type=redis_type, connection_string=os.path.expandvars(planned))
    kwargs = RedisOnlineStore._parse_connection_string(config.connection_string)[1]
    out[label] = {"kwargs": {k: v for k, v in kwargs.items() if k != "password"}}
    try:
        out[label]["ping"] = RedisOnlineStore()._get_client(config).ping()
    except Exception as e:
        out[label]["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def work() -> Path:
    required_tool("redis-server", "redis-server")
    required_tool("openssl", "openssl")
    return Path(tempfile.mkdtemp(prefix="mlplatform-redis-tls-", dir="/tmp"))


@contextmanager
def redis_server(work: Path, certificate: tuple[Path, Path]) -> Iterator[int]:
    port, log = free_port(), work / f"redis-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certificate[0]),
         "--tls-key-file", str(certificate[1]), "--tls-auth-clients", "no", "--requirepass", PASSWORD,
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "Ready to accept connections" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def online_store(doc) -> dict[str, Any]:
    [store] = [
        c.inputs["data"]["feature_store.yaml"]
        for c in doc.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("name") == "feast-store" and c.inputs["metadata"]["namespace"] == "mlplatform"
    ]
    return yaml.safe_load(store)["online_store"]


def options(connection_string: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in connection_string.split(",") if "=" in part)


def probe(
    doc,
    work: Path,
    servers: dict[str, tuple[Path, Path]],
    *,
    provider_ca: Path | None = None,
    trusted: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """The planned materialization pod's Feast client (its volumes laid out under a fresh root, as the kubelet
    mounts them) against one local redis-server per label, each presenting its certificate. `provider_ca`
    stands for the CAs the cloud reports (mocked in the plan); `trusted` for the image's trust store."""
    python = venv_python(".venv-feast", REQUIREMENTS)
    cron = doc.one("kubernetes:batch/v1:CronJob", "mlplatform-feast-materialize").inputs
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    config_maps = namespace_config_maps(doc, "mlplatform")
    store = online_store(doc)
    planned = store["connection_string"]
    ca_path = options(planned).get("ssl_ca_certs")
    if provider_ca is not None:
        [mount] = [m for m in container["volumeMounts"] if ca_path.startswith(m["mountPath"].rstrip("/") + "/")]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        config_maps[volume["configMap"]["name"]] = {ca_path.rsplit("/", 1)[1]: provider_ca.read_text()}
    root = Path(tempfile.mkdtemp(dir=work))
    lay_out_mounts(root, pod["volumes"], container["volumeMounts"], config_maps)
    env = {"PATH": os.environ["PATH"], "FEAST_REDIS_PASSWORD": PASSWORD, "HOME": str(root)}
    if trusted is not None:
        env["SSL_CERT_FILE"] = str(trusted)
    with ExitStack() as stack:
        argv = [python, "-c", PROBE, store["redis_type"]]
        for label, certificate in servers.items():
            port = stack.enter_context(redis_server(work, certificate))
            # only the address changes: the instance's (Memorystore's IP, its certificate's CN) is this one's
            local = planned.replace(planned.split(",", 1)[0], f"127.0.0.1:{port}", 1)
            if ca_path:  # the CA file where the kubelet's layout put it under this pod's root
                local = local.replace(f"ssl_ca_certs={ca_path}", f"ssl_ca_certs={root}{ca_path}")
            argv += [label, local]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dev():
    """dev with ElastiCache (its profile runs Valkey in the cluster: tests/test_in_cluster_redis.py)."""
    from tests.support.managed import managed_stack

    return managed_stack("dev", ("redis",))


@pytest.fixture(scope="module")
def gcp_dev():
    """gcp-dev with Memorystore (its profile runs Valkey in the cluster: tests/test_in_cluster_redis.py)."""
    from tests.support.managed import managed_stack

    return managed_stack("gcp-dev", ("redis",))


@pytest.fixture(scope="module")
def memorystore(gcp_dev, work: Path) -> dict[str, dict[str, Any]]:
    """Certificates like Memorystore's (CN = the address, no subjectAltName): the instance's CA's, another's."""
    ca, other = CertificateAuthority.create(work, "instance-ca"), CertificateAuthority.create(work, "other-ca")
    servers = {
        "instance": ca.issue(work, "memorystore", common_name="127.0.0.1", alt_names=None),
        "impostor": other.issue(work, "impostor", common_name="127.0.0.1", alt_names=None),
    }
    return probe(gcp_dev, work, servers, provider_ca=ca.cert)


@pytest.fixture(scope="module")
def elasticache(dev, work: Path) -> dict[str, dict[str, Any]]:
    """Publicly trusted certificates (the trust store is a test CA here): one naming the address, one not."""
    public = CertificateAuthority.create(work, "public-ca")
    servers = {
        "named": public.issue(work, "elasticache", common_name="127.0.0.1", alt_names="IP:127.0.0.1"),
        "other": public.issue(work, "other", common_name="other", alt_names="DNS:other.cache.amazonaws.com"),
    }
    return probe(dev, work, servers, trusted=public.cert)


def test_memorystore_keeps_ca_verification_and_matches_no_host_name(gcp_dev) -> None:
    opts = options(online_store(gcp_dev)["connection_string"])
    assert opts["ssl"] == "true" and opts["ssl_cert_reqs"] == "required", "the server's chain is verified"
    assert opts["ssl_check_hostname"] == "false", "Memorystore's certificate names its IP in the CN only"
    assert opts["ssl_ca_certs"].endswith("/ca.crt")


def test_elasticache_is_verified_with_its_host_name(dev) -> None:
    """Stated, not left to redis-py's default (False before 6.0; Feast 0.66 allows redis>=4.2.2)."""
    opts = options(online_store(dev)["connection_string"])
    assert opts["ssl"] == "true" and opts["ssl_cert_reqs"] == "required" and opts["ssl_check_hostname"] == "true"
    assert "ssl_ca_certs" not in opts, "ElastiCache's certificate is publicly trusted: the image's trust store"


def test_feast_connects_to_a_memorystore_certificate(memorystore) -> None:
    assert memorystore["instance"].get("ping") is True, memorystore["instance"]
    # Feast's parser turned the planned strings into what redis-py needs (a string "false" would be truthy)
    kwargs = memorystore["instance"]["kwargs"]
    assert kwargs["ssl"] is True and kwargs["ssl_check_hostname"] is False and kwargs["ssl_cert_reqs"] == "required"


def test_feast_refuses_a_memorystore_impostor(memorystore) -> None:
    assert "certificate verify failed" in memorystore["impostor"].get("error", ""), memorystore["impostor"]


def test_feast_checks_elasticaches_host_name(elasticache) -> None:
    assert elasticache["named"].get("ping") is True, elasticache["named"]
    assert elasticache["named"]["kwargs"]["ssl_check_hostname"] is True
    assert "mismatch" in elasticache["other"].get("error", ""), elasticache["other"]
