"""GCS buckets (uniform access, public access prevention enforced) and one Google service account per
workload, bound through Workload Identity and granted bucket-scoped roles only."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from components.cluster.gcp import GcpClusterFacts
from components.contracts import (
    Access,
    Bucket,
    BucketPurpose,
    ClusterOutputs,
    StorageOutputs,
    WorkloadIdentity,
    WorkloadSpec,
)
from components.protection import stateful
from mlplatform.config import PlatformConfig

BUCKET_ROLE = {Access.READ: "roles/storage.objectViewer", Access.READ_WRITE: "roles/storage.objectUser"}


def build(
    parent: pulumi.ComponentResource,
    name: str,
    cfg: PlatformConfig,
    cluster: ClusterOutputs,
    workloads: Sequence[WorkloadSpec],
) -> StorageOutputs:
    buckets = {p: _bucket(parent, name, cfg, p) for p in BucketPurpose}
    binding: GcpClusterFacts = cluster.cloud_facts
    identities = {w.key: _identity(parent, name, cfg, w, buckets, binding) for w in workloads}
    return StorageOutputs(buckets=buckets, identities=identities)


def _bucket(parent: pulumi.Resource, name: str, cfg: PlatformConfig, purpose: BucketPurpose) -> Bucket:
    expiry = (
        [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=cfg.storage.log_retention_days),
            )
        ]
        if purpose is BucketPurpose.LOGS
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
    return Bucket(purpose, bucket.name, bucket.url)


def _identity(
    parent: pulumi.Resource,
    name: str,
    cfg: PlatformConfig,
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
    gcp.serviceaccount.IAMMember(
        f"{name}-{spec.key}-workload-identity",
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=f"serviceAccount:{binding.workload_pool}[{spec.namespace.value}/{spec.service_account}]",
        opts=pulumi.ResourceOptions(parent=account),
    )
    annotations = account.email.apply(lambda e: {"iam.gke.io/gcp-service-account": e})
    return WorkloadIdentity(spec=spec, principal=account.email, service_account_annotations=annotations)
