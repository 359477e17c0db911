"""The stand-in for the Pulumi engine and the cloud providers during an offline plan.

`PlatformMocks` answers each registration with the inputs plus the outputs a real provider would compute
and the program reads (endpoints, ARNs, emails). `RecordingMonitor` keeps every RegisterResource request
whole (parent, provider, dependencies, protect, retainOnDelete), which the SDK's own monitor drops.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from mlplatform.plan.tls_mocks import TLS_OUTPUTS

ACCOUNT = "123456789012"
Outputs = dict[str, Any]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _aws_arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


# Each entry: (logical name, inputs, region, GCP project) -> outputs the provider computes. Inputs arrive camelCase.
_COMPUTED: dict[str, Callable[[str, dict[str, Any], str, str], Outputs]] = {
    "aws:ec2/vpc:Vpc": lambda n, i, r, p: {"arn": _aws_arn("ec2", r, f"vpc/{n}")},
    "aws:eks/cluster:Cluster": lambda n, i, r, p: {
        "name": i.get("name", n),
        "arn": _aws_arn("eks", r, f"cluster/{n}"),
        "endpoint": f"https://{_short_hash(n).upper()}.gr7.{r}.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{r}.amazonaws.com/id/{_short_hash(n).upper()}"}]}],
        "vpcConfig": {**i.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_short_hash(n + 'cluster')}"},
    },
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda n, i, r, p: {
        "arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{i.get('url', '').removeprefix('https://')}",
    },
    "aws:iam/role:Role": lambda n, i, r, p: {"arn": f"arn:aws:iam::{ACCOUNT}:role/{n}", "name": n},
    "aws:kms/key:Key": lambda n, i, r, p: {"arn": _aws_arn("kms", r, f"key/{_short_hash(n)}"), "keyId": _short_hash(n)},
    "aws:s3/bucket:Bucket": lambda n, i, r, p: {
        "bucket": i.get("bucket", f"{n}-{_short_hash(n)}"),
        "arn": f"arn:aws:s3:::{i.get('bucket', f'{n}-{_short_hash(n)}')}",
    },
    "aws:ecr/repository:Repository": lambda n, i, r, p: {
        "registryId": ACCOUNT,
        "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{r}.amazonaws.com/{i.get('name', n)}",
    },
    # an image built and pushed: its first tag, pinned to the digest of what was pushed
    "docker-build:index:Image": lambda n, i, r, p: {
        "digest": f"sha256:{hashlib.sha256(str(i.get('tags')).encode()).hexdigest()}",
        "ref": f"{i['tags'][0]}@sha256:{hashlib.sha256(str(i.get('tags')).encode()).hexdigest()}",
    },
    "aws:rds/instance:Instance": lambda n, i, r, p: {
        "address": f"{n}.c{_short_hash(n)}.{r}.rds.amazonaws.com",
        "port": 5432,
        "identifier": i.get("identifier", n),
        "arn": _aws_arn("rds", r, f"db:{n}"),
    },
    "aws:rds/subnetGroup:SubnetGroup": lambda n, i, r, p: {"name": n},
    "aws:rds/parameterGroup:ParameterGroup": lambda n, i, r, p: {"name": n},
    "aws:elasticache/subnetGroup:SubnetGroup": lambda n, i, r, p: {"name": n},
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda n, i, r, p: {
        "primaryEndpointAddress": f"master.{n}.{_short_hash(n)}.use1.cache.amazonaws.com",
        "configurationEndpointAddress": f"clustercfg.{n}.{_short_hash(n)}.use1.cache.amazonaws.com",
        "port": i.get("port", 6379),
    },
    "aws:msk/cluster:Cluster": lambda n, i, r, p: {
        "arn": _aws_arn("kafka", r, f"cluster/{n}/7c1e0e2a-5d1b-4f6e-9c3a-2b8f0d4e6a11-2"),
        "bootstrapBrokersSaslIam": ",".join(
            f"b-{k}.{n}.{_short_hash(n)}.c2.kafka.{r}.amazonaws.com:9098"
            for k in range(1, int(i.get("numberOfBrokerNodes", 3)) + 1)
        ),
    },
    "gcp:container/cluster:Cluster": lambda n, i, r, p: {
        "name": i.get("name", n),
        "endpoint": "10.0.0.2",
        "masterAuth": {"clusterCaCertificate": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
        "controlPlaneEndpointsConfig": {
            **i.get("controlPlaneEndpointsConfig", {}),
            "dnsEndpointConfig": {
                **i.get("controlPlaneEndpointsConfig", {}).get("dnsEndpointConfig", {}),
                "endpoint": f"gke-{_short_hash(n)}.{r}.gke.goog",
            },
        },
    },
    "gcp:serviceaccount/account:Account": lambda n, i, r, p: {
        "email": f"{i.get('accountId', n)}@{i.get('project', p)}.iam.gserviceaccount.com",
        "name": f"projects/-/serviceAccounts/{i.get('accountId', n)}",
    },
    "gcp:storage/bucket:Bucket": lambda n, i, r, p: {
        "name": i.get("name", f"{n}-{_short_hash(n)}"),
        "url": f"gs://{i.get('name', f'{n}-{_short_hash(n)}')}",
    },
    "gcp:sql/databaseInstance:DatabaseInstance": lambda n, i, r, p: {
        "name": i.get("name", n),
        "privateIpAddress": _psa_address(n, 3),
        "connectionName": f"project:{r}:{n}",
    },
    # Google picks the private service access range; Cloud SQL and Memorystore get addresses inside it
    "gcp:compute/globalAddress:GlobalAddress": lambda n, i, r, p: {"address": "10.30.0.0"},
    "gcp:redis/instance:Instance": lambda n, i, r, p: {
        "host": _psa_address(n, 4),
        "port": 6378,
        "authString": mock_password(f"{n}-auth", 32),
        # the CA in use and the one published for the next rotation (both valid meanwhile)
        "serverCaCerts": [{"cert": mock_ca(f"{n}-ca-{k}")} for k in (1, 2)],
    },
    # the SASL bootstrap address Managed Kafka reports (its documented form; port 9092 for SASL)
    "gcp:managedkafka/cluster:Cluster": lambda n, i, r, p: {
        "clusterId": i.get("clusterId", n),
        "bootstrapAddress": f"bootstrap.{i.get('clusterId', n)}.{r}.managedkafka.{p}.cloud.goog:9092",
    },
    # a new launch template's first version
    "aws:ec2/launchTemplate:LaunchTemplate": lambda n, i, r, p: {"latestVersion": 1, "defaultVersion": 1},
    # a LoadBalancer Service as the cloud reports it once provisioned (the Istio gateway's, read by the program);
    # on local, an address on kind's docker network as Cloud Provider KIND assigns one
    "kubernetes:core/v1:Service": lambda n, i, r, p: {
        "status": {
            "loadBalancer": {
                "ingress": [
                    {"ip": f"172.18.255.{int(_short_hash(n), 16) % 250 + 2}"}
                    if r == "local"
                    else {"hostname": f"k8s-istiosys-{_short_hash(n)}.elb.{r}.amazonaws.com"}
                    if p == "no-gcp-project"
                    else {"ip": f"10.10.{int(_short_hash(n), 16) % 16}.{int(_short_hash(n), 16) % 250 + 2}"}
                ]
            }
        }
    },
    "random:index/randomId:RandomId": lambda n, i, r, p: {
        "b64Std": base64.b64encode(hashlib.sha256(n.encode()).digest()[: int(i.get("byteLength", 8))]).decode(),
        "hex": _short_hash(n),
    },
    "random:index/randomPassword:RandomPassword": lambda n, i, r, p: {
        "result": mock_password(n, int(i.get("length", 16))),
    },
}


AWS_SECRET_VERSION = "aws:secretsmanager/getSecretVersion:getSecretVersion"
GCP_SECRET_ACCESS = "gcp:secretmanager/getSecretVersionAccess:getSecretVersionAccess"


def json_secret_keys(refs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """(secret id, jsonKey) pairs of the config's cloud secret references -> the mock's `json_secrets`
    (a GCP `projects/<p>/secrets/<id>` reference is read by its id)."""
    keys: dict[str, str] = {}
    for secret_id, key in refs:
        if key is not None:
            keys[secret_id] = keys[secret_id.rsplit("/secrets/", 1)[-1]] = key
    return keys


PSA_MOCK_RANGE = "10.30.0.0/20"
MOCK_PROJECT_NUMBER = "314159265358"  # the address the GlobalAddress mock returns, with the program's prefix


def mock_ca(name: str) -> str:
    """A stand-in for a CA certificate the cloud reports (PEM-shaped, distinct per name; not a certificate)."""
    return f"-----BEGIN CERTIFICATE-----\nmock {name}\n-----END CERTIFICATE-----\n"


def mock_password(name: str, length: int) -> str:
    """A generated password that differs per resource, so a test can tell which one reached a consumer."""
    return (hashlib.sha256(f"password:{name}".encode()).hexdigest() * 4)[:length]


def _psa_address(name: str, host: int) -> str:
    """A private address inside the mocked private service access range, distinct per instance."""
    return f"10.30.{int(_short_hash(name), 16) % 16}.{host}"


class PlatformMocks(Mocks):
    """Provider stand-in: inputs echoed, plus the computed outputs above. Unknown invokes fail loudly."""

    def __init__(
        self,
        region: str,
        project: str | None = None,
        *,
        preview: bool = False,
        json_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.region = region
        self.project = project or "no-gcp-project"
        self.preview = preview
        # the cloud secrets the config says hold a JSON object: secret id -> the key the program reads
        self.json_secrets = dict(json_secrets or {})

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if self.preview:
            # a create in `pulumi preview`: only the inputs are known; whatever the provider would
            # compute is left out, which the SDK reads as unknown
            return "", state
        compute = _COMPUTED.get(args.typ)
        if compute is not None:
            state.update(compute(args.name, args.inputs, self.region, self.project))
        issue = TLS_OUTPUTS.get(args.typ)
        if issue is not None:
            state.update(issue(args.name, args.inputs))
        metadata = state.get("metadata")
        if args.typ.startswith("kubernetes:") and isinstance(metadata, dict) and not metadata.get("name"):
            # Pulumi auto-names a Kubernetes object without metadata.name: the logical name plus a suffix
            state["metadata"] = {**metadata, "name": f"{args.name}-{_short_hash(args.name)}"}
        if args.typ.startswith("aws:") and "arn" not in state:
            state["arn"] = _aws_arn(args.typ.split(":")[1].split("/")[0], self.region, args.name)
        state.setdefault("name", args.name)
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "gcp:organizations/getProject:getProject":
            # a project's number is not its ID: a 12-digit number the project was given at creation
            return {"projectId": self.project, "number": MOCK_PROJECT_NUMBER, "name": self.project}, []
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            # a token for `docker login` to the account's registry (the real one lasts 12 hours)
            endpoint = f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com"
            return {"userName": "AWS", "password": mock_password("ecr-token", 64), "proxyEndpoint": endpoint}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            # the deployer's credentials as the provider holds them
            return {"project": self.project, "region": self.region, "accessToken": mock_password("gcp-token", 64)}, []
        if args.token == "gcp:sql/getCaCerts:getCaCerts":
            # instances.listServerCas: the CA in use and one added for the next rotation
            instance = args.args["instance"]
            certs = [
                {
                    "cert": mock_ca(f"{instance}-server-ca-{k}"),
                    "commonName": "C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA",
                    "createTime": "2026-01-01T00:00:00Z",
                    "expirationTime": "2036-01-01T00:00:00Z",
                    "sha1Fingerprint": _short_hash(f"{instance}-{k}"),
                }
                for k in (1, 2)
            ]
            return {"instance": instance, "activeVersion": certs[0]["sha1Fingerprint"], "certs": certs}, []
        if args.token in (AWS_SECRET_VERSION, GCP_SECRET_ACCESS):
            # the secret's current version as the cloud's secret manager returns it: a JSON object where the
            # config names a key in it, otherwise the value itself (distinct per secret)
            secret_id = str(args.args.get("secretId") or args.args.get("secret"))
            value = mock_password(f"cloud-secret:{secret_id}", 40)
            if secret_id in self.json_secrets:
                value = json.dumps({self.json_secrets[secret_id]: value, "unrelated": "other"})
            if args.token == AWS_SECRET_VERSION:
                arn = secret_id if secret_id.startswith("arn:") else _aws_arn("secretsmanager", self.region, secret_id)
                return {"arn": arn, "secretId": secret_id, "secretString": value, "versionId": "v1"}, []
            return {"secret": secret_id, "project": args.args.get("project") or self.project, "secretData": value}, []
        raise NotImplementedError(
            f"the offline plan has no mock for invoke {args.token}; add one to mlplatform/plan/mocks.py"
        )


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    inputs: dict[str, Any]


class RecordingMonitor(MockMonitor):
    """A MockMonitor that keeps each registration's request as plain JSON-able data."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.component_outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    provider=request.provider,
                    custom=bool(request.custom),
                    dependencies=list(request.dependencies),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    ignore_changes=list(request.ignoreChanges),
                    inputs=struct_to_plain(request.object),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.component_outputs[request.urn] = struct_to_plain(request.outputs)
        return super().RegisterResourceOutputs(request)


SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
SIG_KEY = "4dabf18193072939515e22adb298388d"
REDACTED = "[secret]"


def struct_to_plain(struct: Any) -> dict[str, Any]:
    """A protobuf Struct as plain JSON data: secrets redacted, resource references as their URN."""
    return _plain(json_format.MessageToDict(struct)) if struct is not None else {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return REDACTED
        if sig == RESOURCE_SIG:
            return value.get("urn")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
