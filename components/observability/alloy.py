"""Grafana Alloy 1.18 (chart 1.11.1) as a DaemonSet that tails every container's log file on its node and
pushes the lines to Loki, labelled with namespace, pod, container and node. Promtail, which did this
before, reached end of life on 2026-03-02 and left Loki in 3.7.3.

It runs in `monitoring-agents` (Pod Security privileged): reading /var/log/pods from the host needs a
hostPath volume and root, which `monitoring` (restricted) refuses. Discovery asks the API server only for
the pods of its own node, so each agent sees exactly the files it can read.

helm.v4.Chart: no hooks and no server-side lookups; the PodLogs CRD subchart is off (nothing here uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.guardrails import ALLOY_PODS
from components.kube import pinned_chart
from mlplatform.pins import ChartPin

RELEASE = ALLOY_PODS["app.kubernetes.io/instance"]  # the chart labels its pods with the release name
# the labels every log stream carries (Grafana's dashboards and the README's LogQL examples use them)
STREAM_LABELS = ("namespace", "pod", "container", "node")
# Alloy's data directory on the node. loki.source.file keeps how far it read each file in
# <storage.path>/loki.source.file.<name>/positions.yml (grafana/alloy
# internal/component/loki/source/file/file.go); at the chart's default, /tmp/alloy in the container, a
# restarted pod starts without them and pushes every log on the node again. One agent per node, so one
# directory per node; created by the kubelet (DirectoryOrCreate), written as root like the log reads.
STORAGE_PATH = "/var/lib/alloy"
STORAGE_VOLUME = "alloy-storage"


@dataclass(frozen=True)
class AlloyArgs:
    namespace: k8s.core.v1.Namespace  # monitoring-agents
    pin: ChartPin
    loki_push_url: str
    provider: k8s.Provider


def pipeline(loki_push_url: str) -> str:
    """Alloy's configuration: this node's pods -> their CRI log files -> Loki."""
    meta = {
        "namespace": "__meta_kubernetes_namespace",
        "pod": "__meta_kubernetes_pod_name",
        "container": "__meta_kubernetes_pod_container_name",
        "node": "__meta_kubernetes_pod_node_name",
    }
    rules = "".join(
        f'  rule {{\n    source_labels = ["{meta[label]}"]\n    target_label  = "{label}"\n  }}\n'
        for label in STREAM_LABELS
    )
    return f"""discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
{rules}  rule {{
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    replacement   = "/var/log/pods/*$1/*.log"
    target_label  = "__path__"
  }}
}}

local.file_match "pods" {{
  path_targets = discovery.relabel.pods.output
}}

loki.source.file "pods" {{
  targets    = local.file_match.pods.targets
  forward_to = [loki.process.pods.receiver]
}}

loki.process "pods" {{
  stage.cri {{}}
  forward_to = [loki.write.platform.receiver]
}}

loki.write "platform" {{
  endpoint {{
    url = "{loki_push_url}"
  }}
}}
"""


def alloy_values(args: AlloyArgs) -> dict[str, object]:
    return {
        "crds": {"create": False},
        "alloy": {
            "configMap": {"content": pipeline(args.loki_push_url)},
            "storagePath": STORAGE_PATH,
            "mounts": {"varlog": True, "extra": [{"name": STORAGE_VOLUME, "mountPath": STORAGE_PATH}]},
            "enableReporting": False,
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        },
        "controller": {
            "type": "daemonset",
            # every node, GPU nodes included: their pods log too
            "tolerations": [{"operator": "Exists"}],
            "volumes": {
                "extra": [{"name": STORAGE_VOLUME, "hostPath": {"path": STORAGE_PATH, "type": "DirectoryOrCreate"}}]
            },
        },
        # only what discovery reads: pods and namespaces, cluster-wide (the chart's default also grants every
        # Secret and ConfigMap in the cluster). templates/rbac.yaml concatenates the two lists into one
        # ClusterRole, and an empty one renders a stray `[]` that breaks the manifest, so each has one rule.
        "rbac": {
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            "clusterRules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}],
        },
    }


class Alloy(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlloyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Alloy", name, None, opts)
        pinned_chart(
            self, name, args.pin, args.namespace.metadata.name, alloy_values(args), args.provider, release_name=RELEASE
        )
        self.register_outputs({"lokiPushUrl": args.loki_push_url})
