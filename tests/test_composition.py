"""The seams between layers: typed contracts, produced once and consumed unchanged on every cloud."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components import workloads
from components.cluster.gcp import KONNECTIVITY_AGENTS
from components.contracts import GPU_TAINT, POOL_LABEL, pool_contract
from mlplatform.plan.diff import resource_key
from mlplatform.plan.document import PlanDocument
from tests.support.postgres import managed_stack

IN_CLUSTER = (
    "mlplatform:lifecycle:Lifecycle",
    "mlplatform:serving:Serving",
    "mlplatform:observability:Observability",
    "mlplatform:platform:Namespaces",
)


def in_cluster(doc: PlanDocument) -> dict[str, dict]:
    return {resource_key(r): r.inputs for r in doc.resources if doc.top_level_of(r).type in IN_CLUSTER and r.custom}


def test_gpu_node_groups_carry_the_contract_labels_and_taint(prod: PlanDocument) -> None:
    groups = {g.name: g.inputs for g in prod.by_type("aws:eks/nodeGroup:NodeGroup")}
    assert len(groups) == 2 + len(prod.outputs["gpuPools"])
    for name in prod.outputs["gpuPools"]:
        node_group = groups[f"mlplatform-{name}"]
        contract = pool_contract(
            name,
            accelerator=node_group["labels"]["mlplatform.io/accelerator"],
            gpus_per_node=1,
            device_plugin_config=node_group["labels"].get("nvidia.com/device-plugin.config"),
        )
        assert node_group["labels"] == dict(contract.labels)
        assert node_group["taints"] == [{"key": GPU_TAINT.key, "value": GPU_TAINT.value, "effect": "NO_SCHEDULE"}]
        assert node_group["scalingConfig"]["minSize"] == 0  # idle GPUs cost nothing
        assert node_group["amiType"] == "AL2023_x86_64_NVIDIA"


def test_gpu_toleration_is_derived_from_the_taint() -> None:
    contract = pool_contract("gpu", accelerator="nvidia-l4", gpus_per_node=1)
    assert contract.tolerations() == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    assert contract.node_selector() == {POOL_LABEL: "gpu"}
    assert pool_contract("cpu").tolerations() == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_service_account_is_bound_to_the_role_that_trusts_it(plan, stack: str) -> None:
    """Name, namespace and role come from one WorkloadSpec: the annotation's role trusts exactly that SA."""
    doc = plan(stack)
    roles = {r.name: r for r in doc.by_type("aws:iam/role:Role")}
    accounts = doc.by_type("kubernetes:core/v1:ServiceAccount")
    # the streaming job's identity exists where streaming is on (prod's profile)
    streaming = (workloads.STREAMING,) if doc.by_type("kubernetes:flink.apache.org/v1beta1:FlinkDeployment") else ()
    assert {(a.inputs["metadata"]["namespace"], a.inputs["metadata"]["name"]) for a in accounts} == {
        (w.namespace.value, w.service_account) for w in (*workloads.ALL, *streaming)
    }
    for account in accounts:
        meta = account.inputs["metadata"]
        role_arn = meta["annotations"]["eks.amazonaws.com/role-arn"]
        role = roles[role_arn.rsplit("/", 1)[-1]]
        trust = json.loads(role.inputs["assumeRolePolicy"])
        subjects = [
            v for s in trust["Statement"] for k, v in s["Condition"]["StringEquals"].items() if k.endswith(":sub")
        ]
        assert subjects == [f"system:serviceaccount:{meta['namespace']}:{meta['name']}"]


def data_config(stack: str) -> object:
    from mlplatform.config import load_config, namespace_values, read_stack_file
    from mlplatform.plan.synth import PROJECT_DIR

    return load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).data


