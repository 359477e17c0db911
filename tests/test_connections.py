"""Connections as upstream makes them: every connection a pinned component makes (mlplatform/connections.py,
each with its upstream source) decided against the stack's NetworkPolicies with its CNI's semantics
(mlplatform/netpol.py), on all four stacks."""

from __future__ import annotations

import pytest

from components.cluster.gcp.network import GKE_CONTROL_PLANE_PORTS
from components.guardrails import (
    AIRFLOW_PODS,
    MLFLOW_PORT,
    NAME_LABEL,
    PROMETHEUS_PODS,
    PROMETHEUS_PORT,
    RAY_CLIENT_PORT,
    RAY_DASHBOARD_PORT,
)
from mlplatform.connections import Connection, connections
from mlplatform.netpol import Cni, Node, Outside, Pod, PolicySet, firewall_allows
from mlplatform.plan.document import PlanDocument
from tests.support.registrations import custom_registration

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind


def _verdict(doc: PlanDocument, policies: PolicySet, c: Connection) -> str | None:
    """None when the connection works, else why not."""
    if not c.listener:
        return "nothing listens on the port (the scrape target is always down)"
    crosses = c.vpc_firewall and isinstance(c.source, Outside)
    if crosses and not firewall_allows(doc, c.source.ip, c.port, GKE_CONTROL_PLANE_PORTS):
        return "the VPC firewall drops it (GKE opens 443 and 10250 to the control plane only)"
    verdict = policies.decide(c.source, c.to, c.port)
    return None if verdict.allowed else verdict.why


@pytest.mark.parametrize("stack", STACKS)
def test_every_upstream_connection_passes_the_policies(plan, stack: str) -> None:
    doc = plan(stack)
    addrs, found = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    cloud = addrs.cni.value
    assert len(found) > 30
    failures = [f"{c.name} [{c.upstream}]: {why}" for c in found if (why := _verdict(doc, policies, c))]
    assert failures == [], cloud


# -- the evaluator's semantics, on policies written here ---------------------------------------------


def _doc(*policies: dict) -> PlanDocument:
    regs = [
        custom_registration(f"urn:{i}", "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"p{i}", p)
        for i, p in enumerate(policies)
    ]  # fmt: skip
    return PlanDocument("p", "s", regs, {})


def _ingress(ns: str, peers: list[dict], port: int) -> dict:
    return {
        "metadata": {"namespace": ns},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"port": port}]}],
        },
    }


def test_ip_blocks_match_pods_on_the_vpc_cni_but_never_under_cilium() -> None:
    doc = _doc(_ingress("b", [{"ipBlock": {"cidr": "0.0.0.0/0"}}], 80))
    client, pod = Pod("a", {"x": "y"}, "10.0.1.5"), Pod("b", {}, "10.0.1.6")
    assert PolicySet(doc, Cni.VPC_CNI).decide(client, pod, 80).allowed
    assert not PolicySet(doc, Cni.CILIUM).decide(client, pod, 80).allowed
    assert not PolicySet(doc, Cni.CILIUM).decide(Node("10.10.0.9", local=False), pod, 80).allowed
    assert PolicySet(doc, Cni.CILIUM).decide(Outside("203.0.113.7", "client"), pod, 80).allowed
    assert PolicySet(doc, Cni.CILIUM).decide(Node("10.10.0.9", local=True), pod, 81).allowed  # kubelet
    assert not PolicySet(doc, Cni.VPC_CNI).decide(client, pod, 81).allowed


def test_a_connection_needs_the_sources_egress_too() -> None:
    selector = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}}}
    deny_out = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}}
    client, pod = Pod("a", {}, "10.0.1.5"), Pod("b", {}, "10.0.1.6")
    assert PolicySet(_doc(_ingress("b", [selector], 80)), Cni.CILIUM).decide(client, pod, 80).allowed
    assert not PolicySet(_doc(_ingress("b", [selector], 80), deny_out), Cni.CILIUM).decide(client, pod, 80).allowed


# -- the model servers' metrics are scraped: KServe's predictor pods through the plan's PodMonitors -------


