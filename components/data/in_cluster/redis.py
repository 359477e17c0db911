"""Redis inside the cluster: one Valkey server in the `data` namespace, TLS only and AUTH required, behind the
RedisEndpoint contract the managed services (ElastiCache, Memorystore) fill, so Feast connects the same way.

Why Valkey: the BSD-licensed fork of Redis 7.2.4 the Linux Foundation hosts, speaking the same protocol and
reading the same configuration directives; its project publishes the image (Docker Hub valkey/valkey, built
from valkey-io/valkey-container) and rebuilds it for every patch release. Why not Bitnami's image or chart:
since 28 August 2025 Bitnami publishes only `latest` tags of a "secure" subset for development; every
versioned image moved to docker.io/bitnamilegacy, "where they will no longer receive updates" (bitnami/charts
#35164, bitnami/containers#83267), and its charts still point at the images that moved. Why no chart at
all: the server is one container with one configuration file; the objects below are all a chart would
render, and here each of them is a typed resource a preview diffs.

Why these settings:
- One server (data.redis in-cluster allows shards 1, replicas 0): online features are derived data, which
  materialization rewrites. Losing them on a restart would still leave serving without features until the
  next run, so the server keeps an append-only file (fsync every second) on a small volume of the cluster's
  block storage class and loads it at start; RDB snapshots are off (the AOF's RDB preamble covers rewrites).
- maxmemory is three quarters of the container's memory limit: the rest is the process's own overhead, client
  buffers and the copy-on-write pages of the AOF rewrite's fork. ElastiCache reserves the same 25 % by
  default (reserved-memory-percent; docs.aws.amazon.com/AmazonElastiCache/latest/red-ug/redis-memory-
  management.html).
- maxmemory-policy volatile-lru: the default of both managed services (ElastiCache's default parameter
  groups; Memorystore, cloud.google.com/memorystore/docs/redis/supported-redis-configurations), so the modes
  behave alike. Feast sets an expiry only with the online store's key_ttl_seconds (docs.feast.dev
  reference/online-stores/redis), which the platform's feature_store.yaml leaves unset: nothing is evicted,
  a full store refuses writes and materialization fails loudly, while the features already stored keep
  being served. A cache policy (allkeys-lru) would instead drop entities silently and serve them as missing.
- TLS only (`port 0`): the certificate from the platform's CA names the Service's DNS names, so clients check
  the host name (RedisEndpoint.check_hostname) as they do against ElastiCache. No client certificates
  (`tls-auth-clients no`): clients authenticate with the AUTH password, as on both managed services.
- The password never appears in the pod spec or the ConfigMap: the configuration file `include`s a second
  file, `requirepass <password>`, mounted from a Secret; the probes read it as REDISCLI_AUTH (valkey-cli's
  variable) from the same Secret.
- The pod restarts when its inputs change (checksum annotations of the configuration, the certificate and
  the password): the server reads all three at start only.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Namespace, RedisEndpoint, ServiceEndpoint
from components.data.in_cluster import InClusterArgs
from components.data.in_cluster.tls import CA_CERT, TLS_CERT, TLS_KEY
from components.guardrails import NAME_LABEL, flow
from components.kube import PART_OF, RESTRICTED_CONTAINER, RESTRICTED_POD, single_writer_spec
from components.protection import stateful
from components.secrets import generated_secret
from mlplatform.pins import VALKEY_IMAGE, VALKEY_UID

FLOW = flow("redis-in-cluster")
ENDPOINT = ServiceEndpoint(FLOW.app or "valkey", Namespace.DATA, FLOW.port, scheme="rediss")
LABELS = {NAME_LABEL: ENDPOINT.name, **PART_OF}
# the certificate's names: the first (its common name) is the one clients are given
DNS_NAMES = (
    ENDPOINT.host,
    f"{ENDPOINT.name}.{ENDPOINT.namespace.value}.svc",
    f"{ENDPOINT.name}.{ENDPOINT.namespace.value}",
)
CONFIG_MAP, AUTH_SECRET, TLS_SECRET = f"{ENDPOINT.name}-config", f"{ENDPOINT.name}-auth", f"{ENDPOINT.name}-tls"
CONFIG_DIR, AUTH_DIR, TLS_DIR, DATA_DIR = "/etc/valkey/conf", "/etc/valkey/auth", "/etc/valkey/tls", "/data"
CONFIG_FILE, AUTH_FILE, PASSWORD_KEY = "valkey.conf", "auth.conf", "password"
MAXMEMORY_SHARE = 0.75  # of the memory limit; see the module's docstring
# The append-only file holds at most the dataset (RDB preamble after a rewrite) plus what was appended since,
# and a rewrite writes the new file beside the old (auto-aof-rewrite-percentage 100: rewrite once it doubled):
# three datasets, a dataset being at most maxmemory < the memory limit. The profile sizes `storageGb` so
# (3 x memoryGb); it is its own key because a claim never shrinks and kind's local-path class does not expand.


def maxmemory_bytes(memory_gb: float) -> int:
    return int(memory_gb * 1024**3 * MAXMEMORY_SHARE)


def volume_size(storage_gb: int) -> str:
    return f"{storage_gb}Gi"


def server_config(maxmemory: int) -> str:
    """valkey.conf: every directive here has the same name and meaning in Redis 7.0, which the tests run it on.
    `include` comes last, so nothing after it can override what it sets (the server applies directives in
    order)."""
    return "\n".join(
        [
            "# rendered by mlplatform (components/data/in_cluster/redis.py); the server reads it at start only",
            "bind * -::*",
            "port 0",
            f"tls-port {ENDPOINT.port}",
            f"tls-cert-file {TLS_DIR}/{TLS_CERT}",
            f"tls-key-file {TLS_DIR}/{TLS_KEY}",
            f"tls-ca-cert-file {TLS_DIR}/{CA_CERT}",
            "tls-auth-clients no",
            'tls-protocols "TLSv1.2 TLSv1.3"',
            f"dir {DATA_DIR}",
            'save ""',
            "appendonly yes",
            "appendfsync everysec",
            f"maxmemory {maxmemory}",
            "maxmemory-policy volatile-lru",
            "loglevel notice",
            'logfile ""',
            f"include {AUTH_DIR}/{AUTH_FILE}",
            "",
        ]
    )


def auth_config(password: str) -> str:
    return f"requirepass {password}\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def probe_command() -> list[str]:
    """PING over TLS to the server in the pod, the chain checked against the mounted CA, authenticated by
    REDISCLI_AUTH (the container's env). By address: the Service's name resolves only to ready pods, which a
    readiness probe must not depend on; valkey-cli verifies the chain and sends SNI but matches no host name
    (valkey-io/valkey deps/hiredis/ssl.c redisInitiateSSLWithContext, and deps/libvalkey/src/tls.c
    valkeyInitiateTLSWithContext where libvalkey replaced hiredis: SSL_set_tlsext_host_name only). The
    cli exits 0 on an error reply (NOAUTH, LOADING; tests/test_in_cluster_redis.py shows it with
    redis-cli), so the reply itself is compared."""
    cli = f"valkey-cli --no-auth-warning --tls --cacert {TLS_DIR}/{CA_CERT} -h 127.0.0.1 -p {ENDPOINT.port} ping"
    return ["sh", "-c", f'test "$({cli})" = PONG']


def pod_spec(args: InClusterArgs, cpu: float, memory_gb: float) -> dict[str, Any]:
    """The pod at Pod Security `restricted` (the `data` namespace's level): the image's non-root user by number,
    a read-only root filesystem with the volume at /data; the TLS and password files readable by its group
    (fsGroup) only. Placed on the CPU pool, where the platform's services (the feature server among them)
    run; the system pool is sized for the cluster's add-ons."""
    pool = args.cluster.cpu_pool
    memory = f"{round(memory_gb * 1024)}Mi"
    exec_probe = {"exec": {"command": probe_command()}, "timeoutSeconds": 5}
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": pool.node_selector(),
        **({"tolerations": pool.tolerations()} if pool.tolerations() else {}),
        "securityContext": {
            **RESTRICTED_POD,
            "runAsUser": VALKEY_UID,
            "runAsGroup": VALKEY_UID,
            "fsGroup": VALKEY_UID,
        },
        "containers": [
            {
                "name": "valkey",
                "image": VALKEY_IMAGE,
                # the image's entrypoint (docker-entrypoint.sh) execs the server as is when not run as root
                "args": ["valkey-server", f"{CONFIG_DIR}/{CONFIG_FILE}"],
                "ports": [{"name": "tls", "containerPort": ENDPOINT.port, "protocol": "TCP"}],
                "env": [
                    {
                        "name": "REDISCLI_AUTH",
                        "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": PASSWORD_KEY}},
                    }
                ],
                # requests from data.redis.inCluster; memory is also the limit (no CPU limit: no throttling)
                "resources": {
                    "requests": {"cpu": f"{round(cpu * 1000)}m", "memory": memory},
                    "limits": {"memory": memory},
                },
                "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                # loading a large append-only file answers LOADING: up to 5 minutes before liveness counts
                "startupProbe": {**exec_probe, "periodSeconds": 5, "failureThreshold": 60},
                "readinessProbe": {**exec_probe, "periodSeconds": 10, "failureThreshold": 3},
                "livenessProbe": {**exec_probe, "periodSeconds": 20, "failureThreshold": 6},
                "volumeMounts": [
                    {"name": "data", "mountPath": DATA_DIR},
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
                    {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": f"{ENDPOINT.name}-data"}},
            {"name": "config", "configMap": {"name": CONFIG_MAP}},
            {
                "name": "auth",
                "secret": {
                    "secretName": AUTH_SECRET,
                    "items": [{"key": AUTH_FILE, "path": AUTH_FILE}],
                    "defaultMode": 0o440,
                },
            },
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
        ],
    }


class Valkey(pulumi.ComponentResource):
    """The password, the server certificate, the configuration, the data volume, the single-replica Deployment
    and its Service; `endpoint` is ready once the server answers (it waits for the Deployment)."""

    endpoint: RedisEndpoint

    def __init__(self, name: str, args: InClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:data:Valkey", name, None, opts)
        redis = args.config.data.redis
        size = redis.in_cluster
        if size is None or redis.storage_gb is None:  # the config refuses in-cluster Redis without them
            raise ValueError("data.redis.inCluster and storageGb are required with mode in-cluster")
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace
        meta = {"namespace": ns.metadata.name, "labels": LABELS}
        password = generated_secret(self, f"{name}-auth", length=64)
        auth = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata={"name": AUTH_SECRET, **meta},
            type="Opaque",
            string_data={
                PASSWORD_KEY: password,
                AUTH_FILE: pulumi.Output.secret(password.apply(auth_config)),
            },
            opts=child,
        )
        certificate = args.ca.server_secret(self, f"{name}-tls", TLS_SECRET, ns, DNS_NAMES, labels=LABELS)
        text = server_config(maxmemory_bytes(size.memory_gb))
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata={"name": CONFIG_MAP, **meta}, data={CONFIG_FILE: text}, opts=child
        )
        volume = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata={"name": f"{ENDPOINT.name}-data", **meta},
            spec={
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": args.cluster.block_storage_class,
                "resources": {"requests": {"storage": volume_size(redis.storage_gb)}},
            },
            # protected and retained where the profile protects data, as the managed services are
            opts=stateful(args.config, self),
        )
        # Hashes, not secrets: a SHA-256 of a 64-character random password or of a certificate reveals neither.
        # The live Secret's stringData (an output since pulumi-kubernetes#1194) else its data, either changes
        # with the certificate.
        cert_sum = pulumi.Output.all(certificate.string_data, certificate.data).apply(
            lambda sd: _sha256(str((sd[0] or {}).get(TLS_CERT) or (sd[1] or {}).get(TLS_CERT) or ""))
        )
        annotations = {
            "checksum/config": _sha256(text),
            "checksum/tls": pulumi.Output.unsecret(cert_sum),
            "checksum/auth": pulumi.Output.unsecret(password.apply(_sha256)),
        }
        server = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata={"name": ENDPOINT.name, **meta},
            spec=single_writer_spec(ENDPOINT.name, LABELS, annotations, pod_spec(args, size.cpu, size.memory_gb)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[auth, certificate, config, volume]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": ENDPOINT.name, **meta},
            spec={
                "selector": {NAME_LABEL: ENDPOINT.name},
                "ports": [{"name": "tls", "port": ENDPOINT.port, "targetPort": "tls", "protocol": "TCP"}],
            },
            opts=child,
        )
        # the host once the server is ready (Pulumi awaits the Deployment's available replica): clients
        # made from the endpoint come after it, as they come after a managed service's creation
        host = pulumi.Output.all(server.metadata, service.metadata).apply(lambda _: ENDPOINT.host)
        self.endpoint = RedisEndpoint(
            host=host,
            port=pulumi.Output.from_input(ENDPOINT.port),
            auth_token=password,
            tls=True,
            cluster_mode=False,
            ca_certificate=args.ca.certificate_pem,
            check_hostname=True,
        )
        self.register_outputs({"host": host, "port": ENDPOINT.port})
