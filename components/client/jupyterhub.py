"""JupyterHub (z2jh chart 4.4.0: JupyterHub 5.5.0, KubeSpawner 7.0.0, OAuthenticator 17.4.0) in `mlplatform`.

Single-user servers run as the `notebook` workload identity (datasets read, artifacts read-write) with the
platform's clients configured from the layers' outputs: MLflow's tracking URI, the feature store exactly as
the platform's own Feast clients in `mlplatform` load it (the `feast-store` ConfigMap, its Secrets and CAs),
and where KServe's InferenceServices answer in the cluster. One profile for the CPU pool and one per GPU
pool, placed by the pool contracts (selector, tolerations, one nvidia.com/gpu unit). Idle servers are culled;
homes are PVCs of the cluster's block storage class and outlive the servers. The hub keeps its state in its
own database on the platform PostgreSQL (`jupyterhub`, TLS as the data layer says), so the single hub the
chart allows restarts in any zone.

Sign-in:
- with `client.sso` (a domain): GenericOAuthenticator against the configured OIDC provider, groups from the
  ID token's `groupsClaim`; `adminGroups` are hub admins, `userGroups` (and admins) may sign in, nobody
  else. The endpoints are `client.sso.endpoints` where config names them, else the issuer's discovery
  document read when the hub starts (OAuthenticator 17 has no discovery of its own: oauthenticator/oauth2.py
  authorize_url/token_url); the scopes are `client.sso.scopes`, as every UI asks. The client's secret from
  the Secret helper EDGE's components/client/secrets.py makes from the cloud secret (env OAUTH_CLIENT_ID /
  OAUTH_CLIENT_SECRET, which OAuthenticator reads: oauth2.py _client_id_default/_client_secret_default).
- without a domain nothing is exposed: the hub is reached by `kubectl port-forward`, so only someone who
  may already port-forward into `mlplatform` gets there. Even so it is never the chart's default `dummy`
  authenticator (any name, any password): any pod in `mlplatform` can reach the proxy, and a server runs
  with the notebook identity's bucket access. JupyterHub's built-in SharedPasswordAuthenticator
  (jupyterhub/authenticators/shared.py, 5.0+) admits the one admin user `admin` with a generated password
  of 48 characters (it requires >= 32) kept in the Secret `jupyterhub-admin`: stateless (no sign-up
  database like NativeAuthenticator's, whose first sign-up could claim the admin name), nothing to install
  in the hub image, rotated by replacing the Pulumi secret.

Pod Security restricted in `mlplatform`: the chart's hub and proxy pods already comply at 4.4.0 (values.yaml
hub.podSecurityContext/containerSecurityContext, proxy.chp.containerSecurityContext); the single-user pod
gets runAsNonRoot, seccomp RuntimeDefault and no capabilities through KubeSpawner's pod_security_context and
container_security_context. Turned off because they would be rejected or widen what the platform allows:
- singleuser.cloudMetadata.blockWithIptables (default true): a privileged root init container with NET_ADMIN
  (files/hub/jupyterhub_config.py `block-cloud-metadata`); the platform's NetworkPolicies already keep pods
  off the EKS instance metadata service, and on GKE the metadata server is how the notebook identity works.
- the image pullers (prePuller.hook and .continuous): DaemonSets on every node that pull the notebook image
  (hook: a Helm pre-upgrade Job besides) on system nodes too, and never on the tainted GPU nodes.
- the user scheduler: its image is kube-scheduler v1.30.14 (values.yaml scheduling.userScheduler.image),
  outside the supported skew against the clusters' 1.32-1.35 API servers; the default scheduler places the
  servers and the cluster autoscaler scales the pools.
- the chart's NetworkPolicies (hub, proxy, singleuser, traefik; all enabled by default): their egress allows
  every non-private address on every port, the cloud metadata server for hub and proxy, every private
  address for hub and proxy, and the proxy's ingress is open to all. Policies only add up, so they would
  widen the platform's default deny. The platform's flow table (components/guardrails.py) declares the one
  flow from outside the namespace, the ingress gateway to the proxy (`jupyterhub-proxy`); the hub, proxy
  and servers talk inside `mlplatform`, which the baseline allows.
- proxy.service.type LoadBalancer (the chart's default) becomes ClusterIP: with a domain the ingress gateway
  routes jupyter.<domain> to `proxy-public` (components/client/exposure.py, helper EDGE), so nothing
  bypasses TLS at the gateway.

helm.v3.Release: the chart generates the hub's cookie secret, the proxy token and the CryptKeeper key with
`lookup` of its own Secret (templates/hub/_helpers-passwords.tpl), which only an in-cluster Helm keeps
stable across upgrades; a client-side render would make new ones on every preview.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_kubernetes as k8s

from components.client.secrets import CLIENT_ID_KEY, CLIENT_SECRET_KEY, sso_client_secret
from components.contracts import (
    GPU_RESOURCE,
    Namespace,
    NodePoolContract,
    ObjectStore,
    PostgresEndpoint,
    ServiceEndpoint,
    WorkloadIdentity,
)
from components.kube import (
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    config_map,
    database_ca,
    database_ca_volume,
    database_secret,
    identity_service_account,
    libpq_env,
    opaque_secret,
    pinned_release,
)
from components.lifecycle.feast import FeastClient
from components.placement import Placement
from components.secrets import generated_secret
from mlplatform.config import PlatformConfig
from mlplatform.config.models import JupyterHubConfig, NotebookSize, Sizing
from mlplatform.pins import FEAST_FEATURE_SERVER, MLFLOW, ChartPin

RELEASE = "jupyterhub"
UI_LABEL = "jupyter"  # the fixed host label: jupyter.<domain> (mlplatform/config/client.py ClientConfig.host)
# what the ingress gateway routes jupyter.<domain> to: the chart's `proxy-public` Service (no name prefix with
# fullnameOverride "", values.yaml), port 80 -> the proxy's `http` port (flow `jupyterhub-proxy`)
PROXY = ServiceEndpoint("proxy-public", Namespace.PLATFORM, 80)
HUB = ServiceEndpoint("hub", Namespace.PLATFORM, 8081)  # the hub's API (templates/hub/service.yaml)
CALLBACK_PATH = "/hub/oauth_callback"
# the single-user image's user (k8s-singleuser-sample's jovyan, uid 1000; images/singleuser-sample/Dockerfile
# @ 4.4.0) and the group that owns its home volume (the chart's singleuser.fsGid)
NOTEBOOK_UID, NOTEBOOK_GID = 1000, 100
HOME = "/home/jovyan"
ADMIN_USER = "admin"
ADMIN_SECRET, ADMIN_PASSWORD_KEY = "jupyterhub-admin", "password"
ADMIN_PASSWORD_ENV = "MLPLATFORM_HUB_ADMIN_PASSWORD"
SSO_SECRET = "jupyterhub-sso"
ISSUER_ENV = "MLPLATFORM_OIDC_ISSUER"
# the servers' client files (requirements of the platform's clients), mounted read-only
# (beside, not above, the database CA the Feast client mounts at /etc/mlplatform/postgres-ca: a volume cannot be
# mounted inside a read-only ConfigMap volume)
CLIENTS_CONFIG_MAP, CLIENTS_DIR = "notebook-clients", "/etc/mlplatform/notebook"
# an InferenceService <name> answers in the cluster at http://<name>.<namespace>.svc.cluster.local, a Service
# KServe points at knative-local-gateway (flow `local-gateway` from mlplatform)
CLUSTER_DOMAIN = "svc.cluster.local"
START_TIMEOUT_SECONDS = 900  # a GPU node scaling up from zero, then a multi-GB image pull
CULL_EVERY_SECONDS = 300

# Hub startup: OIDC discovery of the configured issuer (the hub has HTTPS egress). The issuer must equal the
# document's `issuer` (OIDC Discovery 1.0 §4.3). A provider that is down fails the hub's start, which
# Kubernetes retries.
DISCOVERY_CONFIG = """\
import json, os, urllib.request
_issuer = os.environ["MLPLATFORM_OIDC_ISSUER"]
with urllib.request.urlopen(_issuer + "/.well-known/openid-configuration", timeout=15) as _r:
    _oidc = json.load(_r)
