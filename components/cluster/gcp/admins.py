"""cluster-admin for the configured principals, by Kubernetes RBAC on their Google identities."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

RBAC_GROUP = "rbac.authorization.k8s.io"


class ClusterAdmins(pulumi.ComponentResource):
    """cluster-admin for each configured principal, by Kubernetes RBAC on the Google identity (GKE maps the
    account's email to the Kubernetes user name). A project-level IAM role would reach every cluster."""

    def __init__(self, name: str, principals: list[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:cluster:ClusterAdmins", name, None, opts)
        subjects = [
            k8s.rbac.v1.SubjectArgs(kind="User", name=member.split(":", 1)[1], api_group=RBAC_GROUP)
            for member in principals
        ]
        k8s.rbac.v1.ClusterRoleBinding(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlplatform-platform-admins"),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="ClusterRole", name="cluster-admin"),
            subjects=subjects,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
