"""Grafana's own OIDC login (`auth.generic_oauth`) with roles from the ID token's groups, when the stack
exposes its UIs (components/sign_on.py).

Grafana 13.2 (grafana chart 12.11.1, kube-prometheus-stack 88.5.3's subchart) signs people in at
`/login/generic_oauth` on its `server.root_url`, so root_url is the public address the gateway serves it
at. The client secret never enters grafana.ini: the ini names `$__env{...}` (Grafana's variable expansion,
"Configure Grafana" docs) and the variable comes from the client Secret by secretKeyRef; the chart refuses
a literal `auth.generic_oauth.client_secret` anyway (templates/_helpers.tpl grafana.assertNoLeakedSecrets).

Roles (Grafana docs, "Configure Generic OAuth authentication", role mapping): `role_attribute_path` is a
JMESPath over the ID token's claims (then the userinfo response): admin groups -> GrafanaAdmin (server
admin and Admin of the org, with `allow_assign_grafana_admin`), user groups -> Editor, anyone else ->
Viewer. The roles are re-evaluated at every login (no `skip_org_role_sync`), so they follow the groups.
The ID token comes straight from the token endpoint over verified TLS, which OIDC Core 1.0 §3.1.3.7 accepts
in place of checking its signature.

The password login form is off when exposed: people sign in through the provider; the generated admin
(`grafana-admin` Secret) remains for the HTTP API through `kubectl port-forward` (basic auth stays on).
"""

from __future__ import annotations

import json
import re

from components.sign_on import GRAFANA, SignOn
from mlplatform.mappings import add_sections

CLIENT_SECRET_ENV = "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"
CALLBACK_PATH = "/login/generic_oauth"  # Grafana's generic OAuth redirect endpoint (docs: callback URL)
# characters a group name cannot carry into the ini line: go-ini reads `#` and `;` as a comment start and a
# newline as the end of the value; a quote or backslash would end or escape the JMESPath raw string
_UNSAFE = re.compile(r"[#;'\\\n\r]")


def callback_url(sign_on: SignOn) -> str:
    """The redirect URI to register with the provider for Grafana."""
    return sign_on.url(GRAFANA) + CALLBACK_PATH


def _claim(name: str) -> str:
    """A JMESPath expression reading claim `name` as a list: a quoted identifier (claims such as
    `cognito:groups` or a URL are not bare identifiers), an empty list when the claim is absent
    (contains() on null is a type error, not false)."""
    return f"{json.dumps(name)} || `[]`"


def role_attribute_path(groups_claim: str, admin_groups: list[str], user_groups: list[str]) -> str:
    """GrafanaAdmin for a member of any admin group, Editor for a member of any user group, else Viewer."""
    bad = [g for g in [*admin_groups, *user_groups] if _UNSAFE.search(g)]
    if bad:
        raise ValueError(f"group names {bad} cannot be put in Grafana's role mapping (no # ; ' \\ or newline)")
    claim = _claim(groups_claim)

    def member(groups: list[str]) -> str:
        tests = [f"contains({claim}, '{g}')" for g in groups]
        return tests[0] if len(tests) == 1 else "(" + " || ".join(tests) + ")"

    rules = [f"{member(admin_groups)} && 'GrafanaAdmin'"]
    if user_groups:
        rules.append(f"{member(user_groups)} && 'Editor'")
    return " || ".join([*rules, "'Viewer'"])


def grafana_oidc_values(sign_on: SignOn, secret_name: str) -> dict[str, object]:
    """The Grafana values for sign-on, to be merged into the chart's `grafana` values: grafana.ini sections
    and the client secret's variable."""
    sso = sign_on.sso
    if sso.endpoints is None:  # PlatformConfig refuses this combination; kept for a direct caller
        raise ValueError("client.sso.endpoints is needed for Grafana's generic_oauth")
    oauth: dict[str, object] = {
        "enabled": True,
        "name": "Single sign-on",
        "icon": "signin",
        "client_id": sso.client_id,
        "client_secret": f"$__env{{{CLIENT_SECRET_ENV}}}",
        "scopes": " ".join(sso.scopes),
        "auth_url": sso.endpoints.authorization_endpoint,
        "token_url": sso.endpoints.token_endpoint,
        "api_url": sso.endpoints.userinfo_endpoint,
        "use_pkce": True,
        "allow_sign_up": True,
        "login_attribute_path": "preferred_username || email || sub",
        "email_attribute_path": "email",
        "name_attribute_path": "name",
        "groups_attribute_path": _claim(sso.groups_claim),
        "role_attribute_path": role_attribute_path(sso.groups_claim, sso.admin_groups, sso.user_groups),
        "allow_assign_grafana_admin": True,
    }
    if "*" not in sso.email_domains:
        oauth["allowed_domains"] = " ".join(sso.email_domains)
    return {
        "grafana.ini": {
            "server": {"root_url": sign_on.url(GRAFANA) + "/"},
            "auth": {"disable_login_form": True},
            "auth.generic_oauth": oauth,
        },
        "envValueFrom": {CLIENT_SECRET_ENV: {"secretKeyRef": {"name": secret_name, "key": sign_on.secret_key}}},
    }


def signed_on(values: dict[str, object], sign_on: SignOn | None, secret_name: str) -> dict[str, object]:
    """Grafana's values with sign-on merged in (grafana.ini sections and envValueFrom entries added to the
    ones `values` has); `values` unchanged without sign-on."""
    if sign_on is None:
        return values
    return add_sections(values, grafana_oidc_values(sign_on, secret_name), "Grafana")
