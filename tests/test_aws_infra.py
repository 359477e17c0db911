"""Properties of the AWS infrastructure layers in the dev and prod plans."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components import workloads
from components.contracts import GPU_PRESENT_LABEL, GPU_TAINT, Access
from mlplatform.config.errors import ConfigError
from mlplatform.config.loader import read_stack_file
from mlplatform.pins import CLUSTER_AUTOSCALER_TAGS, EKS_ADDON_VERSIONS
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import synthesize
from tests.support.managed import managed_stack

ADMINS = ["arn:aws:iam::111122223333:role/platform-admins", "arn:aws:iam::111122223333:user/oncall"]


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


def test_dev_postgres_is_small_and_disposable() -> None:
    """dev's RDS (with data.postgres.mode managed, whatever dev's default mode)."""
    [primary] = managed_stack("dev").by_type("aws:rds/instance:Instance")
    assert not primary.inputs["multiAz"] and primary.inputs["skipFinalSnapshot"] and not primary.protect


def test_redis_tls_auth_and_prod_cluster_layout(prod: PlanDocument) -> None:
    for doc in (managed_stack("dev"), prod):  # dev with ElastiCache, whatever its default mode
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
    # prod: reachable by the deployer only (its CIDRs), nodes over the private endpoint
    vpc = prod.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False or "0.0.0.0/0" not in vpc["publicAccessCidrs"]
    assert prod.one("aws:eks/cluster:Cluster").inputs["deletionProtection"] is True
    assert dev.one("aws:eks/cluster:Cluster").inputs["deletionProtection"] is False
    secrets_key = prod.one("aws:kms/key:Key", "mlplatform-eks-secrets")
    assert secrets_key.protect and secrets_key.retain_on_delete
    assert not dev.one("aws:kms/key:Key", "mlplatform-eks-secrets").protect
    assert dev.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["publicAccessCidrs"]


def test_managed_addons_pinned_for_the_cluster_minor(dev: PlanDocument) -> None:
    minor = dev.one("aws:eks/cluster:Cluster").inputs["version"]
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in dev.by_type("aws:eks/addon:Addon")}
    assert addons == EKS_ADDON_VERSIONS[minor]
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent"}
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
    cluster = dev.one("aws:eks/cluster:Cluster").inputs["name"]
    assert mutate["Condition"]["StringEquals"] == {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}
    release = dev.one("kubernetes:helm.sh/v3:Release", "mlplatform-cluster-autoscaler").inputs
    assert release["values"]["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        "/mlplatform-autoscaler"
    )


def test_data_services_reachable_only_from_cluster_nodes(dev: PlanDocument) -> None:
    """The data group admits the data ports from the EKS cluster's security group only, through separate
    rules (so the group, and the services in it, need not wait for the cluster). With every data service in
    the cluster (dev's default) there is no data group and no port open to the VPC for them."""
    assert "mlplatform-data" not in {g.name for g in dev.by_type("aws:ec2/securityGroup:SecurityGroup")}
    assert not dev.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    dev = managed_stack("dev")  # RDS, ElastiCache and MSK
    sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "mlplatform-data")
    assert not sg.inputs.get("ingress") and "mlplatform-eks" not in {d.split("::")[-1] for d in sg.dependencies}
    rules = dev.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(int(r.inputs["fromPort"]) for r in rules) == [5432, 6379, 9098]
    cluster_sg = dev.one("aws:eks/cluster:Cluster")
    for rule in rules:
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] and rule.inputs["ipProtocol"] == "tcp"
        assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
        assert rule.inputs["referencedSecurityGroupId"] and cluster_sg.urn in rule.dependencies


def test_version_pins_follow_the_kubernetes_minor(dev: PlanDocument) -> None:
    """kube-proxy and the autoscaler only support their own Kubernetes minor; every pinned minor agrees."""
    assert set(EKS_ADDON_VERSIONS) == set(CLUSTER_AUTOSCALER_TAGS)
    for minor, addons in EKS_ADDON_VERSIONS.items():
        assert addons["kube-proxy"].startswith(f"v{minor}."), minor
        assert CLUSTER_AUTOSCALER_TAGS[minor].startswith(f"v{minor}."), minor
    minor = dev.one("aws:eks/cluster:Cluster").inputs["version"]
    image = dev.one("kubernetes:helm.sh/v3:Release", "mlplatform-cluster-autoscaler").inputs["values"]["image"]
    assert image["tag"] == CLUSTER_AUTOSCALER_TAGS[minor]


