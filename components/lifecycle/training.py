"""Plain training Jobs in `training`: their own identity-bound service account, and what lets Airflow start
them there (Pods and Jobs for KubernetesPodOperator, RayJobs on the platform's Ray operator). The grant is
namespaced, so Airflow has no rights elsewhere; it is made by the Airflow component, next to Airflow's
identity, from LAUNCHER_RULES."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import WorkloadIdentity
from components.kube import PART_OF, config_map, identity_service_account
from mlplatform.pins import TRAINING_REQUIREMENTS

# The reference training job (training/*.py): a ConfigMap in `training`, which the reference DAG mounts
# into the pod that submits it; `ray job submit --working-dir` packs that directory and uploads it through
# the job API, since the job runs on the Ray cluster, not in the submitting pod.
TRAINING_CODE_DIR = Path(__file__).resolve().parents[2] / "training"
TRAINING_CODE_CONFIG_MAP = "training-reference"
# what the job needs beyond the Ray image, as its runtime_env (Ray installs it on the cluster per job)
TRAINING_RUNTIME_ENV = json.dumps({"pip": list(TRAINING_REQUIREMENTS)})


def training_code_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TRAINING_CODE_DIR.glob("*.py"))}


LAUNCHER_RULES = (
    (("",), ("pods",), ("create", "get", "list", "watch", "delete", "patch")),
    (("",), ("pods/log", "events"), ("get", "list", "watch")),
    # KubernetesPodOperator reads a task's XCom by exec'ing into its sidecar (do_xcom_push=True)
    (("",), ("pods/exec",), ("create", "get")),
    (("batch",), ("jobs", "cronjobs"), ("create", "get", "list", "watch", "delete", "patch")),
    (("ray.io",), ("rayjobs", "rayclusters"), ("create", "get", "list", "watch", "delete", "patch")),
)


@dataclass(frozen=True)
class TrainingArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity


@dataclass(frozen=True)
class TrainingOutputs:
    service_account: k8s.core.v1.ServiceAccount


class Training(pulumi.ComponentResource):
    """The identity training Jobs run as (artifacts read-write, datasets read)."""

    outputs: TrainingOutputs

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Training", name, None, opts)
        account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        config_map(self, f"{name}-reference-code", TRAINING_CODE_CONFIG_MAP, args.namespace, training_code_files())
        self.outputs = TrainingOutputs(account)
        self.register_outputs({"serviceAccount": account.metadata.name})


def launcher_rbac(
    parent: pulumi.Resource, prefix: str, training_ns: k8s.core.v1.Namespace, launcher: k8s.core.v1.ServiceAccount
) -> k8s.rbac.v1.RoleBinding:
    """A Role with LAUNCHER_RULES in `training`, bound to the launcher's service account."""
    role = k8s.rbac.v1.Role(
        f"{prefix}-role",
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
        f"{prefix}-role-binding",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="airflow-launcher", namespace=training_ns.metadata.name, labels=PART_OF
        ),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=launcher.metadata.name, namespace=launcher.metadata.namespace
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
