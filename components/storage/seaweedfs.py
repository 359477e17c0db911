"""The local stack's object store: SeaweedFS in one pod of the `data` namespace, serving the S3 API to the
platform's workloads with one static access key each, allowed only the buckets of that workload's grants.

Why SeaweedFS: MinIO's community edition stopped publishing images and binaries in October 2025
(minio/minio#21647, "Docker release?") and its repository went to maintenance-only. Of the maintained
S3-compatible stores, SeaweedFS takes its identities, keys and per-bucket actions from one file (`-s3.config`,
weed/command/mini.go @ 4.44), so Pulumi declares every key and grant; Garage makes keys and buckets only
through its admin API, which would need a Job calling it at every `up`.

Why `weed mini`: the image's own default command at 4.44 (docker/Dockerfile.go_build: "a complete single-process
cluster (master+volume+filer+S3+admin)"), documented for "Local S3-compatible storage" and "Development and
testing" (weed/command/mini.go cmdMini.Long), with a `-bucket` flag that creates the buckets at startup through
the filer (ensureMiniBuckets), so buckets are declared on the command line and no Job or admin identity makes
them. WebDAV, the admin UI and the Iceberg and Lance catalogs it would also start are switched off (their
ports 0 / flags false); the embedded IAM API is off (`-s3.iam=false`): the file is the only source of keys.

Plain HTTP inside the cluster: the storage layer does not receive the data layer's CA (components/data/
in_cluster/tls.py), and every S3 client (boto3, s3fs, Loki's Go client, Flink's S3A, KServe's
storage-initializer) would need it configured its own way. Requests are SigV4-signed (the secret key never
crosses the wire); bodies are not encrypted. The store exists only on `cloud: local` (a kind cluster on one
machine), and only the namespaces of the flow `object-store` (components/guardrails.py) reach its port.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Namespace, NodePoolContract, ServiceEndpoint
from components.environment import Environment
from components.guardrails import FLOWS_ONLY, NAME_LABEL, flow
from components.kube import PART_OF, RESTRICTED_CONTAINER, RESTRICTED_POD, single_writer_spec
from components.protection import stateful
from mlplatform.pins import SEAWEEDFS_IMAGE, SEAWEEDFS_UID

FLOW = flow("object-store")
ENDPOINT = ServiceEndpoint(FLOW.app or "seaweedfs", Namespace.DATA, FLOW.port)
LABELS = {NAME_LABEL: ENDPOINT.name, **PART_OF}
# the pod: its S3 port by its flow alone, not `data`'s every-port baseline (master, volume, filer and admin
# listen beside it without authentication: components/guardrails.py FLOWS_ONLY)
POD_LABELS = {**LABELS, **FLOWS_ONLY}
CONFIG_SECRET = "seaweedfs-s3-config"
CONFIG_DIR = "/etc/seaweedfs-s3"
CONFIG_FILE = "s3.json"
DATA_DIR = "/data"  # the PVC; the image's filer.toml keeps the filer's leveldb2 store in /data/filerldb2
# A laptop's share: one process holds master, volume server, filer and S3 gateway. mini sizes its volumes from
# the free space (64-1024 MB each, weed/command/mini.go), so a small disk is enough for the example data,
# MLflow artifacts and Loki's chunks of a few days.
CPU_REQUEST, MEMORY_REQUEST, MEMORY_LIMIT = "100m", "256Mi", "512Mi"
VOLUME_SIZE = "20Gi"


def mini_args(buckets: Sequence[str]) -> list[str]:
    """`weed mini` (through the image's entrypoint, docker/entrypoint.sh @ 4.44) with the S3 gateway on the
    flow's port, the identities file, the buckets to create, and everything else it would start switched off.
    `-ip=127.0.0.1`: the master, volume server and filer talk to each other inside the pod only (the volume
    server advertises this address); `-ip.bind=0.0.0.0` still lets the Service reach the S3 port."""
    return [
        "mini",
        f"-dir={DATA_DIR}",
        "-ip=127.0.0.1",
        "-ip.bind=0.0.0.0",
        f"-s3.port={ENDPOINT.port}",
        f"-s3.config={CONFIG_DIR}/{CONFIG_FILE}",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        # on by default, reporting to telemetry.seaweedfs.com (weed/command/mini.go @ 4.44); egress blocks it anyway
        "-master.telemetry=false",
        f"-bucket={','.join(buckets)}",
    ]


@dataclass(frozen=True)
class SeaweedFsArgs:
    environment: Environment  # the profile decides whether the volume is protected
    namespace: pulumi.Input[str]  # the `data` namespace's name (an Output of the Namespace, so objects wait for it)
    storage_class: str  # the cluster's block storage class
    buckets: tuple[str, ...]
    s3_config: pulumi.Output[str]  # the identities file (secret): local.identities_file() of every key
    pool: NodePoolContract  # where the pod runs (the system pool, as the other data services)


class SeaweedFs(pulumi.ComponentResource):
    """The identities Secret, the data volume, the single-replica Deployment and its Service."""

    endpoint: ServiceEndpoint
    server: k8s.apps.v1.Deployment  # ready once the S3 port answers (what the seeding Job waits for)

    def __init__(self, name: str, args: SeaweedFsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:storage:SeaweedFs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        meta = {"namespace": args.namespace, "labels": LABELS}
        config = k8s.core.v1.Secret(
            f"{name}-s3-config",
            metadata={"name": CONFIG_SECRET, **meta},
            type="Opaque",
            string_data={CONFIG_FILE: pulumi.Output.secret(args.s3_config)},
            opts=child,
        )
        volume = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata={"name": f"{ENDPOINT.name}-data", **meta},
            spec={
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": args.storage_class,
                "resources": {"requests": {"storage": VOLUME_SIZE}},
            },
            # the objects: protected and retained where the profile protects data (components/protection.py)
            opts=stateful(args.environment, self),
        )
        # the identities are read at startup: a new key or grant rolls the pod
        checksum = args.s3_config.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
        self.server = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata={"name": ENDPOINT.name, **meta},
            spec=single_writer_spec(
                ENDPOINT.name,
                POD_LABELS,
                {"mlplatform.io/s3-config-sha256": checksum},
                pod_spec(args.buckets, args.pool),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config, volume]),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": ENDPOINT.name, **meta},
            spec={
                "selector": {NAME_LABEL: ENDPOINT.name},
                "ports": [{"name": "s3", "port": ENDPOINT.port, "targetPort": "s3", "protocol": "TCP"}],
            },
            opts=child,
        )
        self.endpoint = ENDPOINT
        self.register_outputs({"endpoint": ENDPOINT.url})


def pod_spec(buckets: Sequence[str], pool: NodePoolContract) -> dict[str, object]:
    """The pod at Pod Security `restricted` (the `data` namespace's level): the image's non-root user by number,
    a read-only root filesystem with the volume at /data and an emptyDir at /tmp (the S3 gateway's local
    socket, /tmp/seaweedfs-s3-<port>.sock by default)."""
    probe = {"httpGet": {"path": "/status", "port": "s3"}, "periodSeconds": 10}  # weed/s3api/s3api_server.go
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": pool.node_selector(),
        "tolerations": pool.tolerations(),
        "securityContext": {
            **RESTRICTED_POD,
            "runAsUser": SEAWEEDFS_UID,
            "runAsGroup": SEAWEEDFS_UID,
            "fsGroup": SEAWEEDFS_UID,
        },
        "containers": [
            {
                "name": "seaweedfs",
                "image": SEAWEEDFS_IMAGE,
                "args": mini_args(buckets),
                "ports": [{"name": "s3", "containerPort": ENDPOINT.port, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST},
                    "limits": {"memory": MEMORY_LIMIT},
                },
                "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                "readinessProbe": probe,
                "livenessProbe": {**probe, "initialDelaySeconds": 30, "failureThreshold": 6},
                "volumeMounts": [
                    {"name": "data", "mountPath": DATA_DIR},
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": f"{ENDPOINT.name}-data"}},
            {"name": "config", "secret": {"secretName": CONFIG_SECRET}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
