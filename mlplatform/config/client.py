"""How people reach the platform: `mlplatform:client` in `Pulumi.<stack>.yaml`.

No `domain`: nothing is exposed; every UI is reached by `kubectl port-forward` (README, "Client layer").
With a domain, each UI gets a hostname under it (`mlflow.<domain>`, `airflow.<domain>`, ...) on the Istio
ingress gateway, a certificate from cert-manager (`tls`) and single sign-on with the OIDC provider (`sso`).
Credentials are references, never values: config names a secret in the cloud's secret manager.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from mlplatform.config.strict import STRICT

# a DNS name of at least two labels, lower case (RFC 1123); every UI host is `<ui>.<domain>`, so the domain
# leaves room for the longest UI label (`jupyterhub.`) within a certificate's 64-character common name limit
DOMAIN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
SECRET_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"  # a Kubernetes object's name: an RFC 1123 subdomain
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"  # a key of a JSON secret value
# AWS Secrets Manager names/ARNs ([A-Za-z0-9/_+=.@-], an ARN adds `arn:aws:secretsmanager:<region>:<account>:
# secret:`), Google Secret Manager ids ([A-Za-z0-9_-], up to 255) or their `projects/<p>/secrets/<id>` form
CLOUD_SECRET_ID = r"^(arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class Strict(BaseModel):
    model_config = STRICT


class CloudSecretRef(Strict):
    """A secret in the cloud's secret manager: AWS Secrets Manager (its name or ARN) or Google Secret Manager
    (its id in the stack's project, or `projects/<project>/secrets/<id>`), latest version. `pulumi up` reads
    it with the deployer's credentials and writes it into a Kubernetes Secret in each namespace whose
    workload uses it, a Pulumi secret in the state; the stack file holds only the reference. A plain
    Kubernetes Secret cannot be the source: the namespaces that need it do not exist before `pulumi up`."""

    secret_id: Annotated[str, Field(pattern=CLOUD_SECRET_ID)]
    # when the secret's value is a JSON object: the key that holds the value
    json_key: Annotated[str, Field(pattern=SECRET_KEY)] | None = None


class AcmeDns01Issuer(Strict):
    """Let's Encrypt (or another ACME server) with the DNS-01 challenge, solved through the cloud's DNS by
    cert-manager's workload identity: Route 53 on AWS (`hostedZoneId`), Cloud DNS on GCP (the stack's project
    unless `dnsProject`)."""

    kind: Literal["acme-dns01"]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    server: Annotated[str, Field(pattern=r"^https://")] = LETS_ENCRYPT
    hosted_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,31}$")] | None = None  # AWS Route 53
    dns_project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")] | None = None  # GCP


class ProvidedIssuer(Strict):
    """A cert-manager issuer you run yourself (an internal CA, Vault, a company ACME account)."""

    kind: Literal["provided"]
    name: Annotated[str, Field(pattern=SECRET_NAME)]
    issuer_kind: Literal["ClusterIssuer", "Issuer"] = "ClusterIssuer"


HTTPS_URL = r"^https://[^\s/]+(/[^\s]*)?$"


class OidcEndpoints(Strict):
    """The provider's endpoints, as its discovery document (`<issuerUrl>/.well-known/openid-configuration`)
    lists them, for the UIs that cannot discover them: Grafana's generic_oauth reads auth_url, token_url and
    api_url from grafana.ini (its OIDC discovery URL only fills those fields in the admin UI's form)."""

    authorization_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]
    token_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]
    userinfo_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]


class SsoConfig(Strict):
    """The OIDC provider every UI signs in with (one client, with every UI's callback URL registered).
    `clientSecret` names the client's secret in the cloud's secret manager;
    roles follow the `groupsClaim` of the ID token: `adminGroups` administer (Airflow Admin, Grafana Admin,
    JupyterHub admin), `userGroups` use the platform (Airflow User, Grafana Editor, a notebook server);
    anyone else who signs in gets nothing beyond read-only where a UI has such a role."""

    issuer_url: Annotated[str, Field(pattern=r"^https://[^\s/]+(/[^\s]*)?$")]
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: CloudSecretRef
    groups_claim: Annotated[str, Field(min_length=1, max_length=255)] = "groups"
    admin_groups: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    user_groups: list[Annotated[str, Field(min_length=1)]] = []
    # the e-mail domains allowed to sign in to the UIs behind oauth2-proxy (`*`: any the provider vouches for)
    email_domains: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = ["*"]
    # what the UIs ask for at sign-in; add the provider's groups scope where it needs one to put the groups
    # claim in the ID token (Dex and Okta: `groups`)
    scopes: Annotated[list[Annotated[str, Field(pattern=r"^[!#-\[\]-~]+$")]], Field(min_length=1)] = [
        "openid",
        "email",
        "profile",
    ]
    # required with Grafana installed (services.prometheus): see OidcEndpoints
    endpoints: OidcEndpoints | None = None

    @field_validator("issuer_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        # OIDC discovery appends /.well-known/openid-configuration; the `iss` claim must equal the URL exactly
        if v.endswith("/"):
            raise ValueError("issuerUrl must not end with '/': it must equal the ID token's `iss` claim exactly")
        return v

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        # RFC 6749 §3.3 scope tokens; without `openid` the provider issues no ID token (OIDC Core §3.1.2.1)
        if "openid" not in v:
            raise ValueError("scopes must include openid: without it the provider issues no ID token")
        return v


class ClientConfig(Strict):
    """`domain` unset: no UI is exposed. Set: `tls` and `sso` are required (no UI is ever served without
    TLS and sign-on)."""

    domain: Annotated[str, Field(pattern=DOMAIN, min_length=4, max_length=52)] | None = None
    tls: Annotated[AcmeDns01Issuer | ProvidedIssuer, Field(discriminator="kind")] | None = None
    sso: SsoConfig | None = None

    @model_validator(mode="after")
    def _exposed_only_with_tls_and_sign_on(self) -> Self:
        if self.domain is None:
            if self.tls is not None or self.sso is not None:
                raise ValueError("tls and sso take effect only with a domain: set domain, or remove them")
            return self
        missing = [k for k, v in (("tls", self.tls), ("sso", self.sso)) if v is None]
        if missing:
            raise ValueError(
                f"domain {self.domain} exposes the platform's UIs: set {' and '.join(missing)} too (no UI is "
                "served without TLS and single sign-on)"
            )
        return self

    def host(self, ui: str) -> str | None:
        """The UI's hostname, `<ui>.<domain>`; None when nothing is exposed."""
        if not re.fullmatch(r"[a-z][-a-z0-9]*", ui):
            raise ValueError(f"not a UI label: {ui!r}")
        return f"{ui}.{self.domain}" if self.domain else None
