"""The native sign-on the stack gives Grafana and Airflow (components/sign_on.py), built from its config, and
the redirect URIs to register with the OIDC provider for them.

stacks/platform.py calls `sign_on` once and hands the result to the lifecycle and observability layers; it
is None without a domain, and then neither layer changes anything.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.client.secrets import CLIENT_ID_KEY, CLIENT_SECRET_KEY, sso_client_secret
from components.lifecycle.airflow_oidc import callback_url as airflow_callback
from components.observability.grafana_oidc import callback_url as grafana_callback
from components.sign_on import AIRFLOW, GRAFANA, SignOn
from mlplatform.config import PlatformConfig


def sign_on(cfg: PlatformConfig) -> SignOn | None:
    """None unless `mlplatform:client.domain` is set (ClientConfig then requires `sso`)."""
    client = cfg.client
    if client.domain is None or client.sso is None:
        return None

    def secret(
        parent: pulumi.Resource, name: str, namespace: k8s.core.v1.Namespace, secret_name: str
    ) -> k8s.core.v1.Secret:
        return sso_client_secret(parent, name, namespace, cfg, secret_name=secret_name)

    return SignOn(client.sso, client.domain, secret, id_key=CLIENT_ID_KEY, secret_key=CLIENT_SECRET_KEY)


def callback_urls(sign_on: SignOn, cfg: PlatformConfig) -> dict[str, str]:
    """UI label -> the redirect URI its own login sends, for the UIs that are installed."""
    urls = {}
    if cfg.services.prometheus.enabled:
        urls[GRAFANA] = grafana_callback(sign_on)
    if cfg.services.airflow.enabled:
        urls[AIRFLOW] = airflow_callback(sign_on)
    return urls