def test_kubernetes_minor_without_pins_is_a_config_error() -> None:
    config = read_stack_file(Path("."), "dev") | {"mlplatform:cluster": {"kubernetesVersion": "1.31"}}
    with pytest.raises(ConfigError) as err:
        synthesize("dev-k8s-131", config_map=config)
    [problem] = err.value.problems
    assert problem.path == "mlplatform:cluster.kubernetesVersion" and "1.32, 1.33, 1.34, 1.35" in problem.message


def test_admin_principals_get_access_entries_with_cluster_admin() -> None:
    config = read_stack_file(Path("."), "dev") | {"mlplatform:cluster": {"adminPrincipals": ADMINS}}
    doc = synthesize("dev-admins", config_map=config)
    entries = {e.inputs["principalArn"] for e in doc.by_type("aws:eks/accessEntry:AccessEntry")}
    assert entries == set(ADMINS)
    for assoc in doc.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert assoc.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert assoc.inputs["accessScope"] == {"type": "cluster"}
        assert doc.by_urn(assoc.parent).inputs["principalArn"] == assoc.inputs["principalArn"]
    assert len(doc.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")) == len(ADMINS)


def test_admin_principal_of_the_wrong_shape_is_rejected() -> None:
    config = read_stack_file(Path("."), "dev") | {"mlplatform:cluster": {"adminPrincipals": ["user:me@example.com"]}}
    with pytest.raises(ConfigError) as err:
        synthesize("dev-bad-admin", config_map=config)
    assert err.value.problems[0].path == "mlplatform:cluster.adminPrincipals"


def test_kafka_clients_get_iam_scoped_to_the_cluster(prod: PlanDocument) -> None:
    kafka_policies = {
        p.name.removeprefix("mlplatform-").removesuffix("-kafka"): json.loads(p.inputs["policy"])
        for p in prod.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("-kafka")
    }
    clients = (*workloads.ALL, workloads.STREAMING)  # streaming is on in prod
    assert set(kafka_policies) == {w.key for w in clients if w.kafka is not None}
    for key, policy in kafka_policies.items():
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        msk_arn = by_sid["Connect"]["Resource"]
        assert re.fullmatch(r"arn:aws:kafka:us-east-1:\d{12}:cluster/mlplatform-kafka/[0-9a-f-]+", msk_arn)
        assert by_sid["Topics"]["Resource"] == msk_arn.replace(":cluster/", ":topic/") + "/*"
        assert by_sid["Groups"]["Resource"] == msk_arn.replace(":cluster/", ":group/") + "/*"
        writes = "kafka-cluster:WriteData" in by_sid["Topics"]["Action"]
        spec = next(w for w in clients if w.key == key)
        assert writes == (spec.kafka is Access.READ_WRITE), key
        assert all(s["Resource"] != "*" for s in policy["Statement"])


def test_node_root_volumes_are_encrypted_gp3_of_the_pools_size(dev: PlanDocument) -> None:
    """gp3 instead of the gp2 a node group's disk_size gives (20 % cheaper per GB), through a launch
    template per pool; IMDSv2 required."""
    from mlplatform.config import load_config, namespace_values, read_stack_file

    cfg = load_config(namespace_values(read_stack_file(Path("."), "dev")), "dev")
    sizes = {p.name: p.disk_size_gb for p in [cfg.cluster.system_pool, cfg.cluster.cpu_pool, *cfg.cluster.gpu_pools]}
    for group in dev.by_type("aws:eks/nodeGroup:NodeGroup"):
        assert "diskSize" not in group.inputs  # EKS refuses disk_size beside a launch template
        [template] = [
            dev.by_urn(d) for d in group.dependencies if dev.by_urn(d).type == "aws:ec2/launchTemplate:LaunchTemplate"
        ]
        assert group.inputs["launchTemplate"]["id"] == f"{template.name}-id"
        [mapping] = template.inputs["blockDeviceMappings"]
        assert mapping["deviceName"] == "/dev/xvda"
        assert mapping["ebs"]["volumeType"] == "gp3" and mapping["ebs"]["encrypted"] == "true"
        assert mapping["ebs"]["volumeSize"] == sizes[group.inputs["labels"]["mlplatform.io/pool"]]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
