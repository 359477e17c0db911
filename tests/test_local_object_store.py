"""The local stack's object store (components/storage/local.py, seaweedfs.py) and how every workload uses its
identity there (WorkloadIdentity.env, components/contracts.py).

SeaweedFS itself is on no registry this project reaches (PyPI, npm, Debian: none packages it), so:
- Authorization is decided by the identities file the program writes, evaluated as SeaweedFS 4.44 evaluates
  it: `Identity.CanDo` (weed/s3api/auth_credentials.go) ported below, with the action each S3 call needs from
  the router (weed/s3api/s3api_server.go). What this does NOT prove: that the SeaweedFS binary reads the file
  as ported, or its SigV4 check.
- The transport is checked against moto's S3 server (.venv-feast) as a stand-in: each workload's clients
  (boto3, s3fs) run under exactly the env the plan gives its container, only the endpoint URL moved to the
  stand-in; the seeding Job's own shell script runs with curl against moto with IAM authentication on, whose
  SigV4 verification refuses a badly signed request. What this does NOT prove: that SeaweedFS accepts the same
  requests (its path-style routing and signature check are its own).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from components import workloads
from components.contracts import Access, AccessKey, BucketPurpose, Namespace, WorkloadSpec
from components.guardrails import POD_SECURITY, flow
from components.storage.local import (
    ACTIONS,
    SEEDER_KEY,
    bucket_name,
    identities_file,
    seed_script,
    seeder_spec,
)
from components.storage.seaweedfs import ENDPOINT, mini_args
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.netpol import Cni, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from mlplatform.podsecurity import check_pod, missing_requests, pod_specs
from tests.support.kubelet import container_env
from tests.support.tools import required_tool, venv_python

STACK = "mlplatform"  # stacks/platform.py NAME: the buckets' prefix
SPECS = (*workloads.ALL, workloads.STREAMING)
SECRET = "kubernetes:core/v1:Secret"

# -- SeaweedFS's authorization, ported -------------------------------------------------------------------

# The action each S3 call needs (weed/s3api/s3api_server.go @ 4.44, the bucket router's iam.Auth(..., ACTION_*)
# per route): the calls the platform's clients make, and some they must never be able to.
CALLS: Mapping[str, str] = {
    "GetObject": "Read",
    "HeadObject": "Read",
    "HeadBucket": "Read",
    "GetBucketLocation": "Read",
    "ListObjectsV2": "List",
    "PutObject": "Write",
    "DeleteObject": "Write",
    "CreateMultipartUpload": "Write",
    "CopyObject": "Write",
    "PutBucketPolicy": "PutBucketPolicy",
    "DeleteBucket": "DeleteBucket",
    "PutBucketEncryption": "Admin",
    "PutObjectTagging": "Tagging",
    "PutObjectAcl": "WriteAcp",
}
NEEDS: Mapping[str, Access | None] = {
    "Read": Access.READ,
    "List": Access.READ,
    "Write": Access.READ_WRITE,
}


def can_do(identity: Mapping[str, Any], action: str, bucket: str) -> bool:
    """Identity.CanDo for an identity of the file, as SeaweedFS 4.44 decides it: Admin allows all; an action
    without a bucket allows it everywhere; otherwise `<action>:<bucket>` or `Admin:<bucket>` exactly (the file's
    actions have no wildcards; a wildcard would be matched against `<action>:<bucket>/<key>`)."""
    actions = identity["actions"]
    assert not any(set(a) & set("*?") for a in actions), "the program writes no wildcard actions"
    if "Admin" in actions or action in actions:
        return True
    return f"{action}:{bucket}" in actions or f"Admin:{bucket}" in actions


def lookup(config: Mapping[str, Any], access_key: str, secret_key: str) -> Mapping[str, Any] | None:
    """The identity a request signed with this pair is verified as (an unknown key or a wrong secret: none,
    and SeaweedFS answers InvalidAccessKeyId / SignatureDoesNotMatch)."""
    for identity in config["identities"]:
        for cred in identity.get("credentials", []):
            if cred["accessKey"] == access_key and cred["secretKey"] == secret_key:
                return identity
    return None


def _keys(specs: tuple[WorkloadSpec, ...]) -> dict[str, tuple[str, str]]:
    return {s.key: (f"AK{s.key.upper().replace('-', '')}"[:20], f"secret-of-{s.key}") for s in specs}


def _config(specs: tuple[WorkloadSpec, ...] = SPECS) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    keys = _keys(specs)
    names = {p: bucket_name(STACK, p) for p in BucketPurpose}
    return json.loads(identities_file(keys, {s.key: s.grants for s in specs}, names)), keys


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_each_workload_reaches_exactly_its_buckets_with_its_access(spec: WorkloadSpec) -> None:
    config, keys = _config()
    identity = lookup(config, *keys[spec.key])
    assert identity is not None and identity["name"] == spec.key
    granted = {g.purpose: g.access for g in spec.grants}
    for purpose in BucketPurpose:
        bucket = bucket_name(STACK, purpose)
        for call, action in CALLS.items():
            need = NEEDS.get(action)
            have = granted.get(purpose)
            expected = need is not None and have is not None and (need is Access.READ or have is Access.READ_WRITE)
            assert can_do(identity, action, bucket) is expected, (spec.key, purpose.value, call)
    # every workload here has a grant, and at least one bucket it cannot touch at all
    assert granted and set(BucketPurpose) - set(granted)


def test_a_wrong_secret_or_an_unsigned_request_is_nobody() -> None:
    config, keys = _config()
    access, secret = keys[workloads.MLFLOW.key]
    assert lookup(config, access, secret + "x") is None
    assert lookup(config, "AKNOBODY", secret) is None
    # no `anonymous` identity: SeaweedFS lets unsigned requests do only what an identity so named may
    assert all(i["name"] != "anonymous" and i["credentials"] for i in config["identities"])
    # a broken file would be caught: a grant-less workload's identity can do nothing
    empty = WorkloadSpec("nothing", Namespace.PLATFORM, "nothing", ())
    bare, bare_keys = _config((empty,))
    identity = lookup(bare, *bare_keys["nothing"])
    assert identity is not None
    assert not any(can_do(identity, a, bucket_name(STACK, p)) for a in CALLS.values() for p in BucketPurpose)


def test_the_seeding_identity_writes_only_where_seeds_go() -> None:
    from components.lifecycle.feast import EXAMPLE_DATA
    from components.streaming import STREAM_DATA

    spec = seeder_spec((EXAMPLE_DATA, STREAM_DATA))
    config, keys = _config((spec,))
    identity = lookup(config, *keys[SEEDER_KEY])
    assert identity is not None
    allowed = {p for p in BucketPurpose if can_do(identity, "Write", bucket_name(STACK, p))}
    assert allowed == {EXAMPLE_DATA.purpose, STREAM_DATA.purpose}
    assert set(ACTIONS[Access.READ_WRITE]) >= {"Write"} and "Write" not in ACTIONS[Access.READ]


# -- the local plan ------------------------------------------------------------------------------------------


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, Mapping):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _named(doc: PlanDocument, name: str) -> Mapping[str, Any]:
    found = [r for r in doc.resources if r.name == name and not r.type.startswith("mlplatform:")]
    assert len(found) == 1, (name, len(found))
    return found[0].inputs


def _text(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


def test_the_store_is_one_pod_at_restricted_with_its_buckets(local: PlanDocument) -> None:
    server = _named(local, "mlplatform-seaweedfs-server")
    assert server["metadata"]["namespace"] == Namespace.DATA.value
    level = POD_SECURITY[Namespace.DATA]
    checked = 0
    for name in ("mlplatform-seaweedfs-server", "mlplatform-seaweedfs-seed"):
        obj = _named(local, name)
        for where, spec, _ in pod_specs(obj):
            assert check_pod(spec, level, where) == [] and missing_requests(spec, where) == []
            checked += 1
    assert checked == 2
    container = server["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":4.44") and "latest" not in container["image"]
    args = container["args"]
    assert args == mini_args([bucket_name(STACK, p) for p in BucketPurpose])
    # the Service and the pod's port are the flow's
    service = _named(local, "mlplatform-seaweedfs-service")
    assert service["spec"]["ports"][0]["port"] == flow("object-store").port == ENDPOINT.port
    claim = _named(local, "mlplatform-seaweedfs-data")
    assert claim["spec"]["storageClassName"]


def _containers_with_key(doc: PlanDocument) -> list[tuple[str, Mapping[str, Any]]]:
    """Every container env (Kubernetes objects and chart values) that reads an access key Secret."""
    found = []
    for r in doc.resources:
        for node in _walk(r.inputs):
            if isinstance(node, Mapping) and isinstance(node.get("env"), list):
                env = node["env"]
                refs = [
                    e["valueFrom"]["secretKeyRef"]["name"]
                    for e in env
                    if isinstance(e, Mapping) and "secretKeyRef" in (e.get("valueFrom") or {})
                ]
                if any(str(n).endswith("-s3-access-key") for n in refs):
                    found.append((r.name, node))
    return found


def test_every_bucket_consumer_names_the_store(local: PlanDocument) -> None:
    """Each consumer's rendered configuration carries the endpoint (and, where it cannot take env by reference,
    the key's Secret by name)."""
    url, authority = ENDPOINT.url, f"{ENDPOINT.host}:{ENDPOINT.port}"
    consumers = {
        "mlplatform-mlflow": ("MLFLOW_S3_ENDPOINT_URL", "mlflow-s3-access-key"),
        "mlplatform-feast": ("AWS_ENDPOINT_URL_S3", "feast-s3-access-key"),
        "mlplatform-feast-materialize": ("AWS_ENDPOINT_URL_S3", "feast-s3-access-key"),
        "mlplatform-feast-apply": ("AWS_ENDPOINT_URL_S3", "feast-s3-access-key"),
        "mlplatform-airflow": ("AWS_ENDPOINT_URL_S3", "airflow-s3-access-key"),
        "mlplatform-kuberay-cluster": ("AWS_ENDPOINT_URL_S3", "ray-s3-access-key"),
        "mlplatform-drift-job": ("AWS_ENDPOINT_URL_S3", "drift-s3-access-key"),
        "mlplatform-jupyterhub": ("AWS_ENDPOINT_URL_S3", "notebook-s3-access-key"),
        "mlplatform-loki": ("s3ForcePathStyle", "loki-s3-access-key"),
        "mlplatform-feature-push": ("fs.s3a.endpoint", "feature-push-s3-access-key"),
    }
    for name, (setting, secret) in consumers.items():
        text = _text(_named(local, name))
        assert setting in text and secret in text, name
        assert url in text or authority in text, name
    # the training Jobs' feature step (an Airflow variable holding the pod template) as the training identity
    airflow = _text(_named(local, "mlplatform-airflow"))
    assert "training-s3-access-key" in airflow
    # Loki: the endpoint as host:port, plain HTTP, the key from env expansion
    loki = _named(local, "mlplatform-loki")["values"]
    s3 = loki["loki"]["storage"]["s3"]
    assert (s3["endpoint"], s3["insecure"], s3["s3ForcePathStyle"]) == (authority, True, True)
    assert s3["accessKeyId"] == "${AWS_ACCESS_KEY_ID}"
    assert "-config.expand-env=true" in loki["singleBinary"]["extraArgs"]
    # Flink's S3A: the endpoint, path-style, the key from the environment
    conf = _named(local, "mlplatform-feature-push")["spec"]["flinkConfiguration"]
    assert conf["fs.s3a.endpoint"] == url and conf["fs.s3a.path.style.access"] == "true"
    assert conf["fs.s3a.aws.credentials.provider"].endswith("EnvironmentVariableCredentialsProvider")
    # KServe's storage-initializer: the service account lists the Secret, which carries KServe's keys
    account = _named(local, "mlplatform-kserve-model-pull-account")
    assert account["secrets"] == [{"name": "kserve-model-pull-s3-access-key"}]
    key = _named(local, "mlplatform-kserve-model-pull-account-access-key")
    assert key["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == url
    # and every container given a key also gets the endpoint beside it
    containers = _containers_with_key(local)
    owners = {name for name, _ in containers}
    assert owners >= {
        "mlplatform-feast-materialize",
        "mlplatform-feast-apply",
        "mlplatform-kuberay-cluster",
        "mlplatform-drift-job",
        "mlplatform-feature-push",
        "mlplatform-seaweedfs-seed",
    }
    for name, container in containers:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("AWS_ENDPOINT_URL_S3") == url and env.get("AWS_REGION"), name


def test_clouds_get_no_key_and_no_endpoint(dev: PlanDocument, gcp_dev: PlanDocument) -> None:
    for doc in (dev, gcp_dev):
        text = _text([r.inputs for r in doc.resources])
        assert "AWS_ENDPOINT_URL_S3" not in text and "-s3-access-key" not in text
        assert not [r for r in doc.resources if "seaweedfs" in r.name]


def test_only_the_bucket_namespaces_reach_the_store(local: PlanDocument) -> None:
    policies = PolicySet(local, Cni.KINDNET)
    [deployment] = [
        d for d in local.by_type("kubernetes:apps/v1:Deployment") if d.inputs["metadata"]["name"] == ENDPOINT.name
    ]
    store = Pod(Namespace.DATA.value, deployment.inputs["spec"]["template"]["metadata"]["labels"], "10.244.0.10")
    # the workloads holding a bucket grant, in-cluster PostgreSQL's backup sidecar (in `data`) among them
    specs = (
        *SPECS,
        *workloads.postgres_backup_workloads(
            load_config(namespace_values(read_stack_file(PROJECT_DIR, "local")), "local").data
        ),
    )
    clients = {s.namespace for s in specs}
    assert Namespace.DATA in clients and clients == set(flow("object-store").sources)
    for ns in Namespace:
        verdict = policies.decide(Pod(ns.value, {}, "10.244.0.20"), store, ENDPOINT.port)
        assert verdict.allowed is (ns in clients), (ns, verdict.why)


# every port `weed mini` 4.44 opens besides the S3 gateway, without authentication (weed/command/mini.go: master
# 9333, volume 9340, filer 8888, webdav 7333, admin 23646, and their gRPC ports at +10000)
WEED_UNAUTHENTICATED_PORTS = (9333, 19333, 9340, 19340, 8888, 18888, 7333, 23646, 33646)


@pytest.mark.parametrize("port", WEED_UNAUTHENTICATED_PORTS)
def test_no_pod_reaches_the_stores_other_ports(local: PlanDocument, port: int) -> None:
    """Not even from `data`, whose baseline admits same-namespace traffic on every port: a compromised
    database or broker pod would otherwise read and write every bucket through the filer, keys bypassed."""
    policies = PolicySet(local, Cni.KINDNET)
    [deployment] = [
        d for d in local.by_type("kubernetes:apps/v1:Deployment") if d.inputs["metadata"]["name"] == ENDPOINT.name
    ]
    store = Pod(Namespace.DATA.value, deployment.inputs["spec"]["template"]["metadata"]["labels"], "10.244.0.10")
    for ns in Namespace:
        verdict = policies.decide(Pod(ns.value, {}, "10.244.0.20"), store, port)
        assert not verdict.allowed, (ns, port, verdict.why)


# -- clients under the planned env, against a stand-in S3 -----------------------------------------------------

MOTO_SERVER = """
import json, sys
from moto import settings
auth = sys.argv[1] == "auth"
if auth:
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 4
import boto3
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
url = f"http://{host}:{port}"
base = {"endpoint_url": url, "region_name": "us-east-1"}
out = {"url": url}
if auth:
    iam = boto3.client("iam", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", **base)
    iam.create_user(UserName="seeder")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="seeder", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="seeder")["AccessKey"]
    out |= {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    base |= {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
else:
    base |= {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
s3 = boto3.client("s3", **base)
for bucket in sys.argv[2:]:
    s3.create_bucket(Bucket=bucket)
print(json.dumps(out), flush=True)
sys.stdin.read()
"""

# A workload's own clients with no argument at all: boto3.client("s3"), s3fs.S3FileSystem() (Feast's Dask
# offline store reads with it, storage_options None without s3_endpoint_override: feast v0.66.0
# infra/offline_stores/dask.py _read_datasource) and pyarrow's FileSystem.from_uri (Feast's offline writes,
# file_source.py create_filesystem_and_path) take the endpoint, region, key and path-style addressing from the
# env alone. Writes when asked, then reads back.
CLIENT = """
import json, sys
import boto3, s3fs, pyarrow, pyarrow.fs, pyarrow.parquet as pq
bucket, write = sys.argv[1], sys.argv[2] == "write"
s3 = boto3.client("s3")
fs = s3fs.S3FileSystem()
if write:
    s3.put_object(Bucket=bucket, Key="probe/boto3.txt", Body=b"boto3")
    with fs.open(f"{bucket}/probe/s3fs.txt", "wb") as f:
        f.write(b"s3fs")
    arrow, path = pyarrow.fs.FileSystem.from_uri(f"s3://{bucket}/probe/arrow.parquet")
    pq.write_table(pyarrow.table({"a": [1]}), path, filesystem=arrow)
keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
print(json.dumps({"keys": keys, "read": fs.cat(f"{bucket}/probe/s3fs.txt").decode() if write else None,
                  "endpoint": s3.meta.endpoint_url, "region": s3.meta.region_name}))
"""


class StandIn:
    """moto's S3 server in .venv-feast with the buckets made, while the block runs."""

    def __init__(self, python: str, buckets: list[str], auth: bool = False) -> None:
        self.proc = subprocess.Popen(
            [python, "-c", MOTO_SERVER, "auth" if auth else "plain", *buckets],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info: dict[str, str] = json.loads(self.proc.stdout.readline())

    def __enter__(self) -> dict[str, str]:
        return self.info

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _container(doc: PlanDocument, resource: str, name: str | None = None) -> Mapping[str, Any]:
    for owner, container in _containers_with_key(doc):
        if owner == resource and (name is None or container.get("name") == name):
            return container
    raise AssertionError(f"no container reading a key in {resource}")


def _planned_env(container: Mapping[str, Any], stand_in: str, key: tuple[str, str]) -> dict[str, str]:
    """The container's env as the kubelet resolves it, the key Secret holding `key`; the one change is the
    endpoint, moved from the planned Service to the stand-in."""
    secret = {AccessKey.ACCESS_KEY_ID: key[0], AccessKey.SECRET_ACCESS_KEY: key[1]}
    entries = [e for e in container["env"] if str(e["name"]).startswith("AWS_")]
    env = container_env({"env": entries}, secret)
    assert env["AWS_ENDPOINT_URL_S3"] == ENDPOINT.url
    return env | {"AWS_ENDPOINT_URL_S3": stand_in}


@pytest.mark.slow
def test_clients_use_the_store_from_the_planned_env_alone(local: PlanDocument) -> None:
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    datasets, artifacts = bucket_name(STACK, BucketPurpose.DATASETS), bucket_name(STACK, BucketPurpose.ARTIFACTS)
    cases = [
        ("mlplatform-feast-materialize", None, datasets, True),  # Feast's offline store (s3fs) as feast
        ("mlplatform-drift-job", "fetch", datasets, False),  # the drift job's boto3 fetch
        ("mlplatform-kuberay-cluster", None, artifacts, True),  # Ray's workers
    ]
    with StandIn(python, [datasets, artifacts]) as moto, tempfile.TemporaryDirectory() as home:
        for resource, name, bucket, write in cases:
            env = _planned_env(_container(local, resource, name), moto["url"], ("x", "x"))
            run_env = {"PATH": os.environ["PATH"], "HOME": home} | env
            out = subprocess.run(
                [python, "-c", CLIENT, bucket, "write" if write else "read"],
                env=run_env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert out.returncode == 0, (resource, out.stderr[-2000:])
            result = json.loads(out.stdout)
            assert result["endpoint"] == moto["url"] and result["region"] == env["AWS_REGION"], resource
            if write:
                assert {"probe/boto3.txt", "probe/s3fs.txt", "probe/arrow.parquet"} <= set(result["keys"])
                assert result["read"] == "s3fs"
        # without the planned endpoint a client goes to AWS: the env is what points it at the store
        bare = {"PATH": os.environ["PATH"], "HOME": home, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_REGION": "local", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
        probe = "import boto3; print(boto3.client('s3').meta.endpoint_url)"
        out = subprocess.run([python, "-c", probe], env=bare, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "amazonaws.com" in out.stdout


@pytest.mark.slow
def test_the_seed_job_uploads_each_file_signed(local: PlanDocument) -> None:
    """The planned Job's script, run as written with curl's SigV4 against moto with authentication on: each
    seed lands at its key with its bytes, and a wrong secret is refused (moto verifies the signature)."""
    from components.lifecycle.feast import EXAMPLE_DATA
    from components.streaming import STREAM_DATA

    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    curl = required_tool("curl", "curl")
    job = _named(local, "mlplatform-seaweedfs-seed")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    script = container["command"][-1]
    seeds = (EXAMPLE_DATA, STREAM_DATA)
    buckets = {p: bucket_name(STACK, p) for p in BucketPurpose}
    assert script == seed_script(seeds, buckets)
    files = _named(local, "mlplatform-seaweedfs-seed-files")["binaryData"]
    made = sorted({buckets[s.purpose] for s in seeds})
    with StandIn(python, made, auth=True) as moto, tempfile.TemporaryDirectory() as root:
        seed_dir = Path(root) / "seed"
        seed_dir.mkdir()
        for k, v in files.items():
            (seed_dir / k).write_bytes(base64.b64decode(v))
        run_script = script.replace("/seed/", f"{seed_dir}/").replace(ENDPOINT.url, moto["url"])
        for secret, ok in ((moto["secret_key"], True), (moto["secret_key"] + "x", False)):
            env = _planned_env(container, moto["url"], (moto["access_key"], secret))
            env = {"PATH": os.path.dirname(curl) + os.pathsep + os.environ["PATH"]} | env
            out = subprocess.run(["/bin/sh", "-c", run_script], env=env, capture_output=True, text=True, timeout=120)
            assert (out.returncode == 0) is ok, out.stderr[-1500:]
        check = (
            "import boto3, sys, json; s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',"
            " aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3]);"
            " print(json.dumps({k: s3.get_object(Bucket=b, Key=k)['Body'].read().hex()"
            " for b, k in zip(sys.argv[4::2], sys.argv[5::2])}))"
        )
        pairs = [x for s in seeds for x in (buckets[s.purpose], s.key)]
        out = subprocess.run(
            [python, "-c", check, moto["url"], moto["access_key"], moto["secret_key"], *pairs],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-1500:]
        got = json.loads(out.stdout)
        assert got == {s.key: s.source.read_bytes().hex() for s in seeds}


def test_the_identities_file_is_the_secret_the_store_mounts(local: PlanDocument) -> None:
    server = _named(local, "mlplatform-seaweedfs-server")
    pod = server["spec"]["template"]["spec"]
    config = next(v for v in pod["volumes"] if v["name"] == "config")["secret"]["secretName"]
    secret = _named(local, "mlplatform-seaweedfs-s3-config")
    assert secret["metadata"]["name"] == config
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config")
    assert f"-s3.config={mount['mountPath']}/s3.json" in pod["containers"][0]["args"]
