"""GCS buckets (uniform access, public access prevention enforced), one Google service account per
workload, bound through Workload Identity and granted bucket-scoped roles only, and the stack's Artifact
Registry repository."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from components.contracts import (
    Access,
    Bucket,
    BucketPurpose,
    ClusterOutputs,
    ContainerRegistry,
    GcpClusterFacts,
    KafkaEndpoint,
    ObjectStore,
    SeedObject,
    StorageOutputs,
    WorkloadIdentity,
    WorkloadSpec,
    bucket_purposes,
)
from components.environment import StorageArgs
from components.protection import stateful

BUCKET_ROLE = {Access.READ: "roles/storage.objectViewer", Access.READ_WRITE: "roles/storage.objectUser"}
# Purposes whose client also reads the bucket's own metadata (`storage.buckets.get`, in none of the object
# roles): barman-cloud, PostgreSQL's backup sidecar, checks the bucket exists before its first WAL archive and
# every backup (barman 3.19.1 cloud_providers/google_cloud_storage.py `test_connectivity`: Bucket.exists(), a
# GET /b/<bucket>), and without it archiving never starts (plugin-barman-cloud v0.13.0
# internal/cnpgi/common/wal.go). roles/storage.legacyBucketReader grants it on that bucket alone.
BUCKET_METADATA_READERS = {BucketPurpose.BACKUPS}
BUCKET_METADATA_ROLE = "roles/storage.legacyBucketReader"
# Kafka ACL operations on topics per access level; consumer groups get READ + DESCRIBE for every client.
KAFKA_TOPIC_OPS = {Access.READ: ("READ", "DESCRIBE"), Access.READ_WRITE: ("READ", "DESCRIBE", "WRITE", "CREATE")}
KAFKA_GROUP_OPS = ("READ", "DESCRIBE")


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: StorageArgs,
    cluster: ClusterOutputs,
    workloads: Sequence[WorkloadSpec],
    kafka: KafkaEndpoint | None,
) -> StorageOutputs:
    buckets = {p: _bucket(parent, name, cfg, p) for p in bucket_purposes(workloads)}
    binding = cluster.facts(GcpClusterFacts)
    identities = {w.key: _identity(parent, name, cfg, w, buckets, binding) for w in workloads}
    # only where clients log in as their Google identity (Managed Kafka); in-cluster Kafka's ACLs are its own
    if kafka is not None and kafka.auth.cloud_identity:
        _kafka_access(parent, name, cfg, kafka, [i for i in identities.values() if i.spec.kafka is not None])
    return StorageOutputs(buckets=buckets, identities=identities, registry=_registry(parent, name, cfg))


def _kafka_access(
    parent: pulumi.Resource,
    name: str,
    cfg: StorageArgs,
    kafka: KafkaEndpoint,
    clients: Sequence[WorkloadIdentity],
) -> None:
    """IAM lets a client connect to this cluster only (conditioned on its resource name); Kafka ACLs then
    decide what it may do. Once any ACL exists for a resource, Managed Kafka requires one for every client,
    so consumers that must not write really cannot.

    IAM Conditions see a Managed Kafka resource's name with the project NUMBER
    (`projects/<number>/locations/<region>/clusters/<id>`, Google's "Resource attributes for IAM Conditions"
    table), never the project ID, so the number is looked up. The condition matches the cluster itself and
    what lies below it (`<cluster>/topics/...`, `<cluster>/consumerGroups/...`): a bare prefix would also match
    a cluster whose ID merely starts with this one's (`mlplatform-kafka-2`)."""
    project = gcp.organizations.get_project_output(project_id=cfg.gcp_project, opts=pulumi.InvokeOptions(parent=parent))
    cluster_path = pulumi.Output.all(project.number, kafka.cluster_id).apply(
        lambda a: f"projects/{a[0]}/locations/{cfg.region}/clusters/{a[1]}"
    )
    for identity in clients:
        gcp.projects.IAMMember(
            f"{name}-{identity.spec.key}-kafka",
            project=cfg.gcp_project,
            role="roles/managedkafka.client",
            member=identity.principal.apply(lambda e: f"serviceAccount:{e}"),
            condition=gcp.projects.IAMMemberConditionArgs(
                title=f"{name}-kafka-only",
                expression=cluster_path.apply(kafka_condition),
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
    patterns = {
        "allTopics": [(i, op) for i in clients for op in KAFKA_TOPIC_OPS[i.spec.kafka]],
        "allConsumerGroups": [(i, op) for i in clients for op in KAFKA_GROUP_OPS],
    }
    for acl_id, grants in patterns.items():
        gcp.managedkafka.Acl(
            f"{name}-kafka-{acl_id}",
            cluster=kafka.cluster_id,
            location=cfg.region,
            acl_id=acl_id,
            acl_entries=[
                gcp.managedkafka.AclAclEntryArgs(
                    principal=i.principal.apply(lambda e: f"User:{e}"), operation=op, permission_type="ALLOW", host="*"
                )
                for i, op in grants
            ],
            opts=pulumi.ResourceOptions(parent=parent),
        )


def kafka_condition(cluster_path: str) -> str:
    """The IAM Condition (CEL) that admits one Managed Kafka cluster and its topics and consumer groups."""
    return f'resource.name == "{cluster_path}" || resource.name.startsWith("{cluster_path}/")'


def _bucket(parent: pulumi.Resource, name: str, cfg: StorageArgs, purpose: BucketPurpose) -> Bucket:
    expiry = (
        [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=cfg.storage.logs_bucket_expiry_days),
            ),
            # With versioning on (prod), an expired log leaves a noncurrent version: drop it a week later.
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=7),
            ),
        ]
        if purpose is BucketPurpose.LOGS
        # Barman deletes backups past the ObjectStore's retention; with versioning on (prod) drop what that leaves
        else [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=7),
            )
        ]
        if purpose is BucketPurpose.BACKUPS
        else []
    )
    bucket = gcp.storage.Bucket(
        f"{name}-{purpose.value}",
        location=cfg.region.upper(),
        force_destroy=cfg.storage.force_destroy,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=cfg.storage.versioning),
        lifecycle_rules=expiry,
        labels={"mlplatform-purpose": purpose.value},
        opts=stateful(cfg, parent),
    )
    return Bucket(purpose, bucket.name, bucket.url, ObjectStore.GCS, cfg.region)


