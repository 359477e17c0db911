"""Kubernetes objects the program declares directly, and the namespace guard rails they add up to.

Every such object must validate against the Kubernetes OpenAPI schema of the cluster's minor in strict
mode (unknown fields rejected), offline, via the kubernetes-validate package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest

from components.contracts import Namespace
from components.guardrails import FLOWS, POD_SECURITY
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from mlplatform.plan.synth import PROJECT_DIR

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod", "local")  # local: the in-cluster wiring on kind
SECRET_PLACEHOLDER = "[secret]"


def _ints(value: Any) -> Any:
    """The SDK's wire format turns every number into a float; the schema wants integers back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def is_builtin(resource_type: str) -> bool:
    """kubernetes:<group>/<version>:<Kind> of a built-in API (core, apps, batch, *.k8s.io), not of a CRD."""
    group = resource_type.split(":")[1].rsplit("/", 1)[0]
    return group in ("core", "") or "." not in group or group.endswith(".k8s.io")


def manifests(doc: PlanDocument) -> list[tuple[Registration, dict[str, Any]]]:
    found = []
    for r in doc.resources:
        # patches carry only the fields they set (a DeploymentPatch has no selector); the API server merges them
        patch = r.type.endswith("Patch")
        if (
            r.custom
            and r.type.startswith("kubernetes:")
            and "helm.sh" not in r.type
            and is_builtin(r.type)
            and not patch
        ):
            manifest = _ints({k: v for k, v in r.inputs.items() if k not in ("__defaults",)})
            if manifest.get("stringData") == SECRET_PLACEHOLDER:  # the plan redacts a secret map whole
                manifest["stringData"] = {"redacted": "value"}
            found.append((r, manifest))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_declared_objects_validate_strictly(plan, stack: str) -> None:
    doc = plan(stack)
    clusters = [r for r in doc.resources if r.type in ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster")]
    # local: no cluster resource; the stack file's kubernetesVersion is the (existing) cluster's minor
    k8s_minor = (
        clusters[0].inputs.get("version") or clusters[0].inputs["minMasterVersion"]
        if clusters
        else load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).cluster.kubernetes_version
    )
    objects = manifests(doc)
    assert len(objects) > 20
    errors = []
    for r, manifest in objects:
        try:
            kubernetes_validate.validate(manifest, f"{k8s_minor}.0", strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{r.type} {r.name}: {e.message} at {list(e.path)}")
    assert errors == []


def test_strict_validation_rejects_an_unknown_field(dev: PlanDocument) -> None:
    [(_, manifest)] = [(r, m) for r, m in manifests(dev) if r.name == "mlplatform-training"]
    manifest["metadata"]["lables"] = {"typo": "yes"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_platform_namespace_has_pod_security_and_default_deny(plan, stack: str) -> None:
    doc = plan(stack)
    namespaces = {n.inputs["metadata"]["name"]: n for n in doc.by_type("kubernetes:core/v1:Namespace")}
    # `data` holds in-cluster data work: the database bootstrap, on both clouds
    assert set(namespaces) == {ns.value for ns in Namespace}
    policies = doc.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    for ns in (Namespace(n) for n in namespaces):
        labels = namespaces[ns.value].inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == POD_SECURITY[ns]
        assert labels["pod-security.kubernetes.io/enforce-version"].startswith("v1.")
        [deny] = [p for p in policies if p.name == f"mlplatform-{ns.value}-default-deny"]
        spec = deny.inputs["spec"]
        assert not spec["podSelector"].get("matchLabels") and set(spec["policyTypes"]) == {"Ingress", "Egress"}
        assert not spec.get("ingress") and not spec.get("egress")
    for policy in policies:  # no policy can race its namespace
        ns_urn = namespaces[policy.inputs["metadata"]["namespace"]].urn
        assert ns_urn in policy.dependencies, policy.name


def _allows(
    doc: PlanDocument,
    src: Namespace,
    dst: Namespace,
    app: str | dict[str, str],
    port: int,
    src_labels: Mapping[str, str] | None = None,
) -> bool:
    """Whether both sides' policies allow src pods (any, or those carrying `src_labels`) -> dst pods labelled
    app (or carrying these labels) on TCP port."""
    labels = app if isinstance(app, dict) else {"app.kubernetes.io/name": app}
    policies = doc.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")

    def peer_ok(peer: dict, ns: Namespace, labels: Mapping[str, str] | None) -> bool:
        ns_match = peer.get("namespaceSelector", {}).get("matchLabels", {})
        pod_match = peer.get("podSelector", {}).get("matchLabels", {})
        return ns_match == {"kubernetes.io/metadata.name": ns.value} and (
            not pod_match or (labels is not None and pod_match.items() <= labels.items())
        )

    def port_ok(rule: dict) -> bool:
        return not rule.get("ports") or any(p["port"] == port for p in rule["ports"])

    ingress = any(
        p.inputs["metadata"]["namespace"] == dst.value
        and p.inputs["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and any(
            port_ok(rule) and any(peer_ok(peer, src, src_labels) for peer in rule.get("from", []))
            for rule in p.inputs["spec"].get("ingress") or []
        )
        for p in policies
    )
    egress = any(
        p.inputs["metadata"]["namespace"] == src.value
        and any(
            port_ok(rule) and any(peer_ok(peer, dst, labels) for peer in rule.get("to", []))
            for rule in p.inputs["spec"].get("egress") or []
        )
        for p in policies
    )
    return ingress and egress


def test_flows_follow_the_design_arrows_and_nothing_else(prod: PlanDocument) -> None:
    policies = prod.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    for flow in FLOWS:
        for src in flow.sources:
            assert _allows(prod, src, flow.to, flow.pod_labels, flow.port, flow.source_pods), (flow.name, src)
            if flow.source_pods:  # the namespace's other pods are not admitted
                assert not _allows(prod, src, flow.to, flow.pod_labels, flow.port), (flow.name, src)
        if flow.from_anywhere:  # a load balancer's clients: admitted by address, on the flow's port only
            [policy] = [p for p in policies if p.name.endswith(f"-allow-{flow.name}-in")]
            [rule] = policy.inputs["spec"]["ingress"]
            assert {"ipBlock": {"cidr": "0.0.0.0/0"}} in rule["from"] and rule["ports"] == [
                {"port": flow.port, "protocol": "TCP"}
            ]
    # not on the design: serving may not reach Ray, training may not reach the feature server
    assert not _allows(prod, Namespace.SERVING, Namespace.TRAINING, "kuberay", 8265)
    assert not _allows(prod, Namespace.TRAINING, Namespace.PLATFORM, "feast-feature-server", 6566)
    assert not _allows(prod, Namespace.DATA, Namespace.PLATFORM, "mlflow", 5000)


def test_training_gpu_quota_is_the_pools_capacity(prod: PlanDocument, gcp_prod: PlanDocument) -> None:
    """The GPU units the pools can advertise: nodes x GPUs x shares (time-slices from the device plugin's
    config on EKS; on GKE time-sharing clients or MIG instances per GPU)."""
    import yaml

    from mlplatform.config.models import MIG_PARTITIONS

    plugin = prod.one("kubernetes:helm.sh/v3:Release", "mlplatform-nvidia-device-plugin").inputs["values"]
    slices = {
        name: yaml.safe_load(text)
        .get("sharing", {})
        .get("timeSlicing", {})
        .get("resources", [{}])[0]
        .get("replicas", 1)
        for name, text in plugin.get("config", {}).get("map", {}).items()
    }
    for doc, node_group_type in ((prod, "aws:eks/nodeGroup:NodeGroup"), (gcp_prod, "gcp:container/nodePool:NodePool")):
        quota = doc.one("kubernetes:core/v1:ResourceQuota", "mlplatform-training-gpu-quota").inputs
        assert quota["metadata"]["namespace"] == "training"
        gpu_max = 0
        for pool in doc.by_type(node_group_type):
            if node_group_type.startswith("aws"):
                labels = pool.inputs["labels"]
                if labels.get("nvidia.com/gpu.present") == "true":
                    shares = slices.get(labels.get("nvidia.com/device-plugin.config"), 1)
                    gpu_max += int(pool.inputs["scalingConfig"]["maxSize"]) * shares  # one GPU per node in prod
            elif pool.inputs["nodeConfig"].get("guestAccelerators"):
                [accel] = pool.inputs["nodeConfig"]["guestAccelerators"]
                shares = (
                    MIG_PARTITIONS[accel["type"]][accel["gpuPartitionSize"]]
                    if "gpuPartitionSize" in accel
                    else int(accel.get("gpuSharingConfig", {}).get("maxSharedClientsPerGpu", 1))
                )
                gpu_max += int(pool.inputs["autoscaling"]["totalMaxNodeCount"]) * int(accel["count"]) * shares
        assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": str(gpu_max)} and gpu_max > 0
