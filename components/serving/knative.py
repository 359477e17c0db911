"""Knative Serving through its operator: the knative-operator chart, then a `KnativeServing` resource with
net-istio. KServe's serverless mode (scale to zero, revisions, canary traffic splits) runs on it.

helm.v3.Release for the operator: its chart ships the KnativeServing/KnativeEventing CRDs as templates,
which Helm keeps on uninstall (a v4 Chart would own them, and deleting it would delete the KnativeServing
and with it every Knative Service). The KnativeServing resource is declared here, after the operator.

The Serving version follows the cluster's Kubernetes minor (mlplatform/pins.py KNATIVE_SERVING_VERSIONS):
each Knative release raises its floor, and the operator refuses a cluster below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PART_OF, RESTRICTED_POD, pinned_release
from components.placement import Placement
from mlplatform.pins import KNATIVE_SERVING_VERSIONS, ChartPin

# The control-plane Deployments the operator makes (serving-core and net-istio manifests).
WORKLOADS = ("activator", "autoscaler", "controller", "webhook", "net-istio-controller", "net-istio-webhook")
# services.sizing small: the control plane idles far below Serving's own requests (activator 300m, the others
# 100m: knative/operator cmd/operator/kodata/knative-serving/1.22.1/2-serving-core.yaml), which are sized for
# traffic through the activator. The operator merges these into the container's requests, limits unchanged
# (knative/operator pkg/reconciler/common/workload_override.go replaceResources).
SMALL_REQUESTS: dict[str, dict[str, object]] = {
    w: {"container": w, "requests": {"cpu": "50m"}} for w in ("activator", "autoscaler", "controller", "webhook")
}
# Image registries whose tags Knative must not resolve to digests (it would need registry credentials and
# egress for every revision): NVIDIA's and Docker Hub's, where the serving runtimes' images live.
SKIP_TAG_RESOLUTION = "nvcr.io,index.docker.io,docker.io"


@dataclass(frozen=True)
class KnativeArgs:
    namespace: k8s.core.v1.Namespace  # Serving's (the KnativeServing resource and everything it installs)
    # the operator's own: both it and Serving own config-logging/config-observability in their namespace, so
    # a shared one lets an operator upgrade reset Serving's (knative/operator#2014); Knative's Helm install
    # puts the operator in `knative-operator`
    operator_namespace: k8s.core.v1.Namespace
    pin: ChartPin
    kubernetes_version: str
    domain: str
    replicas: int  # activator, autoscaler, controller and webhook: 2 in prod (Knative's HA mode)
    placement: Placement
    provider: k8s.Provider
    # what the KnativeServing waits for: Istio (net-istio configures its gateways)
    after: tuple[pulumi.Resource, ...] = ()


def operator_values(placement: Placement) -> dict[str, object]:
    selector = [{"key": k, "operator": "In", "values": [v]} for k, v in placement.node_selector.items()]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": selector}
    ]}}}  # fmt: skip
    part = {
        "affinity": affinity,
        "tolerations": placement.tolerations,
        "resources": placement.resources("50m", "128Mi", "512Mi", small=("20m", "64Mi")),
        # the template reads only these three container fields (and drops ALL capabilities itself); the
        # seccomp profile restricted needs goes on the pod (templates/operator.yaml)
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
        "securityContext": RESTRICTED_POD,
    }
    return {"knative_operator": {"knative_operator": part, "operator_webhook": part}}


def knative_serving_spec(args: KnativeArgs) -> dict[str, object]:
    placement = args.placement
    return {
        "version": KNATIVE_SERVING_VERSIONS[args.kubernetes_version],
        "ingress": {"istio": {"enabled": True}},
        "high-availability": {"replicas": args.replicas},
        "config": {
            "domain": {args.domain: ""},
            "features": {
                # InferenceServices on GPU pools: selectors, tolerations and affinity from the pool contracts
                "kubernetes.podspec-nodeselector": "enabled",
                "kubernetes.podspec-tolerations": "enabled",
                "kubernetes.podspec-affinity": "enabled",
                # the zone spread of prod's inferenceServiceDefaults (components/serving/__init__.py): with the
                # flag off (its default, knative/serving pkg/apis/config/features.go) the webhook rejects a
                # revision that sets topologySpreadConstraints (pkg/apis/serving/fieldmask.go PodSpecMask)
                "kubernetes.podspec-topologyspreadconstraints": "enabled",
                # model containers get the restricted shape (seccomp, no privilege escalation, no capabilities)
                # that `model-serving`'s Pod Security level requires
                "secure-pod-defaults": "enabled",
            },
            "autoscaler": {"enable-scale-to-zero": "true"},
            # request metrics are off by default since Knative 1.19: queue-proxy serves them for Prometheus
            "observability": {"metrics-protocol": "prometheus", "request-metrics-protocol": "prometheus"},
            # large model images on a GPU pool scaling up from zero take longer than the 600 s default
            "deployment": {"registries-skipping-tag-resolving": SKIP_TAG_RESOLUTION, "progress-deadline": "1200s"},
        },
        "workloads": [
            {"name": w, "nodeSelector": placement.node_selector, "tolerations": placement.tolerations}
            | ({"resources": [SMALL_REQUESTS[w]]} if placement.small and w in SMALL_REQUESTS else {})
            for w in WORKLOADS
        ],
    }


class Knative(pulumi.ComponentResource):
    serving: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KnativeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Knative", name, None, opts)
        ns = args.namespace.metadata.name
        operator = pinned_release(
            self,
            f"{name}-operator",
            args.pin,
            args.operator_namespace.metadata.name,
            operator_values(args.placement),
            args.provider,
            release_name="knative-operator",
            # two small Deployments on the CPU pool, which may be at zero nodes. The operator itself needs
            # nothing from Istio, so it installs beside it; only the KnativeServing below waits for Istio.
            timeout_seconds=600,
        )
        self.serving = k8s.apiextensions.CustomResource(
            f"{name}-serving",
            api_version="operator.knative.dev/v1beta1",
            kind="KnativeServing",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="knative-serving",
                namespace=ns,
                labels=PART_OF,
                # Pulumi waits until the operator reports Serving Ready (its webhooks answer), so KServe and
                # every later InferenceService find Knative working, not merely declared
                annotations={"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "1200"},
            ),
            spec=knative_serving_spec(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator, *args.after]),
        )
        self.register_outputs({"servingVersion": KNATIVE_SERVING_VERSIONS[args.kubernetes_version]})
