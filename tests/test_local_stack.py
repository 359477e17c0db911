"""`cloud: local` (Pulumi.local.yaml): the whole platform on a cluster reached by a kubeconfig context (kind),
with no cloud resource and no cloud provider; the cluster adapter's contracts as the in-cluster layers read
them (components/cluster/local/)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from components.cluster.local.network import KUBEADM_API_SERVER_PORT
from components.cluster.local.storage_class import KIND_STORAGE_CLASS
from components.contracts import (
    GPU_TAINT,
    POOL_LABEL,
    ContainerRegistry,
    LocalClusterFacts,
    NodePoolContract,
    pool_contract,
)
from components.images import registry_logins
from components.storage.local_registry import local_registry
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.config.profiles import KIND_NODE_CIDR, KIND_REGISTRY
from mlplatform.estimate.report import report
from mlplatform.netpol import Cni
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize

# providers whose resources never leave the deployer's machine or the cluster: Kubernetes objects, random
# values and keys kept in the state, the image build (pushed to the local registry)
LOCAL_PACKAGES = {"kubernetes", "random", "tls", "docker-build", "command"}
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _stack_file() -> dict[str, Any]:
    return read_stack_file(PROJECT_DIR, "local")


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


# -- the plan: no cloud at all ------------------------------------------------------------------------


def test_the_local_plan_holds_no_cloud_resource_and_no_cloud_provider(local: PlanDocument) -> None:
    packages = {r.type.removeprefix("pulumi:providers:").split(":")[0] for r in local.resources}
    packages.discard("mlplatform")  # the program's own components
    packages.discard("pulumi")  # the stack
    assert packages <= LOCAL_PACKAGES, packages - LOCAL_PACKAGES
    assert not [r.type for r in local.resources if r.type.startswith(("aws:", "gcp:"))]
    providers = [r for r in local.resources if r.type.startswith("pulumi:providers:")]
    assert {r.type for r in providers} <= {f"pulumi:providers:{p}" for p in LOCAL_PACKAGES}
    assert local.outputs["cloud"] == "local"


def test_every_kubernetes_object_goes_to_the_configured_context(local: PlanDocument) -> None:
    """One Kubernetes provider, on the stack file's context of the user's own kubeconfig (none built or stored),
    and every Kubernetes object created through it."""
    context = _stack_file()["mlplatform:cluster"]["kubeconfigContext"]
    (provider,) = local.by_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == context
    assert "kubeconfig" not in provider.inputs  # the default kubeconfig ($KUBECONFIG or ~/.kube/config)
    objects = [r for r in local.resources if r.custom and r.type.startswith("kubernetes:")]
    assert objects
    assert {r.provider.rsplit("::", 1)[0] for r in objects} == {provider.urn}
    assert local.outputs["clusterName"] == context


def test_pods_land_on_any_node_of_a_one_node_cluster(local: PlanDocument) -> None:
    """The profile's pools select nodes by their configured nodeLabels, empty on a kind cluster: no pod of
    the plan names a node label its nodes do not carry (a cloud pool's mlplatform.io/pool would leave every
    pod Pending)."""
    selectors = [m["nodeSelector"] for r in local.resources for m in _walk(r.inputs) if "nodeSelector" in m]
    selectors += [m["node_selector"] for r in local.resources for m in _walk(r.inputs) if "node_selector" in m]
    assert selectors
    named = [s for s in selectors if isinstance(s, Mapping) and POOL_LABEL in s]
    assert named == []


def test_a_labelled_pool_is_selected_by_its_node_labels() -> None:
    """A pool's nodeLabels are the selector every consumer gets from the contract (node_selector()), and a
    workload pinned to the pool carries them."""
    config = _stack_file()
    labels = {"node-role.mlplatform.io/cpu": "true"}
    cluster = dict(config["mlplatform:cluster"])
    cluster["cpuPool"] = {**cluster["cpuPool"], "nodeLabels": labels}
    config = {**config, "mlplatform:cluster": cluster}
    doc = synthesize("local", config_map=config)
    ray = doc.by_type("kubernetes:ray.io/v1:RayCluster")
    assert ray, "the Ray cluster runs on the CPU pool"
    head = ray[0].inputs["spec"]["headGroupSpec"]["template"]["spec"]
    assert head["nodeSelector"] == labels


def test_pool_contracts_carry_their_selector() -> None:
    cloud = pool_contract("cpu")
    assert cloud.node_selector() == {POOL_LABEL: "cpu"}
    assert cloud.labels[POOL_LABEL] == "cpu"  # what the cloud adapters label their nodes with
    local = pool_contract("cpu", node_labels={})
    assert local.node_selector() == {}  # any node
    assert local.tolerations() == []
    gpu = pool_contract("gpu", accelerator="nvidia-rtx-4090", gpus_per_node=1, node_labels={"gpu": "yes"})
    assert gpu.node_selector() == {"gpu": "yes"}
    # the toleration is kept: harmless on an untainted node, right on one tainted as the cloud pools are
    assert gpu.tolerations() == [GPU_TAINT.toleration()]
    assert gpu.is_gpu and gpu.gpu_units_per_node == 1
    # a contract made by hand, without pool_contract, still selects its pool label
    assert NodePoolContract("x", {POOL_LABEL: "x"}).node_selector() == {POOL_LABEL: "x"}


def test_a_local_gpu_pool_is_the_contract_of_its_node_labels() -> None:
    config = _stack_file()
    cluster = dict(config["mlplatform:cluster"])
    gpu = {
        "name": "gpu",
        "accelerator": "nvidia-rtx-4090",
        "acceleratorCount": 1,
        "minNodes": 1,
        "maxNodes": 1,
        "nodeLabels": {"nvidia.com/gpu.present": "true"},
    }
    cfg = load_config(namespace_values({**config, "mlplatform:cluster": {**cluster, "gpuPools": [gpu]}}), "local")
    from components.cluster.pools import configured_pools
    from components.environment import ClusterArgs

    contracts = {c.name: c for _, c in configured_pools(ClusterArgs.of(cfg))}
    assert contracts["gpu"].node_selector() == {"nvidia.com/gpu.present": "true"}
    assert contracts["gpu"].accelerator == "nvidia-rtx-4090"
    assert contracts["gpu"].gpus_per_node == 1
    assert contracts["system"].node_selector() == {} and contracts["cpu"].node_selector() == {}


# -- storage, load balancers, registry ------------------------------------------------------------------


def test_volumes_use_kinds_storage_class(local: PlanDocument) -> None:
    """kind's only StorageClass is `standard` (local-path-provisioner): every class the plan names is it,
    and the plan makes no StorageClass of its own."""
    named = {m["storageClassName"] for r in local.resources for m in _walk(r.inputs) if "storageClassName" in m}
    named |= {m["storageClass"] for r in local.resources for m in _walk(r.inputs) if "storageClass" in m}
    named = {n for n in named if isinstance(n, str)}
    assert named == {KIND_STORAGE_CLASS}
    assert not local.by_type("kubernetes:storage.k8s.io/v1:StorageClass")


def test_load_balancer_services_carry_no_cloud_annotation(local: PlanDocument) -> None:
    """Cloud Provider KIND reads no annotation: the gateway's Service asks for no AWS or GCP load balancer."""
    cloud_keys = ("service.beta.kubernetes.io/aws-", "networking.gke.io/", "cloud.google.com/")
    for r in local.resources:
        for m in _walk(r.inputs):
            annotations = m.get("annotations") if isinstance(m.get("annotations"), Mapping) else {}
            assert not [k for k in annotations if k.startswith(cloud_keys)], r.name


