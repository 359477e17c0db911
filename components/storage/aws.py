"""S3 buckets (SSE-KMS with bucket keys, public access blocked, TLS-only policy), IRSA roles whose
policies name only the buckets, key and MSK cluster each workload needs, and the stack's ECR repository."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.cluster.aws.iam import irsa_role
from components.contracts import (
    Access,
    AwsClusterFacts,
    Bucket,
    BucketPurpose,
    ClusterOutputs,
    ContainerRegistry,
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

READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
KMS_READ = ["kms:Decrypt"]
KMS_WRITE = ["kms:Decrypt", "kms:GenerateDataKey"]
KAFKA_CONSUME = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
KAFKA_PRODUCE = [
    "kafka-cluster:WriteData",
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
]
KAFKA_GROUPS = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
KAFKA_CONNECT = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
# Producers are idempotent by default since Kafka 3.0 (KIP-679), and their InitProducerId needs Kafka's
# IDEMPOTENT_WRITE on the cluster: in MSK IAM `kafka-cluster:WriteDataIdempotently`, whose only resource type
# is the cluster (docs.aws.amazon.com/service-authorization/latest/reference/
# list_apachekafkaapisforamazonmskclusters.html), needing Connect and WriteData beside it
# (docs.aws.amazon.com/msk/latest/developerguide/kafka-actions.html). On a topic ARN it would never match.
# MSK lets WriteData on every topic stand in for it (create-iam-access-control-policies.html, on KIP-679);
# granting it explicitly keeps producers working when topics are narrowed.
KAFKA_IDEMPOTENT_WRITE = ["kafka-cluster:WriteDataIdempotently"]


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: StorageArgs,
    cluster: ClusterOutputs,
    workloads: Sequence[WorkloadSpec],
    kafka: KafkaEndpoint | None,
) -> StorageOutputs:
    key = aws.kms.Key(
        f"{name}-buckets",
        description=f"{name}: object storage encryption",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        opts=stateful(cfg, parent),
    )
    buckets = {purpose: _bucket(parent, name, cfg, purpose, key) for purpose in bucket_purposes(workloads)}
    binding = cluster.facts(AwsClusterFacts)
    identities = {w.key: _identity(parent, name, w, buckets, key, binding, kafka) for w in workloads}
    return StorageOutputs(buckets=buckets, identities=identities, registry=_registry(parent, name))


def _bucket(parent: pulumi.Resource, name: str, cfg: StorageArgs, purpose: BucketPurpose, key: aws.kms.Key) -> Bucket:
    bucket = aws.s3.Bucket(
        f"{name}-{purpose.value}",
        force_destroy=cfg.storage.force_destroy,
        tags={"mlplatform.io/purpose": purpose.value},
        opts=stateful(cfg, parent),
    )
    child = pulumi.ResourceOptions(parent=bucket)
    aws.s3.BucketOwnershipControls(
        f"{name}-{purpose.value}",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-{purpose.value}",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-{purpose.value}",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=child,
    )
    aws.s3.BucketVersioning(
        f"{name}-{purpose.value}",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled" if cfg.storage.versioning else "Suspended"
        ),
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-{purpose.value}",
        bucket=bucket.id,
        policy=bucket.arn.apply(_deny_insecure_transport),
        opts=child,
    )
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
    ]
    if purpose is BucketPurpose.LOGS:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-logs",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=cfg.storage.logs_bucket_expiry_days
                ),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=7
                ),
            )
        )
    if purpose is BucketPurpose.BACKUPS:
        # Barman deletes what falls out of the ObjectStore's retention policy; with versioning on (prod) those
        # deletions leave noncurrent versions, dropped a week later so that retention holds for the bytes too
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-deleted-backups",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=7
                ),
            )
        )
    aws.s3.BucketLifecycleConfiguration(f"{name}-{purpose.value}", bucket=bucket.id, rules=rules, opts=child)
    return Bucket(purpose, bucket.bucket, bucket.bucket.apply(lambda b: f"s3://{b}"), ObjectStore.S3, cfg.region)


def _deny_insecure_transport(arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def _identity(
    parent: pulumi.Resource,
    name: str,
    spec: WorkloadSpec,
    buckets: dict[BucketPurpose, Bucket],
    key: aws.kms.Key,
    binding: AwsClusterFacts,
    kafka: KafkaEndpoint | None,
) -> WorkloadIdentity:
    role = irsa_role(
        f"{name}-{spec.key}",
        (binding.oidc_provider_arn, binding.oidc_issuer),
        spec.namespace.value,
        spec.service_account,
        parent=parent,
    )
    if spec.grants:  # a workload without buckets (cert-manager) gets no bucket key either
        arns = [buckets[g.purpose].name.apply(lambda b: f"arn:aws:s3:::{b}") for g in spec.grants]
        writes = any(g.access is Access.READ_WRITE for g in spec.grants)
        policy = pulumi.Output.all(key.arn, *arns).apply(lambda a: _bucket_policy(spec, list(a[1:]), a[0], writes))
        aws.iam.RolePolicy(f"{name}-{spec.key}", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=role))
    if spec.dns is not None and spec.dns.hosted_zone_id is not None:
        aws.iam.RolePolicy(
            f"{name}-{spec.key}-dns",
            role=role.id,
            policy=dns01_policy(spec.dns.hosted_zone_id),
            opts=pulumi.ResourceOptions(parent=role),
        )
    # only where clients log in as their cloud identity (MSK IAM); in-cluster Kafka's SCRAM users need no grant
    if kafka is not None and kafka.auth.cloud_identity and spec.kafka is not None:
        aws.iam.RolePolicy(
            f"{name}-{spec.key}-kafka",
            role=role.id,
            policy=kafka.cluster_id.apply(lambda arn: _kafka_policy(arn, spec.kafka)),
            opts=pulumi.ResourceOptions(parent=role),
        )
    annotations = role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
    return WorkloadIdentity(spec=spec, principal=role.arn, service_account_annotations=annotations)


def dns01_policy(hosted_zone_id: str) -> str:
    """cert-manager's Route 53 DNS-01 solver on one hosted zone, as cert-manager's docs grant it
    (cert-manager/website content/docs/configuration/acme/dns01/route53.md, "Set up an IAM Policy"): poll
    changes, and write only `_acme-challenge.` TXT records in that zone. No ListHostedZonesByName: the
    issuer names the zone (hostedZoneID), so the solver never looks it up."""
    zone = f"arn:aws:route53:::hostedzone/{hosted_zone_id}"
    statements = [
        {
            "Sid": "PollChanges",
            "Effect": "Allow",
            "Action": "route53:GetChange",
            "Resource": "arn:aws:route53:::change/*",
        },
        {"Sid": "ReadRecords", "Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": zone},
        {
            "Sid": "ChallengeRecords",
            "Effect": "Allow",
            "Action": "route53:ChangeResourceRecordSets",
            "Resource": zone,
            "Condition": {
                "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]
                },
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _bucket_policy(spec: WorkloadSpec, bucket_arns: list[str], key_arn: str, writes: bool) -> str:
    statements = []
    for grant, arn in zip(spec.grants, bucket_arns, strict=True):
        actions = READ_ACTIONS + (WRITE_ACTIONS if grant.access is Access.READ_WRITE else [])
        statements += [
            {
                "Sid": f"List{grant.purpose.value.title()}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": arn,
            },
            {
                "Sid": f"Objects{grant.purpose.value.title()}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": f"{arn}/*",
            },
        ]
    statements.append(
        {"Sid": "BucketKey", "Effect": "Allow", "Action": KMS_WRITE if writes else KMS_READ, "Resource": key_arn}
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _kafka_policy(cluster_arn: str, access: Access) -> str:
    """MSK IAM access to this cluster's topics and consumer groups only (ARNs derived from the cluster's)."""
    topics = cluster_arn.replace(":cluster/", ":topic/", 1) + "/*"
    groups = cluster_arn.replace(":cluster/", ":group/", 1) + "/*"
    writes = access is Access.READ_WRITE
    topic_actions = KAFKA_CONSUME + (KAFKA_PRODUCE if writes else [])
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Connect",
                    "Effect": "Allow",
                    "Action": KAFKA_CONNECT + (KAFKA_IDEMPOTENT_WRITE if writes else []),
                    "Resource": cluster_arn,
                },
                {"Sid": "Topics", "Effect": "Allow", "Action": topic_actions, "Resource": topics},
                {"Sid": "Groups", "Effect": "Allow", "Action": KAFKA_GROUPS, "Resource": groups},
            ],
        }
    )


def seed(parent: pulumi.Resource, name: str, bucket: Bucket, obj: SeedObject) -> aws.s3.BucketObjectv2:
    """The file as an object of the bucket (encrypted by the bucket's default KMS key, sent over TLS)."""
    return aws.s3.BucketObjectv2(
        f"{name}-seed-{obj.slug}",
        bucket=bucket.name,
        key=obj.key,
        source=pulumi.FileAsset(str(obj.source)),
        opts=pulumi.ResourceOptions(parent=parent),
    )


UNTAGGED_IMAGE_DAYS = 14  # how long an untagged image (a tag's previous push, a failed build's layers) is kept


def _registry(parent: pulumi.Resource, name: str) -> ContainerRegistry:
    """One ECR repository for the images the platform builds (components/serving/images.py), named per
    stack by Pulumi's auto-naming. Tags are immutable (they are content hashes), every push is scanned,
    layers are encrypted with KMS (ECR's AWS-managed key: image pulls then need no KMS grant), and untagged
    images expire.

    Pulls: the kubelet pulls with the node role, whose AmazonEC2ContainerRegistryReadOnly
    (components/cluster/aws/nodes.py) already allows it on every repository of the account; the EKS
    add-ons' images (AWS's own ECR accounts) need that managed policy too, so it cannot be narrowed to this
    repository, and a repository policy would add nothing in the same account. Pods' IRSA roles (the
    serving identity included) make no pulls and get nothing here.

    Push credentials: an ECR authorization token (12 hours), read at every `up`, never stored in config."""
    repo = aws.ecr.Repository(
        f"{name}-images",
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
        encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
        # images are rebuilt from this repository's Dockerfiles at the next `up`: nothing to keep
        force_delete=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.ecr.LifecyclePolicy(
        f"{name}-images",
        repository=repo.name,
        policy=json.dumps({"rules": [_expire_untagged(UNTAGGED_IMAGE_DAYS)]}),
        opts=pulumi.ResourceOptions(parent=repo),
    )
    token = aws.ecr.get_authorization_token_output(
        registry_id=repo.registry_id, opts=pulumi.InvokeOptions(parent=parent)
    )
    return ContainerRegistry(
        url=repo.repository_url,
        address=repo.repository_url.apply(lambda url: url.split("/", 1)[0]),
        username=token.user_name,
        password=pulumi.Output.secret(token.password),
        one_image_per_repository=True,
    )


def _expire_untagged(days: int) -> dict[str, object]:
    return {
        "rulePriority": 1,
        "description": f"expire untagged images after {days} days",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": days,
        },
        "action": {"type": "expire"},
    }
