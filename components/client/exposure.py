"""The platform's UIs on the Istio ingress gateway, each at `https://<label>.<domain>` behind single sign-on.

Only with `mlplatform:client.domain` (mlplatform/config/client.py); without one nothing here exists and each UI
is reached by `kubectl port-forward` (README, "Client layer"). With one:
- one Istio Gateway on the existing ingress gateway's pods (components/serving/istio.py) serving every UI host
  over HTTPS (port 80 redirects), with a cert-manager Certificate for all of them (components/client/certificates.py);
- one VirtualService per UI host, routing to the UI's in-cluster Service (the flows `ui-*` and
  `jupyterhub-proxy` of components/guardrails.py admit the gateway's pods to the UI's pods);
- the UIs that sign people in themselves keep doing so (Grafana, Airflow, JupyterHub: `Gate.NATIVE`, their
  OIDC configured by their own components); every other UI host (MLflow, the Ray dashboard, the Feast feature
  server) is checked by oauth2-proxy before the gateway routes it (`Gate.OAUTH2_PROXY`, components/client/
  oauth2_proxy.py). No UI gets a Service of type LoadBalancer of its own: the gateway's is the only entry.

The label set is fixed (mlflow, airflow, grafana, ray, jupyter, feast): other components derive the same
hosts from `ClientConfig.host(label)`, so a route and a callback URL cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_kubernetes as k8s

from components.client.certificates import TLS_SECRET, ui_certificate
from components.client.configuration import AIRFLOW_API, GRAFANA, JUPYTERHUB
from components.client.oauth2_proxy import GATEWAY_PODS, OAuth2Proxy, OAuth2ProxyArgs, extension_provider
from components.contracts import Namespace, ServiceEndpoint
from components.guardrails import GATEWAY_HTTP_PORT, GATEWAY_HTTPS_PORT
from components.kube import PART_OF
from components.lifecycle import LifecycleOutputs
from components.observability import ObservabilityOutputs
from components.placement import Placement
from mlplatform.config import PlatformConfig
from mlplatform.config.client import ClientConfig

GATEWAY = "mlplatform-ui"  # the Istio Gateway, in the ingress gateway's namespace
CALLBACK_PATH = "/oauth2/callback"  # oauth2-proxy's default callback (its ProxyPrefix + /callback)


class Gate(StrEnum):
    """Who signs a person in before the UI answers."""

    OAUTH2_PROXY = "oauth2-proxy"  # the gateway asks oauth2-proxy (the UI has no usable OIDC of its own)
    NATIVE = "native"  # the UI's own OIDC login (its component configures it from the same SSO client)


@dataclass(frozen=True)
class UiRoute:
    label: str  # the fixed host label: `<label>.<domain>`
    backend: ServiceEndpoint  # the UI's in-cluster Service
    gate: Gate


def platform_routes(
    cfg: PlatformConfig, lifecycle: LifecycleOutputs, observability: ObservabilityOutputs
) -> tuple[UiRoute, ...]:
    """Every installed UI of the stack, from the layers' typed endpoints (and the fixed Service names the
    client configuration reads: components/client/configuration.py)."""
    svc, routes = cfg.services, []
    if svc.mlflow.enabled:
        routes.append(UiRoute("mlflow", lifecycle.mlflow, Gate.OAUTH2_PROXY))
    if svc.kuberay.enabled:
        # the dashboard's port also serves Ray's job API: only the groups oauth2-proxy allows reach it
        routes.append(UiRoute("ray", lifecycle.ray_dashboard, Gate.OAUTH2_PROXY))
    if svc.feast.enabled:
        # the feature server's HTTP API (online features, /push) for laptops with an ID token
        routes.append(UiRoute("feast", lifecycle.feature_server, Gate.OAUTH2_PROXY))
    if svc.airflow.enabled:
        routes.append(UiRoute("airflow", AIRFLOW_API, Gate.NATIVE))
    if observability.grafana_url is not None:
        routes.append(UiRoute("grafana", GRAFANA, Gate.NATIVE))
    jupyterhub = getattr(svc, "jupyterhub", None)  # services.jupyterhub (components/client/jupyterhub.py)
    if jupyterhub is not None and jupyterhub.enabled:
        routes.append(UiRoute("jupyter", JUPYTERHUB, Gate.NATIVE))
    return tuple(routes)


def ui_extension_providers(client: ClientConfig) -> tuple[dict[str, object], ...]:
    """istiod's extension providers for the stack: oauth2-proxy's when the UIs are exposed, else none."""
    return (extension_provider(Namespace.ISTIO.value),) if client.domain is not None else ()


def gateway_spec(hosts: list[str]) -> dict[str, object]:
    """HTTPS with the UIs' certificate on 443 (TLS 1.2 and up); plain HTTP on 80 only redirects. The
    knative-ingress-gateway's `*` server on port 80 stays as it is: Istio merges HTTP servers of one port by
    host, and HTTPS servers of different hosts on 443 each keep their own certificate."""
    return {
        "selector": dict(GATEWAY_PODS),
        "servers": [
            {
                "port": {"number": GATEWAY_HTTPS_PORT, "name": "https-ui", "protocol": "HTTPS"},
                "hosts": hosts,
                "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET, "minProtocolVersion": "TLSV1_2"},
            },
            {
                "port": {"number": GATEWAY_HTTP_PORT, "name": "http-ui", "protocol": "HTTP"},
                "hosts": hosts,
                "tls": {"httpsRedirect": True},
            },
        ],
    }


def virtual_service_spec(host: str, gateway: str, backend: ServiceEndpoint) -> dict[str, object]:
    return {
        "hosts": [host],
        "gateways": [gateway],
        "http": [{"route": [{"destination": {"host": backend.host, "port": {"number": backend.port}}}]}],
    }


@dataclass(frozen=True)
class ExposureArgs:
    cfg: PlatformConfig  # with client.domain, client.tls and client.sso
    namespace: k8s.core.v1.Namespace  # the ingress gateway's (istio-system)
    routes: tuple[UiRoute, ...]
    placement: Placement
    replicas: int  # oauth2-proxy's
    provider: k8s.Provider
    cert_manager: pulumi.Resource | None  # its release (CRDs and webhook answering)
    istio: tuple[pulumi.Resource, ...]  # Istio's releases (CRDs, istiod, the gateway)


@dataclass(frozen=True)
class ExposureOutputs:
    ui_urls: dict[str, str]  # label -> https://<label>.<domain>
    # the redirect URIs oauth2-proxy sends to the provider (register them with the SSO client)
    callback_urls: dict[str, str]


class Exposure(pulumi.ComponentResource):
    outputs: ExposureOutputs

    def __init__(self, name: str, args: ExposureArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:client:Exposure", name, None, opts)
        client = args.cfg.client
        if client.domain is None:
            raise ValueError("Exposure needs mlplatform:client.domain")
        hosts = {r.label: str(client.host(r.label)) for r in args.routes}
        ns = args.namespace.metadata.name
        certificate = ui_certificate(
            self, name, client, args.cfg.cloud, args.cfg.region, args.cfg.gcp_project, ns, list(hosts.values()),
            args.provider, after=[r for r in (args.cert_manager,) if r is not None],
        )  # fmt: skip
        crd = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.istio))
        gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GATEWAY, namespace=ns, labels=PART_OF),
            spec=gateway_spec(list(hosts.values())),
            opts=pulumi.ResourceOptions.merge(crd, pulumi.ResourceOptions(depends_on=[certificate])),
        )
        # the guarded hosts' check first: a route to a guarded UI exists only once the gateway's policy sends
        # its host through oauth2-proxy (and is removed before that policy on teardown)
        guarded = tuple(hosts[r.label] for r in args.routes if r.gate is Gate.OAUTH2_PROXY)
        checks: tuple[pulumi.Resource, ...] = ()
        if guarded:
            checks = OAuth2Proxy(
                f"{name}-oauth2-proxy",
                OAuth2ProxyArgs(
                    namespace=args.namespace, cfg=args.cfg, hosts=guarded, replicas=args.replicas,
                    placement=args.placement, provider=args.provider, after=args.istio,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            ).policies  # fmt: skip
        for route in args.routes:
            gated = list(checks) if route.gate is Gate.OAUTH2_PROXY else []
            k8s.apiextensions.CustomResource(
                f"{name}-{route.label}",
                api_version="networking.istio.io/v1",
                kind="VirtualService",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"ui-{route.label}", namespace=ns, labels=PART_OF),
                spec=virtual_service_spec(hosts[route.label], f"{Namespace.ISTIO.value}/{GATEWAY}", route.backend),
                opts=pulumi.ResourceOptions.merge(crd, pulumi.ResourceOptions(depends_on=[gateway, *gated])),
            )
        self.outputs = ExposureOutputs(
            ui_urls={label: f"https://{host}" for label, host in hosts.items()},
            callback_urls={
                r.label: f"https://{hosts[r.label]}{CALLBACK_PATH}" for r in args.routes if r.gate is Gate.OAUTH2_PROXY
            },
        )
        self.register_outputs({"uiUrls": self.outputs.ui_urls, "ssoCallbackUrls": self.outputs.callback_urls})
