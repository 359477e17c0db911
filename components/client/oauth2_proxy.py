"""oauth2-proxy as the Istio ingress gateway's external authorizer: the sign-in of the UIs that have no
usable OIDC of their own (MLflow, the Ray dashboard; the Feast UI where one is enabled).

How a request flows (Kubeflow's pattern, kubeflow/manifests common/oauth2-proxy/components/istio-external-auth;
Istio's task security/authorization/authz-custom): the gateway's `AuthorizationPolicy` with action CUSTOM
sends every request for those hosts to oauth2-proxy first (`meshConfig.extensionProviders`, an Envoy
`ext_authz` HTTP check carrying the original Host, path and cookies). oauth2-proxy answers 200 for a valid
session of an allowed group (its upstream is `static://200`), and Envoy then routes the request to the UI;
anything else (a redirect to the provider, its own `/oauth2/callback` setting the session cookie, 401/403)
goes back to the browser as is. The session cookie is set for the whole domain, so one sign-in covers
every UI behind it.

oauth2-proxy runs in the gateway's own namespace (`istio-system`): the gateway reaches it as a same-namespace
peer, and that namespace already reaches HTTPS (the provider's token and JWKS endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.client.secrets import sso_client_secret
from components.guardrails import INGRESS_GATEWAY_APP
from components.kube import PART_OF, RESTRICTED_POD, pinned_chart
from components.placement import Placement
from components.secrets import generated_secret
from mlplatform.config import PlatformConfig
from mlplatform.config.client import SsoConfig
from mlplatform.pins import OAUTH2_PROXY, ChartPin

RELEASE = "oauth2-proxy"  # the release's fullname: its Deployment, Service and pods' name label
PROVIDER = "oauth2-proxy"  # the extension provider's name in istiod's meshConfig
SERVICE_PORT = 80  # the chart's service.portNumber, to the container's `http` port 4180 (--http-address)
HTTP_PORT = 4180
SECRET_NAME = "oauth2-proxy-sso"
COOKIE_SECRET_KEY = "cookie-secret"  # the third key the chart's env reads from config.existingSecret
GATEWAY_PODS = {"app": INGRESS_GATEWAY_APP}  # components/serving/istio.py gateway_values labels
# Paths oauth2-proxy answers 200 without a session (oauthproxy.go @ v7.15.3: robotsPath, the ping and ready
# health checks). A 200 is Envoy's "allowed", so such a request would go on to the UI unauthenticated:
# the gateway denies them for the guarded hosts instead.
UNGUARDED_PATHS = ("/ping", "/ready", "/robots.txt")


def service_host(namespace: str) -> str:
    return f"{RELEASE}.{namespace}.svc.cluster.local"


def extension_provider(namespace: str) -> dict[str, object]:
    """istiod's `meshConfig.extensionProviders` entry (Istio MeshConfig.ExtensionProvider.
    EnvoyExternalAuthorizationHttpProvider). Istio always sends Host, method, path and Content-Length to the
    authorizer (MeshConfig includeRequestHeadersInCheck); the lists below add the session cookie both ways,
    the redirect's Location on a deny (Kubeflow's provider lists content-type and set-cookie; Location is
    named too), the Accept header oauth2-proxy reads to answer an API call 401 instead of a redirect
    (oauthproxy.go isAjax), a bearer ID token (skip_jwt_bearer_tokens), and the signed-in user's identity
    for the UI's logs."""
    return {
        "name": PROVIDER,
        "envoyExtAuthzHttp": {
            "service": service_host(namespace),
            "port": SERVICE_PORT,
            "includeRequestHeadersInCheck": ["cookie", "authorization", "accept", "x-forwarded-for"],
            "headersToUpstreamOnAllow": ["x-auth-request-user", "x-auth-request-email", "x-auth-request-groups"],
            # a session refreshed during the check (cookie_refresh) reaches the browser
            "headersToDownstreamOnAllow": ["set-cookie"],
            # the redirect to the provider and the session cookie set at /oauth2/callback
            "headersToDownstreamOnDeny": ["content-type", "set-cookie", "location"],
        },
    }


def _toml(value: object) -> str:
    """A TOML value: JSON's strings, booleans and arrays of strings are TOML's too."""
    return json.dumps(value)


def config_file(sso: SsoConfig, domain: str) -> str:
    """oauth2_proxy.cfg (the legacy TOML options, pkg/apis/options @ v7.15.3: the `cfg` tags). The callback
    is the default relative `/oauth2/callback` on the host being signed in to, with https forced by
    cookie_secure (oauthproxy.go getOAuthRedirectURI): every guarded UI's https://<ui>.<domain>/oauth2/callback
    is registered at the provider (the stack's `ssoCallbackUrls` output)."""
    options: dict[str, object] = {
        "provider": "oidc",
        "oidc_issuer_url": sso.issuer_url,
        "scope": " ".join(sso.scopes),
        "oidc_groups_claim": sso.groups_claim,
        "email_domains": list(sso.email_domains),
        # only the platform's people: administrators and users (config's adminGroups and userGroups)
        "allowed_groups": [*sso.admin_groups, *sso.user_groups],
        "upstreams": ["static://200"],  # answer the check; Envoy, not oauth2-proxy, proxies the UI
        "reverse_proxy": True,
        "skip_provider_button": True,  # straight to the provider, no interstitial page
        "set_xauthrequest": True,  # X-Auth-Request-User/-Email/-Groups on the allowed check's response
        "cookie_secure": True,
        "cookie_samesite": "lax",
        "cookie_domains": [f".{domain}"],
        "whitelist_domains": [f".{domain}"],
        # a session lasts a working day; group changes at the provider apply within the hour (refresh)
        "cookie_expire": "12h",
        "cookie_refresh": "1h",
        # one CSRF cookie per sign-in (named by its state): the domain-wide cookie is shared by every guarded
        # host, so two sign-ins started at once on different hosts would otherwise overwrite each other's
        "cookie_csrf_per_request": True,
        "silence_ping_logging": True,
        # programmatic clients (MLflow, `ray job`, Feast; components/client/configuration.py) send the user's
        # ID token as a bearer token instead of a cookie: verified against the issuer's keys with the SSO
        # client id as audience, then held to the same email domains and groups (oauthproxy.go
        # getAuthenticatedSession: Validator and provider.Authorize apply to every session)
        "skip_jwt_bearer_tokens": True,
    }
    return "".join(f"{k} = {_toml(v)}\n" for k, v in options.items())


