"""The UIs behind single sign-on at the Istio ingress gateway (components/client/exposure.py, oauth2_proxy.py,
certificates.py, secrets.py): the four stacks expose nothing; a stack given a domain (here, the dev and gcp-dev
stacks with a `mlplatform:client` section added in the test) serves every UI host over HTTPS on the existing
gateway, only through a sign-in: oauth2-proxy's check for the hosts without native OIDC, the UI's own OIDC for
the rest. Checked the way the cluster would see it: Istio's host matching, the pinned CRDs, the NetworkPolicies
under each cloud's CNI, Pod Security as rendered, and the Secret the program makes from the cloud secret."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml
from pulumi.runtime import Mocks, set_mocks
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from pydantic import ValidationError

from components.client.certificates import TLS_SECRET
from components.client.exposure import GATEWAY, Gate, platform_routes
from components.client.oauth2_proxy import COOKIE_SECRET_KEY, PROVIDER, SECRET_NAME, UNGUARDED_PATHS
from components.client.secrets import CLIENT_ID_KEY, CLIENT_SECRET_KEY, json_value, sso_client_secret
from components.contracts import Namespace
from components.guardrails import NAME_LABEL
from mlplatform.chartkeys import load_tree, unknown_keys
from mlplatform.config import ConfigError, load_config, namespace_values, read_stack_file
from mlplatform.config.client import ClientConfig, CloudSecretRef
from mlplatform.connections import connections
from mlplatform.manifests import SAFE_LOADER
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import AWS_SECRET_VERSION, GCP_SECRET_ACCESS, PlatformMocks, json_secret_keys
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from tests.support.crds import CRDS, plain, python_patterns, spec_schema, strict

DOMAIN = "ml.example.com"
STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")
EXPOSED = ("dev", "gcp-dev")  # one per cloud: the stack file plus the client section below
RELEASE = "kubernetes:helm.sh/v4:Chart"
VS, GW = "kubernetes:networking.istio.io/v1:VirtualService", "kubernetes:networking.istio.io/v1:Gateway"
AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
SSO_ID = {"aws": "mlplatform/sso-client", "gcp": "projects/idp-project/secrets/mlplatform-sso"}


def client_section(cloud: str) -> dict[str, Any]:
    tls: dict[str, Any] = {"kind": "acme-dns01", "email": "platform@example.com"}
    if cloud == "aws":
        tls["hostedZoneId"] = "Z04512345ABCDEFGHIJK"
    return {
        "domain": DOMAIN,
        "tls": tls,
        "sso": {
            "issuerUrl": "https://login.example.com/realms/ml",
            "clientId": "mlplatform-ui",
            "clientSecret": {"secretId": SSO_ID[cloud], "jsonKey": "clientSecret"},
            "adminGroups": ["ml-admins"],
            "userGroups": ["ml-users", "ml-analysts"],
            "endpoints": {
                "authorizationEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/auth",
                "tokenEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/token",
                "userinfoEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/userinfo",
            },
        },
    }


def exposed_config_map(stack: str) -> dict[str, Any]:
    config = read_stack_file(PROJECT_DIR, stack)
    return {**config, "mlplatform:client": client_section(config["mlplatform:cloud"])}


_exposed: dict[str, PlanDocument] = {}


@pytest.fixture(scope="module")
def exposed() -> Callable[[str], PlanDocument]:
    """exposed("dev"): the stack's plan with a domain, synthesized once (`plan` runs the same path)."""

    def get(stack: str) -> PlanDocument:
        if stack not in _exposed:
            _exposed[stack] = synthesize(stack, config_map=exposed_config_map(stack))
        return _exposed[stack]

    return get


def _client_config(**overrides: Any) -> ClientConfig:
    return ClientConfig.model_validate({**client_section("aws"), **overrides})


def _kinds(doc: PlanDocument, kind: str) -> list[dict[str, Any]]:
    return [r.inputs for r in doc.resources if r.inputs.get("kind") == kind]


