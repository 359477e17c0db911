"""kube-prometheus-stack 88.5.3: the Prometheus operator, Prometheus v3, Alertmanager, Grafana (the chart's
own grafana-community subchart, 12.11.1: one release wires its data sources and dashboard sidecar to this
Prometheus and Alertmanager), kube-state-metrics, and node-exporter in `monitoring-agents` (host network
and PID need the privileged level; `monitoring` stays restricted). The platform's alert rules
(components/observability/alerts.py) are a PrometheusRule beside it.

helm.v3.Release: the chart ships the operator's CRDs (in its crds subchart's crds/ directory, which Helm
keeps on uninstall) and patches its admission webhook's certificate with pre/post-install hook Jobs.
Prometheus selects every ServiceMonitor, PodMonitor and PrometheusRule in the cluster, not only the
release's own, so each service's monitor can live next to the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import POOL_LABEL, Namespace, PostgresEndpoint
from components.guardrails import PROMETHEUS_QUERY, SCRAPES, ScrapeTarget
from components.kube import (
    PART_OF,
    POSTGRES_CA_DIR,
    POSTGRES_CA_FILE,
    database_ca,
    database_secret,
    opaque_secret,
    pinned_release,
    spread_affinity,
)
from components.observability.alerts import alertmanager_config, rule_groups
from components.observability.dashboards import DASHBOARDS, LOKI_UID
from components.observability.grafana_oidc import signed_on
from components.placement import Placement
from components.secrets import generated_secret
from components.sign_on import SignOn
from mlplatform.config import PrometheusConfig
from mlplatform.pins import ChartPin

RELEASE = "kube-prometheus-stack"
# Prometheus' query API (components/guardrails.py), the chart's `<release>-prometheus` Service
ENDPOINT = PROMETHEUS_QUERY
assert ENDPOINT.name == f"{RELEASE}-prometheus"
COREDNS_METRICS_PORT = 9153  # the chart's coreDns.service.port (values.yaml)
MODEL_CONTAINER = "kserve-container"  # the model server's container in every KServe predictor pod
DASHBOARD_LABEL = ("grafana_dashboard", "1")  # what Grafana's dashboard sidecar loads
GRAFANA_USER = "admin"
GRAFANA_DATABASE = "grafana"  # its role and database in the platform's PostgreSQL (components/data/credentials.py)
# What Grafana's sidecars may read: ConfigMaps in `monitoring` only (the chart's own Role would add Secrets)
GRAFANA_SIDECAR_ROLE = f"{RELEASE}-grafana-sidecar"
GRAFANA_SSO_SECRET = "grafana-sso"  # the OIDC client's id and secret, with a domain (components/sign_on.py)


@dataclass(frozen=True)
class PrometheusArgs:
    namespace: k8s.core.v1.Namespace
    pin: ChartPin
    config: PrometheusConfig
    storage_class: str
    placement: Placement
    provider: k8s.Provider
    loki_url: str  # Grafana's Loki data source
    postgres: PostgresEndpoint  # Grafana's database
    # the cluster DNS's metrics port (ClusterNetwork.dns_metrics_port): the chart's coreDns monitor only
    # where the DNS serves one (EKS's CoreDNS 9153; GKE's kube-dns serves none, the target would be down)
    dns_metrics_port: int | None = None
    # Grafana's own OIDC login when the stack exposes its UIs (components/observability/grafana_oidc.py)
    sign_on: SignOn | None = None


@dataclass(frozen=True)
class PrometheusOutputs:
    grafana_admin_secret: pulumi.Output[str]  # keys admin-user, admin-password
    grafana_url: str
    prometheus_url: str


def _volume(storage_class: str, size_gb: int) -> dict[str, object]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gb}Gi"}},
            }
        }
    }


def grafana_database(
    postgres: PostgresEndpoint,
    secret: pulumi.Input[str],
    ca_config_map: pulumi.Input[str] | None = None,
    alerting: dict[str, object] | None = None,
) -> dict[str, object]:
    """Grafana on its own PostgreSQL database instead of the SQLite file each pod would keep in its own
    emptyDir: users, sessions (a login is a row in user_auth_token), dashboards saved in the UI and alerting
    state are then the same on every replica and survive restarts (grafana.com docs, "Set up Grafana for
    high availability": every instance on one shared MySQL or PostgreSQL database). Where and how it
    connects in grafana.ini, as MLflow's chart takes host and database; who it connects as from the
    `grafana-postgres` Secret (components/kube.py database_secret) through GF_DATABASE_* variables, which
    override grafana.ini (Grafana's configuration docs, "Override configuration with environment
    variables"), so no password is in the values. TLS as the other services connect: Grafana hands
    ssl_mode and ca_cert_path to its PostgreSQL driver as libpq's sslmode and sslrootcert
    (pkg/services/sqlstore/database_config.go `buildConnectionString`), the CA mounted from the
    `grafana-postgres-ca` ConfigMap (the chart's extraConfigmapMounts)."""
    cred = postgres.databases[GRAFANA_DATABASE]
    host = pulumi.Output.concat(postgres.host, ":", postgres.port.apply(lambda p: str(int(p))))

    def from_secret(key: str) -> dict[str, object]:
        return {"secretKeyRef": {"name": secret, "key": key}}

    database: dict[str, object] = {
        "type": "postgres",
        "host": host,
        "name": cred.database,
        "ssl_mode": postgres.ssl_mode,
    }
    mounts: list[dict[str, object]] = []
    if ca_config_map is not None:
        database["ca_cert_path"] = POSTGRES_CA_FILE
        mounts.append(
            {"name": "postgres-ca", "mountPath": POSTGRES_CA_DIR, "configMap": ca_config_map, "readOnly": True}
        )
    return {
        "grafana.ini": {"database": database, **({"unified_alerting": alerting} if alerting else {})},
        "envValueFrom": {"GF_DATABASE_USER": from_secret("username"), "GF_DATABASE_PASSWORD": from_secret("password")},
        "extraConfigmapMounts": mounts,
    }


GRAFANA_GOSSIP_PORT = 9094  # the grafana chart's gossip container port and headless Service port


def grafana_alerting_ha(replicas: int) -> dict[str, object]:
    """Replicated Grafana's alerting as one: without peers each replica runs its own alert scheduler and
    Alertmanager, so a Grafana-managed rule notifies once per replica. The replicas find each other through
    the chart's headless Service (templates/headless-service.yaml, port 9094, the pods' gossip port) and
    gossip on their pod IP (the chart sets POD_IP in every Grafana container; Grafana expands ${VAR} in its
    configuration), as Grafana's "Configure high availability" documents for Kubernetes."""
    if replicas < 2:
        return {}
    own = f"${{POD_IP}}:{GRAFANA_GOSSIP_PORT}"
    peers = f"{RELEASE}-grafana-headless.{Namespace.MONITORING.value}.svc.cluster.local:{GRAFANA_GOSSIP_PORT}"
    return {"enabled": True, "ha_peers": peers, "ha_listen_address": own, "ha_advertise_address": own}


def grafana_sidecars(placement: Placement) -> dict[str, object]:
    """The dashboard and data source sidecars read ConfigMaps in `monitoring` only, where every dashboard and
    the data sources are (the platform's own and the chart's). The chart's default lists ConfigMaps and
    Secrets in every namespace through a ClusterRole (kube-prometheus-stack sets searchNamespace: ALL; grafana
    chart templates/clusterrole.yaml); with `rbac.namespaced` its binding is a RoleBinding in `monitoring`
    (templates/rolebinding.yaml) to the platform's Role, which grants ConfigMaps only (the chart's Role,
    templates/role.yaml, would grant Secrets too)."""
    only_configmaps = {"resource": "configmap"}
    return {
        "rbac": {"namespaced": True, "useExistingRole": GRAFANA_SIDECAR_ROLE},
        "sidecar": {
            "resources": placement.resources("10m", "64Mi", "256Mi"),
            "dashboards": {
                "label": DASHBOARD_LABEL[0],
                "labelValue": DASHBOARD_LABEL[1],
                "searchNamespace": [Namespace.MONITORING.value],
                **only_configmaps,
            },
            "datasources": only_configmaps,  # no searchNamespace: its own namespace
        },
    }


def stack_values(
    args: PrometheusArgs,
    admin_secret: pulumi.Input[str],
    db_secret: pulumi.Input[str],
    db_ca: pulumi.Input[str] | None = None,
) -> dict[str, object]:
    cfg, placement = args.config, args.placement
    replicas = cfg.replicas
    where = {"nodeSelector": placement.node_selector, "tolerations": placement.tolerations}
    # preferred zone anti-affinity for the replicas (the operator's soft podAntiAffinity is per host only)
    spread = "soft"
    return {
        "crds": {"enabled": True},
        # managed control planes: etcd, the controller manager and the scheduler are not reachable, and
        # kube-proxy's metrics listen on the node's loopback
        "kubeEtcd": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        # the chart's CoreDNS monitor scrapes k8s-app=kube-dns in kube-system on 9153
        "coreDns": {"enabled": args.dns_metrics_port == COREDNS_METRICS_PORT},
        "prometheusOperator": {
            **where,
            "resources": placement.resources("100m", "128Mi", "512Mi", small=("50m", "128Mi")),
            "admissionWebhooks": {"patch": {**where, "resources": placement.resources("10m", "32Mi", "128Mi")}},
        },
        "prometheus": {
            "podDisruptionBudget": {"enabled": replicas > 1, "minAvailable": 1},
            "prometheusSpec": {
                **where,
                "replicas": replicas,
                "retention": cfg.retention,
                "retentionSize": f"{cfg.retention_size_gb}GB",
                "storageSpec": _volume(args.storage_class, cfg.storage_gb),
                # Knative >= 1.19 can push request metrics as OpenTelemetry
                "enableOTLPReceiver": True,
                "podAntiAffinity": spread,
                "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
                "resources": placement.resources("500m", "2Gi", "8Gi", small=("100m", "512Mi")),
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            },
        },
        "alertmanager": {
            "podDisruptionBudget": {"enabled": replicas > 1, "minAvailable": 1},
            "config": alertmanager_config(cfg.alert_receiver),
            "alertmanagerSpec": {
                **where,
                # the receiver's Secret (created by you in `monitoring`), mounted under SECRETS_DIR
                "secrets": [cfg.alert_receiver.secret_name] if cfg.alert_receiver else [],
                "replicas": replicas,
                "storage": _volume(args.storage_class, 5),
                "podAntiAffinity": spread,
                "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
                "resources": placement.resources("50m", "128Mi", "256Mi"),
            },
        },
        "grafana": {
            **where,
            "replicas": replicas,
            # credentials from a Secret the program makes, never from values (the chart would otherwise
            # generate one into its own Secret)
            "admin": {"existingSecret": admin_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "resources": placement.resources("100m", "256Mi", "512Mi", small=("50m", "192Mi")),
            **signed_on(
                grafana_database(args.postgres, db_secret, db_ca, alerting=grafana_alerting_ha(replicas)),
                args.sign_on,
                GRAFANA_SSO_SECRET,
            ),
            "headlessService": replicas > 1,  # the alerting peers' discovery (grafana_alerting_ha)
            # a drain keeps one replica serving (the HA table: a budget for every replicated workload)
            "podDisruptionBudget": {"maxUnavailable": 1} if replicas > 1 else {},
            # the dashboard and data source sidecars watch ConfigMaps: a few tens of MiB. Dashboards are the
            # ConfigMaps labelled like the platform's own (components/observability/dashboards.py).
            **grafana_sidecars(placement),
            # Prometheus (uid prometheus) and Alertmanager (uid alertmanager) come from the chart; Loki here
            "additionalDataSources": [
                {"name": "Loki", "type": "loki", "uid": LOKI_UID, "url": args.loki_url, "access": "proxy"}
            ],
            # the chart's `helm test` pod runs as root without a seccomp profile; tests are not run here
            "testFramework": {"enabled": False},
            "affinity": spread_affinity("grafana") if placement.spread else {},
        },
        "kube-state-metrics": {
            **where,
            "resources": placement.resources("50m", "128Mi", "512Mi"),
            # kube_node_labels carries the pool label, so dashboards can group GPU metrics per pool
            "metricLabelsAllowlist": [f"nodes=[{POOL_LABEL}]"],
        },
        "prometheus-node-exporter": {
            "namespaceOverride": Namespace.MONITORING_AGENTS.value,
            # on every node, GPU nodes included
            "tolerations": [{"operator": "Exists"}],
            "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        },
    }


def pod_label_relabelings(labels: Mapping[str, str]) -> list[dict[str, object]]:
    """Relabelings copying pod labels (key -> target label name) from Kubernetes SD's
    `__meta_kubernetes_pod_label_<key with non-alphanumerics as _>` onto the target."""
    return [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)],
            "targetLabel": name,
            "action": "replace",
        }
        for key, name in labels.items()
    ]


def monitor(target: ScrapeTarget) -> tuple[str, dict[str, object]]:
    """A scrape target of the flow table as a PodMonitor (or a ServiceMonitor when only a Service declares
    the port): the same namespace, labels and port the NetworkPolicy admits (components/guardrails.py
    SCRAPES), so the scrape and its permission agree."""
    endpoint: dict[str, object] = {"port": target.port, "path": target.path, "interval": "30s"}
    if target.annotated:
        # no port filter: one target per declared container port; keep the model container's (its one
        # declared port) on pods annotated with this metrics port, and scrape the pod's address on it (the
        # PodMonitor CRD's own advice for an undeclared port: relabel __address__)
        annotation = "__meta_kubernetes_pod_annotation_prometheus_kserve_io_port"
        endpoint = {
            "path": target.path,
            "interval": "30s",
            "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "regex": MODEL_CONTAINER, "action": "keep"},
                {"sourceLabels": [annotation], "regex": str(target.number), "action": "keep"},
                {
                    "sourceLabels": ["__meta_kubernetes_pod_ip"],
                    "regex": "(.+)",
                    "replacement": f"$1:{target.number}",
                    "targetLabel": "__address__",
                },
            ],
        }
    if target.pod_target_labels:
        # the pod's labels onto every series of the target (prometheus-operator adds an endpoint's
        # relabelings after its own namespace/pod/container/job/endpoint ones: promcfg.go)
        relabelings = endpoint.get("relabelings", [])
        assert isinstance(relabelings, list)
        endpoint["relabelings"] = relabelings + pod_label_relabelings(target.pod_target_labels)
    if target.honor_labels:
        endpoint["honorLabels"] = True
    if target.authenticated:
        endpoint |= {
            "scheme": "https",
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            # kube-rbac-proxy serves a self-signed certificate it generates at start
            "tlsConfig": {"insecureSkipVerify": True},
        }
    namespaces = {"matchNames": [target.namespace.value]}
    if target.service is not None:
        return "ServiceMonitor", {
            "namespaceSelector": namespaces,
            "selector": {"matchLabels": dict(target.service)},
            "endpoints": [endpoint],
        }
    return "PodMonitor", {
        "namespaceSelector": namespaces,
        "selector": {"matchLabels": dict(target.selector)},
        "podMetricsEndpoints": [endpoint],
    }


class Prometheus(pulumi.ComponentResource):
    outputs: PrometheusOutputs

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Prometheus", name, None, opts)
        ns = args.namespace
        admin = opaque_secret(
            self,
            f"{name}-grafana-admin",
            "grafana-admin",
            ns,
            {"admin-user": GRAFANA_USER, "admin-password": generated_secret(self, f"{name}-grafana-password")},
        )
        database = database_secret(self, f"{name}-grafana-db-secret", ns, args.postgres, GRAFANA_DATABASE)
        ca = database_ca(self, f"{name}-grafana-db-ca", f"{GRAFANA_DATABASE}-postgres-ca", ns, args.postgres)
        sso = [args.sign_on.client_secret(self, f"{name}-grafana-sso", ns, GRAFANA_SSO_SECRET)] if args.sign_on else []
        sidecar_role = k8s.rbac.v1.Role(
            f"{name}-grafana-sidecar-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_SIDECAR_ROLE, namespace=ns.metadata.name, labels=PART_OF),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"])
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        release = pinned_release(
            self,
            name,
            args.pin,
            ns.metadata.name,
            stack_values(
                args, admin.metadata.name, database.metadata.name, ca.metadata.name if ca is not None else None
            ),
            args.provider,
            release_name=RELEASE,
            # several Deployments and two StatefulSets whose volumes bind on a CPU pool node that may not
            # exist yet (~3 min), plus the webhook patch Jobs
            timeout_seconds=900,
            # Grafana migrates its database at start: after its role and database exist
            depends_on=[admin, database, *([ca] if ca is not None else []), sidecar_role, *sso, *args.postgres.ready],
        )
        k8s.apiextensions.CustomResource(
            f"{name}-platform-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlplatform-alerts", namespace=ns.metadata.name, labels=PART_OF),
            spec={"groups": rule_groups(args.config.alerts)},
            # after the release: its CRDs, and the operator's webhook that validates rules
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
        )
        for target in SCRAPES:
            kind, spec = monitor(target)
            k8s.apiextensions.CustomResource(
                f"{name}-scrape-{target.name}",
                api_version="monitoring.coreos.com/v1",
                kind=kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=target.name, namespace=ns.metadata.name, labels=PART_OF),
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
            )
        for dashboard in DASHBOARDS:
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard.uid}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"dashboard-{dashboard.uid}",
                    namespace=ns.metadata.name,
                    labels={**PART_OF, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]},
                ),
                data={f"{dashboard.uid}.json": json.dumps(dashboard.model(), indent=1)},
                opts=pulumi.ResourceOptions(parent=self),
            )
        namespace = Namespace.MONITORING.value
        self.outputs = PrometheusOutputs(
            grafana_admin_secret=admin.metadata.name,
            grafana_url=f"http://{RELEASE}-grafana.{namespace}.svc.cluster.local:80",
            prometheus_url=ENDPOINT.url,
        )
        self.register_outputs({"grafanaUrl": self.outputs.grafana_url})
