"""Every connection a pinned component makes that the platform does not write itself, each with its upstream
source: the API server calling admission webhooks, net-istio probing the gateway, the cloud load balancer,
Knative's data path, kubelet probes and every Prometheus scrape. `connections(doc)` lists them for one
stack's plan (its cloud, its releases and their values); mlplatform/netpol.py decides each against the
stack's NetworkPolicies with the CNI's own semantics. The platform's flow table (components/guardrails.py) is
what is being checked, so nothing here is read from it except the platform's own scrape targets (their ports
are checked against the rendered pods by `render`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.cluster.aws.network import VPC_CIDR
from components.cluster.gcp.network import MASTER_CIDR, NODE_CIDR, POD_CIDR
from components.cluster.local.network import KUBEADM_API_SERVER_PORT
from components.contracts import Namespace
from components.guardrails import SCRAPES
from mlplatform.config.profiles import KIND_NODE_CIDR
from mlplatform.netpol import Cni, Node, Outside, Pod, Source
from mlplatform.plan.document import PlanDocument

RELEASE = "kubernetes:helm.sh/v3:Release"
KUBE_SYSTEM = "kube-system"
CLIENT_IP = "203.0.113.7"  # an internet client (documentation address)
KIND_POD_CIDR = "10.244.0.0/16"  # kind's default networking.podSubnet


@dataclass(frozen=True)
class Connection:
    name: str
    source: Source
    to: Pod | Node | Outside
    port: int
    upstream: str  # where upstream makes this connection
    # crosses GKE's VPC firewall from the control plane to the nodes (ports GKE opens itself)
    vpc_firewall: bool = False
    # the destination serves the port (False: a scrape of a port nobody listens on can only fail)
    listener: bool = True


@dataclass(frozen=True)
class Addresses:
    """Representative addresses of one cluster: what an ipBlock would compare."""

    cni: Cni
    pod: str
    node: str
    other_node: str
    control_plane: str  # where the API server's own calls come from
    load_balancer: str  # the address the load balancer connects from on EKS (an NLB private address)
    api_port: int = 443  # the API server's port at control_plane (kind: kubeadm's 6443)


def _nth(cidr: str | ipaddress.IPv4Network, n: int) -> str:
    return str(ipaddress.ip_network(cidr)[n])


def addresses(doc: PlanDocument) -> Addresses:
    if doc.outputs.get("cloud") == "local":
        # kind: nodes (and the API server, on the control-plane node, port 6443) on the docker network, pods in
        # kind's default podSubnet 10.244.0.0/16, Cloud Provider KIND's load balancer container on the network
        nodes = ipaddress.ip_network(KIND_NODE_CIDR)
        return Addresses(Cni.KINDNET, _nth(KIND_POD_CIDR, 300), _nth(nodes, 3), _nth(nodes, 4), _nth(nodes, 2),
                         _nth(nodes, 9), api_port=KUBEADM_API_SERVER_PORT)  # fmt: skip
    if doc.by_type("gcp:container/cluster:Cluster"):
        # GKE: pods in the pod range, nodes in the subnet, the private control plane in MASTER_CIDR
        return Addresses(Cni.CILIUM, _nth(POD_CIDR, 300), _nth(NODE_CIDR, 10), _nth(NODE_CIDR, 11),
                         _nth(MASTER_CIDR, 2), CLIENT_IP)  # fmt: skip
    # EKS: pods, nodes, the control plane's ENIs and the NLB's private addresses are all VPC addresses
    return Addresses(Cni.VPC_CNI, _nth(VPC_CIDR, 4660), _nth(VPC_CIDR, 4610), _nth(VPC_CIDR, 8710),
                     _nth(VPC_CIDR, 4620), _nth(VPC_CIDR, 4630))  # fmt: skip


def _release(doc: PlanDocument, chart: str) -> Mapping[str, Any] | None:
    found = [r.inputs for r in doc.by_type(RELEASE) if r.inputs.get("chart") == chart]
    return found[0] if found else None


# -- the serving stack's pods, as their charts and operators label them ---------------------------------

# Admission webhooks: (chart whose release runs it, pod labels, the port the pod listens on, source)
WEBHOOKS: tuple[tuple[str, dict[str, str], int, str], ...] = (
    ("istiod", {"app": "istiod", "istio": "pilot"}, 15017,
     "istiod 1.30.3 templates/service.yaml: https-webhook 443 -> targetPort 15017"),
    ("cert-manager", {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "webhook"}, 10250,
     "cert-manager v1.21.1 values.yaml webhook.securePort 10250"),
    ("kserve-resources", {"control-plane": "kserve-controller-manager"}, 9443,
     "kserve-resources v0.20.0 files/kserve/resources.yaml: webhook-server containerPort 9443"),
    ("knative-operator", {"app": "operator-webhook", "role": "operator-webhook"}, 8443,
     "knative-operator v1.23.0 templates/operator.yaml: operator-webhook https-webhook 8443"),
    ("kube-prometheus-stack", {"app": "kube-prometheus-stack-operator"}, 10250,
     "kube-prometheus-stack 88.5.3 values.yaml prometheusOperator.tls.internalPort 10250"),
    ("aws-load-balancer-controller", {"app.kubernetes.io/name": "aws-load-balancer-controller"}, 9443,
     "aws-load-balancer-controller 3.5.0 values.yaml webhookBindPort 9443"),
    ("flink-kubernetes-operator", {"app.kubernetes.io/name": "flink-kubernetes-operator"}, 9443,
     "flink-kubernetes-operator 1.15.0 templates/controller/deployment.yaml: flink-webhook WEBHOOK_SERVER_PORT 9443"),
    ("cloudnative-pg", {"app.kubernetes.io/name": "cloudnative-pg"}, 9443,
     "cloudnative-pg 0.29.0 values.yaml webhook.port 9443 (templates/deployment.yaml --webhook-port)"),
)  # fmt: skip
# Knative Serving's own webhooks, in the KnativeServing's namespace (operator kodata serving-core and
# ingress/1.21/istio/net-istio.yaml: both serve https-webhook on 8443)
KNATIVE_WEBHOOKS = ({"app": "webhook", "role": "webhook"}, {"app": "net-istio-webhook", "role": "net-istio-webhook"})
# the gateway chart's Service ports (gateway 1.30.3 values.yaml service.ports): port -> targetPort
GATEWAY_TARGET_PORTS = {15021: 15021, 80: 80, 443: 443}


def _gateway(doc: PlanDocument, a: Addresses) -> tuple[Pod, Mapping[str, Any]] | None:
    """The ingress gateway's pods (labels from the chart's selectorLabels and the release name) and values."""
    release = _release(doc, "gateway")
    if release is None:
        return None
    name, values = release["name"], release.get("values") or {}
    labels = values.get("labels") or {}
    pod_labels = {
        "app": labels.get("app", name),
        "istio": labels.get("istio", name.removeprefix("istio-")),
        "app.kubernetes.io/name": name,
    }
    return Pod(release["namespace"], pod_labels, a.pod), values


def _serving_namespace(doc: PlanDocument) -> str:
    crs = [r.inputs for r in doc.resources if r.inputs.get("kind") == "KnativeServing"]
    return crs[0]["metadata"]["namespace"] if crs else Namespace.KNATIVE.value


def webhook_calls(doc: PlanDocument, a: Addresses) -> list[Connection]:
    """The API server calling each admission webhook on its pods' port. EKS: from the control plane's ENIs
    in the VPC. GKE: through the konnectivity-agent pods in kube-system (tigera/operator#5212: "On AKS and GKE
    the API server reaches in-cluster webhooks through konnectivity agent pods ... GKE uses `k8s-app`"), and
    where the control plane calls directly, from its private range through the VPC firewall."""
    targets: list[tuple[Pod, int, str]] = []
    for chart, labels, port, source in WEBHOOKS:
        release = _release(doc, chart)
        if release is not None:
            targets.append((Pod(release["namespace"], labels, a.pod), port, source))
    if _release(doc, "knative-operator") is not None:
        ns = _serving_namespace(doc)
        targets += [
            (Pod(ns, labels, a.pod), 8443, "Knative Serving webhooks (operator kodata)") for labels in KNATIVE_WEBHOOKS
        ]
    found: list[Connection] = []
    for pod, port, source in targets:
        name = f"webhook {pod.namespace}/{next(iter(pod.labels.values()))}:{port}"
        if a.cni is Cni.CILIUM:
            agent = Pod(KUBE_SYSTEM, {"k8s-app": "konnectivity-agent"}, a.pod)
            found.append(Connection(f"{name} via konnectivity", agent, pod, port, source))
            direct = Outside(a.control_plane, "GKE control plane")
            found.append(Connection(f"{name} from the control plane", direct, pod, port, source, vpc_firewall=True))
        else:
            found.append(Connection(name, Outside(a.control_plane, "EKS control-plane ENI"), pod, port, source))
    return found


def gateway_connections(doc: PlanDocument, a: Addresses) -> list[Connection]:
    gateway = _gateway(doc, a)
    if gateway is None:
        return []
    pod, values = gateway
    found: list[Connection] = []
    service = values.get("service") or {}
    targets = {int(p["port"]): int(p["targetPort"]) for p in service.get("ports") or []} or GATEWAY_TARGET_PORTS
    # net-istio probes every gateway pod on the target port of the Service port its Gateway's server uses
    # (knative-ingress-gateway: HTTP 80); knative-local-gateway's Service carries no `istio` label, so
    # listGatewayTargets finds only this one (knative-extensions/net-istio pkg/reconciler/ingress/lister.go)
    probe = Pod(_serving_namespace(doc), {"app": "net-istio-controller"}, a.pod)
    found.append(
        Connection("net-istio probe -> gateway", probe, pod, targets[80], "net-istio lister.go listGatewayTargets")
    )
    # the cloud load balancer -> gateway pods. GKE: the passthrough NLB delivers to nodes; with
    # externalTrafficPolicy Cluster the node forwards to a pod elsewhere, SNATed to its own address; with
    # Local only nodes with a gateway pod get traffic and the client's address is kept
    # (https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/
    # #preserving-the-client-source-ip). EKS: the AWS Load Balancer Controller registers pod IPs (IP
    # target mode); the NLB connects from its private VPC addresses (or the client's, with
    # preserve_client_ip) whatever the policy (components/cluster/aws/load_balancer.py).
    if a.cni is Cni.CILIUM:
        local = service.get("externalTrafficPolicy") == "Local"
        source: Source = Outside(CLIENT_IP, "client") if local else Node(a.other_node, local=False)
    else:
        source = Outside(a.load_balancer, "NLB private address")
    for port in (80, 443):
        found.append(Connection(f"load balancer -> gateway:{targets[port]}", source, pod, targets[port],
                                "cloud L4 load balancer (see gateway_connections)"))  # fmt: skip
    # Knative's data path: the gateway to the activator and to queue-proxy (8012 HTTP/1, 8013 h2c), the
    # activator to queue-proxy, the autoscaler scraping queue-proxy's statistics on 9090
    # (knative/serving pkg/apis/networking: BackendHTTPPort, BackendHTTP2Port, AutoscalingQueueMetricsPort)
    ns = _serving_namespace(doc)
    revision = {"serving.knative.dev/revision": "m-predictor-00001", "serving.kserve.io/inferenceservice": "m",
                "component": "predictor"}  # fmt: skip
    model = Pod(Namespace.SERVING.value, revision, a.pod)
    activator = Pod(ns, {"app": "activator", "role": "activator"}, a.pod)
    autoscaler = Pod(ns, {"app": "autoscaler"}, a.pod)
    for port in (8012, 8013):
        found.append(Connection(f"gateway -> activator:{port}", pod, activator, port, "Knative activator ports"))
        found.append(Connection(f"gateway -> queue-proxy:{port}", pod, model, port, "Knative queue-proxy ports"))
        found.append(Connection(f"activator -> queue-proxy:{port}", activator, model, port, "Knative activator"))
    found.append(Connection("autoscaler -> queue-proxy:9090", autoscaler, model, 9090, "Knative stats scraper"))
    # Standard (raw) mode, which the README offers: the gateway routes the InferenceService's Ingress to its
    # predictor Service, whose target is the model container's port 8080 (kserve v0.20 raw reconciler)
    raw = Pod(Namespace.SERVING.value, {"serving.kserve.io/inferenceservice": "m", "component": "predictor",
                                        "app": "isvc.m-predictor"}, a.pod)  # fmt: skip
    found.append(Connection("gateway -> raw predictor:8080", pod, raw, 8080, "KServe Standard mode"))
    # kubelet probes from the pod's own node: the gateway's status port, queue-proxy's readiness
    node = Node(a.node, local=True)
    found.append(Connection("kubelet -> gateway:15021", node, pod, 15021, "gateway chart readinessProbe"))
    found.append(Connection("kubelet -> queue-proxy:8012", node, model, 8012, "queue-proxy readiness probe"))
    return found


def scrapes(doc: PlanDocument, a: Addresses) -> list[Connection]:
    """Every scrape Prometheus makes: the platform's scrape targets, kube-prometheus-stack's own monitors
    (kubelet, node-exporter, CoreDNS, the API server) and the model servers' annotated metrics ports."""
    release = _release(doc, "kube-prometheus-stack")
    if release is None:
        return []
    values = release.get("values") or {}
    prom = Pod(
        release["namespace"],
        {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
        a.pod,
    )
    found = [
        Connection(f"scrape {t.name}", prom, Pod(t.namespace.value, dict(t.selector), a.pod), t.number, "SCRAPES")
        for t in SCRAPES
    ]
    # in-cluster PostgreSQL: every instance of each CloudNativePG Cluster serves /metrics on its postgres
    # container's `metrics` port 9187 (cloudnative-pg v1.30.0 pkg/specs/pods.go, instance pods labelled
    # cnpg.io/cluster and cnpg.io/podRole instance), which the platform scrapes (CNPG_SCRAPE)
    for cluster in doc.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster"):
        meta = cluster.inputs.get("metadata") or {}
        labels = {"cnpg.io/cluster": str(meta.get("name")), "cnpg.io/podRole": "instance"}
        instance = Pod(str(meta.get("namespace")), {**labels, "cnpg.io/instanceRole": "primary"}, a.pod)
        found.append(Connection("scrape cnpg instances:9187", prom, instance, 9187, "cloudnative-pg v1.30.0 pods.go"))
    # kube-prometheus-stack 88.5.3 values.yaml: coreDns.enabled true by default, a Service on 9153 selecting
    # k8s-app: kube-dns. EKS runs CoreDNS, whose Corefile serves `prometheus :9153`; GKE runs kube-dns
    # (kubedns, dnsmasq, sidecar), which serves no 9153.
    if (values.get("coreDns") or {}).get("enabled", True):
        dns = Pod(KUBE_SYSTEM, {"k8s-app": "kube-dns"}, a.pod)
        found.append(Connection("scrape coredns:9153", prom, dns, 9153, "kube-prometheus-stack coreDns",
                                listener=a.cni is not Cni.CILIUM))  # fmt: skip
    # kubeApiServer (the `kubernetes` Service's endpoints: the control plane), kubelet and node-exporter
    # (host network, so the node's own address); Prometheus runs on another node than most of them
    api = Outside(a.control_plane, "API server")
    found.append(
        Connection(f"scrape apiserver:{a.api_port}", prom, api, a.api_port, "kube-prometheus-stack kubeApiServer")
    )
    node = Node(a.other_node, local=False)
    found.append(Connection("scrape kubelet:10250", prom, node, 10250, "kube-prometheus-stack kubelet"))
    found.append(Connection("scrape node-exporter:9100", prom, node, 9100, "prometheus-node-exporter hostNetwork"))
    # the model servers' metrics ports, as each ServingRuntime annotates them (KServe's
    # prometheus.kserve.io/port: the port Prometheus is to scrape on the predictor pod)
    for r in doc.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"):
        port = (r.inputs["spec"].get("annotations") or {}).get("prometheus.kserve.io/port")
        if port:
            model = Pod(r.inputs["metadata"]["namespace"], {"component": "predictor"}, a.pod)
            found.append(Connection(f"scrape {r.inputs['metadata']['name']}:{port}", prom, model, int(port),
                                    "ServingRuntime prometheus.kserve.io/port"))  # fmt: skip
    return found


def strimzi_connections(doc: PlanDocument, a: Addresses) -> list[Connection]:
    """What Strimzi 1.2.0's operator and the pods it makes connect to, where its chart is installed
    (strimzi/strimzi-kafka-operator @ 1.2.0): the Kubernetes API from the operator, the entity operator and
    the Kafka nodes (their KubernetesSecretConfigProvider reads certificates from Secrets:
    KafkaBrokerConfigurationBuilder.java); the operator to each node's control plane 9090, replication 9091
    and KafkaAgent 8443; the entity operator to replication 9091; the nodes to each other on 9090 and 9091
    (KafkaCluster.java generateNetworkPolicy's rules, which name exactly these peers). No webhook."""
    release = _release(doc, "strimzi-kafka-operator")
    if release is None:
        return []
    ns = release["namespace"]
    [kafka] = [r.inputs for r in doc.resources if r.inputs.get("kind") == "Kafka"] or [None]
    if kafka is None:
        return []
    cluster = kafka["metadata"]["name"]
    operator = Pod(ns, {"name": "strimzi-cluster-operator", "strimzi.io/kind": "cluster-operator"}, a.pod)
    labels = {"strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka", "strimzi.io/name": f"{cluster}-kafka"}
    node = Pod(ns, {**labels, "strimzi.io/broker-role": "true", "strimzi.io/controller-role": "true"}, a.pod)
    entity = Pod(ns, {"strimzi.io/cluster": cluster, "strimzi.io/name": f"{cluster}-entity-operator"}, a.pod)
    api = Outside(a.control_plane, "API server")
    source = "Strimzi 1.2.0 (see strimzi_connections)"
    found = [Connection(f"strimzi {p} -> API server", pod, api, a.api_port, source)
             for p, pod in (("operator", operator), ("entity operator", entity), ("kafka node", node))]  # fmt: skip
    found += [
        Connection(f"strimzi operator -> node:{port}", operator, node, port, source) for port in (9090, 9091, 8443)
    ]
    found += [Connection("strimzi entity operator -> node:9091", entity, node, 9091, source)]
    found += [Connection(f"strimzi node -> node:{port}", node, node, port, source) for port in (9090, 9091)]
    return found


OBJECT_STORAGE_IP = "52.216.8.1"  # a public address of the cloud's object storage API (any outside address does)


def _service_pods(doc: PlanDocument, host: str, a: Addresses) -> Pod | None:
    """The pods behind `<service>.<namespace>.svc...`, read from the plan's Deployment of that name (the
    platform names its Services after their Deployments)."""
    name, namespace = host.split(".")[:2]
    for r in doc.by_type("kubernetes:apps/v1:Deployment"):
        meta = r.inputs.get("metadata") or {}
        if meta.get("name") == name and meta.get("namespace") == namespace:
            labels = (((r.inputs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
            return Pod(namespace, dict(labels), a.pod)
    return None


def barman_connections(doc: PlanDocument, a: Addresses) -> list[Connection]:
    """In-cluster PostgreSQL's backups, where the Barman Cloud plugin's chart is installed (plugin-barman-cloud
    chart 0.7.0, plugin v0.13.0): the CloudNativePG operator calls the plugin's gRPC server at its Service's port
    9090 (targetPort 9090; cloudnative-pg v1.30.0 internal/controller/plugin_controller.go dials
    `<service>.<namespace>.svc:<cnpg.io/pluginPort>`); the plugin reconciles ObjectStores, Roles and
    RoleBindings through the API server (chart templates/rbac.yaml); the sidecar it injects into each instance
    pod uploads WAL and base backups to each ObjectStore's endpoint: its endpointURL (the local stack's
    in-cluster store) or the cloud's storage API over HTTPS, which on EKS is also where IRSA's token exchange
    (STS) is."""
    release = _release(doc, "plugin-barman-cloud")
    operator = _release(doc, "cloudnative-pg")
    stores = [r.inputs for r in doc.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")]
    if release is None or operator is None or not stores:
        return []
    source = "plugin-barman-cloud 0.7.0 / v0.13.0 (see barman_connections)"
    plugin = Pod(release["namespace"], {"app.kubernetes.io/name": "plugin-barman-cloud",
                                        "app.kubernetes.io/instance": release["name"]}, a.pod)  # fmt: skip
    cnpg = Pod(operator["namespace"], {"app.kubernetes.io/name": "cloudnative-pg",
                                       "app.kubernetes.io/instance": operator["name"]}, a.pod)  # fmt: skip
    found = [
        Connection("cnpg operator -> barman-cloud plugin:9090", cnpg, plugin, 9090, source),
        Connection("barman-cloud plugin -> API server", plugin, Outside(a.control_plane, "API server"), a.api_port,
                   source),
    ]  # fmt: skip
    for cluster in doc.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster"):
        meta = cluster.inputs.get("metadata") or {}
        labels = {"cnpg.io/cluster": str(meta.get("name")), "cnpg.io/podRole": "instance"}
        instance = Pod(str(meta.get("namespace")), {**labels, "cnpg.io/instanceRole": "primary"}, a.pod)
        for store in stores:
            endpoint = ((store.get("spec") or {}).get("configuration") or {}).get("endpointURL")
            if endpoint:
                host, _, port = endpoint.split("://", 1)[1].split("/", 1)[0].partition(":")
                to = _service_pods(doc, host, a)
                if to is not None:
                    name = f"postgres backups -> {host}:{port}"
                    found.append(Connection(name, instance, to, int(port or 80), source))
            else:
                storage = Outside(OBJECT_STORAGE_IP, "the cloud's object storage API")
                found.append(Connection("postgres backups -> object storage:443", instance, storage, 443, source))
    return found


def connections(doc: PlanDocument) -> tuple[Addresses, list[Connection]]:
    a = addresses(doc)
    return a, (
        webhook_calls(doc, a)
        + gateway_connections(doc, a)
        + scrapes(doc, a)
        + strimzi_connections(doc, a)
        + barman_connections(doc, a)
    )
