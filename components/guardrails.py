"""Guard rails every platform namespace gets: Pod Security admission labels and NetworkPolicies.

Each namespace denies all ingress and egress by default; the allows below follow the design's arrows and
are the only way traffic crosses a namespace boundary. A flow is declared once and becomes both the
receiving namespace's ingress rule and each sender's egress rule, so the two sides cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import (
    GPU_RESOURCE,
    WEBHOOK_PORTS,
    ClusterNetwork,
    Namespace,
    NodePoolContract,
    ServiceEndpoint,
)

NAME_LABEL = "app.kubernetes.io/name"
NS_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
# A pod carrying this label accepts only its flows: its namespace's baseline (same-namespace traffic on every
# port) leaves it out. For a server that listens on more than the port its flow names, unauthenticated
# (SeaweedFS's `weed mini`: master, volume, filer and admin beside the S3 gateway, all on one bind address,
# weed/command/mini.go @ 4.44).
FLOWS_ONLY = {"mlplatform.io/ingress": "flows-only"}

# Pod Security Standard enforced per namespace. training runs Ray images (root-less, but KubeRay sets no
# seccomp profile), so it relaxes to baseline. Agents that need the host (node-exporter: host network and
# PID) run in monitoring-agents, the only privileged namespace; Prometheus, Alertmanager and Grafana in
# monitoring stay restricted. The
# serving system namespaces run only the charts' and operators' pods, which `render` checks at restricted:
# cert-manager, istiod and the gateway (given a seccomp profile; its only sysctl, the unprivileged port
# start, is allowed at every level), the Knative and KServe controllers. model-serving runs InferenceService
# pods: Knative's secure-pod-defaults give their containers the restricted shape, and the storage-initializer
# KServe injects gets it from the ClusterStorageContainer (components/serving/kserve.py).
POD_SECURITY: Mapping[Namespace, str] = {
    Namespace.PLATFORM: "restricted",
    Namespace.SERVING: "restricted",
    Namespace.DATA: "restricted",
    Namespace.TRAINING: "baseline",
    Namespace.MONITORING: "restricted",
    Namespace.MONITORING_AGENTS: "privileged",
    Namespace.CERT_MANAGER: "restricted",
    Namespace.ISTIO: "restricted",
    Namespace.KNATIVE: "restricted",
    Namespace.KNATIVE_OPERATOR: "restricted",
    Namespace.KSERVE: "restricted",
    # the Flink operator (chart pods given the restricted shape, components/streaming/operator.py) and the
    # Flink jobs it runs (pod template with the restricted shape, components/streaming/job.py)
    Namespace.FLINK_OPERATOR: "restricted",
    Namespace.STREAMING: "restricted",
}


@dataclass(frozen=True)
class Flow:
    """Pods named `app` (or matching `selector`; every pod when both are None) in `to` accept TCP `port`
    from every pod in the `sources` namespaces, and from outside the cluster when `from_anywhere`."""

    name: str
    to: Namespace
    app: str | None
    port: int
    sources: tuple[Namespace, ...]
    from_anywhere: bool = False  # a load balancer's clients (and its health checks)
    selector: Mapping[str, str] | None = None  # when the name label is shared by several components
    # who opens the port when no chart declares it (a listener configured at run time); `render` then
    # cannot see it in the pods and says so instead of failing
    opened_by: str | None = None
    # only these pods of the source namespaces may connect (by label), when not every pod there should
    source_pods: Mapping[str, str] | None = None

    @property
    def pod_labels(self) -> dict[str, str]:
        if self.selector is not None:
            return dict(self.selector)
        return {NAME_LABEL: self.app} if self.app else {}


MLFLOW_PORT, FEATURE_SERVER_PORT, RAY_DASHBOARD_PORT, RAY_CLIENT_PORT = 5000, 6566, 8265, 10001
# every pod the Airflow chart makes (scheduler, API server, triggerer, DAG processor, KubernetesExecutor
# workers) carries these (its templates' `tier: airflow` and `release: <release>`; the release is `airflow`)
AIRFLOW_PODS = {"tier": "airflow", "release": "airflow"}
FEATURE_SERVER_METRICS_PORT = 8000
INGRESS_GATEWAY_APP = "istio-ingressgateway"  # the gateway release's name and its pods' name label
GATEWAY_HTTP_PORT, GATEWAY_HTTPS_PORT, GATEWAY_STATUS_PORT, LOCAL_GATEWAY_PORT = 80, 443, 15021, 8081
# Knative's queue-proxy (and the activator): HTTP/1, h2c, and the autoscaler's statistics endpoint
QUEUE_HTTP_PORT, QUEUE_H2C_PORT, QUEUE_AUTOSCALING_PORT = 8012, 8013, 9090
RAW_MODEL_PORT = 8080  # the model container's port in Standard mode (KServe's default container port)
# where the model servers serve Prometheus metrics (their runtimes' prometheus.kserve.io/port): MLServer's
# metrics_port default (mlserver/settings.py) and Triton's --metrics-port (components/serving/kserve.py)
MLSERVER_METRICS_PORT, TRITON_METRICS_PORT = 8082, 8002

FLOWS: tuple[Flow, ...] = (
    # everything that trains, orchestrates or serves logs to / loads from MLflow tracking and the registry
    Flow(
        "mlflow", Namespace.PLATFORM, "mlflow", MLFLOW_PORT, (Namespace.PLATFORM, Namespace.TRAINING, Namespace.SERVING)
    ),
    # online features in the request path, and for Airflow's checks
    Flow(
        "feature-server",
        Namespace.PLATFORM,
        "feast-feature-server",
        FEATURE_SERVER_PORT,
        # streaming: the Flink job POSTs micro-batches to /push (components/streaming)
        (Namespace.SERVING, Namespace.PLATFORM, Namespace.STREAMING),
    ),
    # Airflow submits and watches Ray jobs on the head node
    # Ray's job API and client port run whatever code they are sent, as the training identity: from
    # Airflow's pods only, not from every service in `mlplatform` (MLflow, the feature server)
    Flow(
        "ray-jobs", Namespace.TRAINING, "kuberay", RAY_DASHBOARD_PORT, (Namespace.PLATFORM,), source_pods=AIRFLOW_PODS
    ),
    Flow("ray-client", Namespace.TRAINING, "kuberay", RAY_CLIENT_PORT, (Namespace.PLATFORM,), source_pods=AIRFLOW_PODS),
    # inference requests enter through the Istio ingress gateway (its pods listen on 80/443 themselves;
    # 15021 answers the load balancer's health checks). By address: the load balancer keeps the client's
    # (externalTrafficPolicy Local on GKE) or connects from its own VPC addresses (EKS NLB, IP targets).
    *(
        Flow(f"gateway-{port}", Namespace.ISTIO, INGRESS_GATEWAY_APP, port, (), from_anywhere=True)
        for port in (GATEWAY_HTTP_PORT, GATEWAY_HTTPS_PORT, GATEWAY_STATUS_PORT)
    ),
    # net-istio's controller probes every gateway pod on the target port of the Service port its Gateway
    # serves (knative-ingress-gateway: HTTP 80 -> 80) before it marks a route Ready
    # (knative-extensions/net-istio pkg/reconciler/ingress/lister.go, listGatewayTargets). An in-cluster
    # peer, so by selector: under Dataplane V2 the ipBlock of the rule above never matches a pod.
    Flow("gateway-probe", Namespace.ISTIO, INGRESS_GATEWAY_APP, GATEWAY_HTTP_PORT, (Namespace.KNATIVE,)),
    # cluster-local calls to InferenceServices go through Knative's local gateway (the same pods, port 8081)
    Flow(
        "local-gateway",
        Namespace.ISTIO,
        INGRESS_GATEWAY_APP,
        LOCAL_GATEWAY_PORT,
        (Namespace.SERVING, Namespace.PLATFORM, Namespace.TRAINING),
        opened_by="net-istio's knative-local-gateway Gateway, configured by the KnativeServing resource",
    ),
    # the gateway sends requests to Knative's activator (a revision scaled to zero or buffering) ...
    *(
        Flow(f"activator-{port}", Namespace.KNATIVE, None, port, (Namespace.ISTIO,), selector={"app": "activator"})
        for port in (QUEUE_HTTP_PORT, QUEUE_H2C_PORT)
    ),
    # ... or straight to the model pods' queue-proxy; the activator forwards there too
    *(
        Flow(f"model-{port}", Namespace.SERVING, None, port, (Namespace.ISTIO, Namespace.KNATIVE))
        for port in (QUEUE_HTTP_PORT, QUEUE_H2C_PORT)
    ),
    # Knative's autoscaler reads every revision's queue-proxy statistics
    Flow("model-autoscaling", Namespace.SERVING, None, QUEUE_AUTOSCALING_PORT, (Namespace.KNATIVE,)),
    # Standard (raw) deployment mode: the gateway serves the InferenceService's Ingress straight to the
    # predictor Service, whose target is the model container's port (KServe's default 8080; no queue-proxy)
    Flow("model-raw", Namespace.SERVING, None, RAW_MODEL_PORT, (Namespace.ISTIO,)),
)


@dataclass(frozen=True)
class ScrapeTarget:
    """Pods Prometheus scrapes: where they are, how they are labelled, and the port (its name for the
    PodMonitor, its number for the NetworkPolicy). Each becomes a flow from `monitoring` and a PodMonitor."""

    name: str
    namespace: Namespace
    selector: Mapping[str, str]  # pod labels; empty: every pod in the namespace
    port: str  # the pod's port name, or the Service's when `service` is set
    number: int
    path: str = "/metrics"
    # scrape through this Service (its labels) when the pods do not declare the port (a ServiceMonitor);
    # otherwise the pods are scraped directly (a PodMonitor)
    service: Mapping[str, str] | None = None
    # HTTPS with Prometheus' own service account token: for metrics behind kube-rbac-proxy, which checks the
    # token's `get` on the /metrics URL (kube-prometheus-stack's Prometheus ClusterRole grants it). Only a
    # ServiceMonitor may read a token file, so such a target needs `service`.
    authenticated: bool = False
    # keep the job/instance labels the target reports (the Pushgateway: the pushing job's, not its own)
    honor_labels: bool = False
    # the pods name the port only in KServe's `prometheus.kserve.io/port` annotation (a Knative revision's
    # container may declare one port, its serving port): the PodMonitor keeps the pods annotated with
    # `number` and points the scrape at the pod's address on it (`port` is then unused)
    annotated: bool = False
    # pod labels copied onto every series of the target, as target labels (pod label key -> label name)
    pod_target_labels: Mapping[str, str] = field(default_factory=dict)


# Loki, its log agents and the Pushgateway: the monitoring stack's own pods (pod labels as their charts set
# them, read in the rendered manifests)
LOKI_HTTP_PORT = 3100
LOKI_PODS = {NAME_LABEL: "loki", "app.kubernetes.io/component": "single-binary"}
ALLOY_HTTP_PORT = 12345
ALLOY_PODS = {NAME_LABEL: "alloy", "app.kubernetes.io/instance": "alloy"}
DCGM_PORT = 9400
DCGM_PODS = {NAME_LABEL: "dcgm-exporter", "app.kubernetes.io/instance": "dcgm-exporter"}
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_PODS = {NAME_LABEL: "prometheus-pushgateway", "app.kubernetes.io/instance": "prometheus-pushgateway"}


# Knative's queue-proxy exports its request metrics with the revision only as OpenTelemetry resource
# attributes (knative/serving pkg/queue/sharedmain/otel.go), which the Prometheus exporter puts on
# `target_info` alone; the revision pods carry the same names as labels (pkg/reconciler/revision/resources/
# meta.go makeLabels, pkg/reconciler/configuration/resources/revision.go updateRevisionLabels). The scrape
# copies them onto every series, under the resource attributes' Prometheus names, so a query per revision
# needs no join (components/observability/alerts.py).
KNATIVE_REVISION_LABELS: Mapping[str, str] = {
    "serving.knative.dev/service": "kn_service_name",
    "serving.knative.dev/configuration": "kn_configuration_name",
    "serving.knative.dev/revision": "kn_revision_name",
}


# Read in each chart's rendered pods (`python -m mlplatform render`) or, for pods an operator makes, in its
# source: KubeRay gives every Ray container a `metrics` port 8080; Knative's queue-proxy serves request
# metrics on `http-usermetric` 9091 when request-metrics-protocol is prometheus.
SCRAPES: tuple[ScrapeTarget, ...] = (
    # MLflow's server with --expose-prometheus serves /metrics on its own port
    ScrapeTarget("mlflow", Namespace.PLATFORM, {NAME_LABEL: "mlflow"}, "mlflow", MLFLOW_PORT),
    # the feature server's metrics listener (8000) is declared only on its Service (metrics.enabled)
    ScrapeTarget(
        "feature-server",
        Namespace.PLATFORM,
        {NAME_LABEL: "feast-feature-server"},
        "metrics",
        FEATURE_SERVER_METRICS_PORT,
        service={NAME_LABEL: "feast-feature-server"},
    ),
    ScrapeTarget(
        "airflow-statsd", Namespace.PLATFORM, {"tier": "airflow", "component": "statsd"}, "statsd-scrape", 9102
    ),
    ScrapeTarget(
        "airflow-pgbouncer", Namespace.PLATFORM, {"tier": "airflow", "component": "pgbouncer"}, "metrics", 9127
    ),
    ScrapeTarget("kuberay-operator", Namespace.TRAINING, {NAME_LABEL: "kuberay-operator"}, "http", 8080),
    ScrapeTarget("ray", Namespace.TRAINING, {"ray.io/cluster": "ray"}, "metrics", 8080),
    ScrapeTarget("knative", Namespace.KNATIVE, {NAME_LABEL: "knative-serving"}, "metrics", 9090),
    ScrapeTarget(
        "model-requests", Namespace.SERVING, {}, "http-usermetric", 9091, pod_target_labels=KNATIVE_REVISION_LABELS
    ),
    # the model servers' own metrics (inference counts and latencies per model), on the port each runtime
    # annotates
    ScrapeTarget("mlserver", Namespace.SERVING, {}, "", MLSERVER_METRICS_PORT, annotated=True),
    ScrapeTarget("triton", Namespace.SERVING, {}, "", TRITON_METRICS_PORT, annotated=True),
    ScrapeTarget(
        "istio-gateway", Namespace.ISTIO, {"app": INGRESS_GATEWAY_APP}, "http-envoy-prom", 15090, "/stats/prometheus"
    ),
    # the controller, whose metrics cover certificates and issuers (its startupapicheck Job has no port)
    ScrapeTarget(
        "cert-manager",
        Namespace.CERT_MANAGER,
        {"app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/component": "controller"},
        "http-metrics",
        9402,
    ),
    # the KServe controller's metrics sit behind kube-rbac-proxy on its `https` port
    ScrapeTarget(
        "kserve-controller",
        Namespace.KSERVE,
        {"control-plane": "kserve-controller-manager"},
        "https",
        8443,
        service={"control-plane": "kserve-controller-manager", NAME_LABEL: "kserve"},
        authenticated=True,
    ),
    ScrapeTarget("loki", Namespace.MONITORING, LOKI_PODS, "http-metrics", LOKI_HTTP_PORT),
    ScrapeTarget("alloy", Namespace.MONITORING_AGENTS, ALLOY_PODS, "http-metrics", ALLOY_HTTP_PORT),
    # GPU metrics on EKS (GKE collects them with its managed DCGM package instead: no pod matches there)
    ScrapeTarget("dcgm", Namespace.MONITORING_AGENTS, DCGM_PODS, "metrics", DCGM_PORT),
    # drift scores the drift job pushes, kept with the job's labels
    ScrapeTarget("pushgateway", Namespace.MONITORING, PUSHGATEWAY_PODS, "metrics", PUSHGATEWAY_PORT, honor_labels=True),
)
FLOWS += tuple(
    Flow(f"scrape-{t.name}", t.namespace, None, t.number, (Namespace.MONITORING,), selector=t.selector) for t in SCRAPES
)
# Alloy on every node pushes the pods' logs to Loki
FLOWS += (
    Flow("logs-push", Namespace.MONITORING, None, LOKI_HTTP_PORT, (Namespace.MONITORING_AGENTS,), selector=LOKI_PODS),
)
# Prometheus' own pods, as the operator labels the pods of the Prometheus resource kube-prometheus-stack
# names `<release>-prometheus` (prometheus-operator pkg/prometheus/server/statefulset.go; the chart's
# Service selects these two), and their web port, the query API
PROMETHEUS_PORT = 9090
PROMETHEUS_PODS = {NAME_LABEL: "prometheus", "operator.prometheus.io/name": "kube-prometheus-stack-prometheus"}
# its query API: the chart's Service named as the Prometheus resource, port 9090 (values.yaml
# prometheus.service.port); here, beside the flow, since the query's client (Airflow) is in another layer
PROMETHEUS_QUERY = ServiceEndpoint(
    PROMETHEUS_PODS["operator.prometheus.io/name"], Namespace.MONITORING, PROMETHEUS_PORT
)
# the deployment DAG judges a canary with Prometheus queries: Airflow's pods only
FLOWS += (
    Flow(
        "prometheus-query",
        Namespace.MONITORING,
        None,
        PROMETHEUS_PORT,
        (Namespace.PLATFORM,),
        selector=PROMETHEUS_PODS,
        source_pods=AIRFLOW_PODS,
    ),
)
# The Flink operator drives each job through its JobManager's REST API (the `<deployment>-rest` Service,
# port 8081). Flink's native Kubernetes mode labels the JobManager pods `type: flink-native-kubernetes`,
# `component: jobmanager` (apache/flink flink-kubernetes .../kubernetes/utils/Constants.java); the operator's
# pods carry the chart's selector label (flink-kubernetes-operator 1.15.0 templates/_helpers.tpl).
FLINK_REST_PORT = 8081
FLINK_JOBMANAGER_PODS = {"type": "flink-native-kubernetes", "component": "jobmanager"}
FLINK_OPERATOR_PODS = {NAME_LABEL: "flink-kubernetes-operator"}
FLOWS += (
    Flow(
        "flink-rest",
        Namespace.STREAMING,
        None,
        FLINK_REST_PORT,
        (Namespace.FLINK_OPERATOR,),
        selector=FLINK_JOBMANAGER_PODS,
        source_pods=FLINK_OPERATOR_PODS,
    ),
)
# JupyterHub's proxy (configurable-http-proxy, port `http` 8000 behind the `proxy-public` Service) takes the
# ingress gateway's requests for jupyter.<domain> (z2jh 4.4.0 templates/proxy/deployment.yaml and service.yaml;
# pod labels from templates/_helpers.tpl jupyterhub.labels). Hub, proxy and user servers talk to each other
# inside `mlplatform`, which the baseline allows; the chart's own NetworkPolicies are off
# (components/client/jupyterhub.py says why).
JUPYTERHUB_PROXY_PORT = 8000
JUPYTERHUB_PROXY_PODS = {NAME_LABEL: "jupyterhub", "app.kubernetes.io/component": "proxy"}
FLOWS += (
    Flow(
        "jupyterhub-proxy",
        Namespace.PLATFORM,
        None,
        JUPYTERHUB_PROXY_PORT,
        (Namespace.ISTIO,),
        selector=JUPYTERHUB_PROXY_PODS,
        source_pods={"app": INGRESS_GATEWAY_APP},
    ),
)
# The UIs on their single-sign-on hosts (components/client/exposure.py): the ingress gateway's pods route each
# `<ui>.<domain>` to the UI's pods, on the port the pods listen on (a Service forwards to its targetPort). From
# the gateway's pods only; the gateway itself serves a UI host only when the stack has a domain (its Gateway
# and VirtualServices exist only then). oauth2-proxy, which checks the guarded hosts, runs beside the gateway
# in istio-system (a same-namespace peer, allowed by the baseline).
GATEWAY_PODS = {"app": INGRESS_GATEWAY_APP}
AIRFLOW_API_PORT = 8080  # airflow 1.19.0 values.yaml ports.apiServer, the api-server pods' containerPort
AIRFLOW_API_PODS = {**AIRFLOW_PODS, "component": "api-server"}  # templates/api-server/api-server-deployment.yaml
# Grafana's container port is its chart's service.targetPort 3000 (grafana 12.11.1 values.yaml, _pod.tpl); its pods
# carry the chart's selectorLabels (templates/_helpers.tpl) with the kube-prometheus-stack release
GRAFANA_PORT = 3000
GRAFANA_PODS = {NAME_LABEL: "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"}
FLOWS += (
    Flow("ui-mlflow", Namespace.PLATFORM, "mlflow", MLFLOW_PORT, (Namespace.ISTIO,), source_pods=GATEWAY_PODS),
    Flow(
        "ui-feast",
        Namespace.PLATFORM,
        "feast-feature-server",
        FEATURE_SERVER_PORT,
        (Namespace.ISTIO,),
        source_pods=GATEWAY_PODS,
    ),
    Flow("ui-ray", Namespace.TRAINING, "kuberay", RAY_DASHBOARD_PORT, (Namespace.ISTIO,), source_pods=GATEWAY_PODS),
    Flow(
        "ui-airflow",
        Namespace.PLATFORM,
        None,
        AIRFLOW_API_PORT,
        (Namespace.ISTIO,),
        selector=AIRFLOW_API_PODS,
        source_pods=GATEWAY_PODS,
    ),
    Flow(
        "ui-grafana",
        Namespace.MONITORING,
        None,
        GRAFANA_PORT,
        (Namespace.ISTIO,),
        selector=GRAFANA_PODS,
        source_pods=GATEWAY_PODS,
    ),
)
# The local stack's object store (SeaweedFS's S3 gateway, components/storage/seaweedfs.py, on its default
# -s3.port 8333) from the namespaces whose workloads hold a bucket grant (components/workloads.py): MLflow,
# Feast, Airflow and notebooks in mlplatform, Ray and training Jobs, KServe's storage-initializer, Loki and the
# drift job, the Flink job. Only `cloud: local` runs the store; elsewhere no pod carries the label.
OBJECT_STORE_PORT = 8333
FLOWS += (
    Flow(
        "object-store",
        Namespace.DATA,
        "seaweedfs",
        OBJECT_STORE_PORT,
        # and `data` itself (in-cluster PostgreSQL's backup sidecar): the store is a FLOWS_ONLY pod, which its
        # own namespace reaches only through its flow
        (
            Namespace.PLATFORM,
            Namespace.TRAINING,
            Namespace.SERVING,
            Namespace.MONITORING,
            Namespace.STREAMING,
            Namespace.DATA,
        ),
    ),
)
# node-level targets (host network): the kubelet's cAdvisor metrics and node-exporter
NODE_SCRAPE_PORTS = (10250, 9100)


def flow(name: str) -> Flow:
    """The declared flow called `name`: charts take their pod name label and container port from it, so a
    NetworkPolicy and the pods it admits cannot disagree."""
    for f in FLOWS:
        if f.name == name:
            return f
    raise KeyError(f"no flow named {name!r}; flows: {[f.name for f in FLOWS]}")


# HTTPS anywhere (but blocked ranges): the clouds' APIs (object storage, STS / token exchange, Managed
# Kafka's OAuth), the Kubernetes API and image or model hubs live at addresses unknown until deploy. `data`
# runs only the database bootstrap Job and needs none of it.
HTTPS_PORT = 443
HTTPS_CLIENTS = frozenset(
    {
        Namespace.PLATFORM,
        Namespace.TRAINING,
        Namespace.SERVING,
        Namespace.MONITORING,
        # the serving operators talk to the Kubernetes API; cert-manager to ACME issuers; Knative resolves
        # image digests at registries
        Namespace.CERT_MANAGER,
        Namespace.ISTIO,
        Namespace.KNATIVE,
        Namespace.KSERVE,
        # Flink's JobManager creates its TaskManager pods through the Kubernetes API (native mode); the job's
        # Kafka login exchanges its web identity token at STS (MSK IAM) or Google's token endpoint
        Namespace.STREAMING,
    }
)
# The managed data services' ports (PostgreSQL; Redis without and with TLS; Kafka over IAM / OAuth), allowed
# only to the data layer's own address ranges and only from the namespaces whose pods use them.
POSTGRES_PORT = 5432
DATA_PORTS = (POSTGRES_PORT, 6378, 6379, 9092, 9098)
DATA_CLIENTS = frozenset({Namespace.PLATFORM, Namespace.TRAINING, Namespace.DATA})
# ... and those that use PostgreSQL only: Grafana keeps its users, sessions and alerting state in its own
# database (components/observability/prometheus.py), so monitoring reaches 5432 and no other data port
POSTGRES_CLIENTS = DATA_CLIENTS | {Namespace.MONITORING}
# Namespaces whose pods talk to the Kubernetes API but nothing else over HTTPS: Alloy discovers its node's
# pods. Allowed to the control plane's addresses only (the `kubernetes` Service's endpoints).
# The Knative operator reconciles Serving through the API only (its manifests ship in its image).
# The Flink operator reconciles FlinkDeployments through the API (and the jobs' REST APIs, a flow).
API_ONLY_CLIENTS = frozenset({Namespace.MONITORING_AGENTS, Namespace.KNATIVE_OPERATOR, Namespace.FLINK_OPERATOR})
# Kafka alone (MSK's IAM listener 9098; Managed Kafka's 9092), for namespaces that use no other data service
KAFKA_PORTS = (9092, 9098)
KAFKA_ONLY_CLIENTS = frozenset({Namespace.STREAMING})
# In-cluster PostgreSQL (components/data/in_cluster/postgres.py): CloudNativePG's operator runs in `data`
# beside the Cluster it manages. Its pods carry the chart's selector labels (cloudnative-pg 0.29.0
# templates/_helpers.tpl, release `cloudnative-pg`); the Cluster's pods the operator's labels (cloudnative-pg
# v1.30.0 pkg/specs/pods.go: cnpg.io/cluster on instances and on its initdb/join Jobs' pods, cnpg.io/podRole
# `instance` on instances only). The operator reaches the instances' status port 8000, and instances
# replicate from each other on 5432, inside `data` (the baseline's same-namespace rule); the API server calls
# its webhook on 9443 (WEBHOOK_PORTS). Where PostgreSQL is managed no pod carries these labels.
CNPG_CLUSTER = "postgres"
CNPG_OPERATOR_PODS = {NAME_LABEL: "cloudnative-pg", "app.kubernetes.io/instance": "cloudnative-pg"}
CNPG_CLUSTER_PODS = {"cnpg.io/cluster": CNPG_CLUSTER}
CNPG_INSTANCE_PODS = {**CNPG_CLUSTER_PODS, "cnpg.io/podRole": "instance"}
# the database's clients in the other namespaces (POSTGRES_CLIENTS; `data`'s bootstrap Job is same-namespace)
FLOWS += (
    Flow(
        "postgres-in-cluster",
        Namespace.DATA,
        None,
        POSTGRES_PORT,
        tuple(sorted(POSTGRES_CLIENTS - {Namespace.DATA})),
        selector=CNPG_INSTANCE_PODS,
    ),
)
# Prometheus scrapes the instances' metrics: the instance manager serves /metrics on the postgres container's
# port `metrics` 9187 (cloudnative-pg v1.30.0 pkg/specs/pods.go, pkg/management/url/url.go PostgresMetricsPort),
# plain HTTP unless the Cluster sets spec.monitoring.tls.enabled (default false: api/v1/cluster_funcs.go
# IsMetricsTLSEnabled; pkg/management/postgres/webserver/metricserver/metrics.go). Not in SCRAPES / FLOWS:
# only a stack whose PostgreSQL is in-cluster scrapes it (components/observability/postgres.py makes the
# PodMonitor and this flow's two policies), so no managed stack opens 9187 into `data`.
CNPG_METRICS_PORT = 9187
CNPG_SCRAPE = ScrapeTarget("cnpg-instances", Namespace.DATA, CNPG_INSTANCE_PODS, "metrics", CNPG_METRICS_PORT)
CNPG_SCRAPE_FLOW = Flow(
    f"scrape-{CNPG_SCRAPE.name}",
    CNPG_SCRAPE.namespace,
    None,
    CNPG_SCRAPE.number,
    (Namespace.MONITORING,),
    selector=CNPG_SCRAPE.selector,
)
# Pods that talk to the Kubernetes API in a namespace whose other pods do not: allowed to the control plane's
# addresses on 443 by pod selector, as API_ONLY_CLIENTS allows a whole namespace. (policy name, namespace,
# pods). CloudNativePG's operator reconciles through the API; its instance manager (the postgres container's
# PID 1, and the initdb/join Jobs) reads the Cluster and its Secrets and reports status through it
# (cloudnative-pg v1.30.0 docs/src/instance_manager.md).
API_CLIENT_PODS: tuple[tuple[str, Namespace, Mapping[str, str]], ...] = (
    ("cnpg-operator", Namespace.DATA, CNPG_OPERATOR_PODS),
    ("cnpg-instances", Namespace.DATA, CNPG_CLUSTER_PODS),
)
# In-cluster PostgreSQL's backups (components/data/in_cluster/backups.py): the Barman Cloud plugin's Deployment in
# `data` (chart plugin-barman-cloud 0.7.0, release `plugin-barman-cloud`: templates/_helpers.tpl selectorLabels)
# serves the operator's gRPC calls on 9090 behind the Service `barman-cloud` (templates/service.yaml,
# deployment.yaml), inside `data` (the baseline's same-namespace rule), and reconciles ObjectStores, Roles and
# RoleBindings through the API. Its sidecar in the instance pods uploads WAL and base backups to the object store:
# on AWS and GCP the cloud's storage API over HTTPS (and, on EKS, STS for the IRSA token exchange; GKE's metadata
# server is every namespace's baseline), on local SeaweedFS in `data` itself (same-namespace).
BARMAN_CLOUD_SERVICE, BARMAN_CLOUD_PORT = "barman-cloud", 9090
BARMAN_CLOUD_PODS = {NAME_LABEL: "plugin-barman-cloud", "app.kubernetes.io/instance": "plugin-barman-cloud"}
API_CLIENT_PODS += (("barman-cloud", Namespace.DATA, BARMAN_CLOUD_PODS),)
# Pods that reach HTTPS anywhere (but blocked ranges) in a namespace whose other pods do not (HTTPS_CLIENTS allows
# a whole namespace): (policy name, namespace, pods)
HTTPS_CLIENT_PODS: tuple[tuple[str, Namespace, Mapping[str, str]], ...] = (
    ("cnpg-backups", Namespace.DATA, CNPG_INSTANCE_PODS),
)
# In-cluster Redis (components/data/in_cluster/redis.py): one Valkey server in `data`, TLS on 6379, from the
# namespaces that reach a managed Redis (DATA_CLIENTS; `data` itself is same-namespace). Where Redis is managed
# no pod carries the label.
FLOWS += (Flow("redis-in-cluster", Namespace.DATA, "valkey", 6379, tuple(sorted(DATA_CLIENTS - {Namespace.DATA}))),)
# In-cluster Kafka (components/data/in_cluster/kafka.py): Strimzi's operator and the cluster it makes, all in
# `data` (strimzi/strimzi-kafka-operator @ 1.2.0). Inside `data`, by the baseline's same-namespace rule: the
# nodes' control plane 9090 (each other, the operator) and replication 9091 (each other, the operator, the
# entity operator), the operator's KafkaAgent 8443 (KafkaCluster.java CONTROLPLANE_PORT, REPLICATION_PORT,
# KAFKA_AGENT_PORT, and generateNetworkPolicy's peers, which the platform replaces: strimzi.py). Strimzi has no
# admission webhook. Clients in the namespaces of the workloads granted Kafka (components/workloads.py: Feast
# and Airflow in mlplatform, the Flink job in streaming) reach the brokers' TLS listener 9093, which the
# operator opens from the Kafka resource. Pods as Strimzi labels them (operator-common Labels.java:
# strimzi.io/cluster, strimzi.io/broker-role; the chart's Deployment: strimzi.io/kind cluster-operator).
STRIMZI_CLUSTER = "mlplatform"
KAFKA_TLS_PORT = 9093
STRIMZI_OPERATOR_PODS = {"strimzi.io/kind": "cluster-operator"}
STRIMZI_CLUSTER_PODS = {"strimzi.io/cluster": STRIMZI_CLUSTER}
STRIMZI_BROKER_PODS = {**STRIMZI_CLUSTER_PODS, "strimzi.io/broker-role": "true"}
FLOWS += (
    Flow(
        "kafka-in-cluster",
        Namespace.DATA,
        None,
        KAFKA_TLS_PORT,
        (Namespace.PLATFORM, Namespace.STREAMING),
        selector=STRIMZI_BROKER_PODS,
        opened_by="Strimzi's Kafka listener (the Kafka resource's spec.kafka.listeners)",
    ),
)
# The operator reconciles through the API; so do the entity operator (KafkaTopic, KafkaUser) and the Kafka
# nodes, which read their certificates from Secrets through Strimzi's KubernetesSecretConfigProvider
# (KafkaBrokerConfigurationBuilder.java: config.providers.strimzisecrets).
API_CLIENT_PODS += (
    ("strimzi-operator", Namespace.DATA, STRIMZI_OPERATOR_PODS),
    ("strimzi-cluster", Namespace.DATA, STRIMZI_CLUSTER_PODS),
)
# git over SSH, for a DAG repository given as ssh:// or git@ (services.airflow.dags.repo)
GIT_SSH_PORT = 22
KUBE_SYSTEM = "kube-system"
CLUSTER_DNS_PODS = {"k8s-app": "kube-dns"}  # CoreDNS on EKS and kube-dns on GKE both carry it


def _peer_ns(ns: Namespace, pods: Mapping[str, str] | None = None) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """The namespace's pods, or only those labelled `pods`."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NS_LABEL: ns.value}),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pods)) if pods is not None else None,
    )


