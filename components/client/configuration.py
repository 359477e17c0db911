"""The client configuration: everything a data scientist's tools need to reach one stack from a laptop, as
the stack output `clientConfiguration` and, at `python -m mlplatform plan`, as files: `clients/<stack>.env`
(shell `set -a; . clients/<stack>.env; set +a`, or python-dotenv) and `clients/<stack>/feature_store.yaml`.

Every value is derived from config and the layers' fixed Service names, none from what a provider computes,
so the offline plan writes the same files a deployed stack's output holds (tests/test_client_config.py
checks this under a preview, where computed values stay unknown). `clients/` is not committed (.gitignore):
the env file names the YAML by its absolute path on the machine that planned.

How a laptop reaches each service:
- `mlplatform:client.domain` set: the UI's single-sign-on host `https://<label>.<domain>` on the Istio ingress
  gateway (components/client, helper EDGE). Programmatic clients there present an OIDC ID token as a bearer
  token, which oauth2-proxy accepts only with `skip_jwt_bearer_tokens` (its `aud` must be the SSO client id:
  oauth2-proxy docs/docs/configuration/overview.md @ v7.15.3). The token is a reference here, never a value:
  the user exports MLPLATFORM_ID_TOKEN; MLflow sends MLFLOW_TRACKING_TOKEN as `Authorization: Bearer`
  (mlflow/utils/rest_utils.py @ 3.15.1), Feast's `auth: {type: oidc, token_env_var}` does the same
  (feast/permissions/client/oidc_authentication_client_manager.py @ v0.66.0) and `ray job` sends
  RAY_JOB_HEADERS (python/ray/dashboard/modules/job/cli.py @ ray-2.52.0).
- no domain: nothing is exposed, each value is the local end of a `kubectl port-forward` (the command is in
  the file beside the value). A port-forward enters the pod through the kubelet, so NetworkPolicies do not
  apply to it; it needs RBAC for `pods/portforward` in the Service's namespace.

Inference is not a UI: InferenceServices answer at the ingress gateway as `<name>-<namespace>.<servingDomain>`
(README, "Serving layer"), from inside the VPC at the load balancer (`pulumi stack output inferenceIngress`,
computed at deploy) or, from anywhere, through a port-forward to the gateway, which is the value given here.

Feast: the laptop's feature_store.yaml uses the `remote` online store, which reads online features through
the feature server's HTTP API (`/get-online-features`; feast/infra/online_stores/remote.py @ v0.66.0,
docs/reference/online-stores/remote.md). The platform's registry is SQL in the VPC's PostgreSQL and no
registry server is exposed, so registry-backed SDK calls (feast apply, list_*, push by source name,
get_historical_features) cannot work from a laptop: the registry names a reserved `.invalid` host so they fail
at once instead of silently using an empty local registry. Pushing from a laptop is the feature server's
`POST /push` (feast/feature_server.py @ v0.66.0), the same endpoint the streaming job uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import pulumi
import yaml

from components.client.jupyterhub import PROXY as JUPYTERHUB_PROXY
from components.contracts import Namespace, ServiceEndpoint
from components.guardrails import GATEWAY_HTTP_PORT, INGRESS_GATEWAY_APP
from components.lifecycle import LifecycleOutputs
from components.lifecycle.airflow import RELEASE as AIRFLOW_RELEASE
from components.lifecycle.feast import PROJECT as FEAST_PROJECT
from components.observability import ObservabilityOutputs
from components.observability.prometheus import RELEASE as PROMETHEUS_RELEASE
from mlplatform.config import PlatformConfig
from mlplatform.config.client import ClientConfig

OUTPUT = "clientConfiguration"  # the stack output's name
ID_TOKEN_ENV = "MLPLATFORM_ID_TOKEN"  # the user's OIDC ID token for the SSO client; set by the user, never written
FEAST_YAML_ENV = "FEAST_FS_YAML_FILE_PATH"  # read by FeatureStore() and every `feast` command (feast/constants.py)
# RFC 2606 reserves `.invalid`: the name never resolves, so a registry call fails at once (gRPC UNAVAILABLE,
# "Domain name not found") rather than hanging or writing a local registry.
NO_REGISTRY = "no-registry-server-for-laptops.invalid:6570"
# the Airflow chart's API server Service (`<release>-api-server`, ports.apiServer 8080: airflow chart 1.19.0
# values.yaml) and the Grafana Service of kube-prometheus-stack (`<release>-grafana`, port 80); JupyterHub's
# is its component's (z2jh `proxy-public`)
AIRFLOW_API = ServiceEndpoint(f"{AIRFLOW_RELEASE}-api-server", Namespace.PLATFORM, 8080)
GRAFANA = ServiceEndpoint(f"{PROMETHEUS_RELEASE}-grafana", Namespace.MONITORING, 80)
JUPYTERHUB = JUPYTERHUB_PROXY
GATEWAY = ServiceEndpoint(INGRESS_GATEWAY_APP, Namespace.ISTIO, GATEWAY_HTTP_PORT)


@dataclass(frozen=True)
class Reach:
    """One service as a laptop reaches it: its UI label (`cfg.client.host(label)`), its in-cluster Service and
    the local port its port-forward listens on (distinct per service, so all can run at once)."""

    label: str
    endpoint: ServiceEndpoint
    local_port: int

    def url(self, client: ClientConfig) -> str:
        host = client.host(self.label)
        return f"https://{host}" if host else f"http://localhost:{self.local_port}"

    def port_forward(self) -> str:
        e = self.endpoint
        return f"kubectl -n {e.namespace.value} port-forward svc/{e.name} {self.local_port}:{e.port}"

    def how(self, client: ClientConfig) -> str:
        return "single sign-on host" if client.domain else self.port_forward()


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    how: str  # where the value leads and how it is reached, for the file's comment


@dataclass(frozen=True)
class ClientEndpoints:
    """The in-cluster Services the settings lead to, from the layers' typed outputs."""

    mlflow: ServiceEndpoint
    feature_server: ServiceEndpoint
    ray_dashboard: ServiceEndpoint
    airflow: ServiceEndpoint | None = AIRFLOW_API
    grafana: ServiceEndpoint | None = GRAFANA
    jupyterhub: ServiceEndpoint | None = None
    inference: ServiceEndpoint | None = GATEWAY
    # the Grafana admin Secret's name in `monitoring`: a reference to it goes in the file, never its value
    grafana_admin_secret: str | None = None