def test_images_are_pushed_to_the_local_registry_without_a_login(local: PlanDocument) -> None:
    images = local.by_type("docker-build:index:Image")
    assert images, "the platform builds its own images on every stack"
    for image in images:
        assert all(tag.startswith(f"{KIND_REGISTRY}/mlplatform/") for tag in image.inputs["tags"]), image.name
        assert not image.inputs.get("registries")  # the kind registry takes anonymous pushes


def test_the_local_registry_contract() -> None:
    registry = local_registry(LocalClusterFacts(kubeconfig_context="kind-mlplatform", registry=KIND_REGISTRY))
    assert isinstance(registry, ContainerRegistry)
    assert registry.username is None and registry.password is None
    assert registry_logins(registry) is None
    assert not registry.one_image_per_repository


# -- the network facts NetworkPolicies use --------------------------------------------------------------


def _egress_rules(doc: PlanDocument) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for r in doc.by_type(NETPOL):
        for rule in r.inputs["spec"].get("egress") or []:
            yield r.name, rule


def test_no_egress_rule_admits_every_destination_by_an_empty_peer_list(local: PlanDocument) -> None:
    """`to: []` admits every destination (networking.k8s.io/v1 NetworkPolicyEgressRule): a rule built from an
    empty list of addresses (local has no managed data service range) must be left out instead."""
    assert [name for name, rule in _egress_rules(local) if "to" in rule and not rule["to"]] == []


