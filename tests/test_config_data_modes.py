"""Where each data service runs (data.<service>.mode) and the local cloud: the profile supplies the keys of
the chosen mode, the other mode's keys are refused by name, prod refuses in-cluster data services unless the
stack file accepts them, and `cloud: local` has no managed service to choose."""

from __future__ import annotations

import pytest

from mlplatform.config import Cloud, ConfigError, DataServiceMode, Profile, load_config

PROD = {"profile": "prod", "cluster": {"publicAccessCidrs": ["203.0.113.0/24"]}}
GCP_DEV = {"profile": "dev", "cloud": "gcp", "gcpProject": "mlplatform-test", "region": "us-central1"}
LOCAL = {"profile": "dev", "cloud": "local"}


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw, "t")
    return [p.render() for p in info.value.problems]


@pytest.mark.parametrize("base", [{"profile": "dev"}, GCP_DEV], ids=["aws", "gcp"])
@pytest.mark.parametrize("service", ["postgres", "redis", "kafka"])
def test_switching_a_mode_brings_that_modes_defaults(base: dict, service: str) -> None:
    """The stack file says only `mode`; the profile's defaults for that mode follow (no managed key left over)."""
    for mode in DataServiceMode:
        cfg = load_config(base | {"data": {service: {"mode": mode.value}}}, "t")
        section = getattr(cfg.data, service)
        assert section.mode is mode
        assert (section.in_cluster is not None) == (mode is DataServiceMode.IN_CLUSTER)
        assert (service in cfg.data.in_cluster()) == (mode is DataServiceMode.IN_CLUSTER)
        assert (service in cfg.data.managed()) == (mode is DataServiceMode.MANAGED)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"postgres": {"mode": "in-cluster", "machineType": "db.t4g.small"}},
            "machineType is a managed-service setting",
        ),
        (
            {"postgres": {"mode": "managed", "inCluster": {"cpu": 1, "memoryGb": 1}}},
            "inCluster is only used with mode in-cluster",
        ),
        ({"postgres": {"mode": "in-cluster", "inCluster": None}}, "inCluster is required with mode in-cluster"),
        ({"redis": {"mode": "in-cluster", "shards": 3}}, "one Valkey server"),
        ({"redis": {"mode": "in-cluster", "version": "7.1"}}, "version is a managed-service setting"),
        ({"kafka": {"mode": "in-cluster", "vcpuCount": 3}}, "vcpuCount is a managed-service setting"),
        ({"postgres": {"mode": "sideways"}}, "in-cluster"),
    ],
)
def test_keys_of_the_other_mode_are_refused_by_name(override: dict, expected: str) -> None:
    [problem] = problems({"profile": "dev", "data": override})
    service = next(iter(override))
    assert problem.startswith(f"mlplatform:data.{service}") and expected in problem, problem


def test_prod_refuses_in_cluster_data_unless_the_stack_accepts_it() -> None:
    raw = PROD | {"data": {"kafka": {"mode": "in-cluster"}}}
    [problem] = problems(raw)
    assert "data.kafka" in problem and "allowInClusterInProd" in problem
    cfg = load_config(PROD | {"data": {"kafka": {"mode": "in-cluster"}, "allowInClusterInProd": True}}, "t")
    assert cfg.data.in_cluster() == ["kafka"]
    # prod's in-cluster sizes are not dev's: three brokers over the three zones
    assert cfg.data.kafka.brokers == 3


def test_prod_stays_managed_by_default() -> None:
    for raw in (PROD, PROD | {"cloud": "gcp", "gcpProject": "mlplatform-test", "region": "us-central1", "cluster": {}}):
        cfg = load_config(raw, "t")
        assert cfg.profile is Profile.PROD and cfg.data.in_cluster() == []


def test_local_runs_every_data_service_in_the_cluster() -> None:
    cfg = load_config(LOCAL, "local")
    assert cfg.cloud is Cloud.LOCAL and sorted(cfg.data.in_cluster()) == ["kafka", "postgres", "redis"]
    assert cfg.cluster.kubeconfig_context and cfg.cluster.gpu_pools == [] and len(cfg.zones) == 1
    assert all(p.machine_type is None for p in (cfg.cluster.system_pool, cfg.cluster.cpu_pool))
    [problem] = problems(LOCAL | {"data": {"redis": {"mode": "managed"}}})
    assert problem.startswith("mlplatform:data.redis") and "mode must be in-cluster on local" in problem


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"cluster": {"systemPool": {"machineType": "t3.large"}}}, "systemPool.machineType is not used on local"),
        ({"cluster": {"kubeconfigContext": None}}, "kubeconfigContext is required on local"),
        ({"cluster": {"nodeCidrs": ["172.18.0.1/16"]}}, "not a CIDR block"),
        ({"region": "us-east-1"}, "on local the region is 'local'"),
        ({"zones": ["local-a", "local-b"]}, "one zone"),
        ({"cluster": {"adminPrincipals": ["user:a@example.com"]}}, "not used on local"),
    ],
)
def test_local_keys(override: dict, expected: str) -> None:
    found = problems(LOCAL | override)
    assert any(expected in p for p in found), found


def test_cloud_stacks_refuse_local_keys() -> None:
    found = problems({"profile": "dev", "cluster": {"kubeconfigContext": "kind-x", "cpuPool": {"nodeLabels": {}}}})
    assert any("kubeconfigContext is not used on aws" in p for p in found), found
    assert any("cpuPool.nodeLabels is only used on local" in p for p in found), found