def _tcp(port: int | str) -> k8s.networking.v1.NetworkPolicyPortArgs:
    return k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)


def _policy(
    parent: pulumi.Resource,
    prefix: str,
    namespace: k8s.core.v1.Namespace,
    name: str,
    *,
    ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
    egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
    pod_labels: Mapping[str, str] | None = None,
    pod_selector: k8s.meta.v1.LabelSelectorArgs | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    return k8s.networking.v1.NetworkPolicy(
        f"{prefix}-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace.metadata.name),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=pod_selector or k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pod_labels or {})),
            policy_types=types,
            ingress=ingress,
            egress=egress,
        ),
        # explicit: a policy must never be sent before its namespace exists
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[namespace]),
    )


def _cidr_peer(cidr: pulumi.Input[str], blocked: tuple[str, ...] = ()) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr, except_=list(blocked) or None)
    )


def baseline_egress(ns: Namespace, network: ClusterNetwork) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """DNS and same-namespace traffic everywhere; HTTPS, the data services and the node's metadata server
    only where the namespace needs them (HTTPS_CLIENTS, DATA_CLIENTS, POSTGRES_CLIENTS, the cloud's
    ClusterNetwork)."""
    rules = [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[_peer_ns(ns)]),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NS_LABEL: KUBE_SYSTEM}),
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=CLUSTER_DNS_PODS),
                )
            ],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53), _tcp(53)],
        ),
    ]
    if ns in HTTPS_CLIENTS:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_cidr_peer("0.0.0.0/0", network.blocked_cidrs)], ports=[_tcp(HTTPS_PORT)]
            )
        )
    # the API server where it is not on 443 (kind: 6443, ClusterNetwork.api_server_port) for the HTTPS clients,
    # which reach it on 443 everywhere else
    api_elsewhere = network.api_server_port != HTTPS_PORT
    if ns in API_ONLY_CLIENTS or (ns in HTTPS_CLIENTS and api_elsewhere):
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_cidr_peer(c) for c in network.control_plane_cidrs], ports=[_tcp(network.api_server_port)]
            )
        )
    data_ports = DATA_PORTS if ns in DATA_CLIENTS else (POSTGRES_PORT,) if ns in POSTGRES_CLIENTS else ()
    data_ports = KAFKA_PORTS if ns in KAFKA_ONLY_CLIENTS else data_ports
    # no managed data service's range (local: every data service is a pod, admitted by its flow): no rule, as
    # a rule whose `to` is empty would admit the data ports to every destination
    if data_ports and network.data_service_cidrs:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_cidr_peer(c) for c in network.data_service_cidrs], ports=[_tcp(p) for p in data_ports]
            )
        )
    rules += [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[_cidr_peer(e.cidr)], ports=[_tcp(e.port)])
        for e in network.metadata_endpoints
    ]
    return rules


