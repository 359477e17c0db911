"""Grafana's and Airflow's own OIDC login (components/sign_on.py, components/observability/grafana_oidc.py,
components/lifecycle/airflow_oidc.py), only with `mlplatform:client.domain`.

Without a domain the four stacks' plans hold no trace of it, and with one the lifecycle and observability
layers change by exactly the sign-on additions. With a domain: the client secret stays a Secret reference;
Grafana's grafana.ini as the pinned chart renders it maps groups to roles (its JMESPath evaluated by the
JMESPath library); the Airflow chart mounts the webserver config and the secret in the API server only; and
the pinned Airflow (.venv-airflow: 3.1.7, FAB provider, Authlib) builds its real API server app from the
planned webserver_config.py and the rendered airflow.cfg and signs people in against an OpenID provider the
test serves over HTTPS, each getting the roles of their groups.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.client.native_oidc import sign_on
from components.client.secrets import CLIENT_SECRET_KEY
from components.guardrails import AIRFLOW_PODS
from components.lifecycle import airflow_oidc
from components.observability import grafana_oidc
from components.observability.prometheus import GRAFANA_SSO_SECRET
from components.sign_on import SignOn
from mlplatform.chartkeys import load_tree, unknown_keys
from mlplatform.config import ConfigError, load_config, namespace_values, read_stack_file
from mlplatform.connections import connections
from mlplatform.helm_apply import made_at_run_time, missing_references
from mlplatform.manifests import find_chart, program_objects, render_release
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from tests.support.graph import helm_release
from tests.support.net import free_port
from tests.support.postgres import CertificateAuthority
from tests.support.tools import venv_python

REQUIREMENTS = "tests/venvs/airflow.txt"
STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]
DOMAIN = "ml.example.com"
ADMINS, USERS = "platform-admins", "data-scientists"
GROUPS_CLAIM = "cognito:groups"  # not a bare JMESPath identifier, as some providers name it
# the OpenID provider the login test serves; its port is in the plan's issuerUrl, so chosen first
PORT = free_port()
ISSUER = f"https://localhost:{PORT}/realms/ml"
CLIENT_ID = "mlplatform-ui"
SIGN_ON_NAMES = {"mlplatform-airflow-sso", "mlplatform-airflow-sign-on", "mlplatform-prometheus-grafana-sso"}
LAYERS = ("mlplatform:lifecycle:Lifecycle", "mlplatform:observability:Observability")
KPS = "kube-prometheus-stack"


def client_config(**sso: Any) -> dict[str, Any]:
    endpoints = {"authorizationEndpoint": f"{ISSUER}/auth", "tokenEndpoint": f"{ISSUER}/token",
                 "userinfoEndpoint": f"{ISSUER}/userinfo"}  # fmt: skip
    return {
        "domain": DOMAIN,
        "tls": {"kind": "provided", "name": "corp-ca"},
        "sso": {"issuerUrl": ISSUER, "clientId": CLIENT_ID,
                "clientSecret": {"secretId": "mlplatform/sso", "jsonKey": "clientSecret"},
                "groupsClaim": GROUPS_CLAIM, "adminGroups": [ADMINS], "userGroups": [USERS],
                "emailDomains": ["example.com"], "endpoints": endpoints, **sso},
    }  # fmt: skip


def with_domain(stack: str, **sso: Any) -> dict[str, Any]:
    return {**read_stack_file(PROJECT_DIR, stack), "mlplatform:client": client_config(**sso)}


@pytest.fixture(scope="module")
def signed() -> PlanDocument:
    """prod (AWS, replicated Grafana whose alerting gossips) with a domain."""
    return synthesize("prod", config_map=with_domain("prod"))


def values(doc: PlanDocument, release: str) -> dict[str, Any]:
    found = helm_release(doc, release).inputs["values"]
    assert isinstance(found, dict), f"{release}'s values are a plain map, not a secret"
    return found


def in_layers(doc: PlanDocument) -> dict[str, Any]:
    """The resources under the lifecycle and observability layers (through their parents), by name."""
    index = {r.urn: r for r in doc.resources}

    def layer(r: Any) -> bool:
        while r is not None:
            if r.type in LAYERS:
                return True
            r = index.get(r.parent)
        return False

    return {r.name: r for r in doc.resources if layer(r)}


@pytest.mark.parametrize("stack", STACKS)
def test_without_a_domain_no_ui_signs_on_natively(plan: Callable[[str], PlanDocument], stack: str) -> None:
    doc = plan(stack)
    assert not SIGN_ON_NAMES & {r.name for r in doc.resources}
    assert "nativeSsoRedirectUris" not in doc.outputs
    airflow = values(doc, "airflow")
    assert "apiServerConfigConfigMapName" not in airflow["apiServer"]
    assert "env" not in airflow["apiServer"] and "podAnnotations" not in airflow["apiServer"]
    assert not {"api", "fab"} & set(airflow["config"]), "airflow.cfg keeps the chart's defaults"
    ini = values(doc, KPS)["grafana"]["grafana.ini"]
    assert not {"auth", "auth.generic_oauth", "server"} & set(ini), "Grafana keeps its own login"
    assert grafana_oidc.CLIENT_SECRET_ENV not in values(doc, KPS)["grafana"]["envValueFrom"]


def test_a_domain_changes_those_layers_by_the_sign_on_additions_only(
    plan: Callable[[str], PlanDocument], signed: PlanDocument
) -> None:
    plain, with_sso = in_layers(plan("prod")), in_layers(signed)
    assert len(plain) > 50, "the layers' resources are found"
    assert set(with_sso) - set(plain) == SIGN_ON_NAMES
    assert set(plain) <= set(with_sso)
    releases = {helm_release(signed, n).name for n in ("airflow", KPS, "mlflow")}
    changed = [n for n in plain if n not in releases and plain[n].inputs != with_sso[n].inputs]
    assert changed == [], "a domain changes nothing else in lifecycle and observability"
    # MLflow, behind oauth2-proxy, only learns its public host and origin (tests/test_mlflow_public_host.py)
    plain_mlflow, signed_mlflow = values(plan("prod"), "mlflow"), values(signed, "mlflow")
    moved = {k for k in plain_mlflow.keys() | signed_mlflow.keys() if plain_mlflow.get(k) != signed_mlflow.get(k)}
    assert moved == {"serverAllowedHosts", "corsAllowedOrigins"}
    sign_on = signed_sign_on()
    config = with_sso["mlplatform-airflow-sign-on"].inputs["data"][airflow_oidc.CONFIG_KEY]
    assert values(signed, "airflow") == airflow_oidc.merge_signed_on(
        values(plan("prod"), "airflow"), airflow_oidc.signed_on_values(sign_on, airflow_oidc.CONFIG_MAP, config)
    )
    plain_kps, signed_kps = values(plan("prod"), KPS), values(signed, KPS)
    assert {k: v for k, v in signed_kps.items() if k != "grafana"} == {
        k: v for k, v in plain_kps.items() if k != "grafana"
    }
    assert signed_kps["grafana"] == grafana_oidc.signed_on(plain_kps["grafana"], sign_on, GRAFANA_SSO_SECRET)


def signed_sign_on() -> SignOn:
    cfg = load_config(namespace_values(with_domain("prod")), "prod")
    found = sign_on(cfg)
    assert found is not None
    return found


def test_the_client_secret_is_only_referenced(signed: PlanDocument) -> None:
    secrets = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
               for r in signed.by_type("kubernetes:core/v1:Secret")}  # fmt: skip
    assert ("monitoring", GRAFANA_SSO_SECRET) in secrets and ("mlplatform", airflow_oidc.SECRET) in secrets
    for key in ((("monitoring", GRAFANA_SSO_SECRET)), ("mlplatform", airflow_oidc.SECRET)):
        assert secrets[key].inputs["stringData"] == "[secret]", "a Pulumi secret in the state"
    text = json.dumps([values(signed, "airflow"), values(signed, KPS)])
    config = signed.named("mlplatform-airflow-sign-on")[0].inputs["data"][airflow_oidc.CONFIG_KEY]
    for where in (text, config):
        assert "clientSecret" not in where and "[secret]" not in where
    assert f"os.environ[{json.dumps(airflow_oidc.CLIENT_SECRET_ENV)}]" in config
    assert signed.outputs["nativeSsoRedirectUris"] == {
        "grafana": f"https://grafana.{DOMAIN}/login/generic_oauth",
        "airflow": f"https://airflow.{DOMAIN}/auth/oauth-authorized/oidc",
    }


def test_the_signed_on_values_use_only_keys_and_shapes_the_charts_declare(signed: PlanDocument) -> None:
    """The key snapshots (mlplatform/chart_keys) and, where ../shared/upstream has it, the Airflow chart's
    values.schema.json, as tests/test_chart_values.py checks the stacks' own values."""
    for release in ("airflow", KPS):
        reg = helm_release(signed, release)
        tree = load_tree(reg.inputs["chart"], reg.inputs["version"])
        assert list(unknown_keys(values(signed, release), tree)) == [], release
    chart = PROJECT_DIR.parent / "shared" / "upstream" / "charts" / "airflow"
    if not (chart / "values.schema.json").exists():
        pytest.skip(f"no upstream values schema at {chart}")
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    jsonschema.validate(overlay(defaults, values(signed, "airflow")), schema)