def _release(doc: PlanDocument, chart: str) -> dict[str, Any] | None:
    found = [r.inputs for r in doc.resources if r.type.startswith("kubernetes:helm.sh/") and r.inputs["chart"] == chart]
    return found[0] if found else None


# -- config (mlplatform/config/client.py and its cross-field checks) ----------------------------------------


def test_no_domain_exposes_nothing_and_tls_or_sso_alone_is_rejected() -> None:
    assert ClientConfig().host("mlflow") is None
    with pytest.raises(ValidationError, match="take effect only with a domain"):
        ClientConfig.model_validate({"sso": client_section("aws")["sso"]})
    with pytest.raises(ValidationError, match="set tls too"):
        ClientConfig.model_validate({"domain": DOMAIN, "sso": client_section("aws")["sso"]})
    with pytest.raises(ValidationError, match="set tls and sso too"):
        ClientConfig.model_validate({"domain": DOMAIN})


def test_hosts_and_references_are_shaped_as_dns_and_the_cloud_expects() -> None:
    client = _client_config()
    assert client.host("mlflow") == f"mlflow.{DOMAIN}"
    with pytest.raises(ValueError, match="not a UI label"):
        client.host("MLflow.evil")
    for bad in ("Example.com", "-a.com", "localhost"):
        with pytest.raises(ValidationError):
            _client_config(domain=bad)
    with pytest.raises(ValidationError, match="must not end with '/'"):
        _client_config(sso={**client_section("aws")["sso"], "issuerUrl": "https://login.example.com/"})
    for ok in ("arn:aws:secretsmanager:us-east-1:123456789012:secret:sso-AbCdEf", "projects/p/secrets/sso", "sso"):
        assert CloudSecretRef(secret_id=ok).secret_id == ok
    with pytest.raises(ValidationError):
        CloudSecretRef(secret_id="has space")


def _stack_with(stack: str, client: dict[str, Any], **services: Any) -> None:
    config = read_stack_file(PROJECT_DIR, stack)
    config["mlplatform:client"] = client
    if services:
        config["mlplatform:services"] = {**config.get("mlplatform:services", {}), **services}
    load_config(namespace_values(config), stack)


def test_the_exposure_fits_the_stacks_cloud_and_gateway() -> None:
    _stack_with("dev", client_section("aws"))
    _stack_with("gcp-dev", client_section("gcp"))
    no_zone = client_section("aws")
    del no_zone["tls"]["hostedZoneId"]
    with pytest.raises(ConfigError, match="hostedZoneId is needed on aws"):
        _stack_with("dev", no_zone)
    aws_zone_on_gcp = client_section("gcp")
    aws_zone_on_gcp["tls"]["hostedZoneId"] = "Z04512345ABCDEFGHIJK"
    with pytest.raises(ConfigError, match="hostedZoneId is an AWS setting"):
        _stack_with("gcp-dev", aws_zone_on_gcp)
    with pytest.raises(ConfigError, match=r"needs services\.kserve\.enabled"):
        _stack_with("dev", client_section("aws"), kserve={"enabled": False})


# -- the Secret from the cloud secret manager (components/client/secrets.py) ---------------------------------


def test_a_json_key_picks_its_string_and_a_wrong_shape_names_the_reference_never_the_value() -> None:
    ref = CloudSecretRef(secret_id="sso", json_key="clientSecret")
    assert json_value('{"clientSecret": "abc", "x": "y"}', ref) == "abc"
    assert json_value("plain-value", CloudSecretRef(secret_id="sso")) == "plain-value"
    for bad in ("plain-value-123", '["clientSecret"]', '{"other": "abc"}', '{"clientSecret": 5}'):
        with pytest.raises(ValueError, match="secret sso") as raised:
            json_value(bad, ref)
        assert bad not in str(raised.value)


