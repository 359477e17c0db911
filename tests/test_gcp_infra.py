"""Properties of the GCP infrastructure layers in the gcp-dev and gcp-prod plans (mirroring the AWS tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components import workloads
from components.contracts import GPU_TAINT, Access, BucketPurpose, pool_contract
from components.storage.gcp import BUCKET_METADATA_READERS
from mlplatform.config.loader import read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import synthesize
from tests.support.managed import managed_stack

GKE = "gcp:container/cluster:Cluster"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"


def test_gke_zonal_in_dev_regional_over_three_zones_in_prod(gcp_dev: PlanDocument, gcp_prod: PlanDocument) -> None:
    dev, prod = gcp_dev.one(GKE).inputs, gcp_prod.one(GKE).inputs
    assert dev["location"] == "us-central1-a" and "nodeLocations" not in dev
    assert prod["location"] == "us-central1"
    assert prod["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert (dev["releaseChannel"]["channel"], prod["releaseChannel"]["channel"]) == ("REGULAR", "STABLE")
    assert prod["deletionProtection"] is True and dev["deletionProtection"] is False
    assert prod["privateClusterConfig"]["enablePrivateEndpoint"] is True


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_gke_private_nodes_workload_identity_dataplane_v2_shielded(plan, stack: str) -> None:
    doc = plan(stack)
    gke = doc.one(GKE).inputs
    assert gke["privateClusterConfig"]["enablePrivateNodes"] is True
    project = doc.one("pulumi:providers:gcp", "mlplatform-gcp").inputs["project"]
    assert gke["workloadIdentityConfig"]["workloadPool"] == f"{project}.svc.id.goog"
    assert gke["datapathProvider"] == "ADVANCED_DATAPATH"  # enforces NetworkPolicy
    assert gke["enableShieldedNodes"] and gke["removeDefaultNodePool"]
    subnet = doc.one("gcp:compute/subnetwork:Subnetwork").inputs
    assert {r["rangeName"] for r in subnet["secondaryIpRanges"]} == {"pods", "services"}
    assert subnet["privateIpGoogleAccess"] is True
    assert doc.one("gcp:compute/routerNat:RouterNat")
    # private service access peers the VPC with Cloud SQL's and Memorystore's producers: there when either is
    # managed (gcp-dev runs both in the cluster by default)
    for planned in (doc, managed_stack("gcp-dev")):
        managed = planned.by_type(SQL) + planned.by_type("gcp:redis/instance:Instance")
        peerings = planned.by_type("gcp:servicenetworking/connection:Connection")
        assert len(peerings) == (1 if managed else 0), planned.stack
        assert all(p.inputs["service"] == "servicenetworking.googleapis.com" for p in peerings)
    assert len(managed_stack("gcp-dev").by_type("gcp:servicenetworking/connection:Connection")) == 1
    for pool in doc.by_type("gcp:container/nodePool:NodePool"):
        config = pool.inputs["nodeConfig"]
        assert config["workloadMetadataConfig"]["mode"] == "GKE_METADATA", pool.name
        assert config["shieldedInstanceConfig"]["enableSecureBoot"], pool.name


def test_gpu_pools_follow_the_same_contract_as_on_aws(gcp_dev: PlanDocument, gcp_prod: PlanDocument) -> None:
    for doc, spot in ((gcp_dev, True), (gcp_prod, False)):
        for name in doc.outputs["gpuPools"]:
            pool = doc.one("gcp:container/nodePool:NodePool", f"mlplatform-{name}").inputs
            config = pool["nodeConfig"]
            [accel] = config["guestAccelerators"]
            contract = pool_contract(name, accelerator=accel["type"], gpus_per_node=int(accel["count"]))
            assert config["labels"] == dict(contract.labels)
            assert config["taints"] == [{"key": GPU_TAINT.key, "value": GPU_TAINT.value, "effect": "NO_SCHEDULE"}]
            assert accel["gpuDriverInstallationConfig"]["gpuDriverVersion"] == "LATEST"  # GKE installs the driver
            assert pool["autoscaling"]["totalMinNodeCount"] == 0
            assert config["spot"] is spot
    assert len(gcp_prod.outputs["gpuPools"]) == 2


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_buckets_uniform_access_public_prevention_and_lifecycle(plan, stack: str) -> None:
    doc = plan(stack)
    prod = stack == "gcp-prod"
    buckets = {b.name: b.inputs for b in doc.by_type("gcp:storage/bucket:Bucket")}
    # the backups bucket only where PostgreSQL runs in the cluster (gcp-dev; gcp-prod's is Cloud SQL)
    purposes = set(BucketPurpose) - ({BucketPurpose.BACKUPS} if prod else set())
    assert set(buckets) == {f"mlplatform-{p.value}" for p in purposes}
    for bucket in buckets.values():
        assert bucket["uniformBucketLevelAccess"] is True and bucket["publicAccessPrevention"] == "enforced"
        assert bucket["versioning"]["enabled"] is prod and bucket["forceDestroy"] is not prod
    ages = [r["condition"].get("age") for r in buckets["mlplatform-logs"]["lifecycleRules"]]
    # a backstop after Loki's own retention (logRetentionDays), never before it
    assert max(a for a in ages if a) > (90 if prod else 14)
    assert not buckets["mlplatform-artifacts"]["lifecycleRules"]  # models never expire


def test_cloud_sql_private_tls_and_prod_regional_with_replicas(gcp_prod: PlanDocument) -> None:
    gcp_dev = managed_stack("gcp-dev")  # with Cloud SQL, whatever gcp-dev's default mode
    for doc in (gcp_dev, gcp_prod):
        for instance in doc.by_type(SQL):
            ip = instance.inputs["settings"]["ipConfiguration"]
            assert ip["ipv4Enabled"] is False and ip["privateNetwork"] and ip["sslMode"] == "ENCRYPTED_ONLY"
    primary = gcp_prod.one(SQL, "mlplatform-postgres")
    settings = primary.inputs["settings"]
    assert settings["availabilityType"] == "REGIONAL"
    assert settings["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True
    assert settings["backupConfiguration"]["backupRetentionSettings"]["retainedBackups"] >= 14
    assert primary.inputs["deletionProtection"] and settings["deletionProtectionEnabled"]
    assert primary.protect and primary.retain_on_delete
    replicas = [r for r in gcp_prod.by_type(SQL) if r is not primary]
    assert len(replicas) == 2 and all(r.inputs["masterInstanceName"] == "mlplatform-postgres" for r in replicas)
    assert {r.inputs["settings"]["locationPreference"]["zone"] for r in replicas} == {"us-central1-b", "us-central1-c"}
    [dev_primary] = gcp_dev.by_type(SQL)
    assert dev_primary.inputs["settings"]["availabilityType"] == "ZONAL" and not dev_primary.protect


def test_service_databases_come_from_the_bootstrap_job_not_the_cloud_sql_api() -> None:
    """Cloud SQL API users join cloudsqlsuperuser and API databases belong to it; so only the admin is an API
    user, and the services' roles and databases come from the same Job as on AWS (owned, closed to others;
    tests/test_postgres_bootstrap.py runs it against a real PostgreSQL). gcp-dev with Cloud SQL."""
    gcp_dev = managed_stack("gcp-dev")
    assert not gcp_dev.by_type("gcp:sql/database:Database")
    [admin] = gcp_dev.by_type("gcp:sql/user:User")
    assert admin.inputs["password"] == "[secret]"
    job = gcp_dev.one("kubernetes:batch/v1:Job", "mlplatform-postgres-bootstrap")
    env = {e["name"]: e for e in job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PGUSER"]["value"] == admin.inputs["name"]
    assert env["PGHOST"]["value"] == gcp_dev.outputs["postgresHost"]
    assert admin.urn in job.dependencies  # the Job connects as the admin, so it waits for it


def test_memorystore_basic_in_dev_ha_with_replicas_in_prod(gcp_prod: PlanDocument) -> None:
    gcp_dev = managed_stack("gcp-dev")  # with Memorystore, whatever gcp-dev's default mode
    for doc in (gcp_dev, gcp_prod):
        redis = doc.one("gcp:redis/instance:Instance").inputs
        assert redis["authEnabled"] is True and redis["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
        assert redis["connectMode"] == "PRIVATE_SERVICE_ACCESS"
    assert gcp_dev.one("gcp:redis/instance:Instance").inputs["tier"] == "BASIC"
    prod = gcp_prod.one("gcp:redis/instance:Instance").inputs
    # the HA table's 2 nodes per zone over 3 zones: the primary and 5 read replicas (Memorystore's maximum)
    assert prod["tier"] == "STANDARD_HA" and 1 + prod["replicaCount"] == 6
    assert prod["readReplicasMode"] == "READ_REPLICAS_ENABLED"
    assert prod["locationId"] != prod["alternativeLocationId"]


def test_managed_kafka_and_client_acls(gcp_prod: PlanDocument) -> None:
    cluster = gcp_prod.one("gcp:managedkafka/cluster:Cluster").inputs
    assert int(cluster["capacityConfig"]["vcpuCount"]) >= 3
    topics = gcp_prod.one("gcp:managedkafka/acl:Acl", "mlplatform-kafka-allTopics").inputs["aclEntries"]
    for spec in (*workloads.ALL, workloads.STREAMING):  # streaming is on in prod
        ops = {e["operation"] for e in topics if e["principal"].startswith(f"User:mlplatform-{spec.key}@")}
        if spec.kafka is None:
            assert not ops, spec.key
        elif spec.kafka is Access.READ:
            assert ops == {"READ", "DESCRIBE"}, spec.key
        else:
            assert {"READ", "WRITE"} <= ops, spec.key
    bindings = [b for b in gcp_prod.by_type("gcp:projects/iAMMember:IAMMember") if "managedkafka" in b.inputs["role"]]
    assert {b.inputs["member"].split("@")[0] for b in bindings} == {
        f"serviceAccount:mlplatform-{w.key}" for w in (*workloads.ALL, workloads.STREAMING) if w.kafka is not None
    }
    assert all("clusters/mlplatform-kafka" in b.inputs["condition"]["expression"] for b in bindings)


def cel_admits(expression: str, resource_name: str) -> bool:
    """The two CEL forms the condition may use (`resource.name == "x"`, `resource.name.startsWith("x")`),
    joined with `||`, evaluated as IAM would on one resource name."""
    verdicts = []
    for term in expression.split("||"):
        term = term.strip()
        if m := re.fullmatch(r'resource\.name == "([^"]*)"', term):
            verdicts.append(resource_name == m.group(1))
        elif m := re.fullmatch(r'resource\.name\.startsWith\("([^"]*)"\)', term):
            verdicts.append(resource_name.startswith(m.group(1)))
        else:
            raise AssertionError(f"unexpected CEL term {term!r}")
    return any(verdicts)


def test_kafka_condition_names_the_cluster_as_iam_does(gcp_prod: PlanDocument) -> None:
    """IAM Conditions see Managed Kafka resources as projects/<project NUMBER>/locations/<region>/clusters/<id>
    (Google's "Resource attributes for IAM Conditions"): the condition must admit this cluster, its topics
    and consumer groups by that name, and nothing of another cluster whose ID shares the prefix."""
    from mlplatform.plan.mocks import MOCK_PROJECT_NUMBER

    kafka = gcp_prod.one("gcp:managedkafka/cluster:Cluster").inputs
    cluster = f"projects/{MOCK_PROJECT_NUMBER}/locations/{kafka['location']}/clusters/{kafka['clusterId']}"
    project_id = read_stack_file(Path(__file__).resolve().parents[1], "gcp-prod")["mlplatform:gcpProject"]
    bindings = [b for b in gcp_prod.by_type("gcp:projects/iAMMember:IAMMember") if "managedkafka" in b.inputs["role"]]
    assert bindings
    for b in bindings:
        expression = b.inputs["condition"]["expression"]
        for admitted in (cluster, f"{cluster}/topics/features", f"{cluster}/consumerGroups/feast"):
            assert cel_admits(expression, admitted), (expression, admitted)
        for refused in (
            f"{cluster}-2",
            f"{cluster}-2/topics/features",
            cluster.replace(MOCK_PROJECT_NUMBER, project_id),
        ):
            assert not cel_admits(expression, refused), (expression, refused)


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_workload_identity_bindings_wait_for_the_cluster(plan, stack: str) -> None:
    """The workload pool exists only once the project's first GKE cluster does: every binding that names it
    must depend on the cluster (terraform-google-modules/terraform-google-kubernetes-engine#916)."""
    doc = plan(stack)
    gke = doc.one(GKE).urn
    bindings = [
        b
        for b in doc.by_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/iam.workloadIdentityUser"
    ]
    assert bindings
    for b in bindings:
        assert gke in b.dependencies, b.name


def _data_config(stack: str) -> object:
    from mlplatform.config import load_config, namespace_values

    return load_config(namespace_values(read_stack_file(Path("."), stack)), stack).data


def test_identities_get_bucket_scoped_roles_only(gcp_dev: PlanDocument) -> None:
    grants = gcp_dev.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    # gcp-dev's PostgreSQL is in the cluster: its backups identity too
    specs = workloads.ALL + workloads.postgres_backup_workloads(_data_config("gcp-dev"))
    assert len(specs) == len(workloads.ALL) + 1
    # one object role per grant, plus bucket-metadata reads where the client checks the bucket (backups)
    metadata = [(s, g) for s in specs for g in s.grants if g.purpose in BUCKET_METADATA_READERS]
    assert len(grants) == sum(len(w.grants) for w in specs) + len(metadata)
    for spec in specs:
        for grant in spec.grants:
            member = gcp_dev.one(
                "gcp:storage/bucketIAMMember:BucketIAMMember", f"mlplatform-{spec.key}-{grant.purpose.value}"
            ).inputs
            expected = "roles/storage.objectViewer" if grant.access is Access.READ else "roles/storage.objectUser"
            assert member["role"] == expected and member["member"].startswith(f"serviceAccount:mlplatform-{spec.key}@")
    for spec, grant in metadata:
        reader = gcp_dev.one(
            "gcp:storage/bucketIAMMember:BucketIAMMember", f"mlplatform-{spec.key}-{grant.purpose.value}-bucket"
        ).inputs
        assert reader["role"] == "roles/storage.legacyBucketReader"
        assert reader["member"].startswith(f"serviceAccount:mlplatform-{spec.key}@")
    project_roles = {b.inputs["role"] for b in gcp_dev.by_type("gcp:projects/iAMMember:IAMMember")}
    assert not any(r.startswith("roles/storage") for r in project_roles)  # never project-wide bucket access


def test_admin_principals_bound_to_cluster_admin_by_rbac() -> None:
    admins = ["user:alice@example.com", "serviceAccount:ci@mlplatform-gcp-dev.iam.gserviceaccount.com"]
    config = read_stack_file(Path("."), "gcp-dev") | {"mlplatform:cluster": {"adminPrincipals": admins}}
    doc = synthesize("gcp-dev-admins", config_map=config)
    binding = doc.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["roleRef"]["name"] == "cluster-admin"
    assert [s["name"] for s in binding.inputs["subjects"]] == [a.split(":", 1)[1] for a in admins]
    assert binding.provider.startswith(doc.one("pulumi:providers:kubernetes").urn)
    # no project-wide role for the admins: RBAC on this cluster only
    assert not any(b.inputs["member"] in admins for b in doc.by_type("gcp:projects/iAMMember:IAMMember"))


def test_control_plane_firewall_opens_exactly_the_webhook_ports_gke_does_not(gcp_prod: PlanDocument) -> None:
    """Google opens 443 and 10250 from the control plane itself (private-clusters#add_firewall_rules); the
    platform's rule adds exactly the other ports its webhooks listen on (from mlplatform/connections.py, read
    in the charts), to the nodes only, from the control-plane range only."""
    from components.cluster.gcp.network import GKE_CONTROL_PLANE_PORTS
    from mlplatform.connections import connections

    _, found = connections(gcp_prod)
    needed = {c.port for c in found if c.vpc_firewall} - set(GKE_CONTROL_PLANE_PORTS)
    [rule] = gcp_prod.by_type("gcp:compute/firewall:Firewall")
    master = gcp_prod.one(GKE).inputs["privateClusterConfig"]["masterIpv4CidrBlock"]
    assert rule.inputs["sourceRanges"] == [master] and rule.inputs["targetServiceAccounts"]
    [allow] = rule.inputs["allows"]
    assert allow["protocol"] == "tcp" and {int(p) for p in allow["ports"]} == needed == {8443, 9443, 15017}