def baseline_ingress(ns: Namespace, network: ClusterNetwork) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """Same-namespace traffic and the API server calling webhooks (Prometheus' scrapes are flows): from the
    control plane's addresses, and from the pods that carry its calls (GKE's konnectivity agents) by
    selector, since an ipBlock never matches a pod under Dataplane V2."""
    proxies = [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NS_LABEL: p.namespace}),
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(p.labels)),
        )
        for p in network.webhook_proxies
    ]
    return [
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[_peer_ns(ns)]),
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[_cidr_peer(c) for c in network.control_plane_cidrs] + proxies,
            ports=[_tcp(p) for p in WEBHOOK_PORTS],
        ),
    ]


def flow_policies(
    parent: pulumi.Resource, prefix: str, ns: Namespace, namespace: k8s.core.v1.Namespace, flow: Flow
) -> list[k8s.networking.v1.NetworkPolicy]:
    """`ns`'s side of one flow: the ingress allow where the flow ends, the egress allow where it starts (from
    another namespace), named `<prefix>-allow-<flow>-in` / `-out`; nothing when `ns` is neither."""
    policies = []
    if flow.to is ns:
        policies.append(
            _policy(
                parent,
                prefix,
                namespace,
                f"allow-{flow.name}-in",
                pod_labels=flow.pod_labels,
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[_peer_ns(s, flow.source_pods) for s in flow.sources]
                        + ([_cidr_peer("0.0.0.0/0")] if flow.from_anywhere else []),
                        ports=[_tcp(flow.port)],
                    )
                ],
            )
        )
    if ns in flow.sources and flow.to is not ns:
        policies.append(
            _policy(
                parent,
                prefix,
                namespace,
                f"allow-{flow.name}-out",
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=_peer_ns(flow.to).namespace_selector,
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=flow.pod_labels),
                            )
                        ],
                        ports=[_tcp(flow.port)],
                    )
                ],
            )
        )
    return policies


