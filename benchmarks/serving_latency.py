"""The serving path's latency on this machine, as a report (run by hand or in CI; never a timed test):

    .venv/bin/python benchmarks/serving_latency.py [--stack dev] [--iterations 1000]

1. The Feast feature server run with the platform's configuration, read from the stack's offline plan (the
   chart's `commandArgs` and `feature_store_yaml_base64`, components/lifecycle/feast.py), not retyped, on a
   local redis-server: p50/p99 of POST /get-online-features for 1 and 100 entity rows, sequential requests
   over one keep-alive connection (the transformer's pooled client does the same).
2. The Feast transformer (images/feast-transformer, .venv-transformer) in front of the mlflow-3 runtime
   (MLServer from .venv-mlserver, the planned ServingRuntime container, a model logged with MLflow 3): p50/p99
   of a 1-row inference through the transformer against the same inference sent to the predictor directly;
   the difference is what the transformer and its feature read add.

What differs from the cluster, only where this machine has no counterpart: the hosts and ports (local), the
SQL registry on PostgreSQL becomes a registry file (the server reads the registry from its in-memory cache,
refreshed in the background every --registry_ttl_sec, so per-request latency does not touch it), and the
local Redis's self-signed certificate is named with ssl_ca_certs where the plan trusts the image's CA store.
Every hop is on loopback: the cluster adds the network's round trips (~0.5 ms per hop in one zone).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"feature read p99, 1 row (ms)": 5.0, "transformer + feature read added p99 (ms)": 10.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--stack", default="dev", help="the stack whose planned feature server runs (default dev)")
    parser.add_argument("--iterations", type=int, default=1000, help="timed requests per scenario (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests first (default 100)")
    parser.add_argument("--skip-transformer", action="store_true", help="measure the feature server only")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    return parser.parse_args(argv)


def planned_feature_server(stack: str) -> tuple[list[str], dict[str, Any]]:
    """The feature server's command line and feature_store.yaml as the stack's plan installs them."""
    from mlplatform.plan.synth import synthesize
    from tests.support.graph import helm_release

    values = helm_release(synthesize(stack), "feast-feature-server").inputs["values"]
    return list(values["commandArgs"]), yaml.safe_load(base64.b64decode(values["feature_store_yaml_base64"]))


def local_command(args: list[str], port: int) -> list[str]:
    """The planned command line with only the address changed (host 127.0.0.1, a free port)."""
    out, i = [], 0
    while i < len(args):
        if args[i] in ("-h", "--host", "-p", "--port"):
            out += [args[i], "127.0.0.1" if args[i] in ("-h", "--host") else str(port)]
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out[1:] if out[0] == "feast" else out


def local_store(store: dict[str, Any], work: Path, redis_port: int, ca: Path | None) -> dict[str, Any]:
    """The planned feature_store.yaml with this machine's addresses (module docstring says what differs)."""
    local = json.loads(json.dumps(store))
    local["registry"] = {"registry_type": "file", "path": str(work / "registry.db"),
                         "cache_ttl_seconds": store["registry"].get("cache_ttl_seconds")}  # fmt: skip
    _, *options = local["online_store"]["connection_string"].split(",")
    options = [o for o in options if not o.startswith("ssl_ca_certs=")]
    if ca is not None:
        options.append(f"ssl_ca_certs={ca}")
    local["online_store"]["connection_string"] = ",".join([f"127.0.0.1:{redis_port}", *options])
    return local


def timed(call: Callable[[], Any], iterations: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(statistics.median(samples), 3), "p99": round(cuts[98], 3), "n": len(samples)}


