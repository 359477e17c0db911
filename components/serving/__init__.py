"""Serving layer: cert-manager, Istio (ingress gateway), Knative Serving and KServe, the images the platform
builds for it (the mlflow-3 runtime's server, the Feast transformer), and the model-pull identity
InferenceServices run as. Each install waits only for what it uses, so independent ones run side
by side: cert-manager, Istio, the Knative operator and KServe's CRDs start together; the KnativeServing
waits for Istio (net-istio configures its gateways); the KServe controller for cert-manager (its webhook
certificate), Knative Serving and its CRDs; the runtimes for the controller (its webhook validates them).

Consumes only typed outputs of the infra layers and the namespaces; the one cloud-specific input, how a
LoadBalancer Service becomes a cloud load balancer, arrives typed in ClusterOutputs.load_balancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.contracts import ClusterOutputs, Namespace, PlatformNamespaces, ServiceEndpoint, StorageOutputs
from components.kube import ZONE_KEY
from components.placement import Placement
from components.serving.cert_manager import CertManager, CertManagerArgs
from components.serving.images import Images, ImagesArgs, ServingImages
from components.serving.istio import Istio, IstioArgs, IstioPins
from components.serving.knative import Knative, KnativeArgs
from components.serving.kserve import KServe, KServeArgs, KServePins
from components.serving.models import TRANSFORMER_UID, Models, ModelsArgs
from mlplatform.chartkeys import selected_pin
from mlplatform.config import ServicesConfig
from mlplatform.config.models import Sizing
from mlplatform.config.serving import ServingConfig
from mlplatform.pins import (
    CERT_MANAGER,
    ISTIO_BASE,
    ISTIO_GATEWAY,
    ISTIOD,
    KNATIVE_OPERATOR,
    KSERVE,
    KSERVE_CRD,
    KSERVE_RUNTIME_CONFIGS,
    MLSERVER_MLFLOW_UID,
)


@dataclass(frozen=True)
class ServingArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    services: ServicesConfig
    # the lifecycle layer's tracking server (models:/ URIs resolve there) and online feature server
    mlflow: ServiceEndpoint
    feature_server: ServiceEndpoint
    zones: int = 1  # multi-zone stacks spread the gateway over every zone
    multi_zone: bool = False
    # the models and graphs to serve (components/serving/models.py)
    serving: ServingConfig = field(default_factory=ServingConfig)
    # istiod's meshConfig.extensionProviders: the UIs' external authorizer when the stack exposes its UIs
    # (components/client/oauth2_proxy.py extension_provider); none otherwise
    extension_providers: tuple[dict[str, object], ...] = ()


PODS_PER_ZONE = 3  # the design's HA table: three predictor pods in every zone in prod
# Labels on every predictor pod: KServe's on the Knative Service's template (kserve v0.20.0
# pkg/controller/v1beta1/inferenceservice/components/predictor.go; pkg/constants InferenceServicePodLabelKey,
# KServiceComponentLabel), which Knative carries to the revision's pods; the Deployment controller adds
# pod-template-hash to each ReplicaSet's pods (one Deployment per revision in Knative mode, one per
# InferenceService in Standard mode).
ISVC_LABEL, COMPONENT_LABEL = "serving.kserve.io/inferenceservice", "component"
TEMPLATE_HASH_LABEL = "pod-template-hash"


def predictor_spread(topology_key: str) -> dict[str, object]:
    """A soft spread of one InferenceService's predictor pods over `topology_key`.

    A constraint counts the pods its labelSelector selects (without one it counts none and spreads
    nothing), so the selector names the predictor pods, and matchLabelKeys narrows it to the incoming pod's
    own InferenceService and pod template (Kubernetes KEP-3243, on by default since 1.27): another model's
    pods, its transformer's, and the pods of a revision or rollout on their way out are not counted, as the
    Kubernetes docs advise with pod-template-hash for rolling updates."""
    return {
        "maxSkew": 1,
        "topologyKey": topology_key,
        "whenUnsatisfiable": "ScheduleAnyway",
        # every predictor pod carries both matchLabelKeys labels (kserve v0.20.0 predictor.go); a key may not
        # also appear in the selector, as matchLabels or matchExpressions (the API server rejects the pod:
        # validation.go validateMatchLabelKeysInTopologySpread)
        "labelSelector": {"matchLabels": {COMPONENT_LABEL: "predictor"}},
        "matchLabelKeys": [ISVC_LABEL, TEMPLATE_HASH_LABEL],
    }


def inference_defaults(zones: int, multi_zone: bool) -> dict[str, object]:
    """What an InferenceService's predictor should set on this stack: in prod 3 pods per zone, spread over
    the zones (Knative admits the constraint with kubernetes.podspec-topologyspreadconstraints, enabled in
    components/serving/knative.py); in dev scale to zero."""
    if not multi_zone:
        return {"minReplicas": 0}
    return {"minReplicas": PODS_PER_ZONE * zones, "topologySpreadConstraints": [predictor_spread(ZONE_KEY)]}


@dataclass(frozen=True)
class ServingOutputs:
    namespace: pulumi.Output[str]
    model_pull_service_account: k8s.core.v1.ServiceAccount
    domain: str
    gateway: pulumi.Output[str] | None  # the inference load balancer's hostname or address
    gpu_runtimes: dict[str, str]
    inference_defaults: dict[str, object]
    # the images built from this repository (runtime, transformer), digest-pinned; None with KServe off
    images: ServingImages | None = None
    # cert-manager's release once it answers (its startupapicheck hook): what another chart whose webhook needs
    # a cert-manager Certificate waits for (the Flink operator); None with KServe off
    cert_manager: pulumi.Resource | None = None
    # Istio's releases (CRDs, istiod, the ingress gateway): what a Gateway, VirtualService or
    # AuthorizationPolicy of another layer waits for; empty with KServe off
    istio: tuple[pulumi.Resource, ...] = ()


class Serving(pulumi.ComponentResource):
    outputs: ServingOutputs

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Serving", name, None, opts)
        cfg, ns, child = args.services.kserve, args.namespaces, pulumi.ResourceOptions(parent=self)
        common = {
            "placement": Placement(
                args.cluster.cpu_pool, spread=args.multi_zone, small=args.services.sizing is Sizing.SMALL
            ),
            "provider": args.cluster.kubernetes_provider,
        }
        ha = 2 if args.multi_zone else 1
        gateway: pulumi.Output[str] | None = None
        after: tuple[pulumi.Resource, ...] = ()
        images: ServingImages | None = None
        cert_manager: pulumi.Resource | None = None
        istio_ready: tuple[pulumi.Resource, ...] = ()
        if cfg.enabled:
            images = Images(f"{name}-images", ImagesArgs(args.storage.registry), opts=child).outputs
            certs = CertManager(
                f"{name}-cert-manager",
                CertManagerArgs(
                    namespace=ns[Namespace.CERT_MANAGER],
                    pin=CERT_MANAGER,
                    replicas=ha,
                    # present when the stack's UI certificate is issued through ACME DNS-01
                    identity=args.storage.identities.get(workloads.CERT_MANAGER_KEY),
                    **common,
                ),
                opts=child,
            )
            istio = Istio(
                f"{name}-istio",
                IstioArgs(
                    namespace=ns[Namespace.ISTIO], pins=IstioPins(ISTIO_BASE, ISTIOD, ISTIO_GATEWAY),
                    load_balancer=args.cluster.load_balancer, internal=cfg.ingress == "internal", replicas=ha,
                    gateway_replicas=max(3, args.zones) if args.multi_zone else 1,
                    extension_providers=args.extension_providers, **common,
                ),
                opts=child,
            )  # fmt: skip
            knative = Knative(
                f"{name}-knative",
                KnativeArgs(
                    namespace=ns[Namespace.KNATIVE], operator_namespace=ns[Namespace.KNATIVE_OPERATOR],
                    pin=KNATIVE_OPERATOR,
                    kubernetes_version=args.cluster.kubernetes_version, domain=cfg.domain, replicas=ha,
                    after=istio.outputs.ready, **common,
                ),
                opts=child,
            )  # fmt: skip
            after, cert_manager = (certs.release, knative.serving), certs.release
            istio_ready = istio.outputs.ready
            gateway = _gateway_address(self, name, args.cluster.kubernetes_provider, istio)
        kserve = KServe(
            f"{name}-kserve",
            KServeArgs(
                namespace=ns[Namespace.KSERVE], models=ns[Namespace.SERVING],
                identity=args.storage.identity(workloads.KSERVE), config=cfg, gpu_pools=args.cluster.gpu_pools,
                pins=KServePins(KSERVE_CRD, selected_pin(KSERVE, cfg.version), KSERVE_RUNTIME_CONFIGS),
                runtime_image=images.runtime if images is not None else "", after=after, **common,
            ),
            opts=child,
        )  # fmt: skip
        if cfg.enabled and images is not None:
            cluster, defaults = args.cluster, inference_defaults(args.zones, args.multi_zone)
            Models(
                f"{name}-models",
                ModelsArgs(
                    namespace=ns[Namespace.SERVING], models=args.serving.models, graphs=args.serving.graphs,
                    service_account=kserve.outputs.model_pull_service_account, cpu_pool=cluster.cpu_pool,
                    gpu_pools=cluster.gpu_pools, gpu_runtimes=kserve.outputs.gpu_runtimes, defaults=defaults,
                    zones=args.zones, multi_zone=args.multi_zone, mlflow=args.mlflow,
                    feature_server=args.feature_server, storage_image=images.runtime, storage_uid=MLSERVER_MLFLOW_UID,
                    transformer_image=images.transformer, transformer_uid=TRANSFORMER_UID, after=(kserve,),
                ),
                opts=child,
            )  # fmt: skip
        self.outputs = ServingOutputs(
            namespace=ns[Namespace.SERVING].metadata.name,
            model_pull_service_account=kserve.outputs.model_pull_service_account,
            domain=cfg.domain,
            gateway=gateway,
            gpu_runtimes=kserve.outputs.gpu_runtimes,
            inference_defaults=inference_defaults(args.zones, args.multi_zone),
            images=images,
            cert_manager=cert_manager,
            istio=istio_ready,
        )
        self.register_outputs({"domain": cfg.domain})


def _gateway_address(parent: pulumi.Resource, name: str, provider: k8s.Provider, istio: Istio) -> pulumi.Output[str]:
    """The gateway Service's load balancer as the cloud reports it (read once the release is ready)."""
    read = k8s.core.v1.Service.get(
        f"{name}-gateway-service",
        istio.outputs.gateway_service,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(istio.outputs.ready)),
    )
    return read.status.apply(
        lambda s: (
            next((i.hostname or i.ip for i in (s.load_balancer.ingress or [])), "") if s and s.load_balancer else ""
        )
    )