def oauth2_proxy_values(
    sso: SsoConfig, domain: str, replicas: int, placement: Placement, pin: ChartPin = OAUTH2_PROXY
) -> dict[str, object]:
    """The chart's values (oauth2-proxy/manifests helm/oauth2-proxy/values.yaml @ oauth2-proxy-10.7.0)."""
    return {
        # client id, client secret and cookie secret from our Secret (the chart's env reads the three keys)
        "config": {"existingSecret": SECRET_NAME, "configFile": config_file(sso, domain)},
        "image": {"tag": f"v{pin.app_version}"},
        "replicaCount": replicas,
        # the chart's budget (minAvailable 1) would block every drain of a single replica
        "podDisruptionBudget": {"enabled": replicas > 1},
        "metrics": {"enabled": False},
        # it never calls the Kubernetes API (no Redis session store to wait for)
        "serviceAccount": {"automountServiceAccountToken": False},
        # restricted: the chart's container context already drops ALL and sets RuntimeDefault and non-root
        "podSecurityContext": RESTRICTED_POD,
        "resources": placement.resources("10m", "32Mi", "128Mi"),
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
    }


def host_patterns(hosts: Sequence[str]) -> list[str]:
    """Istio matches an operation's `hosts` against the Host header exactly, port included (pilot/pkg/
    security/authz/matcher/header.go HostMatcher: exact, prefix `x*` or suffix `*x`), while the gateway routes
    `mlflow.<domain>:443` to the same UI: each host also as `<host>:*`."""
    return [p for h in hosts for p in (h, f"{h}:*")]


def authorization_policies(
    parent: pulumi.Resource,
    name: str,
    namespace: pulumi.Input[str],
    hosts: Sequence[str],
    provider: k8s.Provider,
    after: Sequence[pulumi.Resource] = (),
) -> tuple[k8s.apiextensions.CustomResource, k8s.apiextensions.CustomResource]:
    """On the ingress gateway's pods: every request for `hosts` is checked by oauth2-proxy (CUSTOM), and the
    paths oauth2-proxy passes without a session are denied for those hosts."""
    selector = {"matchLabels": dict(GATEWAY_PODS)}
    opts = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(after))

    def policy(suffix: str, spec: dict[str, object]) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{suffix}",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"ui-{suffix}", namespace=namespace, labels=PART_OF),
            spec={"selector": selector, **spec},
            opts=opts,
        )

    operation = {"hosts": host_patterns(hosts)}
    check = policy(
        "sign-in", {"action": "CUSTOM", "provider": {"name": PROVIDER}, "rules": [{"to": [{"operation": operation}]}]}
    )
    deny = policy(
        "unguarded-paths",
        {"action": "DENY", "rules": [{"to": [{"operation": {**operation, "paths": list(UNGUARDED_PATHS)}}]}]},
    )
    return check, deny


@dataclass(frozen=True)
class OAuth2ProxyArgs:
    namespace: k8s.core.v1.Namespace  # the ingress gateway's
    cfg: PlatformConfig  # client.sso and client.domain set
    hosts: tuple[str, ...]  # the UI hosts it guards
    replicas: int
    placement: Placement
    provider: k8s.Provider
    after: tuple[pulumi.Resource, ...] = ()  # Istio's CRDs (AuthorizationPolicy)


class OAuth2Proxy(pulumi.ComponentResource):
    """The authorizer (chart), its Secret (SSO client from the cloud secret, a generated cookie secret) and
    the gateway's policies that send the guarded hosts through it."""

    policies: tuple[k8s.apiextensions.CustomResource, ...]  # what a guarded host's route waits for

    def __init__(self, name: str, args: OAuth2ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:client:OAuth2Proxy", name, None, opts)
        sso, domain = args.cfg.client.sso, args.cfg.client.domain
        if sso is None or domain is None:
            raise ValueError("OAuth2Proxy needs client.domain and client.sso")
        ns = args.namespace.metadata.name
        # an AES key of 32 bytes (oauth2-proxy accepts 16, 24 or 32: pkg/apis/options/cookie.go)
        cookie = generated_secret(self, f"{name}-cookie-secret", length=32)
        secret = sso_client_secret(
            self, f"{name}-sso", args.namespace, args.cfg, args.provider, secret_name=SECRET_NAME,
            extra={COOKIE_SECRET_KEY: cookie},
        )  # fmt: skip
        chart = pinned_chart(
            self, name, OAUTH2_PROXY, ns, oauth2_proxy_values(sso, domain, args.replicas, args.placement),
            args.provider, release_name=RELEASE, depends_on=[secret],
        )  # fmt: skip
        # after the chart: the check must have a server before any request depends on it
        self.policies = authorization_policies(self, name, ns, args.hosts, args.provider, [*args.after, chart])
        self.register_outputs({})