def test_pods_reach_the_api_server_on_kubeadms_port(local: PlanDocument) -> None:
    """On kind the `kubernetes` Service's endpoint is the control-plane node's 6443, which a NetworkPolicy
    sees after DNAT: the API clients' egress names it on the node network."""
    api_rules = [
        rule
        for _, rule in _egress_rules(local)
        if any(p.get("ipBlock", {}).get("cidr") == KIND_NODE_CIDR for p in rule.get("to") or [])
        and {p.get("port") for p in rule.get("ports") or []} == {KUBEADM_API_SERVER_PORT}
    ]
    assert api_rules
    monitoring = [
        r
        for r in local.by_type(NETPOL)
        if r.inputs["metadata"]["namespace"] == "monitoring" and r.inputs["spec"].get("egress")
    ]
    ports = {p.get("port") for r in monitoring for rule in r.inputs["spec"]["egress"] for p in rule.get("ports") or []}
    assert KUBEADM_API_SERVER_PORT in ports  # Prometheus scrapes the API server's endpoint


def test_every_connection_passes_the_policies_under_kindnet(local: PlanDocument) -> None:
    from mlplatform.connections import connections
    from mlplatform.netpol import PolicySet

    addrs, found = connections(local)
    assert addrs.cni is Cni.KINDNET and addrs.api_port == KUBEADM_API_SERVER_PORT
    policies = PolicySet(local, addrs.cni)
    assert len(found) > 30
    failures = [f"{c.name}: {v.why}" for c in found if not (v := policies.decide(c.source, c.to, c.port)).allowed]
    assert failures == []


# -- config and report ------------------------------------------------------------------------------


def test_the_stack_file_is_the_local_profile() -> None:
    cfg = load_config(namespace_values(_stack_file()), "local")
    assert cfg.cloud.value == "local"
    assert cfg.cluster.registry == KIND_REGISTRY
    assert cfg.cluster.node_cidrs == [KIND_NODE_CIDR]
    assert cfg.data.in_cluster() == ["postgres", "redis", "kafka"]
    assert all(p.machine_type is None for p in (cfg.cluster.system_pool, cfg.cluster.cpu_pool))


def test_sso_is_refused_on_local() -> None:
    config = {
        **_stack_file(),
        "mlplatform:client": {
            "domain": "ml.example.com",
            "tls": {"kind": "provided", "name": "my-issuer"},
            "sso": {
                "issuerUrl": "https://login.example.com/realms/ml",
                "clientId": "mlplatform-ui",
                "clientSecret": {"secretId": "mlplatform/sso-client"},
                "adminGroups": ["ml-admins"],
                "userGroups": ["ml-users"],
                "endpoints": {
                    "authorizationEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/auth",
                    "tokenEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/token",
                    "userinfoEndpoint": "https://login.example.com/realms/ml/protocol/openid-connect/userinfo",
                },
            },
        },
    }
    from mlplatform.config import ConfigError

    with pytest.raises(ConfigError, match=r"client\.sso is not available on local"):
        load_config(namespace_values(config), "local")


def test_the_report_prices_nothing_on_local(local: PlanDocument) -> None:
    text = report(local, date(2026, 12, 3))
    assert "none priced on local" in text
    assert "not priced" not in text  # no table lookup of a cloud price fails


def test_the_stack_file_documents_every_key() -> None:
    """Each key of Pulumi.local.yaml's cluster section has a comment (the file is the local quickstart's)."""
    lines = (Path(PROJECT_DIR) / "Pulumi.local.yaml").read_text().splitlines()
    for key in ("kubeconfigContext", "nodeCidrs", "registry", "systemPool", "cpuPool", "gpuPools"):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
        assert lines[at - 1].strip().startswith("#"), key
