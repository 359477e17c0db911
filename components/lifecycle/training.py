"""What lets Airflow start work in `training`: plain Pods/Jobs (KubernetesPodOperator, run as the `training`
service account) and RayJobs on the platform's Ray operator. Namespaced, so Airflow has no rights elsewhere."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PART_OF

LAUNCHER_RULES = (
    (("",), ("pods",), ("create", "get", "list", "watch", "delete", "patch")),
    (("",), ("pods/log", "events"), ("get", "list", "watch")),
    # KubernetesPodOperator reads a task's XCom by exec'ing into its sidecar (do_xcom_push=True)
    (("",), ("pods/exec",), ("create", "get")),
    (("batch",), ("jobs", "cronjobs"), ("create", "get", "list", "watch", "delete", "patch")),
    (("ray.io",), ("rayjobs", "rayclusters"), ("create", "get", "list", "watch", "delete", "patch")),
)


def airflow_launcher_rbac(
    parent: pulumi.Resource, training_ns: k8s.core.v1.Namespace, airflow_sa: k8s.core.v1.ServiceAccount
) -> k8s.rbac.v1.RoleBinding:
    role = k8s.rbac.v1.Role(
        "role-training-launcher",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="airflow-launcher", namespace=training_ns.metadata.name, labels=PART_OF
        ),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(api_groups=list(g), resources=list(r), verbs=list(v))
            for g, r, v in LAUNCHER_RULES
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return k8s.rbac.v1.RoleBinding(
        "rolebinding-training-launcher",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="airflow-launcher", namespace=training_ns.metadata.name, labels=PART_OF
        ),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=airflow_sa.metadata.name, namespace=airflow_sa.metadata.namespace
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
