"""EKS control plane: access entries (no aws-auth ConfigMap), KMS envelope encryption of Secrets,
control-plane logs, private endpoint in prod, and the OIDC provider that IRSA roles trust."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cluster.aws.iam import role_with_policies, service_trust
from components.cluster.aws.network import AwsNetwork
from components.environment import ClusterArgs
from components.protection import stateful
from mlplatform.config import Profile

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class ControlPlane:
    cluster: aws.eks.Cluster
    oidc_provider: aws.iam.OpenIdConnectProvider
    secrets_key: aws.kms.Key


def control_plane(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs, net: AwsNetwork) -> ControlPlane:
    child = pulumi.ResourceOptions(parent=parent)
    role = role_with_policies(
        f"{name}-eks", trust=service_trust("eks.amazonaws.com"), managed=["AmazonEKSClusterPolicy"], parent=parent
    )
    cluster_name = f"{name}-{pulumi.get_stack()}"
    # EKS writes control-plane logs to this group; made first, with a retention, so EKS does not create it
    # with "never expire".
    logs = aws.cloudwatch.LogGroup(
        f"{name}-eks-logs",
        name=f"/aws/eks/{cluster_name}/cluster",
        retention_in_days=cloudwatch_retention(cfg.log_retention_days),
        opts=child,
    )
    key = aws.kms.Key(
        f"{name}-eks-secrets",
        description=f"{name}: envelope encryption of Kubernetes Secrets",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        # losing this key makes every Secret in etcd unreadable: protected like the data it guards
        opts=stateful(cfg, parent),
    )
    cluster = aws.eks.Cluster(
        f"{name}-eks",
        name=cluster_name,
        version=cfg.cluster.kubernetes_version,
        role_arn=role.role.arn,
        vpc_config=aws.eks.ClusterVpcConfigArgs(
            subnet_ids=net.private_subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=not cfg.cluster.private_endpoint,
            public_access_cidrs=cfg.cluster.public_access_cidrs or None,
        ),
        access_config=aws.eks.ClusterAccessConfigArgs(
            authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
        ),
        encryption_config=aws.eks.ClusterEncryptionConfigArgs(
            provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
        ),
        enabled_cluster_log_types=CONTROL_PLANE_LOGS,
        deletion_protection=cfg.profile is Profile.PROD,  # as GKE's deletion_protection in prod
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*role.ready, logs]),
    )
    oidc = aws.iam.OpenIdConnectProvider(
        f"{name}-oidc",
        url=cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer),
        client_id_lists=["sts.amazonaws.com"],
        opts=child,
    )
    admin_access(parent, name, cfg, cluster)
    return ControlPlane(cluster, oidc, key)


# The values CloudWatch Logs accepts for retentionInDays.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
CLOUDWATCH_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def cloudwatch_retention(days: int) -> int:
    """The smallest retention CloudWatch accepts that keeps logs at least `days` days."""
    return next(d for d in CLOUDWATCH_RETENTION_DAYS if d >= days)


def admin_access(parent: pulumi.Resource, name: str, cfg: ClusterArgs, cluster: aws.eks.Cluster) -> None:
    """An access entry plus the cluster-admin access policy per configured principal (API mode, no aws-auth).

    Resources are named by a hash of the ARN, so reordering the config list does not replace them."""
    for arn in cfg.cluster.admin_principals:
        suffix = hashlib.sha256(arn.encode()).hexdigest()[:8]
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{suffix}",
            cluster_name=cluster.name,
            principal_arn=arn,
            type="STANDARD",
            opts=pulumi.ResourceOptions(parent=parent),
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-admin-{suffix}",
            cluster_name=cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=entry),
        )