def network_policies(
    parent: pulumi.Resource,
    prefix: str,
    ns: Namespace,
    namespace: k8s.core.v1.Namespace,
    network: ClusterNetwork,
) -> list[k8s.networking.v1.NetworkPolicy]:
    """The namespace's default deny, its baseline and the allows of FLOWS, named `<prefix>-<policy>`. The
    baseline selects every pod but the FLOWS_ONLY ones, which get its egress alone."""
    [(flows_only_key, _)] = FLOWS_ONLY.items()
    not_flows_only = k8s.meta.v1.LabelSelectorArgs(
        match_expressions=[k8s.meta.v1.LabelSelectorRequirementArgs(key=flows_only_key, operator="DoesNotExist")]
    )
    policies = [
        _policy(parent, prefix, namespace, "default-deny", ingress=[], egress=[]),
        _policy(
            parent,
            prefix,
            namespace,
            "baseline",
            ingress=baseline_ingress(ns, network),
            egress=baseline_egress(ns, network),
            pod_selector=not_flows_only,
        ),
        _policy(
            parent, prefix, namespace, "baseline-flows-only", egress=baseline_egress(ns, network), pod_labels=FLOWS_ONLY
        ),
    ]
    for flow in FLOWS:
        policies += flow_policies(parent, prefix, ns, namespace, flow)
    for name, where, pods in API_CLIENT_PODS:
        if where is ns:
            policies.append(
                _policy(
                    parent,
                    prefix,
                    namespace,
                    f"allow-api-{name}-out",
                    pod_labels=pods,
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[_cidr_peer(c) for c in network.control_plane_cidrs],
                            ports=[_tcp(network.api_server_port)],
                        )
                    ],
                )
            )
    for name, where, pods in HTTPS_CLIENT_PODS:
        if where is ns:
            policies.append(
                _policy(
                    parent,
                    prefix,
                    namespace,
                    f"allow-https-{name}-out",
                    pod_labels=pods,
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[_cidr_peer("0.0.0.0/0", network.blocked_cidrs)], ports=[_tcp(HTTPS_PORT)]
                        )
                    ],
                )
            )
    if ns is Namespace.MONITORING and network.dns_metrics_port is not None:
        # kube-prometheus-stack's coreDns ServiceMonitor (the cluster DNS pods in kube-system)
        policies.append(
            _policy(
                parent,
                prefix,
                namespace,
                "allow-dns-metrics-out",
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NS_LABEL: KUBE_SYSTEM}),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=CLUSTER_DNS_PODS),
                            )
                        ],
                        ports=[_tcp(network.dns_metrics_port)],
                    )
                ],
            )
        )
    if ns is Namespace.MONITORING:
        policies.append(
            _policy(
                parent,
                prefix,
                namespace,
                "allow-node-scrape-out",
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        # by port alone where no ipBlock can name a node (ClusterNetwork.nodes_match_ip_blocks)
                        to=[_cidr_peer(c) for c in network.node_cidrs] if network.nodes_match_ip_blocks else None,
                        ports=[_tcp(p) for p in NODE_SCRAPE_PORTS],
                    )
                ],
            )
        )
    return policies


