"""Small IAM helpers shared by the AWS adapters: trust policies and managed-policy attachments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


def service_trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


@dataclass(frozen=True)
class RoleWithPolicies:
    role: aws.iam.Role
    attachments: tuple[aws.iam.RolePolicyAttachment, ...]

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What a user of the role depends on: the role and its attachments. EKS checks the policies when
        it creates a cluster or node group, and on destroy the attachments must outlive the cluster and
        node groups until EKS has removed its network interfaces."""
        return [self.role, *self.attachments]


def role_with_policies(
    name: str, *, trust: pulumi.Input[str], managed: Sequence[str], parent: pulumi.Resource
) -> RoleWithPolicies:
    """An IAM role plus one attachment per AWS-managed policy ARN (partition-neutral names)."""
    role = aws.iam.Role(name, assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=parent))
    attachments = tuple(
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=pulumi.ResourceOptions(parent=role),
        )
        for policy in managed
    )
    return RoleWithPolicies(role, attachments)


def irsa_role(
    name: str,
    oidc_provider: aws.iam.OpenIdConnectProvider | tuple[pulumi.Input[str], pulumi.Input[str]],
    namespace: str,
    service_account: str,
    *,
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """An IAM role only the service account `namespace/service_account` can assume (IRSA).

    `oidc_provider` is the provider resource, or its (arn, issuer) pair when only those outputs travel.
    """
    arn, issuer = (
        (oidc_provider.arn, oidc_provider.url)
        if isinstance(oidc_provider, aws.iam.OpenIdConnectProvider)
        else oidc_provider
    )
    trust = irsa_trust(arn, issuer, f"system:serviceaccount:{namespace}:{service_account}")
    return aws.iam.Role(name, assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=parent))


def irsa_trust(
    oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], subject: str
) -> pulumi.Output[str]:
    """Trust policy letting exactly one Kubernetes service account (`system:serviceaccount:ns:name`) assume
    the role through the cluster's OIDC provider (IRSA)."""

    def policy(args: list[str]) -> str:
        arn, issuer = args
        host = issuer.removeprefix("https://")
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {"StringEquals": {f"{host}:sub": subject, f"{host}:aud": "sts.amazonaws.com"}},
                    }
                ],
            }
        )

    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(policy)