def overlay(base: Any, override: Any) -> Any:
    """Helm's merge of chart defaults and the release's values, which the chart's schema validates."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: overlay(base.get(k), v) for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override


def test_grafana_and_the_airflow_api_server_reach_the_provider_through_the_policies(signed: PlanDocument) -> None:
    """Both fetch the provider's endpoints themselves (discovery, JWKS, token, userinfo) on HTTPS, outside the
    cluster: the stack's NetworkPolicies with its CNI's semantics let them (mlplatform/netpol.py)."""
    addrs, _ = connections(signed)
    policies = PolicySet(signed, addrs.cni)
    provider = Outside("203.0.113.10", "the OIDC provider")
    api_server = Pod("mlplatform", {**AIRFLOW_PODS, "component": "api-server"}, addrs.pod)
    grafana = Pod("monitoring", {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": KPS}, addrs.pod)
    for pod in (api_server, grafana):
        verdict = policies.decide(pod, provider, 443)
        assert verdict.allowed, (pod.namespace, verdict.why)
    # a provider on another port is not reached: the issuer must serve HTTPS on 443 (README)
    assert not policies.decide(api_server, provider, 8443).allowed


def test_config_refuses_grafana_without_endpoints_and_scopes_without_openid() -> None:
    for sso, message in (({"endpoints": None}, "endpoints is needed with Grafana"),
                         ({"scopes": ["email", "profile"]}, "must include openid")):  # fmt: skip
        stack = with_domain("dev", **sso)
        with pytest.raises(ConfigError, match=message):
            load_config(namespace_values(stack), "dev")
    without_grafana = with_domain("dev", endpoints=None)
    without_grafana["mlplatform:services"] = {"prometheus": {"enabled": False}}
    load_config(namespace_values(without_grafana), "dev")  # Airflow discovers them itself


def test_group_names_that_cannot_enter_grafana_ini_are_refused() -> None:
    for bad in ("a#b", "a;b", "it's", "a\\b"):
        with pytest.raises(ValueError, match="cannot be put"):
            grafana_oidc.role_attribute_path("groups", [bad], [])


# --- as the pinned charts render it, and as the pinned Airflow runs it --------------------------------------


def rendered(doc: PlanDocument, release: str) -> list[dict[str, Any]]:
    reg = helm_release(doc, release)
    charts = PROJECT_DIR.parent / "shared" / "charts"
    try:
        chart = find_chart(charts, str(reg.inputs["chart"]), str(reg.inputs["version"]))
    except Exception as e:  # the package is absent: as the suite's other render tests do
        pytest.skip(f"no pinned chart package for {release} in {charts}: {e}")
    pytest.importorskip("helm_python")
    objects = render_release(reg, chart).objects
    existing = program_objects(doc) | {(o["metadata"].get("namespace", ""), o["kind"], o["metadata"]["name"])
                                       for o in objects} | made_at_run_time(objects)  # fmt: skip
    assert missing_references(release, objects, existing) == [], "every Secret and ConfigMap referenced exists"
    return objects


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"] if "template" in obj.get("spec", {}) else obj.get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def jmespath_search(expression: str, documents: list[dict[str, Any]]) -> list[Any]:
    """JMESPath as the JMESPath library evaluates it (jmespath 1.x, FAB's dependency in .venv-airflow;
    Grafana runs the Go port of the same specification)."""
    python = venv_python(".venv-airflow", REQUIREMENTS)
    script = (
        "import jmespath, json, sys; e, docs = json.load(sys.stdin); "
        "print(json.dumps([jmespath.search(e, d) for d in docs]))"
    )
    out = subprocess.run([python, "-c", script], input=json.dumps([expression, documents]), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.slow
def test_grafana_ini_as_rendered_signs_on_with_roles_from_groups(signed: PlanDocument) -> None:
    objects = rendered(signed, KPS)
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(one(objects, "ConfigMap", f"{KPS}-grafana")["data"]["grafana.ini"])
    assert ini["server"]["root_url"] == f"https://grafana.{DOMAIN}/"
    assert ini["auth"]["disable_login_form"] == "true"
    oauth = ini["auth.generic_oauth"]
    assert oauth["enabled"] == "true" and oauth["client_id"] == CLIENT_ID
    assert oauth["client_secret"] == f"$__env{{{grafana_oidc.CLIENT_SECRET_ENV}}}", "expanded from the env"
    assert (oauth["auth_url"], oauth["token_url"], oauth["api_url"]) == (
        f"{ISSUER}/auth", f"{ISSUER}/token", f"{ISSUER}/userinfo")  # fmt: skip
    assert "openid" in oauth["scopes"].split() and oauth["use_pkce"] == "true"
    assert oauth["allowed_domains"] == "example.com"
    assert ini["unified_alerting"]["ha_peers"], "the replicas' alerting settings are kept beside sign-on"
    [grafana] = [c for c in containers(one(objects, "Deployment", f"{KPS}-grafana")) if c["name"] == "grafana"]
    [env] = [e for e in grafana["env"] if e["name"] == grafana_oidc.CLIENT_SECRET_ENV]
    assert env["valueFrom"]["secretKeyRef"] == {"name": GRAFANA_SSO_SECRET, "key": CLIENT_SECRET_KEY}
    # the role each person gets, from the claims Grafana reads
    people = [{GROUPS_CLAIM: [ADMINS]}, {GROUPS_CLAIM: ["x", USERS]}, {GROUPS_CLAIM: [USERS, ADMINS]},
              {GROUPS_CLAIM: ["someone-else"]}, {"email": "a@example.com"}]  # fmt: skip
    assert jmespath_search(oauth["role_attribute_path"], people) == [
        "GrafanaAdmin", "Editor", "GrafanaAdmin", "Viewer", "Viewer"]  # fmt: skip
    assert oauth["allow_assign_grafana_admin"] == "true"
    assert jmespath_search(oauth["groups_attribute_path"], people[:2] + people[4:]) == [[ADMINS], ["x", USERS], []]


@pytest.mark.slow
def test_airflow_chart_gives_the_config_and_secret_to_the_api_server_only(signed: PlanDocument) -> None:
    objects = rendered(signed, "airflow")
    api = one(objects, "Deployment", "airflow-api-server")
    spec = api["spec"]["template"]["spec"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "api-server-config"]
    assert volume["configMap"]["name"] == airflow_oidc.CONFIG_MAP
    [server] = [c for c in spec["containers"] if c["name"] == "api-server"]
    [mount] = [m for m in server["volumeMounts"] if m["name"] == "api-server-config"]
    assert (mount["mountPath"], mount["subPath"]) == ("/opt/airflow/webserver_config.py", airflow_oidc.CONFIG_KEY)
    [env] = [e for e in server["env"] if e["name"] == airflow_oidc.CLIENT_SECRET_ENV]
    assert env["valueFrom"]["secretKeyRef"] == {"name": airflow_oidc.SECRET, "key": CLIENT_SECRET_KEY}
    assert "checksum/sign-on-config" in api["spec"]["template"]["metadata"]["annotations"]
    others = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job") and o is not api]
    others += [o for o in objects if o["kind"] == "ConfigMap" and "pod_template_file.yaml" in o.get("data", {})]
    assert others, "the scheduler, triggerer, DAG processor and task pod template are rendered"
    for obj in others:
        text = json.dumps(obj)
        assert airflow_oidc.SECRET not in text and airflow_oidc.CLIENT_SECRET_ENV not in text, obj["metadata"]


@pytest.mark.slow
def test_the_pinned_airflow_signs_people_in_with_roles_from_their_groups(signed: PlanDocument) -> None:
    python = venv_python(".venv-airflow", REQUIREMENTS)
    objects = rendered(signed, "airflow")
    cfg = one(objects, "ConfigMap", "airflow-config")["data"]["airflow.cfg"]
    webserver_config = signed.named("mlplatform-airflow-sign-on")[0].inputs["data"][airflow_oidc.CONFIG_KEY]
    with tempfile.TemporaryDirectory(prefix="mlplatform-airflow-oidc-") as work:
        home, secret = Path(work), "test-client-secret"
        # the API server's files as the chart mounts them under AIRFLOW_HOME (airflowHome: /opt/airflow)
        (home / "airflow.cfg").write_text(cfg)
        (home / airflow_oidc.CONFIG_KEY).write_text(webserver_config)
        ca = CertificateAuthority.create(home, "idp-ca")
        cert, key = ca.issue(home, "idp", common_name="localhost", alt_names="DNS:localhost,IP:127.0.0.1")
        env = {
            "PATH": os.environ["PATH"], "HOME": work, "AIRFLOW_HOME": work,
            # the chart's cfg with this machine's database and no remote logs; the secret as the Secret gives it
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work}/airflow.db",
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "False", "AIRFLOW__API__SECRET_KEY": "test-api-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret", airflow_oidc.CLIENT_SECRET_ENV: secret,
            # the provider's certificate is from the test's CA (requests, hence Authlib, trusts this bundle)
            "REQUESTS_CA_BUNDLE": str(ca.cert),
            # the API reads a user's roles through a cache ([fab] cache_ttl, 30 s, FAB provider >= 3.2.0): a
            # re-login's new roles reach the API within that; without it here, at once
            "AIRFLOW__FAB__CACHE_TTL": "0",
        }  # fmt: skip
        people = [
            {"sub": "u-1", "email": "ada@example.com", "name": "Ada Admin", "groups": [ADMINS]},
            {"sub": "u-2", "email": "dan@example.com", "name": "Dan Scientist", "groups": [USERS, "other"]},
            {"sub": "u-3", "email": "val@example.com", "name": "Val Viewer", "groups": ["marketing"]},
            # Dan again after joining the admins: the roles follow the groups at the next login
            {"sub": "u-2", "email": "dan@example.com", "name": "Dan Scientist", "groups": [USERS, ADMINS]},
            # an e-mail outside emailDomains is refused, whatever the groups
            {"sub": "u-4", "email": "eve@elsewhere.org", "name": "Eve Outsider", "groups": [ADMINS]},
            # the same person's preferred_username changed: still the same account (keyed by sub)
            {"sub": "u-3", "email": "val@example.com", "name": "Val Viewer", "groups": ["marketing"],
             "preferred_username": "ada@example.com"},
            # an ID token not signed by the provider's published key is refused
            {"sub": "u-5", "email": "mal@example.com", "name": "Mal Forger", "groups": [ADMINS], "forged": True},
        ]  # fmt: skip
        spec = {"port": PORT, "issuer": ISSUER, "cert": str(cert), "key": str(key), "client_id": CLIENT_ID,
                "client_secret": secret, "groups_claim": GROUPS_CLAIM, "host": f"airflow.{DOMAIN}",
                "logins": people}  # fmt: skip
        (home / "spec.json").write_text(json.dumps(spec))
        driver = PROJECT_DIR / "tests" / "support" / "airflow_oidc_login.py"
        run = subprocess.run([python, str(driver), str(home / "spec.json")], env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr[-5000:]
    [line] = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    logins = result["logins"]
    callback = f"https://airflow.{DOMAIN}{airflow_oidc.CALLBACK_PATH}"
    for login in logins:
        assert login["login_status"] == 302 and login["authorize_endpoint"] == f"{ISSUER}/auth"
        assert login["redirect_uri"] == callback, "the registered callback, https behind the gateway"
        assert login["scope"] == "openid email profile" and login["code_challenge_method"] == "S256"
    for refused in (logins[4], logins[6]):
        assert refused["callback_location"] == f"https://airflow.{DOMAIN}/auth/login/", "back to the login page"
        assert "ui_location" not in refused
    for login in logins[:4] + logins[5:6]:
        assert login["callback_location"] == "/auth/" and login["ui_location"] == f"https://airflow.{DOMAIN}"
        assert login["session_cookies_secure"] and login["token_cookie_secure"], "cookies only over HTTPS"
    # the API token the UI got carries the roles: every role reads DAGs, only Admin reads FAB's roles
    apis = [login.get("api") for login in logins]
    assert [a["/api/v2/dags"] for a in apis if a] == [200] * 5
    assert [a["/auth/fab/v1/roles"] for a in apis if a] == [200, 403, 403, 200, 403]
    accounts = [login["account"] for login in logins]
    assert accounts[0] == {"username": "oidc_u-1", "roles": ["Admin", "Viewer"]}
    assert accounts[1] == {"username": "oidc_u-2", "roles": ["User", "Viewer"]}
    assert accounts[2] == {"username": "oidc_u-3", "roles": ["Viewer"]}
    assert accounts[3] == {"username": "oidc_u-2", "roles": ["Admin", "User", "Viewer"]}
    assert accounts[4] is None, "no account for an e-mail outside emailDomains"
    assert accounts[5] == {"username": "oidc_u-3", "roles": ["Viewer"]}
    assert accounts[6] is None, "no account from a forged ID token"
    assert result["token_requests"] and all(t["authenticated"] for t in result["token_requests"])
