"""Istio as the inference ingress only (no mesh, no sidecars in the platform's namespaces): base (CRDs),
istiod, and the ingress gateway `istio-ingressgateway` whose Service becomes the cloud's load balancer.

All three as helm.v3.Release: base ships the CRDs (Helm keeps them across uninstall; Pulumi would delete
every Gateway and VirtualService with a v4 Chart), istiod registers webhooks the gateway's pod needs at
admission (its proxy image is injected), and the gateway must wait for istiod. The gateway's Service
carries the cloud's load balancer annotations from the cluster layer's LoadBalancerProfile.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import LoadBalancerProfile
from components.guardrails import INGRESS_GATEWAY_APP
from components.kube import RESTRICTED_POD, pinned_release, zone_spread
from components.placement import Placement
from mlplatform.pins import ChartPin


@dataclass(frozen=True)
class IstioPins:
    base: ChartPin
    istiod: ChartPin
    gateway: ChartPin


@dataclass(frozen=True)
class IstioArgs:
    namespace: k8s.core.v1.Namespace
    pins: IstioPins
    load_balancer: LoadBalancerProfile
    internal: bool  # an internal load balancer (reachable in the VPC) or an internet-facing one
    replicas: int  # istiod
    gateway_replicas: int
    placement: Placement
    provider: k8s.Provider
    # meshConfig.extensionProviders (the UIs' external authorizer, components/client/oauth2_proxy.py)
    extension_providers: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class IstioOutputs:
    ready: tuple[pulumi.Resource, ...]  # what Knative's net-istio needs: CRDs, istiod and the gateway
    gateway_service: str  # <namespace>/<name> of the gateway's LoadBalancer Service


def istiod_values(
    replicas: int, placement: Placement, extension_providers: tuple[dict[str, object], ...] = ()
) -> dict[str, object]:
    # an AuthorizationPolicy with action CUSTOM names its provider here (istiod 1.30.3 values.yaml `meshConfig`,
    # written into the mesh config istiod reads: templates/configmap.yaml; Istio MeshConfig.extensionProviders)
    mesh = {"meshConfig": {"extensionProviders": list(extension_providers)}} if extension_providers else {}
    return {
        **mesh,
        # injection only for pods that ask for it (the gateway's): no sidecars anywhere else
        "global": {"proxy": {"autoInject": "disabled"}},
        "autoscaleEnabled": replicas > 1,
        "autoscaleMin": replicas,
        "replicaCount": replicas,
        "pdb": {"minAvailable": 1},
        "seccompProfile": {"type": "RuntimeDefault"},
        # xDS for one gateway Deployment: well below the chart's 500m/2Gi default
        "resources": placement.resources("100m", "256Mi", "1Gi", small=("50m", "128Mi")),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
    }


def gateway_values(args: IstioArgs) -> dict[str, object]:
    replicas, placement = args.gateway_replicas, args.placement
    labels = {"app": INGRESS_GATEWAY_APP, "istio": "ingressgateway"}
    return {
        "replicaCount": replicas,
        "autoscaling": {"enabled": False},
        # externalTrafficPolicy Local: the load balancer sends only to nodes running a gateway pod, which
        # sees the client's own address. With Cluster, GKE's passthrough LB lands on any node, which forwards
        # SNATed to its own address, and under Dataplane V2 no ipBlock matches a node, so the gateway's
        # policy would drop it. EKS is unaffected either way (the NLB targets pod IPs directly).
        "service": {
            "type": "LoadBalancer",
            "annotations": args.load_balancer.annotations(internal=args.internal),
            "externalTrafficPolicy": "Local",
        },
        "podDisruptionBudget": {"maxUnavailable": 1} if replicas > 1 else {},
        # restricted: the chart's only pod setting is the unprivileged-port sysctl (so Envoy binds 80/443
        # as UID 1337), allowed at every Pod Security level; the seccomp profile is added here
        "securityContext": {
            **RESTRICTED_POD,
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        },
        # Envoy for inference traffic: no CPU limit (latency), memory bounded
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": None, "memory": "1Gi"}},
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "topologySpreadConstraints": zone_spread(labels) if placement.spread else [],
    }


class Istio(pulumi.ComponentResource):
    outputs: IstioOutputs

    def __init__(self, name: str, args: IstioArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Istio", name, None, opts)
        ns = args.namespace.metadata.name
        base = pinned_release(
            self, f"{name}-base", args.pins.base, ns, {}, args.provider, release_name="istio-base",
            timeout_seconds=300,
        )  # fmt: skip
        istiod = pinned_release(
            self,
            f"{name}-istiod",
            args.pins.istiod,
            ns,
            istiod_values(args.replicas, args.placement, args.extension_providers),
            args.provider,
            release_name="istiod",
            # the CPU pool may start at zero nodes (~3 min), then the image pull
            timeout_seconds=600,
            depends_on=[base],
        )
        gateway = pinned_release(
            self,
            f"{name}-gateway",
            args.pins.gateway,
            ns,
            gateway_values(args),
            args.provider,
            # net-istio's gateways select `istio: ingressgateway`; KServe's docs keep this release name
            release_name=INGRESS_GATEWAY_APP,
            # pods ready and, on EKS, the NLB provisioned by the Load Balancer Controller (~2-3 min)
            timeout_seconds=900,
            depends_on=[istiod, *args.load_balancer.ready],
        )
        self.outputs = IstioOutputs(
            ready=(base, istiod, gateway), gateway_service=f"istio-system/{INGRESS_GATEWAY_APP}"
        )
        self.register_outputs({})
