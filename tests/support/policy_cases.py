"""Weakened copies of real plans for the policy tests: each case edits one registration of a stack's plan
the way a careless change to the program (or a user's edit) would, and names the rule that must catch it.

Cases edit a deep copy; `weaken` applies every case of a stack at once (the "weakened prod")."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from tests.support.registrations import custom_registration


def find(
    doc: PlanDocument, type_: str, name: str | None = None, pred: Callable[[Registration], bool] | None = None
) -> Registration:
    found = [r for r in doc.by_type(type_) if (name is None or r.name == name) and (pred is None or pred(r))]
    if not found:
        raise LookupError(f"no {type_} {name!r} in the {doc.stack} plan")
    return found[0]


def _policy(reg: Registration, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(reg.inputs["policy"])
    edit(document)
    reg.inputs["policy"] = json.dumps(document)


def _bootstrap_job(doc: PlanDocument) -> Registration:
    return find(doc, "kubernetes:batch/v1:Job", pred=lambda r: "bootstrap" in r.name)


def _bootstrap_container(doc: PlanDocument) -> dict[str, Any]:
    return _bootstrap_job(doc).inputs["spec"]["template"]["spec"]["containers"][0]


def _primary_rds(doc: PlanDocument) -> Registration:
    return find(doc, "aws:rds/instance:Instance", pred=lambda r: not r.inputs.get("replicateSourceDb"))


def _release(doc: PlanDocument, chart: str) -> Registration:
    for t in ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"):
        for r in doc.by_type(t):
            if r.inputs.get("chart") == chart:
                return r
    raise LookupError(chart)


@dataclass(frozen=True)
class Case:
    rule: str
    stack: str
    what: str  # the weakening, for the test id
    edit: Callable[[PlanDocument], Registration | None]  # returns the registration the finding must name
    contains: str = ""  # a text the finding's message must contain (an HA row's name)


def _set(reg: Registration, path: str, value: Any) -> Registration:
    node = reg.inputs
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return reg


_DELETE = object()


def _dangling_archiver(doc: PlanDocument) -> Registration:
    """The in-cluster Cluster's WAL archiver pointed at an ObjectStore nobody makes; the finding names the Cluster."""
    entry = {"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True, "parameters": {"barmanObjectName": "x"}}
    _set(find(doc, "kubernetes:postgresql.cnpg.io/v1:ClusterPatch"), "spec.plugins", [entry])
    return find(doc, "kubernetes:postgresql.cnpg.io/v1:Cluster")


def _no_replica(doc: PlanDocument) -> Registration:
    replica = find(doc, "aws:rds/instance:Instance", pred=lambda r: bool(r.inputs.get("replicateSourceDb")))
    doc.resources.remove(replica)
    return _primary_rds(doc)


def _inference_service(doc: PlanDocument) -> Registration:
    """An InferenceService as components/serving/models.py registers one, with a minReplicas of 1."""
    parent = find(doc, "mlplatform:serving:Models")
    type_ = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
    reg = custom_registration(
        f"{parent.urn.rsplit('::', 1)[0]}${type_}::mlplatform-churn",
        type_,
        "mlplatform-churn",
        parent=parent.urn,
        inputs={
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "churn", "namespace": "model-serving"},
            "spec": {"predictor": {"minReplicas": 1.0, "model": {"modelFormat": {"name": "mlflow"}}}},
        },
    )
    doc.resources.append(reg)
    return reg


def _conf(doc: PlanDocument, key: str, edit: Callable[[str], str]) -> None:
    cm = find(doc, "kubernetes:core/v1:ConfigMap", pred=lambda r: key in (r.inputs.get("data") or {}))
    cm.inputs["data"][key] = edit(cm.inputs["data"][key])


def _allow_all_ingress(doc: PlanDocument) -> Registration:
    pol = find(doc, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "mlplatform-data-default-deny")
    pol.inputs["spec"]["ingress"] = [{}]
    return find(doc, "kubernetes:core/v1:Namespace", pred=lambda r: r.inputs["metadata"]["name"] == "data")