def _targets(monitor: dict, pod: dict) -> list[str]:
    """The addresses Prometheus scrapes for `pod` under one PodMonitor: Kubernetes pod discovery (one target
    per declared container port), the operator's port filter, then the endpoint's relabelings."""
    import re

    spec = monitor["spec"]
    if pod["namespace"] not in spec.get("namespaceSelector", {}).get("matchNames", [pod["namespace"]]):
        return []
    if any(pod["labels"].get(k) != v for k, v in spec["selector"].get("matchLabels", {}).items()):
        return []
    found = []
    for endpoint in spec["podMetricsEndpoints"]:
        for container, ports in pod["containers"].items():
            for port_name, number in ports.items():
                meta = {
                    "__address__": f"{pod['ip']}:{number}",
                    "__meta_kubernetes_pod_ip": pod["ip"],
                    "__meta_kubernetes_pod_container_name": container,
                    "__meta_kubernetes_pod_container_port_name": port_name,
                    **{
                        "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
                        for k, v in pod["annotations"].items()
                    },
                }
                if endpoint.get("port") and endpoint["port"] != port_name:
                    continue
                for rule in endpoint.get("relabelings", []):
                    value = ";".join(meta.get(s, "") for s in rule.get("sourceLabels", []))
                    match = re.fullmatch(rule.get("regex", "(.*)"), value)
                    if rule.get("action", "replace") == "keep":
                        if not match:
                            break
                    elif match:
                        meta[rule["targetLabel"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
                else:
                    found.append(meta["__address__"])
    return found


@pytest.mark.parametrize("stack", ["dev", "gcp-prod"])
def test_every_annotated_model_server_port_is_scraped(plan, stack: str) -> None:
    """Each ServingRuntime's `prometheus.kserve.io/port` reaches the predictor pod's annotations (KServe's
    metrics_aggregate_injector reads it there) while the pod declares only the model container's port (a
    Knative revision allows one) and queue-proxy's: some PodMonitor must still produce that target."""
    doc = plan(stack)
    monitors = [r.inputs for r in doc.resources if r.inputs.get("kind") == "PodMonitor"]
    runtimes = doc.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")
    annotated = [r for r in runtimes if (r.inputs["spec"].get("annotations") or {}).get("prometheus.kserve.io/port")]
    assert annotated
    for runtime in annotated:
        annotations = runtime.inputs["spec"]["annotations"]
        pod = {
            "namespace": runtime.inputs["metadata"]["namespace"],
            "labels": {"component": "predictor", "serving.kserve.io/inferenceservice": "m"},
            "annotations": annotations,
            "ip": "10.16.1.44",
            "containers": {
                "kserve-container": {"user-port": 8080},
                "queue-proxy": {
                    "http-queueadm": 8022,
                    "http-autometric": 9090,
                    "http-usermetric": 9091,
                    "queue-port": 8012,
                },
            },
        }
        addresses = [a for m in monitors for a in _targets(m, pod)]
        assert f"10.16.1.44:{annotations['prometheus.kserve.io/port']}" in addresses, runtime.name


@pytest.mark.parametrize("stack", STACKS)
def test_only_airflow_reaches_the_ray_job_api(plan, stack: str) -> None:
    """Ray's job API runs what it is sent as the training identity: Airflow's pods reach it, the other
    services of `mlplatform` do not."""
    doc = plan(stack)
    addrs, _ = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    head = Pod("training", {NAME_LABEL: "kuberay", "ray.io/node-type": "head"}, addrs.pod)
    for port in (RAY_DASHBOARD_PORT, RAY_CLIENT_PORT):
        assert policies.decide(
            Pod("mlplatform", {**AIRFLOW_PODS, "component": "worker"}, addrs.pod), head, port
        ).allowed
        assert not policies.decide(Pod("mlplatform", {NAME_LABEL: "mlflow"}, addrs.pod), head, port).allowed


@pytest.mark.parametrize("stack", STACKS)
def test_the_deployment_dag_reaches_mlflow_prometheus_and_the_api_server(plan, stack: str) -> None:
    """dags/deploy_model.py runs in Airflow's pods: MLflow's REST API, Prometheus' query API (the alert
    expressions) and the Kubernetes API (InferenceServices) are reachable from them; Prometheus' query API
    is not from the other services of `mlplatform`."""
    doc = plan(stack)
    addrs, _ = connections(doc)
    policies = PolicySet(doc, addrs.cni)
    worker = Pod("mlplatform", {**AIRFLOW_PODS, "component": "worker"}, addrs.pod)
    # the operator's labels on the Prometheus resource's pods (prometheus-operator statefulset.go)
    prometheus = Pod(
        "monitoring",
        {
            **PROMETHEUS_PODS,
            "prometheus": "kube-prometheus-stack-prometheus",
            "app.kubernetes.io/managed-by": "prometheus-operator",
        },
        addrs.pod,
    )
    mlflow = Pod("mlplatform", {NAME_LABEL: "mlflow"}, addrs.pod)
    api = Outside(addrs.control_plane, "API server (the kubernetes Service's endpoints)")
    for to, port in ((mlflow, MLFLOW_PORT), (prometheus, PROMETHEUS_PORT), (api, 443)):
        verdict = policies.decide(worker, to, port)
        assert verdict.allowed, (to, port, verdict.why)
    assert not policies.decide(mlflow, prometheus, PROMETHEUS_PORT).allowed
    assert not policies.decide(Pod("model-serving", {}, addrs.pod), prometheus, PROMETHEUS_PORT).allowed