class _CloudSecrets(Mocks):
    """The cloud's secret manager holding one JSON secret; records each read."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        value = json.dumps({"clientSecret": "the-client-secret", "rotatedAt": "2026-11-01"})
        return ({"secretString": value} if args.token == AWS_SECRET_VERSION else {"secretData": value}), []


@pytest.mark.parametrize("stack", EXPOSED)
def test_the_sso_secret_holds_the_client_id_and_the_cloud_secrets_json_key(stack: str) -> None:
    """The program's own function under the SDK's mocks: it reads the referenced secret with the cloud's
    invoke (a GCP `projects/<p>/secrets/<id>` reference split into project and id) and writes the client id
    and the JSON key's value into the Secret, both as Pulumi secrets."""
    cfg = load_config(namespace_values(exposed_config_map(stack)), stack)
    mocks, result = _CloudSecrets(), {}

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            set_mocks(mocks, project="p", stack=stack, preview=False)

            def program() -> None:
                parent = pulumi.ComponentResource("test:client:Parent", "parent")
                secret = sso_client_secret(parent, "ui-sso", "istio-system", cfg, extra={"cookie-secret": "c"})
                result["data"] = secret.string_data

            _sync_await(run_pulumi_func(program))
            result["value"] = _sync_await(result["data"].future())
            result["secret"] = _sync_await(result["data"].is_secret())
        except BaseException as e:  # surfaced in the test's thread
            result["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    assert result["value"] == {
        CLIENT_ID_KEY: "mlplatform-ui", CLIENT_SECRET_KEY: "the-client-secret", "cookie-secret": "c"
    }  # fmt: skip
    assert result["secret"]
    [(token, args)] = mocks.calls
    if stack.startswith("gcp"):
        assert (token, args["secret"], args["project"]) == (GCP_SECRET_ACCESS, "mlplatform-sso", "idp-project")
    else:
        assert (token, args["secretId"]) == (AWS_SECRET_VERSION, SSO_ID["aws"])


def test_the_offline_plan_answers_both_reads_in_the_shape_the_config_names() -> None:
    mocks = PlatformMocks("us-east-1", json_secrets=json_secret_keys([(SSO_ID["gcp"], "clientSecret"), ("raw", None)]))
    answer, _ = mocks.call(MockCallArgs(GCP_SECRET_ACCESS, {"secret": "mlplatform-sso"}, ""))
    assert json.loads(answer["secretData"])["clientSecret"]
    answer, _ = mocks.call(MockCallArgs(AWS_SECRET_VERSION, {"secretId": "raw"}, ""))
    with pytest.raises(ValueError):
        json.loads(answer["secretString"])


# -- nothing is exposed without a domain ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_stacks_without_a_domain_expose_no_ui(plan, stack: str) -> None:
    doc = plan(stack)
    assert not [r for r in doc.resources if r.type in (VS, GW, AUTHZ) or "cert-manager.io" in r.type]
    assert _release(doc, "oauth2-proxy") is None
    assert "meshConfig" not in (_release(doc, "istiod") or {}).get("values", {})
    assert "cert-manager" not in doc.outputs["workloadIdentities"]
    assert "uiUrls" not in doc.outputs and "ssoCallbackUrls" not in doc.outputs


# -- the exposed stacks: routes, sign-in, certificates ------------------------------------------------------