def test_workload_policies_name_only_their_buckets(dev: PlanDocument) -> None:
    bucket_names = {b.name: b.inputs.get("bucket") for b in dev.by_type("aws:s3/bucket:Bucket")}
    # dev's PostgreSQL is in the cluster: a fourth bucket, its backups, written by the backup identity only
    assert len(bucket_names) == 4
    for spec in workloads.ALL + workloads.postgres_backup_workloads(data_config("dev")):
        policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", f"mlplatform-{spec.key}").inputs["policy"])
        resources = {
            res
            for s in policy["Statement"]
            for res in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        }
        assert "*" not in resources
        s3_actions = {a for s in policy["Statement"] for a in s["Action"] if a.startswith("s3:")}
        assert "s3:*" not in s3_actions
        granted = {g.purpose.value for g in spec.grants}
        for res in resources:
            if res.startswith("arn:aws:s3:::"):
                assert any(f"mlplatform-{p}-" in res for p in granted), (spec.key, res)
        if all(g.access.value == "read" for g in spec.grants):
            assert not s3_actions & {"s3:PutObject", "s3:DeleteObject"}, spec.key


def test_database_secrets_carry_the_data_layer_endpoint() -> None:
    """The in-cluster Secret depends on the RDS instance and the service's own generated password (dev with
    RDS, whatever its default mode)."""
    dev = managed_stack("dev")
    rds = dev.one("aws:rds/instance:Instance", "mlplatform-postgres")
    for service in ("mlflow", "feast", "airflow"):
        secret = dev.one("kubernetes:core/v1:Secret", f"mlplatform-{service}-db-secret")
        password = dev.one("random:index/randomPassword:RandomPassword", f"mlplatform-{service}-db")
        assert rds.urn in secret.dependencies
        assert password.urn in secret.dependencies


# Resources whose inputs carry the infra layers' endpoints (hosts, bucket URIs, Kafka auth, Redis TLS), so they
# differ per cloud by design; tests/test_lifecycle_wiring.py checks them against each stack's own endpoints.
ENDPOINT_CARRIERS = (
    "kubernetes:helm.sh/",
    "kubernetes:batch/v1:CronJob::",
    "kubernetes:ray.io/v1:RayCluster::",
    "kubernetes:core/v1:ConfigMap::mlplatform-airflow-kafka-client",  # the brokers' addresses
    "kubernetes:batch/v1:Job::mlplatform-feast-apply",  # the datasets bucket, the Kafka settings
    "kubernetes:core/v1:ConfigMap::mlplatform-feast-store",  # feature_store.yaml, in mlplatform
    "kubernetes:core/v1:ConfigMap::mlplatform-kuberay-feast-store",  # and in training
)
NAMESPACES, DNS_METRICS = "mlplatform:platform:Namespaces", "mlplatform-monitoring-allow-dns-metrics-out"
NODE_SCRAPE = "mlplatform-monitoring-allow-node-scrape-out"
REDIS_CAS = (  # for Feast in mlplatform and for Ray in training
    "$kubernetes:core/v1:ConfigMap::mlplatform-feast-redis-ca",
    "$kubernetes:core/v1:ConfigMap::mlplatform-kuberay-feast-redis-ca",
)
# Cloud SQL's CA for every database client (the AWS stacks name no RDS bundle: their clients require TLS
# without a CA; tests/test_postgres_tls.py checks both)
POSTGRES_CAS = (
    "$kubernetes:core/v1:ConfigMap::mlplatform-feast-postgres-ca",
    "$kubernetes:core/v1:ConfigMap::mlplatform-kuberay-feast-postgres-ca",
    "$kubernetes:core/v1:ConfigMap::mlplatform-mlflow-db-ca",
    "$kubernetes:core/v1:ConfigMap::mlplatform-prometheus-grafana-db-ca",
)


