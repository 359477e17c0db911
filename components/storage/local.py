"""Storage on `cloud: local`: one bucket per purpose in the in-cluster object store (SeaweedFS, seaweedfs.py),
one generated access key per platform workload allowed exactly its bucket grants, the example files uploaded
by a Job, and the local image registry (local_registry.py: the kind registry beside the cluster).

Where AWS binds a service account to an IAM role (IRSA) and GCP to a Google service account (Workload
Identity), a kind cluster has no identity provider the store could trust. Each workload instead gets a static
key pair: Pulumi generates it, writes it into the store's identities file with that workload's per-bucket
actions, and hands it on in the WorkloadIdentity (`access_key`), whose Secret the layer that makes the
workload's service account creates in the workload's namespace (components/kube.py identity_service_account)
and whose `env` every container of the workload carries."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import (
    Access,
    AccessKey,
    Bucket,
    BucketGrant,
    BucketPurpose,
    ClusterOutputs,
    KafkaEndpoint,
    LocalClusterFacts,
    Namespace,
    ObjectStore,
    PlatformNamespaces,
    SeedObject,
    StorageOutputs,
    WorkloadIdentity,
    WorkloadSpec,
    bucket_purposes,
)
from components.environment import StorageArgs
from components.kube import PART_OF, RESTRICTED_CONTAINER, RESTRICTED_POD, access_key_secret
from components.secrets import generated_secret
from components.storage.local_registry import local_registry
from components.storage.seaweedfs import ENDPOINT, SeaweedFs, SeaweedFsArgs
from mlplatform.pins import SEAWEEDFS_IMAGE, SEAWEEDFS_UID

# SeaweedFS's legacy actions, each scoped to one bucket as `<Action>:<bucket>` (weed/s3api/auth_credentials.go
# @ 4.44, Identity.CanDo: an action without wildcards matches `<action>:<bucket>` exactly, for every object of
# the bucket). Which request needs which action is weed/s3api/s3api_server.go's router: GetObject, HeadObject,
# HeadBucket, GetBucketLocation and ListMultipartUploads need Read; ListObjects(V2) List; PutObject, DeleteObject,
# the multipart calls and CopyObject Write. The same sets AWS grants (aws.py READ_ACTIONS, WRITE_ACTIONS and
# s3:ListBucket, GetBucketLocation); nothing here grants Admin, Tagging, ACLs or bucket deletion.
ACTIONS: Mapping[Access, tuple[str, ...]] = {
    Access.READ: ("Read", "List"),
    Access.READ_WRITE: ("Read", "List", "Write"),
}
ACCESS_KEY_LENGTH, SECRET_KEY_LENGTH = 20, 40  # AWS's own key id and secret lengths

# The Job that uploads the repository's example files (SeedObject), as the seeding identity in `data`.
SEEDER_KEY = "storage-seeder"


def bucket_name(stack: str, purpose: BucketPurpose) -> str:
    """The bucket's name in the store (one store per cluster, so no random suffix is needed)."""
    return f"{stack}-{purpose.value}"


def actions(grants: Sequence[BucketGrant], names: Mapping[BucketPurpose, str]) -> list[str]:
    """SeaweedFS actions for a workload's grants: each action on each granted bucket, nothing else."""
    return [f"{action}:{names[g.purpose]}" for g in grants for action in ACTIONS[g.access]]


def identities_file(
    keys: Mapping[str, tuple[str, str]], grants: Mapping[str, Sequence[BucketGrant]], names: Mapping[BucketPurpose, str]
) -> str:
    """SeaweedFS's `-s3.config` file: one identity per workload key with its access key and its actions. No
    `anonymous` identity: unsigned requests are refused."""
    identities = [
        {
            "name": key,
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": actions(grants[key], names),
        }
        for key, (access, secret) in sorted(keys.items())
    ]
    return json.dumps({"identities": identities}, indent=2, sort_keys=True)


def seeder_spec(seeds: Sequence[SeedObject]) -> WorkloadSpec:
    """The seeding Job's identity: write access to the buckets that receive seed files, nothing else."""
    purposes = sorted({s.purpose for s in seeds}, key=lambda p: p.value)
    return WorkloadSpec(
        SEEDER_KEY, Namespace.DATA, SEEDER_KEY, tuple(BucketGrant(p, Access.READ_WRITE) for p in purposes)
    )


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: StorageArgs,
    cluster: ClusterOutputs,
    workloads: Sequence[WorkloadSpec],
    kafka: KafkaEndpoint | None,
    seeds: Sequence[SeedObject],
    namespaces: PlatformNamespaces | None,
) -> StorageOutputs:
    """Kafka grants are not this layer's on local: the in-cluster Kafka makes a user per workload (data layer)."""
    if namespaces is None:
        raise ValueError("the local object store needs the platform namespaces (Storage(namespaces=...))")
    data_ns = namespaces[Namespace.DATA]
    k8s_opts = pulumi.ResourceOptions(parent=parent, provider=cluster.kubernetes_provider)
    names = {p: bucket_name(name, p) for p in bucket_purposes(workloads)}
    buckets = {
        p: Bucket(
            p,
            pulumi.Output.from_input(names[p]),
            pulumi.Output.from_input(f"s3://{names[p]}"),
            ObjectStore.S3,
            cfg.region,
            endpoint=ENDPOINT.url,
        )
        for p in names
    }
    specs = list(workloads) + ([seeder_spec(seeds)] if seeds else [])
    keys = {s.key: _access_key(parent, name, s, cfg.region) for s in specs}
    pairs = pulumi.Output.all(
        **{k: pulumi.Output.all(key.access_key_id, key.secret_access_key) for k, key in keys.items()}
    )
    grants = {s.key: s.grants for s in specs}
    s3_config = pulumi.Output.secret(
        pairs.apply(lambda p: identities_file({k: (v[0], v[1]) for k, v in p.items()}, grants, names))
    )
    store_name = f"{name}-seaweedfs"
    store = SeaweedFs(
        store_name,
        SeaweedFsArgs(
            environment=cfg,
            namespace=data_ns.metadata.name,
            storage_class=cluster.block_storage_class,
            buckets=tuple(names.values()),
            s3_config=s3_config,
            pool=cluster.system_pool,
        ),
        opts=k8s_opts,
    )
    if seeds:
        _seed(store, store_name, name, data_ns, keys[SEEDER_KEY], buckets, seeds, cluster)
    identities = {
        w.key: WorkloadIdentity(
            spec=w,
            principal=keys[w.key].access_key_id,
            service_account_annotations=pulumi.Output.from_input({}),
            access_key=keys[w.key],
        )
        for w in workloads
    }
    return StorageOutputs(
        buckets=buckets, identities=identities, registry=local_registry(cluster.facts(LocalClusterFacts))
    )