def _istio_host_match(pattern: str, host: str) -> bool:
    """Istio's AuthorizationPolicy host matching (pilot/pkg/security/authz/matcher/header.go HostMatcher @ 1.30):
    `*` any, `*x` suffix, `x*` prefix, else exact; case-insensitive."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    if pattern.endswith("*"):
        return host.startswith(pattern[:-1])
    return host == pattern


def _applies(policy: Mapping[str, Any], host: str, path: str = "/") -> bool:
    for rule in policy["spec"].get("rules", []):
        for to in rule.get("to", []):
            op = to["operation"]
            paths = op.get("paths")
            if any(_istio_host_match(h, host) for h in op.get("hosts", [])) and (paths is None or path in paths):
                return True
    return False


@pytest.mark.parametrize("stack", EXPOSED)
def test_every_ui_host_is_served_over_https_by_one_route_to_its_service(exposed, stack: str) -> None:
    doc = exposed(stack)
    [gateway] = _kinds(doc, "Gateway")
    services = {r["metadata"]["name"]: r for r in _kinds(doc, "VirtualService")}
    urls = doc.outputs["uiUrls"]
    assert set(urls) == {"mlflow", "ray", "feast", "airflow", "grafana", "jupyter"}
    hosts = {label: url.removeprefix("https://") for label, url in urls.items()}
    https = [s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTPS"]
    plain_http = [s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTP"]
    assert [sorted(s["hosts"]) for s in https] == [sorted(hosts.values())]
    assert https[0]["tls"]["credentialName"] == TLS_SECRET
    assert all(s["tls"] == {"httpsRedirect": True} for s in plain_http)
    [certificate] = _kinds(doc, "Certificate")
    assert certificate["metadata"]["namespace"] == gateway["metadata"]["namespace"] == Namespace.ISTIO.value
    assert certificate["spec"]["secretName"] == TLS_SECRET and set(certificate["spec"]["dnsNames"]) == set(
        hosts.values()
    )
    for label, host in hosts.items():
        [vs] = [v for v in services.values() if v["spec"]["hosts"] == [host]]
        assert vs["spec"]["gateways"] == [f"{Namespace.ISTIO.value}/{GATEWAY}"]
        [[route]] = [h["route"] for h in vs["spec"]["http"]]
        assert route["destination"]["host"].endswith(".svc.cluster.local"), label
    # each destination is the Service a UI's component names (the layers' typed endpoints)
    cfg = load_config(namespace_values(exposed_config_map(stack)), stack)
    expected = {
        str(cfg.client.host(r.label)): (r.backend.host, r.backend.port)
        for r in platform_routes(cfg, _lifecycle_outputs(), _observability_outputs())
    }
    routed = {
        v["spec"]["hosts"][0]: (v["spec"]["http"][0]["route"][0]["destination"]["host"],
                                v["spec"]["http"][0]["route"][0]["destination"]["port"]["number"])
        for v in services.values()
    }  # fmt: skip
    assert {h: (d, int(p)) for h, (d, p) in routed.items()} == expected


def _lifecycle_outputs() -> Any:
    from components.lifecycle.feast import ENDPOINT as FEAST
    from components.lifecycle.mlflow import ENDPOINT as MLFLOW
    from components.lifecycle.ray import DASHBOARD

    class Lifecycle:
        mlflow, feature_server, ray_dashboard = MLFLOW, FEAST, DASHBOARD

    return Lifecycle()


def _observability_outputs() -> Any:
    class Observability:
        grafana_url = "http://kube-prometheus-stack-grafana.monitoring.svc.cluster.local:80"

    return Observability()


@pytest.mark.parametrize("stack", EXPOSED)
def test_every_host_without_native_oidc_is_checked_by_oauth2_proxy(exposed, stack: str) -> None:
    """The CUSTOM policy on the gateway's pods covers each oauth2-proxy host, with or without a port in the
    Host header and in any letter case; it names the extension provider istiod is given, whose service is
    oauth2-proxy's Service; the UIs that sign people in themselves are not sent through it."""
    doc = exposed(stack)
    policies = _kinds(doc, "AuthorizationPolicy")
    [check] = [p for p in policies if p["spec"]["action"] == "CUSTOM"]
    [deny] = [p for p in policies if p["spec"]["action"] == "DENY"]
    gateway_release = _release(doc, "gateway")
    assert gateway_release is not None
    gateway_pods = {
        "app": gateway_release["name"],
        "istio": "ingressgateway",
        **gateway_release["values"].get("labels", {}),
    }
    for policy in (check, deny):
        assert policy["metadata"]["namespace"] == gateway_release["namespace"]
        assert policy["spec"]["selector"]["matchLabels"].items() <= gateway_pods.items()
    callbacks = doc.outputs["ssoCallbackUrls"]
    assert set(callbacks) == {"mlflow", "ray", "feast"}
    for label, url in doc.outputs["uiUrls"].items():
        host = url.removeprefix("https://")
        guarded = label in callbacks
        for seen in (host, f"{host}:443", host.upper(), f"{host.upper()}:443"):
            assert _applies(check, seen) is guarded, (label, seen)
        if guarded:
            assert callbacks[label] == f"https://{host}/oauth2/callback"
            for path in UNGUARDED_PATHS:
                assert _applies(deny, host, path)
            assert not _applies(deny, host, "/")
    # the provider the policy names is in istiod's mesh config and leads to oauth2-proxy's Service
    [provider] = _release(doc, "istiod")["values"]["meshConfig"]["extensionProviders"]
    assert provider["name"] == check["spec"]["provider"]["name"] == PROVIDER
    chart = _release(doc, "oauth2-proxy")
    assert chart is not None
    assert provider["envoyExtAuthzHttp"]["service"] == f"{chart['name']}.{chart['namespace']}.svc.cluster.local"
    assert int(provider["envoyExtAuthzHttp"]["port"]) == 80  # the chart's service.portNumber default
    assert {"cookie", "authorization"} <= set(provider["envoyExtAuthzHttp"]["includeRequestHeadersInCheck"])


