"""Properties of the AWS infrastructure layers in the dev and prod plans."""

from __future__ import annotations

import json

import pytest

from components.cluster.aws.addons import ADDON_VERSIONS
from components.contracts import GPU_PRESENT_LABEL, GPU_TAINT
from mlplatform.plan.document import PlanDocument


def test_one_nat_in_dev_one_per_zone_in_prod(dev: PlanDocument, prod: PlanDocument) -> None:
    assert len(dev.by_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(prod.by_type("aws:ec2/natGateway:NatGateway")) == 3
    routes = [
        rt.inputs["routes"][0]["natGatewayId"]
        for rt in prod.by_type("aws:ec2/routeTable:RouteTable")
        if rt.name.startswith("mlplatform-private-")
    ]
    assert len(set(routes)) == 3  # each zone's private subnets leave through their own zone's NAT


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_buckets_encrypted_private_tls_only(plan, stack: str) -> None:
    doc = plan(stack)
    for name in ("mlplatform-artifacts", "mlplatform-datasets", "mlplatform-logs"):
        sse = doc.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name)
        rule = sse.inputs["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["bucketKeyEnabled"] is True
        pab = doc.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name).inputs
        assert all(
            pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        policy = json.loads(doc.one("aws:s3/bucketPolicy:BucketPolicy", name).inputs["policy"])
        deny = policy["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    versioning = {
        b.name: b.inputs["versioningConfiguration"]["status"]
        for b in doc.by_type("aws:s3/bucketVersioning:BucketVersioning")
    }
    assert set(versioning.values()) == {"Enabled" if stack == "prod" else "Suspended"}
    force = {b.inputs["forceDestroy"] for b in doc.by_type("aws:s3/bucket:Bucket")}
    assert force == {stack == "dev"}
    logs = doc.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "mlplatform-logs")
    assert any("expiration" in r for r in logs.inputs["rules"])


def test_prod_postgres_is_multi_az_with_replicas_and_protected(prod: PlanDocument) -> None:
    primary = prod.one("aws:rds/instance:Instance", "mlplatform-postgres")
    i = primary.inputs
    assert i["multiAz"] and i["storageEncrypted"] and i["deletionProtection"] and i["performanceInsightsEnabled"]
    assert i["backupRetentionPeriod"] >= 14 and i["skipFinalSnapshot"] is False and i["finalSnapshotIdentifier"]
    assert i["maxAllocatedStorage"] > i["allocatedStorage"]
    assert primary.protect and primary.retain_on_delete
    replicas = [r for r in prod.by_type("aws:rds/instance:Instance") if r is not primary]
    assert len(replicas) == 2
    assert {r.inputs["availabilityZone"] for r in replicas} == {"us-east-1b", "us-east-1c"}
    params = prod.one("aws:rds/parameterGroup:ParameterGroup").inputs["parameters"]
    assert {p["name"]: p["value"] for p in params}["rds.force_ssl"] == "1"


def test_dev_postgres_is_small_and_disposable(dev: PlanDocument) -> None:
    [primary] = dev.by_type("aws:rds/instance:Instance")
    assert not primary.inputs["multiAz"] and primary.inputs["skipFinalSnapshot"] and not primary.protect


def test_redis_tls_auth_and_prod_cluster_layout(dev: PlanDocument, prod: PlanDocument) -> None:
    for doc in (dev, prod):
        rg = doc.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
        assert rg["transitEncryptionEnabled"] and rg["atRestEncryptionEnabled"] and rg["authToken"] == "[secret]"
    rg = prod.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["numNodeGroups"] * (1 + rg["replicasPerNodeGroup"]) == 6
    assert rg["clusterMode"] == "enabled" and rg["automaticFailoverEnabled"] and rg["multiAzEnabled"]


def test_kafka_tls_iam_and_prod_brokers(prod: PlanDocument) -> None:
    msk = prod.one("aws:msk/cluster:Cluster").inputs
    assert msk["numberOfBrokerNodes"] == 3 and msk["kafkaVersion"].startswith("3.")
    assert msk["encryptionInfo"]["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    assert msk["clientAuthentication"]["sasl"]["iam"] is True


def test_eks_control_plane(dev: PlanDocument, prod: PlanDocument) -> None:
    for doc in (dev, prod):
        eks = doc.one("aws:eks/cluster:Cluster").inputs
        assert eks["accessConfig"]["authenticationMode"] == "API"
        assert eks["encryptionConfig"]["resources"] == ["secrets"]
        assert set(eks["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
    assert prod.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert dev.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["publicAccessCidrs"]


def test_managed_addons_pinned(dev: PlanDocument) -> None:
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in dev.by_type("aws:eks/addon:Addon")}
    assert addons == ADDON_VERSIONS
    ebs = dev.one("aws:eks/addon:Addon", "mlplatform-aws-ebs-csi-driver")
    assert ebs.inputs["serviceAccountRoleArn"].endswith("/mlplatform-ebs-csi")


def test_device_plugin_runs_only_on_gpu_nodes(prod: PlanDocument) -> None:
    values = prod.one("kubernetes:helm.sh/v3:Release", "mlplatform-nvidia-device-plugin").inputs["values"]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]}]
    assert values["tolerations"] == [GPU_TAINT.toleration()]
    for group in prod.by_type("aws:eks/nodeGroup:NodeGroup"):
        gpu = group.inputs["labels"].get(GPU_PRESENT_LABEL) == "true"
        assert gpu == (group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"), group.name


def test_autoscaler_scales_only_its_own_groups(dev: PlanDocument) -> None:
    policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", "mlplatform-autoscaler").inputs["policy"])
    mutate = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert "aws:ResourceTag/k8s.io/cluster-autoscaler/mlplatform-eks" in mutate["Condition"]["StringEquals"]
    release = dev.one("kubernetes:helm.sh/v3:Release", "mlplatform-cluster-autoscaler").inputs
    assert release["values"]["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        "/mlplatform-autoscaler"
    )


def test_data_services_reachable_only_from_cluster_nodes(dev: PlanDocument) -> None:
    sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "mlplatform-data").inputs
    for rule in sg["ingress"]:
        assert "cidrBlocks" not in rule and rule["securityGroups"]
