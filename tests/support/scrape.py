"""Series as Prometheus stores them: the labels an exporter exposes, merged with the target labels the
Prometheus operator's monitor gives every series of the target. Alert and dashboard tests build their
promtool input with this, so a rule that groups by a label the stored series do not carry is caught.

What is modelled, from the pinned upstream code:
- target labels of a PodMonitor / ServiceMonitor endpoint (prometheus-operator v0.93
  `pkg/prometheus/promcfg.go`, generatePodMonitorConfig / generateServiceMonitorConfig): `namespace`,
  `container`, `pod`, `job` (`<monitor namespace>/<monitor name>` for a PodMonitor, the Service's name for a
  ServiceMonitor), `endpoint` (the port name), `service` (ServiceMonitor), `instance` (the address), then
  the endpoint's own `relabelings` (replace and keep; anything else fails the test rather than being guessed);
- the merge (prometheus/prometheus `scrape/scrape.go`, mutateSampleLabels): without honor_labels a target
  label wins and the exposed label of the same name is kept as `exported_<name>`; with honor_labels the
  exposed label wins. Empty label values are no label at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.contracts import Namespace
from components.guardrails import SCRAPES, ScrapeTarget
from components.observability.prometheus import monitor

MONITORS_NAMESPACE = Namespace.MONITORING.value  # where components/observability/prometheus.py puts them


def sanitize(name: str) -> str:
    """Kubernetes SD's meta label spelling of a pod label key (`serving.knative.dev/revision` ->
    `serving_knative_dev_revision`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


@dataclass(frozen=True)
class Pod:
    """A pod as Kubernetes SD sees it: its labels as the upstream controller sets them, and the container
    and named port the scrape uses."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    container: str
    ports: Mapping[str, int]  # the container's named ports
    ip: str = "10.1.2.3"
    annotations: Mapping[str, str] = field(default_factory=dict)


def scrape_target(name: str) -> ScrapeTarget:
    [target] = [t for t in SCRAPES if t.name == name]
    return target


def _relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("sourceLabels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                result = match.expand(re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1")))
                if result:
                    labels[rule["targetLabel"]] = result
                else:
                    labels.pop(rule["targetLabel"], None)
        else:
            raise AssertionError(f"relabel action {action} is not modelled here")
    return labels


def target_labels(target: ScrapeTarget, pod: Pod, service: str | None = None) -> dict[str, str]:
    """The labels Prometheus gives every series scraped from this pod through the target's monitor (as the
    program declares it), or fails when the monitor would not scrape the pod at all."""
    kind, spec = monitor(target)
    assert spec["namespaceSelector"]["matchNames"] == [pod.namespace], f"{target.name} does not watch {pod.namespace}"
    if kind == "PodMonitor":
        [endpoint] = spec["podMetricsEndpoints"]
        selector = spec["selector"]["matchLabels"]
        assert all(pod.labels.get(k) == v for k, v in selector.items()), f"{target.name} does not select {pod.name}"
    else:
        [endpoint] = spec["endpoints"]
        assert service is not None, "a ServiceMonitor scrapes through a Service: name it"
    meta = {
        "__address__": f"{pod.ip}:{target.number}",
        "__meta_kubernetes_namespace": pod.namespace,
        "__meta_kubernetes_pod_name": pod.name,
        "__meta_kubernetes_pod_ip": pod.ip,
        "__meta_kubernetes_pod_container_name": pod.container,
        **{f"__meta_kubernetes_pod_label_{sanitize(k)}": v for k, v in pod.labels.items()},
        **{f"__meta_kubernetes_pod_annotation_{sanitize(k)}": v for k, v in pod.annotations.items()},
    }
    port = endpoint.get("port")
    if port and kind == "PodMonitor":
        assert pod.ports.get(port) == target.number, f"{pod.name} has no port {port} ({target.number})"
    labels = {
        **meta,
        "namespace": pod.namespace,
        "container": pod.container,
        "pod": pod.name,
        "job": f"{MONITORS_NAMESPACE}/{target.name}" if kind == "PodMonitor" else str(service),
    }
    if kind == "ServiceMonitor":
        labels["service"] = str(service)
    if port:
        labels["endpoint"] = port
    relabelled = _relabel(list(endpoint.get("relabelings", [])), labels)
    assert relabelled is not None, f"{target.name}'s relabelings drop {pod.name}"
    relabelled["instance"] = relabelled["__address__"]
    return {k: v for k, v in relabelled.items() if not k.startswith("__")}


def stored(exposed: Mapping[str, str], target: Mapping[str, str], honor_labels: bool = False) -> dict[str, str]:
    """One exposed series' labels as Prometheus stores them, merged with the target's."""
    result = {k: v for k, v in exposed.items() if v != ""}
    conflicts: list[tuple[str, str]] = []
    for name, value in target.items():
        if honor_labels:
            result.setdefault(name, value)
            continue
        if name in result:
            conflicts.append((name, result[name]))
        result[name] = value
    for name, value in sorted(conflicts, key=lambda c: len(c[0])):
        renamed = f"exported_{name}"
        while renamed in result:
            renamed = f"exported_{renamed}"
        result[renamed] = value
    return {k: v for k, v in result.items() if v != ""}


def series_text(metric: str, labels: Mapping[str, str]) -> str:
    """promtool's input series notation."""
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