def feature_store_config(url: str, authenticated: bool) -> dict[str, Any]:
    """A Feast client configuration that reads the platform's online features through the feature server at
    `url`: what a laptop (or any pod without the platform's database and Redis Secrets) can use."""
    doc: dict[str, Any] = {
        "project": FEAST_PROJECT,
        "provider": "local",
        "registry": {"registry_type": "remote", "path": NO_REGISTRY},
        "online_store": {"type": "remote", "path": url},
        "entity_key_serialization_version": 3,  # as the platform's store (components/lifecycle/feast.py)
    }
    if authenticated:
        # the ID token as `Authorization: Bearer` on every request (OidcClientAuthConfig.token_env_var)
        doc["auth"] = {"type": "oidc", "token_env_var": ID_TOKEN_ENV}
    return doc


FEATURE_STORE_HEADER = """\
# Feast client for a laptop: online features are read through the platform's feature server (online_store
# remote). The registry is not reachable from here: feast apply, list_* and get_historical_features fail at
# once (its host is a reserved .invalid name); run those in a notebook. Push rows with POST <server>/push.
"""


@dataclass(frozen=True)
class ClientSettings:
    settings: tuple[Setting, ...]
    feature_store: dict[str, Any]

    def as_output(self) -> dict[str, Any]:
        # a list, not a mapping: the stack output keeps the order (a mapping's keys come back sorted)
        return {
            "settings": [{"name": s.name, "value": s.value, "how": s.how} for s in self.settings],
            "featureStoreYaml": FEATURE_STORE_HEADER + yaml.safe_dump(self.feature_store, sort_keys=False),
        }