if _oidc.get("issuer") != _issuer:
    raise SystemExit(f"OIDC discovery: issuer {_oidc.get('issuer')!r} is not {_issuer!r}")
c.GenericOAuthenticator.authorize_url = _oidc["authorization_endpoint"]
c.GenericOAuthenticator.token_url = _oidc["token_endpoint"]
"""
# SharedPasswordAuthenticator takes its password from config only: read from the env the Secret fills
ADMIN_PASSWORD_CONFIG = """\
import os
c.SharedPasswordAuthenticator.admin_password = os.environ["MLPLATFORM_HUB_ADMIN_PASSWORD"]
"""

# What a notebook installs to use the platform's clients at the servers' versions (README, "For data
# scientists"): the MLflow client at the tracking server's version, Feast at the feature server's with the
# offline store's bucket reader for the buckets' API (the versions tests/venvs/feast.txt resolves beside Feast
# 0.66): by the storage layer's typed ObjectStore, so an S3-compatible store in the cluster reads as S3 does.
BUCKET_READERS: dict[ObjectStore, tuple[str, ...]] = {
    ObjectStore.S3: ("s3fs==2026.7.0",),
    ObjectStore.GCS: ("gcsfs==2025.12.0", "fsspec==2025.12.0"),
}


def client_requirements(store: ObjectStore) -> str:
    pins = (
        f"mlflow-skinny=={MLFLOW.app_version}",
        f"feast[aws,gcp,redis,postgres]=={FEAST_FEATURE_SERVER.app_version}",
        *BUCKET_READERS[store],
    )
    return "\n".join(pins) + "\n"


HUB_DB_URL = "postgresql://"


def env_values(env: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """A pod's env list as the chart's extraEnv map: name -> value, or -> {valueFrom: ...}."""
    return {str(e["name"]): e["value"] if "value" in e else {"valueFrom": e["valueFrom"]} for e in env}


def _gb(n: int) -> str:
    return f"{n}G"  # JupyterHub's ByteSpecification: G is 1024**3 bytes (jupyterhub/traitlets.py)


def size_override(size: NotebookSize) -> dict[str, object]:
    """KubeSpawner's resource traits for a profile's size."""
    return {
        "cpu_guarantee": size.cpu_guarantee,
        "cpu_limit": size.cpu_limit,
        "mem_guarantee": _gb(size.memory_guarantee_gb),
        "mem_limit": _gb(size.memory_limit_gb),
    }


def profiles(cpu_pool: NodePoolContract, gpu_pools: Sequence[NodePoolContract], cfg: JupyterHubConfig) -> list[dict]:
    """KubeSpawner's profile_list: the CPU pool (default) and one profile per GPU pool, each placed by its
    pool's contract. A GPU server takes one nvidia.com/gpu unit (a whole GPU, or one share where the pool
    time-slices)."""
    found: list[dict[str, object]] = [
        {
            "display_name": "CPU",
            "slug": "cpu",
            "description": f"{cfg.cpu.cpu_limit:g} CPU, {cfg.cpu.memory_limit_gb} GiB memory (pool {cpu_pool.name})",
            "default": True,
            "kubespawner_override": {
                **size_override(cfg.cpu),
                "node_selector": cpu_pool.node_selector(),
                "tolerations": cpu_pool.tolerations(),
            },
        }
    ]
    for pool in gpu_pools:
        found.append(
            {
                "display_name": f"GPU ({pool.name})",
                "slug": f"gpu-{pool.name}",
                "description": f"1 {pool.accelerator or 'GPU'}, {cfg.gpu.cpu_limit:g} CPU, "
                f"{cfg.gpu.memory_limit_gb} GiB memory (pool {pool.name})",
                "kubespawner_override": {
                    **size_override(cfg.gpu),
                    "node_selector": pool.node_selector(),
                    "tolerations": pool.tolerations(),
                    "extra_resource_limits": {GPU_RESOURCE: "1"},
                    "extra_resource_guarantees": {GPU_RESOURCE: "1"},
                },
            }
        )
    return found


@dataclass(frozen=True)
class NotebookClients:
    """What the single-user servers are configured with, from the layers' outputs."""

    mlflow: ServiceEndpoint
    feast: FeastClient
    serving_namespace: str
    object_store: ObjectStore  # the buckets' API, whose fsspec reader the notebooks install
    # the notebook identity's WorkloadIdentity.env: the local store's key and endpoint (boto3 and s3fs read
    # them), nothing on AWS and GCP
    identity_env: tuple[Mapping[str, object], ...] = ()

    @property
    def store(self) -> FeastClient:
        """The feature store without Feast's Kafka settings: the notebook identity has no Kafka grant
        (components/workloads.py NOTEBOOK), so a stream source's client could not sign in anyway."""
        return replace(self.feast, kafka=None, kafka_package=None)

    def env(self) -> dict[str, object]:
        """singleuser.extraEnv: name -> value, or -> {valueFrom: ...} for the feature store's Secrets. The Feast
        clients' HOME=/tmp stays out: a notebook's home is its volume."""
        env: dict[str, object] = {
            "MLFLOW_TRACKING_URI": self.mlflow.url,
            "KSERVE_NAMESPACE": self.serving_namespace,
            # http://<InferenceService>.$KSERVE_INFERENCE_DOMAIN/v2/models/<model>/infer
            "KSERVE_INFERENCE_DOMAIN": f"{self.serving_namespace}.{CLUSTER_DOMAIN}",
            "MLPLATFORM_CLIENT_REQUIREMENTS": f"{CLIENTS_DIR}/requirements.txt",
        }
        feast = [var for var in self.store.env() if var["name"] != "HOME"]
        return env | env_values(feast) | env_values(self.identity_env)

    def volumes(self, clients_config_map: pulumi.Input[str]) -> tuple[list[dict], list[dict]]:
        volumes, mounts = self.store.volumes()
        volumes = [*volumes, {"name": CLIENTS_CONFIG_MAP, "configMap": {"name": clients_config_map}}]
        mounts = [*mounts, {"name": CLIENTS_CONFIG_MAP, "mountPath": CLIENTS_DIR, "readOnly": True}]
        return volumes, mounts