def _identity(
    parent: pulumi.Resource,
    name: str,
    cfg: StorageArgs,
    spec: WorkloadSpec,
    buckets: dict[BucketPurpose, Bucket],
    binding: GcpClusterFacts,
) -> WorkloadIdentity:
    account = gcp.serviceaccount.Account(
        f"{name}-{spec.key}",
        account_id=f"{name}-{spec.key}"[:30],
        display_name=f"{spec.namespace.value}/{spec.service_account}",
        opts=pulumi.ResourceOptions(parent=parent),
    )
    member = account.email.apply(lambda e: f"serviceAccount:{e}")
    for grant in spec.grants:
        gcp.storage.BucketIAMMember(
            f"{name}-{spec.key}-{grant.purpose.value}",
            bucket=buckets[grant.purpose].name,
            role=BUCKET_ROLE[grant.access],
            member=member,
            opts=pulumi.ResourceOptions(parent=account),
        )
        if grant.purpose in BUCKET_METADATA_READERS:
            gcp.storage.BucketIAMMember(
                f"{name}-{spec.key}-{grant.purpose.value}-bucket",
                bucket=buckets[grant.purpose].name,
                role=BUCKET_METADATA_ROLE,
                member=member,
                opts=pulumi.ResourceOptions(parent=account),
            )
    gcp.serviceaccount.IAMMember(
        f"{name}-{spec.key}-workload-identity",
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=binding.workload_pool.apply(
            lambda pool: f"serviceAccount:{pool}[{spec.namespace.value}/{spec.service_account}]"
        ),
        opts=pulumi.ResourceOptions(parent=account),
    )
    if spec.dns is not None:
        # cert-manager's Cloud DNS DNS-01 solver: roles/dns.admin on the project holding the zone, as
        # cert-manager's docs grant it (cert-manager/website content/docs/configuration/acme/dns01/
        # google.md); Cloud DNS has no narrower predefined role that can change record sets
        gcp.projects.IAMMember(
            f"{name}-{spec.key}-dns",
            project=spec.dns.project or cfg.gcp_project,
            role="roles/dns.admin",
            member=member,
            opts=pulumi.ResourceOptions(parent=account),
        )
    annotations = account.email.apply(lambda e: {"iam.gke.io/gcp-service-account": e})
    return WorkloadIdentity(spec=spec, principal=account.email, service_account_annotations=annotations)


def seed(parent: pulumi.Resource, name: str, bucket: Bucket, obj: SeedObject) -> gcp.storage.BucketObject:
    """The file as an object of the bucket."""
    return gcp.storage.BucketObject(
        f"{name}-seed-{obj.slug}",
        bucket=bucket.name,
        name=obj.key,
        source=pulumi.FileAsset(str(obj.source)),
        opts=pulumi.ResourceOptions(parent=parent),
    )


UNTAGGED_IMAGE_AGE = f"{14 * 24 * 3600}s"  # untagged images (a failed build's, a tag's previous push) kept 14 days
# Artifact Registry's token login: this user name with an OAuth access token as the password
ACCESS_TOKEN_USER = "oauth2accesstoken"


def _registry(parent: pulumi.Resource, name: str, cfg: StorageArgs) -> ContainerRegistry:
    """One Artifact Registry docker repository in the stack's region for the images the platform builds
    (components/serving/images.py). Tags are immutable (they are content hashes); pushed images are
    scanned by Artifact Analysis (containerscanning.googleapis.com, enabled in components/cloud.py);
    storage is encrypted with Google-managed keys, as the buckets are; untagged images are deleted.

    Pulls: the kubelet pulls with the node service account, which holds roles/artifactregistry.reader on
    the project (components/cluster/gcp NODE_ROLES); each stack has its own project, so that is this
    repository and the project's others. Pods' Google service accounts (the serving identity included) make
    no pulls and get nothing here.

    Push credentials: the deployer's own Google access token (the provider's credentials), read at every
    `up`, never stored in config."""
    repo = gcp.artifactregistry.Repository(
        f"{name}-images",
        repository_id=f"{name}-images",
        location=cfg.region,
        project=cfg.gcp_project,
        format="DOCKER",
        description="images the platform builds from its Dockerfiles",
        docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
        vulnerability_scanning_config=gcp.artifactregistry.RepositoryVulnerabilityScanningConfigArgs(
            enablement_config="INHERITED"
        ),
        cleanup_policy_dry_run=False,
        cleanup_policies=[
            gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                id="delete-untagged",
                action="DELETE",
                condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                    tag_state="UNTAGGED", older_than=UNTAGGED_IMAGE_AGE
                ),
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    host = repo.location.apply(lambda region: f"{region}-docker.pkg.dev")
    url = pulumi.Output.all(host, repo.project, repo.repository_id).apply(lambda a: f"{a[0]}/{a[1]}/{a[2]}")
    client = gcp.organizations.get_client_config_output(opts=pulumi.InvokeOptions(parent=parent))
    return ContainerRegistry(
        url=url,
        address=host,
        username=pulumi.Output.from_input(ACCESS_TOKEN_USER),
        password=pulumi.Output.secret(client.access_token),
        one_image_per_repository=False,
    )