@pytest.mark.parametrize("stack", EXPOSED)
def test_oauth2_proxy_is_configured_for_the_domain_and_the_platforms_groups(exposed, stack: str) -> None:
    doc = exposed(stack)
    chart = _release(doc, "oauth2-proxy")
    assert chart is not None and chart["namespace"] == Namespace.ISTIO.value
    values = chart["values"]
    assert unknown_keys(values, load_tree("oauth2-proxy", chart["version"])) == []
    options = tomllib.loads(values["config"]["configFile"])
    section = client_section("aws")["sso"]
    assert options["oidc_issuer_url"] == section["issuerUrl"]
    assert options["allowed_groups"] == section["adminGroups"] + section["userGroups"]
    assert options["cookie_domains"] == options["whitelist_domains"] == [f".{DOMAIN}"]
    assert options["upstreams"] == ["static://200"] and options["cookie_secure"] and options["skip_jwt_bearer_tokens"]
    assert "redirect_url" not in options  # each host's own /oauth2/callback (oauthproxy.go getOAuthRedirectURI)
    assert values["config"]["existingSecret"] == SECRET_NAME
    [secret] = [s for s in _kinds(doc, "Secret") if s["metadata"]["name"] == SECRET_NAME]
    assert secret["metadata"]["namespace"] == chart["namespace"] and secret["stringData"] == "[secret]"
    assert COOKIE_SECRET_KEY == "cookie-secret"


