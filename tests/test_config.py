"""Every config rule rejects a bad value with the full key path, the value and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.config import Cloud, ConfigError, HaProfile, Profile, load_config
from mlplatform.config.loader import deep_merge
from mlplatform.config.profiles import data_modes, profile_defaults

ROOT = Path(__file__).resolve().parents[1]


def problems(raw: dict, stack: str = "t") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw, stack)
    return [p.render() for p in info.value.problems]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


# A prod stack on aws must say where `pulumi up` reaches the API from (see ClusterConfig): a CI runner's
# egress CIDR, here from the documentation range.
PROD_AWS_CLUSTER = {"publicAccessCidrs": ["203.0.113.0/24"]}
PROD = {"profile": "prod", "cluster": PROD_AWS_CLUSTER}


def gpu(**over: object) -> dict:
    return {"name": "gpu", "machineType": "g5.xlarge", "accelerator": "nvidia-a10g", "maxNodes": 2, **over}


def test_profiles_supply_defaults() -> None:
    dev = load_config({"profile": "dev"}, "dev")
    prod = load_config(PROD, "prod")
    assert (dev.cloud, dev.ha, len(dev.zones)) == (Cloud.AWS, HaProfile.SINGLE_ZONE, 2)
    assert (prod.ha, len(prod.zones), prod.data.postgres.read_replicas) == (HaProfile.MULTI_ZONE, 3, 2)
    assert all(p.min_nodes == 0 for p in dev.cluster.gpu_pools)
    assert dev.storage.force_destroy and not prod.storage.force_destroy
    assert prod.data.postgres.deletion_protection and not dev.data.postgres.deletion_protection


def test_stack_overrides_merge_over_profile() -> None:
    # managed (RDS), whatever dev's default mode: machineType is a managed-service key
    raw = {"profile": "dev", "data": {"postgres": {"mode": "managed", "version": "17"}}}
    cfg = load_config(raw, "dev")
    assert cfg.data.postgres.version == "17"
    # the untouched sibling keeps the profile default (the defaults of the mode the stack chose)
    defaults = profile_defaults(Profile.DEV, Cloud.AWS, modes=data_modes(Profile.DEV, Cloud.AWS, raw))
    assert cfg.data.postgres.machine_type == defaults["data"]["postgres"]["machineType"]


def test_lists_replace_rather_than_merge() -> None:
    assert deep_merge({"a": [1, 2], "b": {"c": 1, "d": 2}}, {"a": [3], "b": {"c": 9}}) == {
        "a": [3],
        "b": {"c": 9, "d": 2},
    }


def test_region_changes_default_zones() -> None:
    assert load_config({"profile": "dev", "region": "eu-west-1"}, "dev").zones == ["eu-west-1a", "eu-west-1b"]
    gcp = load_config({"profile": "prod", "cloud": "gcp", "gcpProject": "acme-ml"}, "p")
    assert gcp.zones == ["us-central1-a", "us-central1-b", "us-central1-c"]


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"profile": "qa"}, "mlplatform:profile = 'qa'", "dev, prod"),
        ({"profile": "dev", "cloud": "azure"}, "mlplatform:cloud = 'azure'", "aws, gcp"),
        (
            {"profile": "dev", "cluster": {"gpuPools": [gpu(minNodes=3, maxNodes=1)]}},
            "mlplatform:cluster.gpuPools[0].maxNodes = 1",
            "must be >= minNodes (3)",
        ),
        (
            {"profile": "dev", "cluster": {"gpuPools": [gpu(maxNodes=0)]}},
            "mlplatform:cluster.gpuPools[0].maxNodes = 0",
            "greater than or equal to 1",
        ),
        (
            {"profile": "dev", "cluster": {"kubernetesVersion": "1.27"}},
            "mlplatform:cluster.kubernetesVersion = '1.27'",
            "supported range 1.28..1.35",
        ),
        (
            {"profile": "dev", "cluster": {"kubernetesVersion": "latest"}},
            "mlplatform:cluster.kubernetesVersion = 'latest'",
            "N.M",
        ),
        (
            {"profile": "dev", "data": {"postgres": {"version": "14"}}},
            "mlplatform:data.postgres.version = '14'",
            "15..18",
        ),
        ({"profile": "dev", "data": {"redis": {"version": "6.2"}}}, "mlplatform:data.redis.version = '6.2'", "7.0"),
        (
            {"profile": "dev", "data": {"kafka": {"mode": "managed", "version": "4.0.x"}}},
            "mlplatform:data.kafka",
            "3.x",
        ),
        (
            {"profile": "dev", "services": {"mlflow": {"replicas": 0}}},
            "mlplatform:services.mlflow.replicas = 0",
            "greater than or equal to 1",
        ),
        (
            {"profile": "dev", "services": {"airflow": {"version": "latest"}}},
            "mlplatform:services.airflow.version = 'latest'",
            "pattern",
        ),
        ({**PROD, "zones": ["us-east-1a", "us-east-1b"]}, "mlplatform:zones", "prod needs at least 3 zones"),
        ({"profile": "dev", "zones": ["us-east-1a"]}, "mlplatform:zones", "at least 2 zones"),
        (
            {"profile": "dev", "cluster": {"systemPool": {"minNodes": 0}}},
            "mlplatform:cluster.systemPool",
            "minNodes >= 1",
        ),
        (
            {"profile": "dev", "cluster": {"publicAccessCidrs": ["10.0.0.1/8"]}},
            "mlplatform:cluster.publicAccessCidrs",
            "not a CIDR",
        ),
        (
            {"profile": "dev", "cluster": {"publicAccessCidrs": []}},
            "mlplatform:cluster.publicAccessCidrs = []",
            "privateEndpoint",
        ),
        (
            {"profile": "dev", "data": {"postgres": {"mode": "managed", "storageGb": 500}}},  # RDS autoscaling
            "mlplatform:data.postgres.maxStorageGb = 100",
            "storageGb (500)",
        ),
        (
            {"profile": "dev", "data": {"kafka": {"mode": "managed", "brokers": 3}}},
            "mlplatform",
            "multiple of the zone count",
        ),
        ({**PROD, "ha": "single-zone"}, "mlplatform", "prod must use ha: multi-zone"),
        (
            {**PROD, "services": {"feast": {"replicas": 4}}},
            "mlplatform",
            "services.feast.replicas (4) must be a multiple of the zone count (3)",
        ),
        (
            {"profile": "dev", "services": {"mlflow": {"version": "1.12.0"}}},
            "mlplatform:services.mlflow",
            "version 1.12.0 of chart mlflow has no values-key snapshot; supported: 1.11.5",
        ),
        (
            {"profile": "dev", "services": {"airflow": {"dags": {"repo": "file:///tmp/dags"}}}},
            "mlplatform:services.airflow.dags.repo",
            "pattern",
        ),
        ({"profile": "dev", "zones": ["eu-west-1a", "eu-west-1b"]}, "mlplatform", "not in region us-east-1"),
        ({"profile": "dev", "cloud": "gcp"}, "mlplatform", "needs gcpProject"),
        ({"profile": "dev", "region": "Virginia"}, "mlplatform:region = 'Virginia'", "us-east-1"),
        ({"profile": "dev", "cluster": {"gpuPools": [gpu(), gpu()]}}, "mlplatform:cluster.gpuPools", "repeated: gpu"),
        (
            {"profile": "dev", "cluster": {"gpuPools": [gpu(accelerator="a100")]}},
            "mlplatform:cluster.gpuPools[0].accelerator = 'a100'",
            "nvidia-",
        ),
        (  # an image without a tag or digest would follow :latest
            {"profile": "dev", "services": {"feast": {"clientImage": "registry.example.com/feast-client"}}},
            "mlplatform:services.feast.clientImage = 'registry.example.com/feast-client'",
            "pattern",
        ),
    ],
)
def test_rule_rejects_bad_value(raw: dict, path: str, fragment: str) -> None:
    message = only(raw)
    assert message.startswith(path), message
    assert fragment in message, message


def test_unknown_keys_are_rejected_with_suggestion() -> None:
    assert only({"profile": "dev", "clustr": {}}) == "mlplatform:clustr: unknown key; did you mean 'cluster'?"
    nested = only({"profile": "dev", "cluster": {"gpuPools": [gpu(maxNode=3)]}})
    assert nested == "mlplatform:cluster.gpuPools[0].maxNode: unknown key; did you mean 'maxNodes'?"


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    message = only({"profile": "dev", "storage": {"colour": "red"}})
    assert "allowed here: forceDestroy, logRetentionDays, versioning" in message


def test_several_bad_values_are_reported_together() -> None:
    found = problems(
        {
            "profile": "prod",
            "zones": ["us-east-1a"],
            "cluster": {**PROD_AWS_CLUSTER, "kubernetesVersion": "1.20", "gpuPools": [gpu(minNodes=5, maxNodes=2)]},
            "data": {"postgres": {"version": "13"}},
            "servces": {},
        }
    )
    paths = [f.split(" ")[0].rstrip(":") for f in found]
    assert paths == [
        "mlplatform:zones",
        "mlplatform:cluster.kubernetesVersion",
        "mlplatform:cluster.gpuPools[0].maxNodes",
        "mlplatform:data.postgres.version",
        "mlplatform:servces",
    ]


def test_error_message_is_one_screen() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"profile": "dev", "cluster": {"gpuPools": [gpu(maxNodes=-1)]}}, "dev")
    text = info.value.render()
    assert text.splitlines()[0] == "invalid configuration for stack 'dev' (1 problem):"
    assert len(text.splitlines()) < 25


def test_profile_enum_values_match_stack_files() -> None:
    for stack in ("dev", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert f"mlplatform:profile: {Profile(stack).value}" in text


def run_plan(project: Path, stack: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform", "plan", "--stack", stack, "--project-dir", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plan_exits_nonzero_with_clear_error_on_bad_stack_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n"
        "  mlplatform:profile: dev\n"
        "  mlplatform:cluster:\n"
        "    kubernetesVersion: '1.31'\n"
        "    gpuPools:\n"
        "      - name: gpu\n"
        "        machineType: g5.xlarge\n"
        "        accelerator: nvidia-a10g\n"
        "        maxNodez: 4\n"
    )
    result = run_plan(tmp_path, "broken")
    assert result.returncode == 2
    assert "mlplatform:cluster.gpuPools[0].maxNodez: unknown key; did you mean 'maxNodes'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "plans").exists()  # nothing was synthesized


def test_plan_reports_missing_stack_file(tmp_path: Path) -> None:
    result = run_plan(tmp_path, "nope")
    assert result.returncode == 2
    assert "Pulumi.nope.yaml" in result.stderr


def test_prod_api_never_open_to_the_internet() -> None:
    msg = only({"profile": "prod", "cluster": {"privateEndpoint": False, "publicAccessCidrs": ["0.0.0.0/0"]}})
    assert "whole internet" in msg and "publicAccessCidrs" in msg
    office = {"privateEndpoint": False, "publicAccessCidrs": ["203.0.113.0/24"]}
    assert load_config({"profile": "prod", "cluster": office}, "p").cluster.public_access_cidrs == ["203.0.113.0/24"]


def test_kubernetes_minor_must_have_pins_on_aws_only() -> None:
    msg = only({"profile": "dev", "cluster": {"kubernetesVersion": "1.31"}})
    assert msg.startswith("mlplatform:cluster.kubernetesVersion = '1.31'") and "1.32, 1.33, 1.34" in msg
    gcp = {"profile": "dev", "cloud": "gcp", "gcpProject": "mlplatform-test", "region": "us-central1"}
    no_serving = {"services": {"kserve": {"enabled": False}}}
    old = gcp | {"cluster": {"kubernetesVersion": "1.31"}}
    assert load_config(old | no_serving, "g").cluster.kubernetes_version == "1.31"
    # serving needs the Kubernetes floor of the Knative line KServe is tested with
    [serving] = problems(old)
    assert serving.startswith("mlplatform:services") and "cluster.kubernetesVersion >= 1.33" in serving


def test_admin_principals_shape_follows_the_cloud() -> None:
    msg = only({"profile": "dev", "cluster": {"adminPrincipals": ["user:admin@example.com"]}})
    assert "IAM role or user ARNs" in msg
    gcp = {"profile": "dev", "cloud": "gcp", "gcpProject": "mlplatform-test", "region": "us-central1"}
    cfg = load_config(gcp | {"cluster": {"adminPrincipals": ["user:admin@example.com"]}}, "g")
    assert cfg.cluster.admin_principals == ["user:admin@example.com"]
    assert "user: or serviceAccount:" in only(gcp | {"cluster": {"adminPrincipals": ["group:ops@example.com"]}})


def test_cloud_specific_data_keys() -> None:
    gcp = {"profile": "dev", "cloud": "gcp", "gcpProject": "mlplatform-test", "region": "us-central1"}
    # Memorystore's keys, whatever gcp-dev's default mode for Redis
    msg = only(gcp | {"data": {"redis": {"mode": "managed", "machineType": "cache.t4g.small"}}})
    assert msg.startswith("mlplatform:data.redis") and "machineType is not used on gcp" in msg
    assert "set shards: 1" in only(gcp | {"data": {"redis": {"mode": "managed", "shards": 3}}})
    assert "Memorystore offers Redis 7.0, 7.2" in only(gcp | {"data": {"redis": {"mode": "managed", "version": "7.1"}}})
    assert "memoryGb must be 1 to 8 GiB per vCPU" in only(
        gcp | {"data": {"kafka": {"mode": "managed", "memoryGb": 100}}}
    )
    msg = only({"profile": "dev", "data": {"kafka": {"mode": "managed", "vcpuCount": 3}}})
    assert msg.startswith("mlplatform:data.kafka") and "vcpuCount is not used on aws" in msg
    assert "releaseChannel is not used on aws" in only({"profile": "dev", "cluster": {"releaseChannel": "STABLE"}})


def test_a_feast_client_image_may_pin_tag_and_digest() -> None:
    digest = "sha256:" + "0" * 64
    for image in (f"ghcr.io/acme/feast:0.66.0@{digest}", f"ghcr.io/acme/feast@{digest}", "ghcr.io/acme/feast:0.66.0"):
        cfg = load_config({"profile": "dev", "services": {"feast": {"clientImage": image}}}, "t")
        assert cfg.services.feast.client_image == image
