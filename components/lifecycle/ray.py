"""KubeRay operator and the platform's RayCluster in `training`.

The cluster's GPU worker groups are generated from the cluster layer's GPU pool contracts: one group per
pool, selecting it by its label, tolerating its taints, sized by its GPUs per node and its max nodes. A
renamed label or a new taint reaches Ray without anyone editing this file.

helm.v3.Release for the operator, deliberately: its CRDs ship in the chart's crds/ directory, which Helm
installs and never deletes; with helm.v4.Chart, Pulumi would own the CRDs, and removing the release
would delete every RayCluster and RayJob in the cluster with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import (
    GPU_RESOURCE,
    Namespace,
    NodePoolContract,
    ServiceEndpoint,
    WorkloadIdentity,
)
from components.guardrails import flow
from components.kube import PART_OF, identity_service_account, pinned_release
from components.lifecycle.feast import FeastClient, FeatureStoreSource, feast_client
from components.lifecycle.kafka import granted
from components.placement import Placement
from mlplatform.config import ServiceConfig
from mlplatform.pins import RAY_GPU_IMAGE, RAY_IMAGE, RAY_VERSION, ChartPin

CLUSTER_NAME = "ray"
OPERATOR_RELEASE = "kuberay-operator"
DASHBOARD = ServiceEndpoint(f"{CLUSTER_NAME}-head-svc", Namespace.TRAINING, flow("ray-jobs").port)
CLIENT_PORT = flow("ray-client").port
GCS_PORT = 6379
CPU_WORKERS_MAX = 10


def operator_values(placement: Placement) -> dict[str, object]:
    return {
        # watch `training` only: the operator needs no cluster-wide rights over pods
        "singleNamespaceInstall": True,
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        # the chart's default sets limits.cpu: 100m, which Helm's merge would keep beside ours; null removes
        # it (Helm deletes a key set to null), so the operator runs without CPU throttling like every
        # platform pod. 512Mi is the chart's own figure for ~500 Ray pods.
        "resources": _without_cpu_limit(placement.resources("100m", "256Mi", "512Mi", small=("50m", "128Mi"))),
    }


def _without_cpu_limit(resources: dict[str, dict[str, str]]) -> dict[str, dict[str, str | None]]:
    return {"requests": dict(resources["requests"]), "limits": {**resources["limits"], "cpu": None}}


def _container(name: str, image: str, env: list[dict[str, object]], resources: dict[str, object],
               ports: Sequence[tuple[str, int]] = ()) -> dict[str, object]:  # fmt: skip
    container: dict[str, object] = {
        "name": name,
        "image": image,
        "env": env,
        "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        # Ray stops gracefully (drains tasks) before the pod goes
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}},
    }
    if ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return container


def _pod(service_account: str, pool: NodePoolContract, container: dict[str, object]) -> dict[str, object]:
    return {
        "spec": {
            "serviceAccountName": service_account,
            "nodeSelector": pool.node_selector(),
            "tolerations": pool.tolerations(),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        }
    }


def gpu_worker_group(pool: NodePoolContract, service_account: str, env: list[dict[str, object]]) -> dict[str, object]:
    """One Ray worker per GPU node, taking all of the node's GPUs; scales from zero to the pool's max."""
    gpus = str(pool.gpus_per_node)
    resources = {
        "requests": {"cpu": "2", "memory": "8Gi", GPU_RESOURCE: gpus},
        "limits": {"memory": "12Gi", GPU_RESOURCE: gpus},
    }
    return {
        "groupName": pool.name,
        # no `replicas`: see ray_cluster_spec
        "minReplicas": 0,
        "maxReplicas": pool.max_nodes,
        "rayStartParams": {},
        "template": _pod(service_account, pool, _container("ray-worker", RAY_GPU_IMAGE, env, resources)),
    }


JOB_START_TIMEOUT_SECONDS = 1800


def ray_cluster_spec(
    *,
    service_account: str,
    gpu_pools: Sequence[NodePoolContract],
    placement: Placement,
    mlflow_tracking_uri: str,
    feast_env: Sequence[dict[str, object]] = (),
    feast_volumes: tuple[list[dict[str, object]], list[dict[str, object]]] = ([], []),
) -> dict[str, object]:
    """The RayCluster: a CPU-only head on the platform pool (it schedules, it does not compute), an
    autoscaled CPU group, and one GPU group per GPU pool contract. Every Ray pod logs to MLflow and loads
    the platform's feature store (point-in-time training data inside Ray jobs): the same YAML, Secret-backed
    variables and Redis CA as Airflow's tasks."""
    env = [{"name": "MLFLOW_TRACKING_URI", "value": mlflow_tracking_uri}, *feast_env]
    head = _container(
        "ray-head",
        RAY_IMAGE,
        # A job's driver waits this long for a worker to take it (ray 2.52 job_manager.py, default 900 s): a
        # GPU node's scale-up from zero, image pull and the job's pip install take longer than that
        [*env, {"name": "RAY_JOB_START_TIMEOUT_SECONDS", "value": str(JOB_START_TIMEOUT_SECONDS)}],
        # it schedules and serves the dashboard; small: a handful of users' jobs (limit unchanged)
        placement.resources("1", "4Gi", "6Gi", small=("200m", "1Gi")),
        ports=(("gcs", GCS_PORT), ("dashboard", DASHBOARD.port), ("client", CLIENT_PORT)),
    )
    cpu_group = {
        "groupName": "cpu",
        # No `replicas` in any group: with in-tree autoscaling the Ray autoscaler writes it, and the
        # Kubernetes provider's server-side apply forces the fields it sends, so a declared 0 would take the
        # field back and scale running workers away on the next update of the RayCluster. Omitted, the
        # CRD's default (0, ray.io_rayclusters.yaml) applies at creation and the autoscaler owns it after.
        "minReplicas": 0,
        "maxReplicas": CPU_WORKERS_MAX,
        "rayStartParams": {},
        "template": _pod(
            service_account,
            placement.pool,
            _container(
                "ray-worker", RAY_IMAGE, env, {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
            ),
        ),
    }
    head_group = {
        "serviceType": "ClusterIP",
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": _pod(service_account, placement.pool, head),
    }
    workers = [cpu_group, *(gpu_worker_group(p, service_account, env) for p in gpu_pools)]
    for group in (head_group, *workers):
        _mount(group["template"], *feast_volumes)
    return {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "upscalingMode": "Default",
            "idleTimeoutSeconds": 300,
            # KubeRay's default for the autoscaler sidecar is 500m CPU and 512Mi requested (the operator's
            # DefaultAutoscalerContainerResources): a loop that polls the GCS every few seconds uses a
            # fraction of that, and the head's CPU pool node pays for every request
            "resources": placement.resources("100m", "256Mi", "512Mi", small=("50m", "128Mi")),
        },
        "headGroupSpec": head_group,
        "workerGroupSpecs": workers,
    }