def client_settings(cfg: PlatformConfig, endpoints: ClientEndpoints) -> ClientSettings:
    """The settings of every installed service, in the order a data scientist meets them; credentials only as
    references (the user's ID token by its variable, the Grafana admin password by its Secret)."""
    client, svc = cfg.client, cfg.services
    signed_in = cfg.client.domain is not None
    settings: list[Setting] = []
    token = ""
    if client.sso is not None:
        # who issues the token the gateway accepts: public facts of the SSO client, not a secret
        token = (
            f"export {ID_TOKEN_ENV} first: your ID token from {client.sso.issuer_url} for client {client.sso.client_id}"
        )

    def add(reach: Reach, name: str) -> None:
        settings.append(Setting(name, reach.url(client), reach.how(client)))

    if svc.mlflow.enabled:
        add(Reach("mlflow", endpoints.mlflow, 5000), "MLFLOW_TRACKING_URI")
        if signed_in:
            settings.append(Setting("MLFLOW_TRACKING_TOKEN", f"${{{ID_TOKEN_ENV}}}", token))
    feast = Reach("feast", endpoints.feature_server, 6566)
    if svc.feast.enabled:
        add(feast, "FEAST_FEATURE_SERVER_URL")
    if svc.kuberay.enabled:
        # RAY_API_SERVER_ADDRESS, not RAY_ADDRESS: only `ray job` and JobSubmissionClient read it
        # (python/ray/dashboard/utils.py @ ray-2.52.0), so a local ray.init() is not redirected
        add(Reach("ray", endpoints.ray_dashboard, 8265), "RAY_API_SERVER_ADDRESS")
        if signed_in:
            header = f'{{"Authorization": "Bearer ${{{ID_TOKEN_ENV}}}"}}'
            settings.append(Setting("RAY_JOB_HEADERS", header, token))
    if svc.airflow.enabled and endpoints.airflow is not None:
        # Airflow 3's REST API is under /api/v2 of this URL
        add(Reach("airflow", endpoints.airflow, 8080), "AIRFLOW_API_URL")
    if endpoints.grafana is not None:
        add(Reach("grafana", endpoints.grafana, 3000), "GRAFANA_URL")
        if endpoints.grafana_admin_secret and not signed_in:
            secret = endpoints.grafana_admin_secret
            read = (
                f"kubectl -n {Namespace.MONITORING.value} get secret {secret} "
                "-o jsonpath='{.data.admin-password}' | base64 -d"
            )
            settings.append(Setting("GRAFANA_ADMIN_SECRET", f"{Namespace.MONITORING.value}/{secret}", read))
    if endpoints.jupyterhub is not None:
        add(Reach("jupyter", endpoints.jupyterhub, 8000), "JUPYTERHUB_URL")
    if svc.kserve.enabled and endpoints.inference is not None:
        # never an SSO host (no UI label): the gateway's own address, here through a port-forward
        gateway = Reach("inference", endpoints.inference, 8081)
        settings.append(Setting("KSERVE_INGRESS_URL", f"http://localhost:{gateway.local_port}", gateway.port_forward()))
        settings.append(Setting("KSERVE_DOMAIN", svc.kserve.domain, "Host: <model>-<namespace>.<domain>"))
        settings.append(Setting("KSERVE_NAMESPACE", Namespace.SERVING.value, "where InferenceServices run"))
    return ClientSettings(tuple(settings), feature_store_config(feast.url(client), signed_in))


# -- the files `python -m mlplatform plan` writes ---------------------------------------------------------


def env_file_text(output: Mapping[str, Any], feature_store_path: Path, stack: str) -> str:
    """The env file: one `NAME=value` per setting (double-quoted, so `${MLPLATFORM_ID_TOKEN}` expands when
    the shell or python-dotenv loads it), each after a comment saying how the value is reached."""
    lines = [
        f"# mlplatform client configuration for stack {stack}, written by `python -m mlplatform plan --stack {stack}`",
        "# (the same values as `pulumi stack output clientConfiguration`). Load: set -a; . this-file; set +a",
    ]
    env = {s["name"]: s["value"] for s in output["settings"]}
    how = {s["name"]: s["how"] for s in output["settings"]}
    env[FEAST_YAML_ENV] = str(feature_store_path)
    how[FEAST_YAML_ENV] = "the Feast client configuration written beside this file"
    for name, value in env.items():
        lines.append(f"# {how[name]}")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def write_client_files(outputs: Mapping[str, Any], directory: Path, stack: str) -> list[Path]:
    """clients/<stack>.env and clients/<stack>/feature_store.yaml from a plan's outputs; none when the
    program exported no client configuration."""
    output = outputs.get(OUTPUT)
    if not output:
        return []
    store = directory / stack / "feature_store.yaml"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(output["featureStoreYaml"])
    env = directory / f"{stack}.env"
    env.write_text(env_file_text(output, store.resolve(), stack))
    return [env, store]


# -- the component ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfigurationArgs:
    cfg: PlatformConfig
    endpoints: ClientEndpoints
    grafana_admin_secret: pulumi.Input[str] | None = None  # its name, set by the program (known in a preview)

    @classmethod
    def of(cls, cfg: PlatformConfig, lifecycle: LifecycleOutputs, observability: ObservabilityOutputs) -> Self:
        endpoints = ClientEndpoints(
            mlflow=lifecycle.mlflow,
            feature_server=lifecycle.feature_server,
            ray_dashboard=lifecycle.ray_dashboard,
            grafana=GRAFANA if observability.grafana_url is not None else None,
            jupyterhub=JUPYTERHUB if cfg.services.jupyterhub.enabled else None,
        )
        return cls(cfg, endpoints, observability.grafana_admin_secret)


class ClientConfiguration(pulumi.ComponentResource):
    """Creates nothing in the cluster: it computes the client settings once and registers them as its outputs,
    so the plan shows them under the client layer and the stack exports them."""

    output: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: ClientConfigurationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:client:ClientConfiguration", name, None, opts)
        cfg, endpoints = args.cfg, args.endpoints
        self.output = pulumi.Output.from_input(args.grafana_admin_secret).apply(
            lambda secret: client_settings(cfg, replace(endpoints, grafana_admin_secret=secret)).as_output()
        )
        self.register_outputs({OUTPUT: self.output})