def git_ssh_egress(
    parent: pulumi.Resource, prefix: str, namespace: k8s.core.v1.Namespace, pod_labels: Mapping[str, str]
) -> k8s.networking.v1.NetworkPolicy:
    """git-sync over SSH for the pods that sync DAGs (only when the configured repository is an SSH URL)."""
    return _policy(
        parent,
        prefix,
        namespace,
        "allow-git-ssh-out",
        pod_labels=pod_labels,
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[_cidr_peer("0.0.0.0/0")], ports=[_tcp(GIT_SSH_PORT)])
        ],
    )


def pod_security_labels(ns: Namespace, kubernetes_version: str) -> dict[str, str]:
    level = POD_SECURITY[ns]
    labels = {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": f"v{kubernetes_version}",
    }
    # warn and audit at restricted everywhere, so relaxed namespaces still show what would break
    labels |= {"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}
    return labels


def training_limits(
    parent: pulumi.Resource, prefix: str, namespace: k8s.core.v1.Namespace, gpu_pools: tuple[NodePoolContract, ...]
) -> tuple[k8s.core.v1.ResourceQuota, k8s.core.v1.LimitRange]:
    """`training` may request at most the GPUs its pools can ever hold (from the pool contracts), and every
    container without requests gets sane defaults so the scheduler and autoscaler can place it.

    Requests only, no default limits: a default CPU limit throttles training code that sets none (the
    platform's own pods run without CPU limits for the same reason), and a default memory limit would
    reject every container that requests more memory than that default without naming a limit."""
    capacity = sum(p.max_nodes * p.gpu_units_per_node for p in gpu_pools)
    quota = k8s.core.v1.ResourceQuota(
        f"{prefix}-gpu-quota",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="training-gpus", namespace=namespace.metadata.name),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={f"requests.{GPU_RESOURCE}": str(capacity)}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[namespace]),
    )
    limits = k8s.core.v1.LimitRange(
        f"{prefix}-default-requests",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="training-defaults", namespace=namespace.metadata.name),
        spec=k8s.core.v1.LimitRangeSpecArgs(
            limits=[
                k8s.core.v1.LimitRangeItemArgs(
                    type="Container",
                    default_request={"cpu": "500m", "memory": "1Gi"},
                )
            ]
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[namespace]),
    )
    return quota, limits