@pytest.mark.parametrize("stack", EXPOSED)
def test_certificates_come_from_an_acme_issuer_solving_dns01_with_cert_managers_identity(exposed, stack: str) -> None:
    doc = exposed(stack)
    [issuer] = _kinds(doc, "ClusterIssuer")
    [certificate] = _kinds(doc, "Certificate")
    assert certificate["spec"]["issuerRef"] == {
        "group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer["metadata"]["name"]
    }  # fmt: skip
    [solver] = issuer["spec"]["acme"]["solvers"]
    assert solver["selector"] == {"dnsZones": [DOMAIN]}
    cert_manager = _release(doc, "cert-manager")
    assert cert_manager is not None
    assert "--dns01-recursive-nameservers-only" in cert_manager["values"]["extraArgs"]
    annotations = cert_manager["values"]["serviceAccount"]["annotations"]
    principal = doc.outputs["workloadIdentities"]["cert-manager"]
    if stack.startswith("gcp"):
        project = read_stack_file(PROJECT_DIR, stack)["mlplatform:gcpProject"]
        assert solver["dns01"] == {"cloudDNS": {"project": project}}
        assert annotations == {"iam.gke.io/gcp-service-account": principal}
        [grant] = [r for r in doc.by_type("gcp:projects/iAMMember:IAMMember") if r.name.endswith("cert-manager-dns")]
        assert grant.inputs["role"] == "roles/dns.admin" and grant.inputs["member"] == f"serviceAccount:{principal}"
    else:
        zone = client_section("aws")["tls"]["hostedZoneId"]
        assert solver["dns01"] == {"route53": {"region": "us-east-1", "hostedZoneID": zone}}
        assert annotations == {"eks.amazonaws.com/role-arn": principal}
        policy = json.loads(doc.one("aws:iam/rolePolicy:RolePolicy", "mlplatform-cert-manager-dns").inputs["policy"])
        writes = [s for s in policy["Statement"] if "route53:ChangeResourceRecordSets" in str(s["Action"])]
        assert [s["Resource"] for s in writes] == [f"arn:aws:route53:::hostedzone/{zone}"]
        assert not [r for r in doc.by_type("aws:iam/rolePolicy:RolePolicy") if r.name == "mlplatform-cert-manager"]


@pytest.mark.parametrize("stack", EXPOSED)
def test_no_load_balancer_service_bypasses_the_gateway(exposed, stack: str) -> None:
    """The only Service of type LoadBalancer is the ingress gateway's; no Ingress or Gateway API route."""
    doc = exposed(stack)

    def load_balancers(value: Any, path: str = "") -> list[str]:
        if isinstance(value, Mapping):
            here = [path] if value.get("type") == "LoadBalancer" else []
            return here + [p for k, v in value.items() for p in load_balancers(v, f"{path}.{k}")]
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in load_balancers(v, f"{path}[{i}]")]
        return []

    found = {r.name: load_balancers(r.inputs.get("values") or r.inputs.get("spec") or {}) for r in doc.resources
             if r.type.startswith("kubernetes:")}  # fmt: skip
    assert {name: paths for name, paths in found.items() if paths} == {"mlplatform-istio-gateway": [".service"]}
    assert not [r for r in doc.resources if r.inputs.get("kind") in ("Ingress", "HTTPRoute", "GRPCRoute")]


@functools.cache
def _istio_crds() -> dict[str, Any]:
    """Istio's CRDs by kind (one multi-document file: parsed once, with libyaml's loader)."""
    path = CRDS / "istio-crd-all.gen.yaml"
    if not path.exists():
        pytest.skip(f"no upstream CRDs at {path}")
    return {d["spec"]["names"]["kind"]: d for d in yaml.load_all(path.read_text(), Loader=SAFE_LOADER) if d}


def _istio_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    [found] = [v for v in _istio_crds()[kind]["spec"]["versions"] if v["name"] == version]
    return python_patterns(strict(found["schema"]["openAPIV3Schema"]["properties"]["spec"]))


@functools.cache
def _crd_validator(kind: str) -> Any:
    """A validator per kind, its (large) schema checked once."""
    if kind in ("Certificate", "ClusterIssuer"):
        schema = spec_schema(f"cert-manager.io_{kind.lower()}s.yaml", "v1")
    else:
        schema = _istio_schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("stack", EXPOSED)
def test_istio_and_cert_manager_resources_validate_against_the_pinned_crds(exposed, stack: str) -> None:
    doc = exposed(stack)
    checked = 0
    for kind in ("Gateway", "VirtualService", "AuthorizationPolicy", "Certificate", "ClusterIssuer"):
        for resource in _kinds(doc, kind):
            _crd_validator(kind).validate(plain(resource["spec"]))
            checked += 1
    assert checked == 1 + 6 + 2 + 1 + 1


