"""Plain training Jobs in `training`: their own identity-bound service account, and what lets Airflow start
them there (Pods and Jobs for KubernetesPodOperator, RayJobs on the platform's Ray operator). The grant is
namespaced, so Airflow has no rights elsewhere; it is made by the Airflow component, next to Airflow's
identity, from LAUNCHER_RULES.

The reference training flow (dags/training_flow.py) runs in two steps, and this component describes both to
Airflow as variables (TrainingOutputs.airflow_env):
- the feature step, Feast's point-in-time join in a pod of the Feast client image in `training`, with the
  feature store's YAML, Secrets and CAs the Ray cluster's pods load there (FEATURE_POD_VARIABLE);
- the Ray job, which asks for a GPU where the cluster has GPU pools (NUM_GPUS_VARIABLE).
The join runs in its own pod rather than inside the Ray job: it is Dask in one process, CPU and memory
bound, and belongs on the CPU pool, not on a GPU node scaled up for it; the client image already has the
pinned `feast` (the registry's version) with s3fs or gcsfs, where the Ray job would have to pip-install
feast and its tree into the Ray image's environment on every new node; and the training set it writes is
the exact data the model saw, logged with the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import NodePoolContract, WorkloadIdentity
from components.kube import (
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    config_map,
    identity_service_account,
    namespaced_grant,
)
from components.lifecycle.feast import UID as FEAST_UID
from components.lifecycle.feast import FeastClient
from mlplatform.pins import TRAINING_REQUIREMENTS

# The reference training job (training/*.py): a ConfigMap in `training`, which the reference DAG mounts
# into the pod that submits it; `ray job submit --working-dir` packs that directory and uploads it through
# the job API, since the job runs on the Ray cluster, not in the submitting pod.
TRAINING_CODE_DIR = Path(__file__).resolve().parents[2] / "training"
TRAINING_CODE_CONFIG_MAP = "training-reference"
# what the job needs beyond the Ray image, as its runtime_env (Ray installs it on the cluster per job)
TRAINING_RUNTIME_ENV = json.dumps({"pip": list(TRAINING_REQUIREMENTS)})


# the reference flow's entity dataframe (label events), shipped with the code for the feature step
TRAINING_CODE_SUFFIXES = (".py", ".csv")
FEATURE_POD_VARIABLE = "AIRFLOW_VAR_TRAINING_FEATURE_POD"
NUM_GPUS_VARIABLE = "AIRFLOW_VAR_TRAINING_NUM_GPUS"


def training_code_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TRAINING_CODE_DIR.iterdir()) if p.suffix in TRAINING_CODE_SUFFIXES}


def feature_pod_template(
    client: FeastClient, image: pulumi.Input[str], identity_env: Sequence[dict[str, object]] = ()
) -> pulumi.Output[str]:
    """The feature step's pod as a KubernetesPodOperator `pod_template_dict` (Kubernetes' JSON field names):
    the Feast client image with the feature store's variables and mounts in `training`; the DAG adds the
    command and the code. Its container is KubernetesPodOperator's `base`, which the operator's own
    container is merged into (cncf-kubernetes pod_generator.PodGenerator.reconcile_pods). `identity_env`: the
    training identity's WorkloadIdentity.env (the local store's key and endpoint for the offline store's
    reads; nothing on AWS and GCP)."""
    volumes, mounts = client.volumes()
    container = {
        "name": "base",
        "image": image,
        "env": [*client.env(), *identity_env],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
        "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        # Dask in one process holds the entity dataframe and the feature rows it joins
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    }
    spec = {
        "securityContext": {**RESTRICTED_POD, "runAsUser": FEAST_UID, "runAsGroup": FEAST_UID, "fsGroup": FEAST_UID},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, *volumes],
    }
    return pulumi.Output.json_dumps({"spec": spec})


def airflow_env(
    client: FeastClient | None,
    image: pulumi.Input[str] | None,
    gpu_pools: tuple[NodePoolContract, ...],
    identity_env: Sequence[dict[str, object]] = (),
) -> list[dict[str, object]]:
    """The training flow's Airflow variables: the feature step's pod (with a Feast client in `training`, i.e.
    where the Ray cluster is installed) and the GPUs the Ray job's entrypoint asks for: one where there are GPU
    pools, so it runs on a GPU worker (components/lifecycle/ray.py gpu_worker_group), none otherwise."""
    env: list[dict[str, object]] = [{"name": NUM_GPUS_VARIABLE, "value": "1" if gpu_pools else "0"}]
    if client is not None and image is not None:
        env.append({"name": FEATURE_POD_VARIABLE, "value": feature_pod_template(client, image, identity_env)})
    return env


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
    feature_store: FeastClient | None = None  # the Feast client in `training` (KubeRay's), when installed
    feature_image: pulumi.Input[str] | None = None  # the Feast client image (images/feast-client, or clientImage)
    gpu_pools: tuple[NodePoolContract, ...] = ()


@dataclass(frozen=True)
class TrainingOutputs:
    service_account: k8s.core.v1.ServiceAccount
    airflow_env: list[dict[str, object]]  # the training flow's Airflow variables (airflow_env)


class Training(pulumi.ComponentResource):
    """The identity training Jobs run as (artifacts read-write, datasets read)."""

    outputs: TrainingOutputs

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:Training", name, None, opts)
        account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        config_map(self, f"{name}-reference-code", TRAINING_CODE_CONFIG_MAP, args.namespace, training_code_files())
        self.outputs = TrainingOutputs(
            account, airflow_env(args.feature_store, args.feature_image, args.gpu_pools, args.identity.env)
        )
        self.register_outputs({"serviceAccount": account.metadata.name})


def launcher_rbac(
    parent: pulumi.Resource, prefix: str, training_ns: k8s.core.v1.Namespace, launcher: k8s.core.v1.ServiceAccount
) -> k8s.rbac.v1.RoleBinding:
    """A Role with LAUNCHER_RULES in `training`, bound to the launcher's service account."""
    return namespaced_grant(parent, prefix, "airflow-launcher", training_ns, launcher, LAUNCHER_RULES)