CASES: tuple[Case, ...] = (
    # storage
    Case(
        "bucket-private",
        "prod",
        "public policy allowed",
        lambda d: (
            _set(
                find(d, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "mlplatform-artifacts"),
                "blockPublicPolicy",
                False,
            )
            and find(d, "aws:s3/bucket:Bucket", "mlplatform-artifacts")
        ),
    ),
    Case(
        "bucket-private",
        "gcp-prod",
        "public access inherited",
        lambda d: _set(
            find(d, "gcp:storage/bucket:Bucket", "mlplatform-datasets"), "publicAccessPrevention", "inherited"
        ),
    ),
    Case(
        "bucket-encrypted",
        "prod",
        "SSE-S3 instead of the KMS key",
        lambda d: (
            _set(
                find(
                    d,
                    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                    "mlplatform-logs",
                ),
                "rules",
                [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            )
            and find(d, "aws:s3/bucket:Bucket", "mlplatform-logs")
        ),
    ),
    Case(
        "bucket-tls-only",
        "prod",
        "no SecureTransport deny",
        lambda d: (
            _policy(
                find(d, "aws:s3/bucketPolicy:BucketPolicy", "mlplatform-datasets"), lambda p: p.update(Statement=[])
            )
            or find(d, "aws:s3/bucket:Bucket", "mlplatform-datasets")
        ),
    ),
    Case(
        "bucket-versioned",
        "prod",
        "versioning suspended",
        lambda d: (
            _set(
                find(d, "aws:s3/bucketVersioning:BucketVersioning", "mlplatform-artifacts"),
                "versioningConfiguration",
                {"status": "Suspended"},
            )
            and find(d, "aws:s3/bucket:Bucket", "mlplatform-artifacts")
        ),
    ),
    Case(
        "bucket-versioned",
        "gcp-prod",
        "versioning off",
        lambda d: _set(find(d, "gcp:storage/bucket:Bucket", "mlplatform-artifacts"), "versioning", {"enabled": False}),
    ),
    Case(
        "bucket-no-force-destroy",
        "prod",
        "forceDestroy",
        lambda d: _set(find(d, "aws:s3/bucket:Bucket", "mlplatform-logs"), "forceDestroy", True),
    ),
    # databases
    Case(
        "database-encrypted", "prod", "unencrypted storage", lambda d: _set(_primary_rds(d), "storageEncrypted", False)
    ),
    Case(
        "database-not-public",
        "prod",
        "publicly accessible",
        lambda d: _set(_primary_rds(d), "publiclyAccessible", True),
    ),
    Case(
        "database-not-public",
        "gcp-prod",
        "public IP",
        lambda d: _set(
            find(d, "gcp:sql/databaseInstance:DatabaseInstance", "mlplatform-postgres"),
            "settings.ipConfiguration.ipv4Enabled",
            True,
        ),
    ),
    Case(
        "database-ssl-required",
        "prod",
        "rds.force_ssl 0",
        lambda d: (
            _set(
                find(d, "aws:rds/parameterGroup:ParameterGroup"),
                "parameters",
                [{"name": "rds.force_ssl", "value": "0"}],
            )
            and _primary_rds(d)
        ),
    ),
    Case(
        "database-ssl-required",
        "gcp-prod",
        "plaintext allowed",
        lambda d: _set(
            find(d, "gcp:sql/databaseInstance:DatabaseInstance", "mlplatform-postgres"),
            "settings.ipConfiguration.sslMode",
            "ALLOW_UNENCRYPTED_AND_ENCRYPTED",
        ),
    ),
    Case(
        "database-backups", "prod", "7 days of backups", lambda d: _set(_primary_rds(d), "backupRetentionPeriod", 7.0)
    ),
    Case(
        "database-backups",
        "gcp-prod",
        "7 backups",
        lambda d: _set(
            find(d, "gcp:sql/databaseInstance:DatabaseInstance", "mlplatform-postgres"),
            "settings.backupConfiguration.backupRetentionSettings.retainedBackups",
            7.0,
        ),
    ),
    Case(
        "database-backups-in-cluster",
        "dev",
        "WAL archived to an ObjectStore the stack does not make",
        lambda d: _dangling_archiver(d),
    ),
    Case(
        "database-deletion-protection",
        "prod",
        "no final snapshot",
        lambda d: _set(_primary_rds(d), "skipFinalSnapshot", True),
    ),
    Case("database-multi-zone", "prod", "single AZ", lambda d: _set(_primary_rds(d), "multiAz", False)),
    Case(
        "database-multi-zone",
        "gcp-prod",
        "zonal",
        lambda d: _set(
            find(d, "gcp:sql/databaseInstance:DatabaseInstance", "mlplatform-postgres"),
            "settings.availabilityType",
            "ZONAL",
        ),
    ),
    Case(
        "database-per-service-isolation",
        "prod",
        "databases open to PUBLIC",
        lambda d: (
            _set(
                find(d, "kubernetes:core/v1:ConfigMap", "mlplatform-postgres-bootstrap-sql"),
                "data",
                {"bootstrap.sql": "CREATE ROLE x LOGIN;"},
            )
            and _bootstrap_job(d)
        ),
    ),
    # Redis and Kafka
    Case(
        "redis-encrypted",
        "prod",
        "no TLS",
        lambda d: _set(find(d, "aws:elasticache/replicationGroup:ReplicationGroup"), "transitEncryptionEnabled", False),
    ),
    Case(
        "redis-encrypted",
        "gcp-prod",
        "no TLS",
        lambda d: _set(find(d, "gcp:redis/instance:Instance"), "transitEncryptionMode", "DISABLED"),
    ),
    Case(
        "redis-auth",
        "prod",
        "no AUTH token",
        lambda d: _set(find(d, "aws:elasticache/replicationGroup:ReplicationGroup"), "authToken", _DELETE),
    ),
    Case(
        "redis-auth",
        "gcp-prod",
        "AUTH off",
        lambda d: _set(find(d, "gcp:redis/instance:Instance"), "authEnabled", False),
    ),
    Case(
        "kafka-encrypted",
        "prod",
        "plaintext clients",
        lambda d: _set(
            find(d, "aws:msk/cluster:Cluster"), "encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT"
        ),
    ),
    Case(
        "kafka-auth",
        "prod",
        "unauthenticated clients",
        lambda d: _set(find(d, "aws:msk/cluster:Cluster"), "clientAuthentication", {"unauthenticated": True}),
    ),
    # the in-cluster data services (dev runs them)
    Case(
        "redis-in-cluster-tls-auth",
        "dev",
        "Valkey plaintext port",
        lambda d: (
            _conf(d, "valkey.conf", lambda t: t.replace("port 0", "port 6380"))
            or find(d, "kubernetes:apps/v1:Deployment", "mlplatform-redis-server")
        ),
    ),
    Case(
        "kafka-encrypted",
        "dev",
        "Strimzi plaintext listener",
        lambda d: (
            find(d, "kubernetes:kafka.strimzi.io/v1:Kafka").inputs["spec"]["kafka"]["listeners"][0].update(tls=False)
            or find(d, "kubernetes:kafka.strimzi.io/v1:Kafka")
        ),
    ),
    Case(
        "kafka-auth",
        "dev",
        "Strimzi listener without authentication",
        lambda d: (
            find(d, "kubernetes:kafka.strimzi.io/v1:Kafka")
            .inputs["spec"]["kafka"]["listeners"][0]
            .pop("authentication")
            and find(d, "kubernetes:kafka.strimzi.io/v1:Kafka")
        ),
    ),
    Case(
        "database-ssl-required",
        "dev",
        "CloudNativePG accepts plaintext",
        lambda d: _set(find(d, "kubernetes:postgresql.cnpg.io/v1:Cluster"), "spec.postgresql.pg_hba", []),
    ),
    # cluster
    Case(
        "cluster-api-not-open",
        "prod",
        "API open to all",
        lambda d: _set(find(d, "aws:eks/cluster:Cluster"), "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
    ),
    Case(
        "cluster-api-not-open",
        "gcp-prod",
        "authorized network 0.0.0.0/0",
        lambda d: _set(
            find(d, "gcp:container/cluster:Cluster"),
            "masterAuthorizedNetworksConfig.cidrBlocks",
            [{"cidrBlock": "0.0.0.0/0"}],
        ),
    ),
    Case(
        "cluster-api-reachable",
        "prod",
        "no public endpoint",
        lambda d: _set(find(d, "aws:eks/cluster:Cluster"), "vpcConfig.endpointPublicAccess", False),
    ),
    Case(
        "cluster-secrets-encryption",
        "prod",
        "no envelope encryption",
        lambda d: _set(find(d, "aws:eks/cluster:Cluster"), "encryptionConfig", _DELETE),
    ),
    Case(
        "network-policy-enforced",
        "prod",
        "VPC CNI without network policy",
        lambda d: (
            _set(
                find(d, "aws:eks/addon:Addon", pred=lambda r: r.inputs.get("addonName") == "vpc-cni"),
                "configurationValues",
                "{}",
            )
            and find(d, "aws:eks/cluster:Cluster")
        ),
    ),
    Case(
        "network-policy-enforced",
        "gcp-prod",
        "legacy datapath",
        lambda d: _set(find(d, "gcp:container/cluster:Cluster"), "datapathProvider", _DELETE),
    ),
    Case(
        "gke-node-service-account",
        "gcp-prod",
        "default compute account",
        lambda d: _set(
            find(d, "gcp:container/nodePool:NodePool"),
            "nodeConfig.serviceAccount",
            "123-compute@developer.gserviceaccount.com",
        ),
    ),
    # IAM
    Case(
        "iam-no-wildcard-admin",
        "prod",
        "Action * on Resource *",
        lambda d: (
            _policy(
                find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-drift"),
                lambda p: p["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"}),
            )
            or find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-drift")
        ),
    ),
    Case(
        "iam-bucket-grants-named",
        "prod",
        "s3 on every bucket",
        lambda d: (
            _policy(
                find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-airflow"),
                lambda p: p["Statement"].append(
                    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::*/*"}
                ),
            )
            or find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-airflow")
        ),
    ),
    Case(
        "iam-bucket-grants-named",
        "gcp-prod",
        "project-wide object viewer",
        lambda d: _set(
            find(d, "gcp:projects/iAMMember:IAMMember", "mlplatform-nodes-reader"), "role", "roles/storage.objectViewer"
        ),
    ),
    Case(
        "iam-serving-read-only",
        "prod",
        "serving may write models",
        lambda d: (
            _policy(
                find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-kserve"),
                lambda p: p["Statement"][1]["Action"].append("s3:PutObject"),
            )
            or find(d, "aws:iam/rolePolicy:RolePolicy", "mlplatform-kserve")
        ),
    ),
    Case(
        "iam-serving-read-only",
        "gcp-prod",
        "serving is object user",
        lambda d: _set(
            find(d, "gcp:storage/bucketIAMMember:BucketIAMMember", "mlplatform-kserve-artifacts"),
            "role",
            "roles/storage.objectUser",
        ),
    ),
    Case(
        "iam-no-project-wide-admin",
        "gcp-prod",
        "nodes are project editors",
        lambda d: _set(find(d, "gcp:projects/iAMMember:IAMMember", "mlplatform-nodes-reader"), "role", "roles/editor"),
    ),
    # Kubernetes
    Case(
        "pod-security",
        "prod",
        "privileged container in a restricted namespace",
        lambda d: _bootstrap_container(d)["securityContext"].update(privileged=True) or _bootstrap_job(d),
    ),
    Case(
        "container-requests",
        "prod",
        "no requests",
        lambda d: _bootstrap_container(d).update(resources={}) or _bootstrap_job(d),
    ),
    Case(
        "images-pinned",
        "prod",
        "untagged image",
        lambda d: _bootstrap_container(d).update(image="docker.io/library/postgres") or _bootstrap_job(d),
    ),
    Case(
        "images-pinned",
        "gcp-prod",
        "latest",
        lambda d: _bootstrap_container(d).update(image="postgres:latest") or _bootstrap_job(d),
    ),
    Case("default-deny-network-policy", "prod", "data namespace allows all ingress", _allow_all_ingress),
    Case(
        "no-plaintext-secrets",
        "prod",
        "password in env",
        lambda d: (
            _bootstrap_container(d)["env"].append({"name": "PGPASSWORD", "value": "hunter2"}) or _bootstrap_job(d)
        ),
    ),
    Case(
        "no-plaintext-secrets",
        "gcp-prod",
        "password in Helm values",
        lambda d: (
            _release(d, "mlflow").inputs["values"].setdefault("backendStore", {}).update(password="hunter2")
            or _release(d, "mlflow")
        ),
    ),
    Case("helm-release-timeout", "prod", "no timeout", lambda d: _set(_release(d, "airflow"), "timeout", _DELETE)),
    # protection
    Case(
        "stateful-protected",
        "prod",
        "unprotected database",
        lambda d: (
            setattr(_primary_rds(d), "protect", False)
            or setattr(_primary_rds(d), "retain_on_delete", False)
            or _primary_rds(d)
        ),
    ),
    Case(
        "stateful-protected",
        "gcp-prod",
        "unprotected bucket",
        lambda d: (
            setattr(r := find(d, "gcp:storage/bucket:Bucket", "mlplatform-artifacts"), "protect", False)
            or setattr(r, "retain_on_delete", False)
            or r
        ),
    ),
    # the HA table, row by row
    Case("ha-table", "prod", "one PostgreSQL replica", _no_replica, "PostgreSQL: primary + 2 replicas"),
    Case(
        "ha-table",
        "prod",
        "3 Redis nodes",
        lambda d: (
            _set(find(d, "aws:elasticache/replicationGroup:ReplicationGroup"), "numNodeGroups", 1.0)
            and find(d, "aws:elasticache/replicationGroup:ReplicationGroup")
        ),
        "Redis: 2 nodes per zone (6)",
    ),
    Case(
        "ha-table",
        "gcp-prod",
        "2 Redis read replicas",
        lambda d: _set(find(d, "gcp:redis/instance:Instance"), "replicaCount", 2.0),
        "Redis: 2 nodes per zone (6)",
    ),
    Case(
        "ha-table", "prod", "a served model with 1 replica", _inference_service, "serving pods: 3 per zone over 3 zones"
    ),
    Case(
        "ha-table",
        "prod",
        "feature server 1 per zone",
        lambda d: _set(_release(d, "feast-feature-server"), "values.replicaCount", 3.0),
        "feature server: 2 per zone",
    ),
    Case(
        "ha-table",
        "gcp-prod",
        "one MLflow",
        lambda d: _set(_release(d, "mlflow"), "values.replicaCount", 1.0),
        "MLflow",
    ),
    Case(
        "ha-table",
        "prod",
        "one scheduler",
        lambda d: _set(_release(d, "airflow"), "values.scheduler.replicas", 1.0),
        "Airflow scheduler: active + standby",
    ),
    Case(
        "ha-table",
        "prod",
        "two gateways",
        lambda d: _set(_release(d, "gateway"), "values.replicaCount", 2.0),
        "ingress gateway: at least 3 replicas",
    ),
)


def weaken(doc: PlanDocument, cases: tuple[Case, ...] = CASES) -> PlanDocument:
    """A copy of `doc` with every case for its stack applied."""
    weak = copy.deepcopy(doc)
    for case in cases:
        if case.stack == doc.stack:
            case.edit(weak)
    return weak