def _access_key(parent: pulumi.Resource, name: str, spec: WorkloadSpec, region: str) -> AccessKey:
    """A generated key pair. The key id is not a secret (it names the identity in the store's log), as on AWS."""
    key_id = generated_secret(parent, f"{name}-{spec.key}-access-key-id", length=ACCESS_KEY_LENGTH)
    return AccessKey(
        secret_name=f"{spec.service_account}-s3-access-key",
        access_key_id=pulumi.Output.unsecret(key_id.apply(str.upper)),
        secret_access_key=generated_secret(parent, f"{name}-{spec.key}-secret-access-key", length=SECRET_KEY_LENGTH),
        endpoint=ENDPOINT.url,
        region=region,
    )


def seed_script(seeds: Sequence[SeedObject], buckets: Mapping[BucketPurpose, str]) -> str:
    """PUT each file to its key with curl's own SigV4 signing (`--aws-sigv4`, curl >= 7.75; the SeaweedFS
    image installs Alpine's curl), so the seeding Job needs no image beyond the store's. The payload's SHA-256
    goes in x-amz-content-sha256, which S3's SigV4 requires and curl signs as given (curl 7.88 sends none of
    its own: tests/test_local_object_store.py runs this script against a verifying server)."""
    lines = ["set -eu"]
    for obj in seeds:
        url = f"{ENDPOINT.url}/{buckets[obj.purpose]}/{obj.key}"
        path = f"/seed/{_file_key(obj)}"
        lines.append(
            "curl --fail --silent --show-error --retry 10 --retry-connrefused --retry-delay 3 "
            '--aws-sigv4 "aws:amz:${AWS_REGION}:s3" --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" '
            f'-H "x-amz-content-sha256: $(sha256sum {path} | cut -d " " -f 1)" '
            f'--upload-file "{path}" "{url}"'
        )
    return "\n".join(lines) + "\n"


def _file_key(obj: SeedObject) -> str:
    return obj.slug.replace("_", "-") + "." + obj.key.rsplit(".", 1)[-1]


def _seed(
    store: SeaweedFs,
    store_name: str,
    name: str,
    ns: k8s.core.v1.Namespace,
    key: AccessKey,
    buckets: Mapping[BucketPurpose, Bucket],
    seeds: Sequence[SeedObject],
    cluster: ClusterOutputs,
) -> k8s.batch.v1.Job:
    """What aws.seed and gcp.seed do with the provider's object uploads: the files, at every `up` where they
    changed, in their buckets. The files travel in a ConfigMap (binaryData; the example files are a few KiB,
    far below its 1 MiB); the Job is named by Pulumi and its template carries the files' hash, so new contents
    make a new Job, which Pulumi waits to complete. Its objects are the store's children, named from it
    (`store_name`); `name` is the layer's, which the buckets are named from."""
    contents = {_file_key(s): s.source.read_bytes() for s in seeds}
    files = k8s.core.v1.ConfigMap(
        f"{store_name}-seed-files",
        metadata={"namespace": ns.metadata.name, "labels": PART_OF},
        binary_data={k: base64.b64encode(v).decode() for k, v in contents.items()},
        opts=pulumi.ResourceOptions(parent=store),
    )
    secret = access_key_secret(store, f"{store_name}-seeder-access-key", key, ns)
    plain = {p: bucket_name(name, p) for p in buckets}
    digest = hashlib.sha256(b"".join(hashlib.sha256(v).digest() for _, v in sorted(contents.items()))).hexdigest()
    return k8s.batch.v1.Job(
        f"{store_name}-seed",
        metadata={"namespace": ns.metadata.name, "labels": PART_OF},
        spec={
            "backoffLimit": 6,
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {
                    "labels": {**PART_OF, "app.kubernetes.io/name": "storage-seed"},
                    "annotations": {"mlplatform.io/files-sha256": digest},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "nodeSelector": cluster.system_pool.node_selector(),
                    "tolerations": cluster.system_pool.tolerations(),
                    "securityContext": {**RESTRICTED_POD, "runAsUser": SEAWEEDFS_UID, "runAsGroup": SEAWEEDFS_UID},
                    "containers": [
                        {
                            "name": "upload",
                            "image": SEAWEEDFS_IMAGE,
                            "command": ["/bin/sh", "-c", seed_script(seeds, plain)],
                            "env": key.env(),
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"memory": "64Mi"},
                            },
                            "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                            "volumeMounts": [{"name": "seed", "mountPath": "/seed", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "seed", "configMap": {"name": files.metadata.name}}],
                },
            },
        },
        opts=pulumi.ResourceOptions(parent=store, depends_on=[store.server, files, secret]),
    )
