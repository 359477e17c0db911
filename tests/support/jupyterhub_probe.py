"""Runs inside .venv-jupyterhub (JupyterHub 5.5.0, KubeSpawner 7.0.0, OAuthenticator 17.4.0: the pinned hub
image's versions) and loads the program's JupyterHub values into the real classes.

stdin: JSON {"values": <the release's values>, "profiles": [slug, ...], "env": {...}, "login": [[user, pw]],
"init_db": bool}. stdout: JSON {"pods": {slug: pod manifest in API shape}, "warnings": [...], "authenticator":
{...}, "logins": [...], "tables": [the hub database's tables, with init_db]}.

How the chart turns values into the hub's traitlets config is its files/hub/jupyterhub_config.py (z2jh 4.4.0):
the `singleuser.*` keys below become KubeSpawner traits (its `set_config_if_not_none` table, the storage and
image blocks, the chart's defaults for keys the program leaves alone), then every `hub.config` section is
loaded as is (`c[section].update(cfg)`) and every `hub.extraConfig` snippet is executed. Only the keys the
program sets are translated here; anything else it set would be reported as unknown by the values-key check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

from traitlets.config import Config

# the chart's defaults for single-user keys the program does not set (values.yaml @ 4.4.0)
CHART_EXTRA_LABELS = {"hub.jupyter.org/network-access-hub": "true"}
CHART_USER_TOLERATIONS = [
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
]
SAMPLE_IMAGE = "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"  # chartpress sets the tag at release
RELEASE = "jupyterhub"


def hub_config(values: dict[str, Any]) -> Config:
    su, c = values["singleuser"], Config()
    ks = c.KubeSpawner
    ks.common_labels = {
        "app.kubernetes.io/name": "jupyterhub",
        "app": "jupyterhub",
        "app.kubernetes.io/instance": RELEASE,
        "release": RELEASE,
        "app.kubernetes.io/managed-by": "kubespawner",
    }
    ks.namespace = "mlplatform"
    for trait, key in (
        ("start_timeout", "startTimeout"),
        ("uid", "uid"),
        ("fs_gid", "fsGid"),
        ("service_account", "serviceAccountName"),
        ("node_selector", "nodeSelector"),
        ("environment", "extraEnv"),
        ("profile_list", "profileList"),
    ):
        if su.get(key) is not None:
            ks[trait] = su[key]
    ks.extra_labels = CHART_EXTRA_LABELS
    ks.mem_guarantee, ks.mem_limit = su["memory"]["guarantee"], su["memory"]["limit"]
    ks.cpu_guarantee, ks.cpu_limit = su["cpu"]["guarantee"], su["cpu"]["limit"]
    image = su.get("image") or {}
    ks.image = (f"{image['name']}:{image['tag']}" if image.get("tag") else image["name"]) if image else SAMPLE_IMAGE
    ks.allow_privilege_escalation = False
    ks.tolerations = CHART_USER_TOLERATIONS + su.get("extraTolerations", [])
    # scheduling.userPods.nodeAffinity.matchNodePurpose: prefer (the chart's default)
    purpose = {"matchExpressions": [{"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}
    ks.node_affinity_preferred = [{"weight": 100, "preference": purpose}]
    storage = su["storage"]
    assert storage["type"] == "dynamic"
    ks.storage_pvc_ensure = True
    ks.storage_class = storage["dynamic"]["storageClass"]
    ks.storage_capacity = storage["capacity"]
    volumes = {
        "volume-{user_server}": {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    }
    home = {"mountPath": storage["homeMountPath"], "name": "volume-{user_server}", "subPath": None}
    mounts = {"volume-{user_server}": home}
    volumes |= {v["name"]: v for v in storage.get("extraVolumes") or []}
    mounts |= {f"{i}-{m['name']}": m for i, m in enumerate(storage.get("extraVolumeMounts") or [])}
    ks.volumes, ks.volume_mounts = volumes, mounts
    db = values["hub"]["db"]
    if db["type"] in ("postgres", "mysql"):  # `--upgrade-db` on the hub's command line when hub.db.upgrade
        c.JupyterHub.db_url, c.JupyterHub.upgrade_db = db["url"], bool(db.get("upgrade"))
    if values.get("cull", {}).get("enabled"):
        c.JupyterHub.services = [
            {"name": "jupyterhub-idle-culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]}
        ]
    for section, cfg in values["hub"].get("config", {}).items():
        assert section[:1].isupper(), section
        c[section].update(cfg)
    for _, snippet in sorted(values["hub"].get("extraConfig", {}).items()):
        exec(snippet, {"c": c})
    return c


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# KubeSpawner loads a Kubernetes client configuration when constructed; building a pod manifest needs no API
KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: probe
clusters: [{name: probe, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: probe, user: {token: probe}}]
contexts: [{name: probe, context: {cluster: probe, user: probe}}]
"""


async def main() -> dict[str, Any]:
    import tempfile

    kubeconfig = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
    kubeconfig.write(KUBECONFIG)
    kubeconfig.close()
    os.environ["KUBECONFIG"] = kubeconfig.name
    from jupyterhub.app import JupyterHub
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    request = json.load(sys.stdin)
    os.environ.update(request.get("env", {}))
    values = request["values"]
    c = hub_config(values)
    collect = Collect()
    log = logging.getLogger("probe")
    log.addHandler(collect)

    # the hub application itself: its own traits and the authenticator class it resolves by entry point name
    app = JupyterHub(config=c, log=log)
    authenticator_class = app.authenticator_class
    authenticator = authenticator_class(config=c, log=log)
    result: dict[str, Any] = {"authenticator": {"class": authenticator_class.__name__}, "pods": {}}
    for trait in ("authorize_url", "token_url", "userdata_url", "oauth_callback_url", "client_id",
                  "auth_state_groups_key", "username_claim", "scope"):  # fmt: skip
        if authenticator.has_trait(trait):
            result["authenticator"][trait] = getattr(authenticator, trait)
    for trait in ("admin_groups", "allowed_groups", "admin_users"):
        if authenticator.has_trait(trait):
            result["authenticator"][trait] = sorted(getattr(authenticator, trait))
    result["authenticator"]["client_secret_set"] = bool(getattr(authenticator, "client_secret", ""))
    logins = []
    for user, password in request.get("login", []):
        got = await authenticator.authenticate(None, {"username": user, "password": password})
        logins.append(got)
    result["logins"] = logins
    if request.get("init_db"):
        # what the hub does at start: upgrade (or create) its schema, then connect
        import sqlalchemy

        app.init_db()
        result["tables"] = sorted(sqlalchemy.inspect(app.db.get_bind()).get_table_names())

    api = ApiClient()
    for slug in request["profiles"]:
        spawner = KubeSpawner(_mock=True, config=c, log=log)
        spawner.user_options = {"profile": slug}
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        result["pods"][slug] = api.sanitize_for_serialization(pod)
    await api.close()
    result["warnings"] = collect.messages
    return result


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