@pytest.mark.parametrize("aws_stack,gcp_stack", [("dev", "gcp-dev"), ("prod", "gcp-prod")])
def test_in_cluster_layers_are_identical_on_aws_and_gcp(plan, aws_stack: str, gcp_stack: str) -> None:
    """Same resources, same inputs, except the cloud principal annotation and values that carry endpoints.
    The extra objects on GCP are the Memorystore CA copies (ElastiCache presents a publicly trusted
    certificate) and Cloud SQL's CA for the database clients, whose TLS settings differ with it."""
    aws_side, gcp_side = in_cluster(plan(aws_stack)), in_cluster(plan(gcp_stack))
    # PostgreSQL in the cluster on both (data.postgres.mode): both sides carry the platform CA's copies, the same
    # certificate on both clouds (the plan's deterministic CA), so they are compared like everything else
    in_cluster_postgres = [k for k in aws_side if k.endswith(POSTGRES_CAS)]
    # likewise Redis (Valkey in the cluster: dev on both clouds, profiles.DEFAULT_MODES)
    in_cluster_redis = [k for k in aws_side if k.endswith(REDIS_CAS)]
    cloud_cas = (() if in_cluster_redis else REDIS_CAS) + (() if in_cluster_postgres else POSTGRES_CAS)
    assert not [k for k in aws_side if k.endswith(cloud_cas)]
    cas = [k for k in gcp_side if k.endswith(cloud_cas)]
    assert len(cas) == len(cloud_cas)
    for ca in cas:
        gcp_side.pop(ca)
    aws_side, gcp_side = _without_database_tls(aws_side), _without_database_tls(gcp_side)
    # the cluster DNS's metrics are scraped where it serves them (ClusterNetwork.dns_metrics_port: EKS's
    # CoreDNS, not GKE's kube-dns): the egress policy and the chart's coreDns monitor follow that fact
    assert aws_side.pop(f"{NAMESPACES}$kubernetes:networking.k8s.io/v1:NetworkPolicy::{DNS_METRICS}")
    assert f"{NAMESPACES}$kubernetes:networking.k8s.io/v1:NetworkPolicy::{DNS_METRICS}" not in gcp_side
    # host-network scrapes: to the nodes' addresses where an ipBlock names a node (the VPC CNI), by port
    # alone where none can (Cilium on GKE; ClusterNetwork.nodes_match_ip_blocks)
    node_scrape = f"{NAMESPACES}$kubernetes:networking.k8s.io/v1:NetworkPolicy::{NODE_SCRAPE}"
    [aws_rule], [gcp_rule] = aws_side.pop(node_scrape)["spec"]["egress"], gcp_side.pop(node_scrape)["spec"]["egress"]
    assert all("ipBlock" in peer for peer in aws_rule["to"]) and "to" not in gcp_rule
    assert aws_rule["ports"] == gcp_rule["ports"]
    # one GPU runtime per GPU pool, named after the pool (each stack's own pools; test_serving.py checks them)
    for side in (aws_side, gcp_side):
        for key in [k for k in side if "ServingRuntime::" in k]:
            side.pop(key)
    # the Feast client image carries the filesystem of each cloud's bucket store (its name and build argument;
    # tests/test_feast_client_image.py checks each), built from the same directory
    clients = [[k for k in side if "$docker-build:index:Image::" in k and "feast-client-" in k]
               for side in (aws_side, gcp_side)]  # fmt: skip
    assert [k.rsplit("-", 1)[-1] for [k] in clients] == ["s3", "gcs"], clients
    for side, [key] in zip((aws_side, gcp_side), clients, strict=True):
        side.pop(key)
    assert aws_side.keys() == gcp_side.keys()
    for key, inputs in aws_side.items():
        other = gcp_side[key]
        if key.endswith("ResourceQuota::mlplatform-training-gpu-quota"):
            continue  # the GPU capacity of each stack's own pools (tests/test_kubernetes_objects.py)
        if any(f"${c}" in key for c in ENDPOINT_CARRIERS):
            continue
        if "NetworkPolicy::" in key:
            # the declared per-cloud difference: address blocks from each cloud's ClusterNetwork and the data
            # layer's ranges, and the pods that carry GKE's webhook calls (tests/test_connections.py checks
            # them); everything else must be equal
            inputs, other = _without_ip_blocks(inputs), _without_ip_blocks(other)
        if key.endswith("Release::mlplatform-prometheus"):
            assert inputs["values"].pop("coreDns") == {"enabled": True}
            assert other["values"].pop("coreDns") == {"enabled": False}
        if key.endswith("ServiceAccount::" + key.rsplit("::", 1)[-1]) and "annotations" in inputs["metadata"]:
            assert set(inputs["metadata"]["annotations"]) == {"eks.amazonaws.com/role-arn"}
            assert set(other["metadata"]["annotations"]) == {"iam.gke.io/gcp-service-account"}
            inputs = {**inputs, "metadata": {k: v for k, v in inputs["metadata"].items() if k != "annotations"}}
            other = {**other, "metadata": {k: v for k, v in other["metadata"].items() if k != "annotations"}}
        if "$docker-build:index:Image::" in key:
            # pushed to each stack's own registry (ECR, Artifact Registry), under the same content-hash tag
            [tag], [other_tag] = inputs["tags"], other["tags"]
            assert tag.rsplit("-", 1)[-1] == other_tag.rsplit(":", 1)[-1], (tag, other_tag)
            inputs, other = ({k: v for k, v in i.items() if k not in ("tags", "registries")} for i in (inputs, other))
        if key.endswith("ClusterStorageContainer::mlplatform-models-storage-container"):
            # runs the mlflow-3 runtime's image, from each stack's own registry (compared as Images above)
            images = [i["spec"]["container"]["image"].split("@")[0] for i in (inputs, other)]
            assert images[0].rsplit("-", 1)[-1] == images[1].rsplit(":", 1)[-1], images  # the same content hash
            inputs, other = (
                {
                    **i,
                    "spec": {
                        **i["spec"],
                        "container": {k: v for k, v in i["spec"]["container"].items() if k != "image"},
                    },
                }
                for i in (inputs, other)
            )
        assert inputs == other, key