# -- the network path, as each cloud's CNI decides it ----------------------------------------------------------

# The UI pods as their charts and operators label them, and the port each listens on (the Service's targetPort)
UI_PODS: dict[str, tuple[str, dict[str, str], int, str]] = {
    "mlflow": ("mlplatform", {NAME_LABEL: "mlflow"}, 5000, "mlflow 1.11.5 templates/deployment.yaml, port 5000"),
    "feast": ("mlplatform", {NAME_LABEL: "feast-feature-server"}, 6566, "feast-feature-server 0.66.0 online 6566"),
    "ray": ("training", {NAME_LABEL: "kuberay", "ray.io/node-type": "head"}, 8265, "KubeRay head, dashboard 8265"),
    "airflow": ("mlplatform", {"tier": "airflow", "component": "api-server", "release": "airflow"}, 8080,
                "airflow 1.19.0 templates/api-server/api-server-deployment.yaml, ports.apiServer 8080"),
    "grafana": ("monitoring", {NAME_LABEL: "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"}, 3000,
                "grafana 12.11.1 _helpers.tpl selectorLabels, service.targetPort 3000"),
    "jupyter": ("mlplatform", {NAME_LABEL: "jupyterhub", "app.kubernetes.io/component": "proxy",
                               "component": "proxy", "app": "jupyterhub"}, 8000,
                "jupyterhub 4.4.0 templates/proxy/deployment.yaml, http 8000"),
}  # fmt: skip


@pytest.mark.parametrize("stack", EXPOSED)
def test_the_gateway_reaches_each_ui_and_oauth2_proxy_and_nothing_else_gains_access(exposed, stack: str) -> None:
    doc = exposed(stack)
    addrs, found = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    # every upstream connection still passes with the exposure's objects in the plan
    assert [c.name for c in found if not policies.decide(c.source, c.to, c.port).allowed] == []
    gateway = Pod("istio-system", {"app": "istio-ingressgateway", "istio": "ingressgateway"}, addrs.pod)
    istiod = Pod("istio-system", {"app": "istiod", "istio": "pilot"}, addrs.pod)
    model = Pod("model-serving", {"component": "predictor"}, addrs.pod)
    for label, (namespace, labels, port, _source) in UI_PODS.items():
        ui = Pod(namespace, labels, addrs.pod)
        verdict = policies.decide(gateway, ui, port)
        assert verdict.allowed, (label, verdict.why)
        assert not policies.decide(istiod, ui, port).allowed, label  # only the gateway's pods
    for label in ("grafana", "airflow", "jupyter"):
        namespace, labels, port, _ = UI_PODS[label]
        assert not policies.decide(model, Pod(namespace, labels, addrs.pod), port).allowed, label
    # the ext_authz check: gateway -> oauth2-proxy:4180 (same namespace); oauth2-proxy -> the provider (HTTPS)
    proxy = Pod("istio-system", {NAME_LABEL: "oauth2-proxy", "app": "oauth2-proxy"}, addrs.pod)
    assert policies.decide(gateway, proxy, 4180).allowed
    provider = Outside("203.0.113.50", "OIDC provider")
    assert policies.decide(proxy, provider, 443).allowed
    # cert-manager's DNS-01: the cloud's DNS API over HTTPS and the cluster DNS for the propagation check; the
    # zone's nameservers directly on 53 are not reachable (hence --dns01-recursive-nameservers-only)
    controller = Pod("cert-manager", {NAME_LABEL: "cert-manager", "app.kubernetes.io/component": "controller"},
                     addrs.pod)  # fmt: skip
    dns = Pod("kube-system", {"k8s-app": "kube-dns"}, addrs.pod)
    assert policies.decide(controller, provider, 443).allowed
    assert policies.decide(controller, dns, 53).allowed
    assert not policies.decide(controller, Outside("205.251.192.1", "a Route 53 nameserver"), 53).allowed


