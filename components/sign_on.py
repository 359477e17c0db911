"""Native single sign-on: what a UI that signs people in itself (Grafana, Airflow) needs from the client
configuration, handed to the layer that installs it.

Those UIs are installed by the lifecycle and observability layers, before the client layer exists, so the
client layer cannot configure them; stacks/platform.py builds one `SignOn` from the stack's config
(components/client/native_oidc.py `sign_on`) and gives it to both. The Kubernetes Secret with the OIDC
client's id and secret is made through `client_secret`, a function the client layer supplies
(components/client/secrets.py `sso_client_secret`): this module does not import the client package, which
imports these layers.

None (no `mlplatform:client.domain`): the UIs keep their own login and nothing here is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.config.client import SsoConfig

# The UIs' fixed host labels (mlplatform/config/client.py ClientConfig.host): `<label>.<domain>`
GRAFANA = "grafana"
AIRFLOW = "airflow"
MLFLOW = "mlflow"  # behind oauth2-proxy, but MLflow itself checks the Host and Origin it is reached by


class ClientSecretFactory(Protocol):
    def __call__(
        self, parent: pulumi.Resource, name: str, namespace: k8s.core.v1.Namespace, secret_name: str
    ) -> k8s.core.v1.Secret:
        """A Secret `secret_name` in `namespace` (resource `name`, a child of `parent`) holding the client's id
        and secret under `SignOn.id_key` and `SignOn.secret_key`."""
        ...


@dataclass(frozen=True)
class SignOn:
    sso: SsoConfig
    domain: str
    client_secret: ClientSecretFactory
    id_key: str  # the Secret's key holding the client id
    secret_key: str  # the Secret's key holding the client secret

    def host(self, ui: str) -> str:
        return f"{ui}.{self.domain}"

    def url(self, ui: str) -> str:
        """The UI's address in a browser: HTTPS on the ingress gateway (components/client exposure)."""
        return f"https://{self.host(ui)}"

    @property
    def discovery_url(self) -> str:
        """OIDC Discovery 1.0 §4: the provider's configuration under its issuer."""
        return f"{self.sso.issuer_url}/.well-known/openid-configuration"