class Client:
    """One keep-alive HTTP/1.1 connection, as a pooled client uses it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def post(self, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        self.conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {raw[:500]!r}")
        return json.loads(raw)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.support import feast_serving as fs
    from tests.support.net import free_port, loopback_certificate

    command, store = planned_feature_server(args.stack)
    feast_python = str(ROOT / ".venv-feast" / "bin" / "python")
    work = Path(tempfile.mkdtemp(prefix="serving-latency-"))
    password = "bench-redis-password"
    os.environ["FEAST_REDIS_PASSWORD"] = password  # the variable the planned YAML names
    tls = "ssl=true" in store["online_store"]["connection_string"].split(",")
    redis_args = ["--requirepass", password]
    ca = None
    if tls:
        ca, key = loopback_certificate(work)
        redis_args += ["--tls-cert-file", str(ca), "--tls-key-file", str(key), "--tls-auth-clients", "no"]
    figures: dict[str, Any] = {"stack": args.stack, "feature_server_command": command, "redis_tls": tls}
    with fs.redis(work, redis_args, tls=tls) as redis_port:
        repo = fs.feature_repo(feast_python, work, local_store(store, work, redis_port, ca))
        port = free_port()
        with fs.feature_server(feast_python, repo, local_command(command, port), port) as url:
            # Each Gunicorn worker's first read imports Feast's online-store modules (feast v0.66.0
            # infra/online_stores/online_store.py _check_versioned_read_support, cached per process after):
            # a cold worker, at start and after every --max-requests recycle. Measured on fresh connections
            # (the kernel spreads them over the workers), reported apart, then every worker is warm.
            body = {"features": fs.FEATURES, "entities": {fs.JOIN_KEY: fs.DRIVERS[:1]}}
            cold = [timed(lambda: Client(url).post("/get-online-features", body), 1, 0)[0] for _ in range(12)]
            figures["cold worker, first read (ms)"] = round(max(cold), 1)
            client = Client(url)
            for rows in (1, 100):
                body = {"features": fs.FEATURES, "entities": {fs.JOIN_KEY: fs.DRIVERS[:rows]}}
                answer = client.post("/get-online-features", body)
                assert all(s == "PRESENT" for r in answer["results"] for s in r["statuses"]), answer
                figures[f"feature read, {rows} row{'s' if rows > 1 else ''} (ms)"] = summary(
                    timed(lambda b=body: client.post("/get-online-features", b), args.iterations, args.warmup)
                )
            if not args.skip_transformer:
                figures |= transformer_figures(args, url, work)
    report(figures, args)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def transformer_figures(args: argparse.Namespace, feature_server: str, work: Path) -> dict[str, Any]:
    from mlplatform.plan.synth import synthesize
    from tests.support import feast_serving as fs
    from tests.support.mlserver import serve
    from tests.test_feast_transformer import ISVC, LOG_MODEL, MODEL_FEATURES, config_for, transformer
    from tests.test_mlserver_runtime import runtime_container

    mlserver_python = str(ROOT / ".venv-mlserver" / "bin" / "python")
    row = fs.latest_row(fs.DRIVERS[0])
    done = subprocess.run([mlserver_python, "-c", LOG_MODEL, str(work), json.dumps([row])], capture_output=True,
                          text=True, timeout=300, cwd=work, check=True)  # fmt: skip
    source = Path(json.loads(done.stdout.strip().splitlines()[-1])["artifacts"].removeprefix("file://"))
    model_dir = work / "mnt" / "models"
    for file in sorted(source.rglob("*")):
        if file.is_file():
            (model_dir / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (model_dir / file.relative_to(source)).write_bytes(file.read_bytes())
    container = runtime_container(synthesize(args.stack))
    direct_body = {"parameters": {"content_type": "pd"}, "inputs": [
        {"name": c, "datatype": "INT64" if c == "avg_daily_trips" else "FP64", "shape": [1, 1], "data": [row[c]]}
        for c in MODEL_FEATURES]}  # fmt: skip
    entity_body = {"inputs": [{"name": "driver_id", "datatype": "INT64", "shape": [1], "data": [fs.DRIVERS[0]]}]}
    path = f"/v2/models/{ISVC}/infer"
    with serve(container, model_dir, ISVC, Path(mlserver_python).parent.parent, work) as predictor:
        python = str(ROOT / ".venv-transformer" / "bin" / "python")
        with transformer(python, predictor.url, config_for(feature_server), work) as url:
            direct, through = Client(predictor.url), Client(url)
            assert direct.post(path, direct_body)["outputs"] == through.post(path, entity_body)["outputs"]
            # interleaved, so drift on the machine affects both alike
            d, t = [], []
            for _ in range(args.warmup):
                direct.post(path, direct_body), through.post(path, entity_body)
            for _ in range(args.iterations):
                d += timed(lambda: direct.post(path, direct_body), 1, 0)
                t += timed(lambda: through.post(path, entity_body), 1, 0)
    ds, ts = summary(d), summary(t)
    return {
        "predictor direct, 1 row (ms)": ds,
        "transformer + feature read + predictor, 1 row (ms)": ts,
        "transformer + feature read added (ms)": {
            "p50": round(ts["p50"] - ds["p50"], 3),
            "p99": round(ts["p99"] - ds["p99"], 3),
        },
    }


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"stack {figures['stack']}: feast {' '.join(figures['feature_server_command'][1:])}")
    print(f"redis TLS: {figures['redis_tls']}; {args.iterations} timed requests per row after {args.warmup} warm-up")
    print(f"{'scenario':<52} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"a cold feature-server worker's first read: {figures['cold worker, first read (ms)']} ms (excluded below)")
    for name, value in figures.items():
        if isinstance(value, dict):
            print(f"{name.removesuffix(' (ms)'):<52} {value['p50']:>8.2f} {value['p99']:>8.2f}")
    checks = {
        "feature read p99, 1 row (ms)": figures["feature read, 1 row (ms)"]["p99"],
        "transformer + feature read added p99 (ms)": figures.get("transformer + feature read added (ms)", {}).get(
            "p99"
        ),
    }
    for name, value in checks.items():
        if value is not None:
            verdict = "met" if value <= TARGETS[name] else "MISSED"
            print(f"target {name.removesuffix(' (ms)')} <= {TARGETS[name]} ms: {value:.2f} ms, {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