DATABASE_TLS_KEYS = {"PGSSLMODE", "PGSSLROOTCERT", "ssl_mode", "ca_cert_path"}


def _without_database_tls(value: Any) -> Any:
    """`value` without the database clients' TLS settings (variables, ini keys, the CA's volumes and mounts,
    the CA ConfigMaps in dependencies), which differ by cloud by design."""
    if isinstance(value, dict):
        if value.get("name") in DATABASE_TLS_KEYS and set(value) <= {"name", "value"}:
            return None
        if value.get("name") == "postgres-ca":
            return None
        return {k: _without_database_tls(v) for k, v in value.items() if k not in DATABASE_TLS_KEYS}
    if isinstance(value, list):
        kept = [_without_database_tls(v) for v in value]
        return [v for v in kept if v is not None and not (isinstance(v, str) and v.endswith(POSTGRES_CAS))]
    return value


def _cloud_peer(peer: dict) -> bool:
    """A peer from the cloud's ClusterNetwork: an address block, or the webhook proxies (GKE's konnectivity)."""
    return "ipBlock" in peer or peer.get("podSelector", {}).get("matchLabels") == KONNECTIVITY_AGENTS.labels


def _without_ip_blocks(inputs: dict) -> dict:
    spec = dict(inputs["spec"])
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        if direction in spec:
            spec[direction] = [
                {**rule, peers: [p for p in rule.get(peers, []) if not _cloud_peer(p)]}
                for rule in spec[direction]
                if not rule.get(peers) or any(not _cloud_peer(p) for p in rule[peers])
            ]
    return {**inputs, "spec": spec}


def test_gcp_identities_are_bound_through_workload_identity(gcp_dev: PlanDocument) -> None:
    members = {m.inputs["member"] for m in gcp_dev.by_type("gcp:serviceaccount/iAMMember:IAMMember")}
    # gcp-dev's PostgreSQL is in the cluster: its backup identity, bound to the Cluster's service account, too
    assert members == {
        f"serviceAccount:mlplatform-gcp-dev.svc.id.goog[{w.namespace.value}/{w.service_account}]"
        for w in workloads.ALL + workloads.postgres_backup_workloads(data_config("gcp-dev"))
    }


def test_no_deprecated_s3_v2_types(plan) -> None:
    for stack in ("dev", "prod"):
        assert not [r.type for r in plan(stack).resources if r.type.startswith("aws:s3/") and "V2" in r.type]