def _mount(template: Any, volumes: list[dict[str, object]], mounts: list[dict[str, object]]) -> None:
    if not volumes:
        return
    spec = template["spec"]
    spec["volumes"] = [*spec.get("volumes", []), *volumes]
    for container in spec["containers"]:
        container["volumeMounts"] = [*container.get("volumeMounts", []), *mounts]


@dataclass(frozen=True)
class KubeRayArgs:
    namespace: k8s.core.v1.Namespace  # training
    identity: WorkloadIdentity
    gpu_pools: tuple[NodePoolContract, ...]
    mlflow: ServiceEndpoint
    feature_store: FeatureStoreSource  # from Feast
    pin: ChartPin
    config: ServiceConfig
    placement: Placement
    provider: k8s.Provider


@dataclass(frozen=True)
class KubeRayOutputs:
    dashboard: ServiceEndpoint
    service_account: k8s.core.v1.ServiceAccount
    # the feature store's client in `training` (Secrets, CAs, YAML), which other pods there load too (the
    # training flow's feature step); None where the cluster is not installed
    feature_store: FeastClient | None = None


class KubeRay(pulumi.ComponentResource):
    """The operator (watching `training` only) and the platform's RayCluster, with the Feast Secrets and CA
    its pods read in their own namespace."""

    outputs: KubeRayOutputs

    def __init__(self, name: str, args: KubeRayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:lifecycle:KubeRay", name, None, opts)
        ns, source = args.namespace, args.feature_store
        # Kafka settings only with a Kafka grant (workloads.RAY has none: training reads the datasets bucket)
        source = replace(source, kafka=granted(args.identity.spec, source.kafka))
        account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
        client: FeastClient | None = None
        if args.config.enabled:
            operator = pinned_release(
                self,
                f"{name}-operator",
                args.pin,
                ns.metadata.name,
                operator_values(args.placement),
                args.provider,
                release_name=OPERATOR_RELEASE,
                # one small Deployment on the CPU pool, which may be at zero nodes in dev: ~3 min for the
                # autoscaler and a new instance, then the image pull
                timeout_seconds=600,
            )
            client = feast_client(self, f"{name}-feast", ns, source)
            spec = ray_cluster_spec(
                service_account=args.identity.spec.service_account,
                gpu_pools=args.gpu_pools,
                placement=args.placement,
                mlflow_tracking_uri=args.mlflow.url,
                # and the Ray identity's store key and endpoint on local (WorkloadIdentity.env; none elsewhere)
                feast_env=[*client.env(), *args.identity.env],
                feast_volumes=client.volumes(),
            )
            k8s.apiextensions.CustomResource(
                f"{name}-cluster",
                api_version="ray.io/v1",
                kind="RayCluster",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CLUSTER_NAME, namespace=ns.metadata.name, labels=PART_OF),
                spec=spec,
                # after the operator (its CRDs), the service account and what the pods mount
                opts=pulumi.ResourceOptions(parent=self, depends_on=[operator, account, *client.ready]),
            )
        self.outputs = KubeRayOutputs(DASHBOARD, account, client)
        self.register_outputs({"dashboardUrl": DASHBOARD.url})