# -- Pod Security as rendered (needs the chart package) --------------------------------------------------------


@pytest.mark.parametrize("stack", EXPOSED)
def test_oauth2_proxy_pods_pass_their_namespaces_pod_security_as_rendered(exposed, stack: str) -> None:
    """Runs once ../shared/charts holds oauth2-proxy-10.7.0.tgz (it does not yet: not a pinned package there)."""
    from mlplatform.cli import default_charts
    from mlplatform.manifests import ChartNotFound, check_objects, find_chart, render_release

    charts = default_charts(PROJECT_DIR)
    if charts is None:
        pytest.skip("no ../shared/charts")
    try:
        source = find_chart(charts, "oauth2-proxy", "10.7.0")
    except ChartNotFound as e:
        pytest.skip(f"chart oauth2-proxy needs a package in shared/charts: {e}")
    pytest.importorskip("helm_python")
    doc = exposed(stack)
    [reg] = [r for r in doc.resources if r.type == RELEASE and r.inputs.get("chart") == "oauth2-proxy"]
    rendered = render_release(reg, source)
    pods = rendered.objects_of("Deployment")
    assert len(pods) == 1
    assert check_objects(rendered.release, rendered.objects) == []
    labels = pods[0]["spec"]["template"]["metadata"]["labels"]
    assert labels[NAME_LABEL] == "oauth2-proxy"
    [service] = rendered.objects_of("Service")
    assert service["metadata"]["name"] == "oauth2-proxy" and service["spec"]["type"] == "ClusterIP"


def test_route_gates_are_the_documented_split() -> None:
    """oauth2-proxy for the UIs without usable native OIDC; the UI's own OIDC for Grafana, Airflow, JupyterHub."""
    cfg = load_config(namespace_values(exposed_config_map("dev")), "dev")
    gates = {r.label: r.gate for r in platform_routes(cfg, _lifecycle_outputs(), _observability_outputs())}
    assert gates == {
        "mlflow": Gate.OAUTH2_PROXY, "ray": Gate.OAUTH2_PROXY, "feast": Gate.OAUTH2_PROXY,
        "airflow": Gate.NATIVE, "grafana": Gate.NATIVE, "jupyter": Gate.NATIVE,
    }  # fmt: skip


def test_a_provided_issuer_needs_no_identity_and_is_referenced_as_configured() -> None:
    from components import workloads
    from components.client.certificates import certificate_spec

    provided = _client_config(tls={"kind": "provided", "name": "corp-ca", "issuerKind": "ClusterIssuer"})
    assert workloads.dns01_workloads(provided) == ()
    assert workloads.dns01_workloads(ClientConfig()) == ()
    spec = certificate_spec(provided.tls, [f"mlflow.{DOMAIN}"])
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-ca"}
    [acme] = workloads.dns01_workloads(_client_config())
    assert (acme.namespace, acme.service_account, acme.grants) == (Namespace.CERT_MANAGER, "cert-manager", ())
    assert acme.dns is not None and acme.dns.hosted_zone_id == client_section("aws")["tls"]["hostedZoneId"]


@pytest.mark.parametrize("stack", EXPOSED)
def test_the_exposure_is_a_client_layer_service_owning_its_named_objects(exposed, stack: str) -> None:
    doc = exposed(stack)
    index = {r.urn: r for r in doc.resources}
    [exposure] = doc.by_type("mlplatform:client:Exposure")
    assert index[exposure.parent].type == "mlplatform:client:Client"
    owned = list(doc.descendants(exposure.urn))
    assert {r.type for r in owned} >= {GW, VS, AUTHZ, RELEASE, "kubernetes:core/v1:Secret"}
    for r in owned:
        parent = index[r.parent]
        assert r.name.startswith(parent.name), (r.name, parent.name)
