"""JupyterHub (components/client/jupyterhub.py) as the plans declare it: the single-user servers' clients are
the platform's outputs, the profiles follow the pool contracts, the pods pass Pod Security restricted, the
connections the hub needs pass the platform's NetworkPolicies as the CNI evaluates them, and the hub's
configuration loads into the real JupyterHub 5.5.0 / KubeSpawner 7.0.0 / OAuthenticator 17.4.0 (the pinned
hub image's versions, .venv-jupyterhub from tests/venvs/jupyterhub.txt).

Rendering the chart itself needs its package in ../shared/charts, which does not hold jupyterhub 4.4.0 yet:
until it does, the render tests skip this release and what the chart's own templates make (hub and proxy
pods) is checked only from the chart's defaults at 4.4.0 cited in the component.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.client.jupyterhub import (
    ADMIN_SECRET,
    CALLBACK_PATH,
    CLIENTS_CONFIG_MAP,
    PROXY,
    SSO_SECRET,
    authentication,
    notebook_labels,
)
from components.contracts import Namespace, pool_contract
from components.guardrails import (
    FEATURE_SERVER_PORT,
    INGRESS_GATEWAY_APP,
    JUPYTERHUB_PROXY_PODS,
    JUPYTERHUB_PROXY_PORT,
    LOCAL_GATEWAY_PORT,
    MLFLOW_PORT,
    NAME_LABEL,
    RAY_DASHBOARD_PORT,
)
from mlplatform.config import PlatformConfig, load_config, namespace_values, read_stack_file
from mlplatform.config.client import ClientConfig
from mlplatform.connections import addresses
from mlplatform.netpol import Outside, Pod, PolicySet
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from mlplatform.podsecurity import check_pod
from tests.support.postgres import ADMIN, ADMIN_PASSWORD, local_postgres, server_bin
from tests.support.tools import venv_python

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind
CLOUD_STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")  # identity = a cloud principal (local: a key Secret)
RELEASE = "kubernetes:helm.sh/v3:Release"
UPSTREAM = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "charts" / "jupyterhub"
PROBE = Path(__file__).resolve().parent / "support" / "jupyterhub_probe.py"
Plan = Callable[[str], PlanDocument]


def _values(doc: PlanDocument) -> dict[str, Any]:
    [release] = [r for r in doc.by_type(RELEASE) if r.inputs.get("chart") == "jupyterhub"]
    return release.inputs["values"]


def _config_map(doc: PlanDocument, name: str) -> dict[str, str]:
    """The ConfigMap `name` in `mlplatform`, where the servers run."""
    [found] = [
        r
        for r in doc.by_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"].get("name") == name
        and r.inputs["metadata"].get("namespace") == Namespace.PLATFORM.value
    ]
    return found.inputs["data"]


def _cfg(stack: str) -> PlatformConfig:
    return load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack)


# -- the servers' clients are the platform's outputs --------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_single_user_clients_are_the_platform_outputs(plan: Plan, stack: str) -> None:
    doc = plan(stack)
    su = _values(doc)["singleuser"]
    env = su["extraEnv"]
    # MLflow: the stack's tracking URI output
    assert env["MLFLOW_TRACKING_URI"] == doc.outputs["mlflowTrackingUri"]
    # Feast: the same feature_store.yaml the feature server serves (its chart's base64 value), mounted where
    # FEAST_FS_YAML_FILE_PATH points, with the Secrets its ${VARS} name
    [feast] = [r for r in doc.by_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "feast-feature-server"]
    served = base64.b64decode(feast.inputs["values"]["feature_store_yaml_base64"]).decode()
    path = Path(env["FEAST_FS_YAML_FILE_PATH"])
    mounts = {m["name"]: m for m in su["storage"]["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in su["storage"]["extraVolumes"]}
    [store] = [n for n, m in mounts.items() if m["mountPath"] == str(path.parent)]
    mounted = _config_map(doc, volumes[store]["configMap"]["name"])[path.name]
    assert yaml.safe_load(mounted) == yaml.safe_load(served)
    needed = {v.strip("${}") for v in re.findall(r"\$\{\w+\}", served)}
    assert needed <= set(env), needed - set(env)
    assert all("secretKeyRef" in env[v]["valueFrom"] for v in needed)
    assert not [k for k in env if k.startswith("KAFKA_")], "the notebook identity has no Kafka grant"
    # KServe: the serving namespace, where InferenceServices answer in the cluster
    serving = next(
        r for r in doc.by_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"].get("name") == "model-serving"
    )
    assert env["KSERVE_NAMESPACE"] == serving.inputs["metadata"]["name"]
    assert env["KSERVE_INFERENCE_DOMAIN"] == f"{env['KSERVE_NAMESPACE']}.svc.cluster.local"
    # the client libraries at the servers' versions
    requirements = _config_map(doc, CLIENTS_CONFIG_MAP)["requirements.txt"].split()
    assert any(r.startswith("mlflow-skinny==3.15.1") for r in requirements)
    assert any(r.startswith("feast[") and r.endswith("==0.66.0") for r in requirements)


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_the_servers_run_as_the_notebook_identity_on_block_storage(plan: Plan, stack: str) -> None:
    doc = plan(stack)
    su = _values(doc)["singleuser"]
    [account] = [
        r
        for r in doc.by_type("kubernetes:core/v1:ServiceAccount")
        if r.inputs["metadata"].get("name") == su["serviceAccountName"]
    ]
    annotations = account.inputs["metadata"].get("annotations") or {}
    principal = doc.outputs["workloadIdentities"]["notebook"]
    assert principal in annotations.values()
    # the cluster's block storage class, as every other volume of the platform
    classes = {r.inputs["metadata"]["name"] for r in doc.by_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert not classes or su["storage"]["dynamic"]["storageClass"] in classes
    # the hub's own state on the platform PostgreSQL, as the data layer's Secret and TLS mode say
    hub = _values(doc)["hub"]
    assert hub["db"]["type"] == "postgres" and hub["db"]["url"] == "postgresql://"
    refs = {
        k: v["valueFrom"]["secretKeyRef"] for k, v in hub["extraEnv"].items() if k.startswith("PG") and "valueFrom" in v
    }
    assert {r["name"] for r in refs.values()} == {"jupyterhub-postgres"}
    assert set(refs) == {"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"}
    # TLS to the database exactly as the platform's other clients (MLflow's server) verify it
    [mlflow] = [r for r in doc.by_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "mlflow"]
    assert hub["extraEnv"]["PGSSLMODE"] == mlflow.inputs["values"]["extraEnvVars"]["PGSSLMODE"]
    assert hub["extraEnv"].get("PGSSLROOTCERT") == mlflow.inputs["values"]["extraEnvVars"].get("PGSSLROOTCERT")


# -- profiles follow the pool contracts ---------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_profiles_are_the_cpu_pool_and_each_gpu_pool(plan: Plan, stack: str) -> None:
    cfg = _cfg(stack)
    profiles = {p["slug"]: p for p in _values(plan(stack))["singleuser"]["profileList"]}
    cpu = pool_contract(cfg.cluster.cpu_pool.name, node_labels=cfg.cluster.cpu_pool.node_labels)
    assert profiles.pop("cpu")["kubespawner_override"]["node_selector"] == cpu.node_selector()
    # one profile per GPU pool; the cloud stacks configure at least one (local none by default)
    assert len(profiles) == len(cfg.cluster.gpu_pools) >= (0 if stack == "local" else 1)
    for pool_cfg in cfg.cluster.gpu_pools:
        pool = pool_contract(
            pool_cfg.name,
            accelerator=pool_cfg.accelerator,
            gpus_per_node=pool_cfg.accelerator_count,
            node_labels=pool_cfg.node_labels,  # local: the nodes' own labels
        )
        override = profiles[f"gpu-{pool.name}"]["kubespawner_override"]
        assert override["node_selector"] == pool.node_selector()
        assert override["tolerations"] == pool.tolerations() != []
        assert override["extra_resource_limits"] == {"nvidia.com/gpu": "1"}


# -- what the chart would widen or expose is off -----------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_bypasses_the_gateway_or_the_flow_table(plan: Plan, stack: str) -> None:
    values = _values(plan(stack))
    assert values["proxy"]["service"]["type"] == "ClusterIP"
    for where in (values["hub"], values["proxy"]["chp"], values["proxy"]["traefik"], values["singleuser"]):
        assert where["networkPolicy"]["enabled"] is False
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False  # a privileged init container
    assert values["prePuller"]["hook"]["enabled"] is values["prePuller"]["continuous"]["enabled"] is False
    assert values["scheduling"]["userScheduler"]["enabled"] is False
    assert (
        values["cull"]["enabled"]
        and values["cull"]["timeout"] == _cfg(stack).services.jupyterhub.cull_idle_minutes * 60
    )
    # without a domain: a shared admin password from a generated Secret, never the chart's `dummy`
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "shared-password"
    ref = values["hub"]["extraEnv"]["MLPLATFORM_HUB_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == ADMIN_SECRET


def test_values_validate_against_the_chart_schema(plan: Plan) -> None:
    """values.schema.yaml at 4.4.0 (the source of the package's values.schema.json), over the chart's defaults,
    as Helm validates the merged values."""
    if not (UPSTREAM / "values.schema.yaml").exists():
        pytest.skip(f"no upstream copy of the jupyterhub chart in {UPSTREAM}")
    schema = yaml.safe_load((UPSTREAM / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((UPSTREAM / "values.yaml").read_text())
    for stack in STACKS:
        merged = _overlay(defaults, json.loads(json.dumps(_values(plan(stack)))))
        jsonschema.validate(merged, schema)
    sso = _overlay(defaults, {"hub": authentication(_sso_cfg(), SSO_SECRET)})
    jsonschema.validate(sso, schema)


def _overlay(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = {k: _overlay(base.get(k), v) for k, v in override.items()}
        return merged | {k: v for k, v in base.items() if k not in override}
    return override


# -- connections through the flow table, as the CNI evaluates them ----------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_connections_pass_or_fail_as_the_flow_table_says(plan: Plan, stack: str) -> None:
    doc = plan(stack)
    a = addresses(doc)
    policies = PolicySet(doc, a.cni)
    ns = Namespace.PLATFORM.value
    notebook = Pod(ns, notebook_labels(), a.pod)
    proxy = Pod(ns, {**JUPYTERHUB_PROXY_PODS, "component": "proxy", "app": "jupyterhub"}, a.pod)
    hub = Pod(ns, {NAME_LABEL: "jupyterhub", "component": "hub", "app": "jupyterhub"}, a.pod)
    gateway = Pod(Namespace.ISTIO.value, {"app": INGRESS_GATEWAY_APP, NAME_LABEL: INGRESS_GATEWAY_APP}, a.pod)
    mlflow = Pod(ns, {NAME_LABEL: "mlflow"}, a.pod)
    feature_server = Pod(ns, {NAME_LABEL: "feast-feature-server"}, a.pod)
    ray_head = Pod(Namespace.TRAINING.value, {NAME_LABEL: "kuberay", "ray.io/node-type": "head"}, a.pod)
    istiod = Pod(Namespace.ISTIO.value, {"app": "istiod"}, a.pod)
    trainer = Pod(Namespace.TRAINING.value, {NAME_LABEL: "training"}, a.pod)

    allowed = {
        "gateway -> proxy (jupyter.<domain>)": (gateway, proxy, JUPYTERHUB_PROXY_PORT),
        "proxy -> hub": (proxy, hub, 8081),
        "proxy -> server": (proxy, notebook, 8888),
        "hub -> server": (hub, notebook, 8888),
        "hub -> proxy API": (hub, proxy, 8001),
        "server -> hub API (activity, auth)": (notebook, hub, 8081),
        "server -> MLflow": (notebook, mlflow, MLFLOW_PORT),
        "server -> feature server": (notebook, feature_server, FEATURE_SERVER_PORT),
        "server -> InferenceServices (local gateway)": (notebook, gateway, LOCAL_GATEWAY_PORT),
    }
    denied = {
        "server -> Ray job API (Airflow's only)": (notebook, ray_head, RAY_DASHBOARD_PORT),
        "other gateway pods -> proxy": (istiod, proxy, JUPYTERHUB_PROXY_PORT),
        "training -> proxy": (trainer, proxy, JUPYTERHUB_PROXY_PORT),
        "internet -> proxy (no load balancer)": (Outside("203.0.113.7", "client"), proxy, JUPYTERHUB_PROXY_PORT),
    }
    wrong = [n for n, (s, d, p) in allowed.items() if not policies.decide(s, d, p).allowed]
    wrong += [n for n, (s, d, p) in denied.items() if policies.decide(s, d, p).allowed]
    assert wrong == []
    # the cloud's APIs and the identity provider, over HTTPS
    assert policies.decide(hub, Outside("198.51.100.10", "OIDC provider"), 443).allowed
    assert policies.decide(notebook, Outside("198.51.100.11", "object storage"), 443).allowed
    assert PROXY.port == 80  # the Service port the gateway's route names; the flow admits its target 8000


# -- the hub's configuration in the real JupyterHub --------------------------------------------------------


def _sso_cfg(**sso: Any) -> PlatformConfig:
    client = ClientConfig.model_validate(
        {
            "domain": "ml.example.com",
            "tls": {"kind": "provided", "name": "corp-ca"},
            "sso": {
                "issuerUrl": "https://login.example.com/realms/ml",
                "clientId": "mlplatform",
                "clientSecret": {"secretId": "mlplatform/sso", "jsonKey": "clientSecret"},
                "adminGroups": ["ml-admins"],
                "userGroups": ["ml-users"],
                **sso,
            },
        }
    )
    return _cfg("dev").model_copy(update={"client": client})


def _probe(request: dict[str, Any]) -> dict[str, Any]:
    python = venv_python(".venv-jupyterhub", "tests/venvs/jupyterhub.txt")
    done = subprocess.run(
        [python, str(PROBE)], input=json.dumps(request), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["dev", "gcp-prod"])
def test_kubespawner_builds_restricted_pods_for_every_profile(plan: Plan, stack: str) -> None:
    doc = plan(stack)
    values = _values(doc)
    slugs = [p["slug"] for p in values["singleuser"]["profileList"]]
    password = "p" * 48
    out = _probe({"values": values, "profiles": slugs, "env": {"MLPLATFORM_HUB_ADMIN_PASSWORD": password}})
    assert out["warnings"] == []  # every hub.config key is a trait of its class
    assert out["authenticator"]["class"] == "SharedPasswordAuthenticator"
    profiles = {p["slug"]: p["kubespawner_override"] for p in values["singleuser"]["profileList"]}
    for slug, pod in out["pods"].items():
        problems = check_pod(pod["spec"], "restricted", f"{stack} notebook {slug}")
        assert problems == [], "\n".join(map(str, problems))
        assert pod["spec"]["nodeSelector"] == profiles[slug]["node_selector"]
        assert pod["spec"].get("tolerations", []) == profiles[slug]["tolerations"]
        assert pod["spec"]["serviceAccountName"] == "notebook"
        assert pod["spec"]["automountServiceAccountToken"] is False
        [container] = pod["spec"]["containers"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == doc.outputs["mlflowTrackingUri"]
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == ("1" if slug.startswith("gpu-") else None)
        # what the flow table admits and the labels it selects by are what KubeSpawner puts on the pod
        assert notebook_labels().items() <= pod["metadata"]["labels"].items()
        assert {"containerPort": 8888, "name": "notebook-port"} in container["ports"]
        # no volume is mounted inside another (the kubelet cannot make a mount point in a read-only ConfigMap)
        paths = [m["mountPath"].rstrip("/") + "/" for m in container["volumeMounts"]]
        assert [(a, b) for a in paths for b in paths if a != b and b.startswith(a)] == []
        assert any(p == env["MLPLATFORM_CLIENT_REQUIREMENTS"].rsplit("/", 1)[0] + "/" for p in paths)


@pytest.mark.slow
def test_without_a_domain_only_the_admin_signs_in_with_the_generated_password(plan: Plan) -> None:
    values, password = _values(plan("dev")), "q" * 48
    out = _probe(
        {
            "values": values,
            "profiles": [],
            "env": {"MLPLATFORM_HUB_ADMIN_PASSWORD": password},
            "login": [["admin", password], ["admin", "q" * 47], ["someone", password], ["someone", ""]],
        }
    )
    assert out["logins"] == [{"name": "admin", "admin": True, "groups": []}, None, None, None]


class _Discovery(http.server.BaseHTTPRequestHandler):
    issuer = ""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
                "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
                "userinfo_endpoint": f"{self.issuer}/protocol/openid-connect/userinfo",
            }
        ).encode()
        ok = self.path == "/realms/ml/.well-known/openid-configuration"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body if ok else b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def discovery() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    _Discovery.issuer = f"http://127.0.0.1:{server.server_address[1]}/realms/ml"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield _Discovery.issuer
    server.shutdown()


@pytest.mark.slow
def test_with_sso_the_hub_signs_in_through_the_issuers_discovered_endpoints(plan: Plan, discovery: str) -> None:
    """GenericOAuthenticator with the values `authentication` gives a stack with `client.sso`; the hub's
    startup snippet reads the issuer's discovery document (served here over HTTP on a free port: the
    snippet is scheme-agnostic, config requires https)."""
    cfg = _sso_cfg()
    values = _values(plan("dev"))
    values = {**values, "hub": {**values["hub"], **authentication(cfg, SSO_SECRET)}}
    out = _probe(
        {
            "values": json.loads(json.dumps(values)),
            "profiles": [],
            "env": {"MLPLATFORM_OIDC_ISSUER": discovery, "OAUTH_CLIENT_ID": "mlplatform", "OAUTH_CLIENT_SECRET": "s"},
        }
    )
    auth = out["authenticator"]
    assert out["warnings"] == []
    assert auth["class"] == "GenericOAuthenticator"
    assert auth["authorize_url"] == f"{discovery}/protocol/openid-connect/auth"
    assert auth["token_url"] == f"{discovery}/protocol/openid-connect/token"
    assert auth["oauth_callback_url"] == f"https://{cfg.client.host('jupyter')}{CALLBACK_PATH}"
    assert auth["client_id"] == "mlplatform" and auth["client_secret_set"]
    assert auth["admin_groups"] == ["ml-admins"]
    assert auth["allowed_groups"] == ["ml-admins", "ml-users"]
    assert auth["auth_state_groups_key"] == "oauth_user.groups"
    assert auth["scope"] == ["openid", "email", "profile"]


@pytest.mark.slow
def test_with_sso_endpoints_in_config_the_hub_uses_them_without_discovery(plan: Plan) -> None:
    endpoints = {
        "authorizationEndpoint": "https://login.example.com/oauth2/authorize",
        "tokenEndpoint": "https://login.example.com/oauth2/token",
        "userinfoEndpoint": "https://login.example.com/oauth2/userinfo",
    }
    cfg = _sso_cfg(endpoints=endpoints, scopes=["openid", "email", "groups"])
    hub = authentication(cfg, SSO_SECRET)
    assert hub["extraConfig"] == {}  # nothing fetched at start
    values = _values(plan("dev"))
    values = {**values, "hub": {**values["hub"], **hub}}
    out = _probe({"values": json.loads(json.dumps(values)), "profiles": [], "env": {"OAUTH_CLIENT_SECRET": "s"}})
    auth = out["authenticator"]
    assert out["warnings"] == []
    assert (auth["authorize_url"], auth["token_url"]) == (
        endpoints["authorizationEndpoint"],
        endpoints["tokenEndpoint"],
    )
    assert auth["scope"] == ["openid", "email", "groups"]
    env = values["hub"]["extraEnv"]
    assert {env[k]["valueFrom"]["secretKeyRef"]["name"] for k in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET")} == {
        SSO_SECRET
    }


@pytest.mark.slow
def test_the_hub_keeps_its_state_in_its_postgresql_database_over_tls(plan: Plan) -> None:
    """The hub's database settings (the empty URL, libpq's PG* variables, `--upgrade-db`) against a local
    PostgreSQL that forces TLS like RDS and Cloud SQL: the real hub creates its schema there as the
    `jupyterhub` user the data layer makes."""
    if server_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server binaries: .ci/run installs Debian's postgresql package")
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    from tests.support.managed import managed_stack

    # RDS's shape (sslmode require without a bundle), what the local server below presents
    values = _values(managed_stack("dev", ("postgres",)))
    hub_env = values["hub"]["extraEnv"]
    # a directory the `postgres` user can enter (pytest's tmp_path is private to root)
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-pg-hub-", dir="/tmp"))
    with local_postgres(workdir) as pg:
        admin = {"user": ADMIN, "password": ADMIN_PASSWORD}
        for sql in (
            "CREATE ROLE jupyterhub LOGIN PASSWORD 'hub-Pw-0123456789'",
            # as the data layer's bootstrap does (components/data/bootstrap.py)
            "GRANT jupyterhub TO CURRENT_USER",
            "CREATE DATABASE jupyterhub OWNER jupyterhub",
        ):
            done = pg.psql(sql, **admin)
            assert done.returncode == 0, done.stderr
        # the PG* variables as the kubelet fills them from the `jupyterhub-postgres` Secret (here: the local
        # server's address) beside the plain ones the values set (the TLS mode)
        env = pg.env("jupyterhub", "hub-Pw-0123456789", "jupyterhub", sslmode=hub_env["PGSSLMODE"])
        assert {k for k, v in hub_env.items() if k.startswith("PG")} <= set(env)
        out = _probe(
            {
                "values": values,
                "profiles": [],
                "env": {**env, "MLPLATFORM_HUB_ADMIN_PASSWORD": "p" * 48},
                "init_db": True,
            }
        )
        assert {"alembic_version", "users", "servers", "spawners"} <= set(out["tables"])
        owned = pg.psql(
            "SELECT count(*) FROM pg_tables WHERE tableowner = 'jupyterhub'", **admin, database="jupyterhub"
        )
        assert int(owned.stdout.strip()) == len(out["tables"])
    shutil.rmtree(workdir, ignore_errors=True)


def test_disabled_jupyterhub_installs_nothing() -> None:
    """`services.jupyterhub.enabled: false` leaves no hub, proxy or notebook objects in the plan."""
    from mlplatform.config import read_stack_file
    from mlplatform.plan.synth import PROJECT_DIR, synthesize

    stack = read_stack_file(PROJECT_DIR, "dev")
    stack["mlplatform:services"] = {**stack.get("mlplatform:services", {}), "jupyterhub": {"enabled": False}}
    doc = synthesize("dev", config_map=stack)
    assert not doc.by_type("mlplatform:client:JupyterHub")
    assert not [r for r in doc.resources if r.type.startswith("kubernetes:helm.sh/") and "jupyterhub" in r.name]
