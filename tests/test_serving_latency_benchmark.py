"""benchmarks/serving_latency.py is a report run by hand (never timed here): this checks that it loads, reads
its arguments, and turns the planned feature server into a local one by changing addresses only. And that
the planned `feast serve` options exist in the pinned Feast's CLI."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.lifecycle.feast import REGISTRY_CACHE_TTL, REGISTRY_REFRESH_SECONDS, SERVE_ARGS
from tests.support.graph import helm_release
from tests.support.managed import managed_stack
from tests.support.tools import venv_python

ROOT = Path(__file__).resolve().parents[1]


def benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("serving_latency", ROOT / "benchmarks" / "serving_latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def planned(dev) -> dict[str, Any]:
    return helm_release(dev, "feast-feature-server").inputs["values"]


def test_the_benchmark_parses_its_arguments() -> None:
    bench = benchmark()
    args = bench.parse_args([])
    assert (args.stack, args.iterations > args.warmup > 0, args.skip_transformer) == ("dev", True, False)
    args = bench.parse_args(["--stack", "prod", "--iterations", "50", "--skip-transformer"])
    assert (args.stack, args.iterations, args.skip_transformer) == ("prod", 50, True)


@pytest.mark.parametrize("redis", ["in-cluster", "managed"])
def test_the_benchmark_changes_only_the_planned_servers_addresses(dev, redis: str, tmp_path: Path) -> None:
    """dev's Valkey (the platform CA named by ssl_ca_certs) and ElastiCache (the image's CA store): the local
    Redis's CA file takes the place of the planned one, every other option is the plan's."""
    bench = benchmark()
    doc = dev if redis == "in-cluster" else managed_stack("dev", ("redis",))
    values = planned(doc)
    command = bench.local_command(values["commandArgs"], 12345)
    expected = [a for a in values["commandArgs"][1:] if a not in ("0.0.0.0", "6566")]
    assert [a for a in command if a not in ("127.0.0.1", "12345")] == expected
    store = yaml.safe_load(base64.b64decode(values["feature_store_yaml_base64"]))
    local = bench.local_store(store, tmp_path, 6390, tmp_path / "ca.crt")
    assert local["online_store"]["connection_string"].startswith("127.0.0.1:6390,")
    planned_options = store["online_store"]["connection_string"].split(",")[1:]
    local_options = local["online_store"]["connection_string"].split(",")[1:]
    planned_ca = [o for o in planned_options if o.startswith("ssl_ca_certs=")]
    assert len(planned_ca) == (1 if redis == "in-cluster" else 0)
    assert [o for o in planned_options if o not in planned_ca] + [f"ssl_ca_certs={tmp_path / 'ca.crt'}"] == (
        local_options
    )
    assert local["registry"]["cache_ttl_seconds"] == store["registry"]["cache_ttl_seconds"]
    assert {k: v for k, v in local.items() if k != "registry" and k != "online_store"} == {
        k: v for k, v in store.items() if k != "registry" and k != "online_store"
    }


def test_the_feature_server_runs_the_tuned_command(plan) -> None:
    for stack in ("dev", "prod"):
        values = planned(plan(stack))
        assert values["commandArgs"] == SERVE_ARGS
        store = yaml.safe_load(base64.b64decode(values["feature_store_yaml_base64"]))
        # the request path never refreshes the registry itself: the server's background refresh comes first
        assert store["registry"]["cache_ttl_seconds"] == REGISTRY_CACHE_TTL > REGISTRY_REFRESH_SECONDS
        cpu = values["resources"]["requests"]["cpu"]
        workers = int(SERVE_ARGS[SERVE_ARGS.index("--workers") + 1])
        assert workers == 2 * int(cpu.removesuffix("m")) // 1000 + 1


@pytest.mark.slow
def test_every_planned_serve_option_exists_in_the_pinned_feast() -> None:
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    feast = str(Path(python).parent / "feast")
    done = subprocess.run([feast, "serve", "--help"], capture_output=True, text=True, timeout=120, check=True)
    options = [a for a in SERVE_ARGS[SERVE_ARGS.index("serve") + 1 :] if a.startswith("-")]
    missing = [o for o in options if f"{o} " not in done.stdout and f"{o}," not in done.stdout]
    assert not missing, done.stdout