def authentication(cfg: PlatformConfig, secret: pulumi.Input[str]) -> dict[str, object]:
    """hub.config, hub.extraEnv and hub.extraConfig for signing in (see the module's docstring): `secret` is
    the Secret with the SSO client (CLIENT_ID_KEY, CLIENT_SECRET_KEY) or with the admin password."""

    def from_secret(key: str) -> dict[str, object]:
        return {"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    sso, host = cfg.client.sso, cfg.client.host(UI_LABEL)
    if sso is None or host is None:
        return {
            "config": {
                "JupyterHub": {"authenticator_class": "shared-password"},
                "SharedPasswordAuthenticator": {"admin_users": [ADMIN_USER]},
            },
            "extraEnv": {ADMIN_PASSWORD_ENV: from_secret(ADMIN_PASSWORD_KEY)},
            "extraConfig": {"mlplatform-admin-password": ADMIN_PASSWORD_CONFIG},
        }
    # the endpoints as config names them (client.sso.endpoints), else from the issuer's discovery document when
    # the hub starts
    endpoints = (
        {"authorize_url": sso.endpoints.authorization_endpoint, "token_url": sso.endpoints.token_endpoint}
        if sso.endpoints is not None
        else {}
    )
    return {
        "config": {
            "JupyterHub": {"authenticator_class": "generic-oauth"},
            "GenericOAuthenticator": {
                **endpoints,
                "login_service": "single sign-on",
                "oauth_callback_url": f"https://{host}{CALLBACK_PATH}",
                "scope": list(sso.scopes),
                # the ID token's claims are the user's data (the contract: roles follow its groupsClaim); it
                # comes straight from the token endpoint over verified TLS (OIDC Core 3.1.3.7)
                "userdata_from_id_token": True,
                "username_claim": "email",
                "manage_groups": True,
                "auth_state_groups_key": f"oauth_user.{sso.groups_claim}",
                "admin_groups": sorted(sso.admin_groups),
                "allowed_groups": sorted({*sso.admin_groups, *sso.user_groups}),
                "allow_all": False,
            },
        },
        "extraEnv": {
            "OAUTH_CLIENT_ID": from_secret(CLIENT_ID_KEY),
            "OAUTH_CLIENT_SECRET": from_secret(CLIENT_SECRET_KEY),
            ISSUER_ENV: sso.issuer_url,
        },
        "extraConfig": {} if endpoints else {"mlplatform-oidc-discovery": DISCOVERY_CONFIG},
    }


def jupyterhub_values(
    *,
    cfg: PlatformConfig,
    config: JupyterHubConfig,
    placement: Placement,
    gpu_pools: Sequence[NodePoolContract],
    storage_class: str,
    clients: NotebookClients,
    clients_config_map: pulumi.Input[str],
    auth_secret: pulumi.Input[str],
    service_account: pulumi.Input[str],
    postgres: PostgresEndpoint,
    database_secret: pulumi.Input[str],
    database_ca_config_map: pulumi.Input[str] | None,
) -> dict[str, object]:
    auth = authentication(cfg, auth_secret)
    db_volumes, db_mounts = database_ca_volume(database_ca_config_map)
    volumes, mounts = clients.volumes(clients_config_map)
    core = {"nodeSelector": placement.node_selector, "tolerations": placement.tolerations}
    # the whole reference as the name, the chart's tag removed: jupyterhub_config.py appends `:<tag>` only
    # when there is one, so a digest-pinned reference stays intact
    image = {"image": {"name": config.image, "tag": None}} if config.image else {}
    return {
        "hub": {
            **core,
            "config": {
                **auth["config"],
                # what the chart has no singleuser key for: the restricted shape, and no Kubernetes API token in
                # a notebook (the cloud identity comes from the projected web identity token or the metadata
                # server, neither of which needs it)
                "KubeSpawner": {
                    "pod_security_context": {**RESTRICTED_POD, "fsGroup": NOTEBOOK_GID},
                    "container_security_context": {**RESTRICTED_CONTAINER, "runAsUser": NOTEBOOK_UID},
                    "automount_service_account_token": False,
                },
            },
            # the hub's state in its database on the platform PostgreSQL (zone-redundant in prod, so the one hub
            # restarts in any zone; a sqlite-pvc volume would pin it to its zone). An empty URL: libpq takes the
            # server, user, password and TLS from the PG* variables (psycopg2 is in the hub image:
            # images/hub/requirements.txt @ 4.4.0), exactly as the database's other clients do. `upgrade`:
            # JupyterHub refuses to start on an older schema otherwise (a chart upgrade that moves JupyterHub's
            # schema migrates once, at the hub's start; the managed database has its own backups).
            "db": {"type": "postgres", "url": HUB_DB_URL, "upgrade": True},
            "extraEnv": {**auth["extraEnv"], **env_values(libpq_env(database_secret, postgres))},
            "extraConfig": auth["extraConfig"],
            "extraVolumes": db_volumes,
            "extraVolumeMounts": db_mounts,
            "resources": placement.resources("100m", "512Mi", "1Gi", small=("50m", "256Mi")),
            "networkPolicy": {"enabled": False},
        },
        "proxy": {
            "service": {"type": "ClusterIP"},
            "chp": {
                **core,
                "resources": placement.resources("50m", "128Mi", "512Mi", small=("20m", "64Mi")),
                "networkPolicy": {"enabled": False},
            },
            "traefik": {"networkPolicy": {"enabled": False}},
        },
        "singleuser": {
            **image,
            "uid": NOTEBOOK_UID,
            "fsGid": NOTEBOOK_GID,
            "serviceAccountName": service_account,
            "cloudMetadata": {"blockWithIptables": False},
            "networkPolicy": {"enabled": False},
            "startTimeout": START_TIMEOUT_SECONDS,
            "extraEnv": clients.env(),
            "storage": {
                "type": "dynamic",
                "capacity": f"{config.storage_gb}Gi",
                "homeMountPath": HOME,
                "dynamic": {"storageClass": storage_class},
                "extraVolumes": volumes,
                "extraVolumeMounts": mounts,
            },
            # the CPU profile's size is also the default's (before a profile is chosen)
            "cpu": {"guarantee": config.cpu.cpu_guarantee, "limit": config.cpu.cpu_limit},
            "memory": {"guarantee": _gb(config.cpu.memory_guarantee_gb), "limit": _gb(config.cpu.memory_limit_gb)},
            "nodeSelector": placement.pool.node_selector(),
            "profileList": profiles(placement.pool, gpu_pools, config),
        },
        "scheduling": {
            "userScheduler": {"enabled": False},
            "userPlaceholder": {"enabled": False},
            "podPriority": {"enabled": False},
        },
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "cull": {
            "enabled": True,
            "timeout": config.cull_idle_minutes * 60,
            "every": CULL_EVERY_SECONDS,
            "maxAge": config.cull_max_age_hours * 3600,
            "users": False,
            "adminUsers": True,
        },
    }


@dataclass(frozen=True)
class JupyterHubArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity
    clients: NotebookClients
    cpu_pool: NodePoolContract
    gpu_pools: tuple[NodePoolContract, ...]
    storage_class: str
    postgres: PostgresEndpoint
    pin: ChartPin
    cfg: PlatformConfig
    provider: k8s.Provider


@dataclass(frozen=True)
class JupyterHubOutputs:
    proxy: ServiceEndpoint  # what the ingress gateway routes jupyter.<domain> to
    url: str | None  # https://jupyter.<domain>; None without a domain (port-forward to `proxy`)
    admin_secret: str | None  # the Secret with the `admin` password, when there is no single sign-on


class JupyterHub(pulumi.ComponentResource):
    """The notebook identity's service account, the clients' ConfigMap, the sign-in Secret and the chart."""

    outputs: JupyterHubOutputs

    def __init__(self, name: str, args: JupyterHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:client:JupyterHub", name, None, opts)
        cfg, config, ns = args.cfg, args.cfg.services.jupyterhub, args.namespace
        host = cfg.client.host(UI_LABEL)
        admin_secret: str | None = None
        if config.enabled:
            account = identity_service_account(self, f"{name}-service-account", args.identity, ns)
            requirements = client_requirements(args.clients.object_store)
            clients = config_map(self, f"{name}-clients", CLIENTS_CONFIG_MAP, ns, {"requirements.txt": requirements})
            pg = args.postgres
            db = database_secret(self, f"{name}-db-secret", ns, pg, "jupyterhub")
            ca = database_ca(self, f"{name}-db-ca", "jupyterhub-postgres-ca", ns, pg)
            if cfg.client.sso is not None and host is not None:
                secret = sso_client_secret(self, f"{name}-sso", ns, cfg, args.provider, secret_name=SSO_SECRET)
            else:
                password = generated_secret(self, f"{name}-admin-password", length=48)
                secret = opaque_secret(self, f"{name}-admin", ADMIN_SECRET, ns, {ADMIN_PASSWORD_KEY: password})
                admin_secret = ADMIN_SECRET
            values = jupyterhub_values(
                cfg=cfg,
                config=config,
                placement=Placement(args.cpu_pool, spread=False, small=cfg.services.sizing is Sizing.SMALL),
                gpu_pools=args.gpu_pools,
                storage_class=args.storage_class,
                clients=replace(args.clients, identity_env=tuple(args.identity.env)),
                clients_config_map=clients.metadata.name,
                auth_secret=secret.metadata.name,
                service_account=account.metadata.name,
                postgres=pg,
                database_secret=db.metadata.name,
                database_ca_config_map=ca.metadata.name if ca is not None else None,
            )
            pinned_release(
                self,
                name,
                args.pin,
                ns.metadata.name,
                values,
                args.provider,
                timeout_seconds=600,
                release_name=RELEASE,
                depends_on=[account, clients, secret, db, *([ca] if ca else []), *pg.ready, *args.clients.feast.ready],
            )
        self.outputs = JupyterHubOutputs(PROXY, f"https://{host}" if host else None, admin_secret)
        self.register_outputs({"url": self.outputs.url, "proxy": PROXY.url})


def notebook_labels() -> Mapping[str, str]:
    """The labels KubeSpawner gives every single-user pod (files/hub/jupyterhub_config.py common_labels and
    the chart's singleuser.extraLabels default), for the connection checks."""
    return {
        "app.kubernetes.io/name": "jupyterhub",
        "app": "jupyterhub",
        "app.kubernetes.io/instance": RELEASE,
        "release": RELEASE,
        "component": "singleuser-server",
        "hub.jupyter.org/network-access-hub": "true",
    }
