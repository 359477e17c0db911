"""The client configuration (components/client/configuration.py) as a data scientist uses it: the files the
plan writes (clients/<stack>.env loaded by a real shell, clients/<stack>/feature_store.yaml) driving the
real clients against local servers this test starts.

- MLflow: the pinned MLflow server (.venv-mlflow) and MLflow's own client, configured only by the env file,
  tracks a run. Feast: a feature server (.venv-feast) serving the platform's own feature_repo/ on a local
  Redis; rows are pushed with POST /push, then FeatureStore() (configured only by FEAST_FS_YAML_FILE_PATH)
  reads them online. Ray: `ray job list` (.venv-ray) against a stand-in for the head's job API.
- Without a domain each value is the local end of a `kubectl port-forward`; the test's servers listen on free
  ports instead, so only the address's port is replaced, the rest of each value is used as written.
- With a domain the gateway is replaced by a local proxy that, like oauth2-proxy with skip_jwt_bearer_tokens,
  forwards only requests bearing the token: MLflow, Feast and `ray job` must send the user's ID token from the
  env file's references. TLS and oauth2-proxy's own token verification are not exercised here (helper EDGE's tests).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.client.configuration import FEAST_YAML_ENV, ID_TOKEN_ENV, NO_REGISTRY, OUTPUT, write_client_files
from components.lifecycle.feast import PROJECT as FEAST_PROJECT
from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from tests.support import feast_serving as fs
from tests.support.net import free_port, request
from tests.support.tools import required_tool, venv_python

DOMAIN = "ml.example.org"
SSO = {
    "domain": DOMAIN,
    "tls": {"kind": "acme-dns01", "email": "platform@example.org", "hostedZoneId": "Z0123456789ABCDEFGHIJ"},
    "sso": {
        "issuerUrl": "https://login.example.org/realms/ml",
        "clientId": "mlplatform",
        "clientSecret": {"secretId": "mlplatform/sso", "jsonKey": "clientSecret"},
        "adminGroups": ["ml-admins"],
        "endpoints": {
            "authorizationEndpoint": "https://login.example.org/realms/ml/protocol/openid-connect/auth",
            "tokenEndpoint": "https://login.example.org/realms/ml/protocol/openid-connect/token",
            "userinfoEndpoint": "https://login.example.org/realms/ml/protocol/openid-connect/userinfo",
        },
    },
}
URL_SETTINGS = {  # env variable -> UI label (cfg.client.host) and the in-cluster URL the stack exports
    "MLFLOW_TRACKING_URI": ("mlflow", "mlflowTrackingUri"),
    "FEAST_FEATURE_SERVER_URL": ("feast", "featureServerUrl"),
    "RAY_API_SERVER_ADDRESS": ("ray", "rayDashboardUrl"),
    "GRAFANA_URL": ("grafana", "grafanaUrl"),
    "AIRFLOW_API_URL": ("airflow", None),
    "JUPYTERHUB_URL": ("jupyter", None),
}
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-id-token.signature"
PUSHED = {1001: (0.125, 0.5, 7), 1002: (0.25, 0.75, 11)}  # driver -> conv_rate, acc_rate, avg_daily_trips


def domain_config() -> dict[str, Any]:
    return {**read_stack_file(PROJECT_DIR, "dev"), "mlplatform:client": SSO}


@pytest.fixture(scope="module")
def plain(dev: PlanDocument) -> PlanDocument:
    return dev


@pytest.fixture(scope="module")
def signed_in() -> PlanDocument:
    return synthesize("dev-client-domain", config_map=domain_config())


def settings(doc: PlanDocument) -> dict[str, dict[str, str]]:
    return {s["name"]: s for s in doc.outputs[OUTPUT]["settings"]}


def shell_env(env_file: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a real shell has after `set -a; . <file>; set +a` (as the file's header says)."""
    base = {"PATH": os.environ["PATH"], "HOME": str(env_file.parent), **(extra or {})}
    done = subprocess.run(
        ["bash", "-c", f'set -a; . "{env_file}"; set +a; env -0'], env=base, capture_output=True, check=True
    )
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


def written(doc: PlanDocument, work: Path, extra: dict[str, str] | None = None) -> tuple[dict[str, str], dict]:
    """The plan's files written under `work` as `plan` writes them, loaded as a shell loads the env file."""
    env_file, store = write_client_files(doc.outputs, work / "clients", doc.stack)
    return shell_env(env_file, extra), yaml.safe_load(store.read_text())


# --- fast: what the files say ---------------------------------------------------------------------------


def test_without_a_domain_each_url_is_the_local_end_of_a_port_forward_to_the_exported_service(plain) -> None:
    found, ports = settings(plain), set()
    for name, (_, exported) in URL_SETTINGS.items():
        url, how = urllib.parse.urlsplit(found[name]["value"]), found[name]["how"].split()
        assert (url.scheme, url.hostname) == ("http", "localhost"), name
        # kubectl -n <namespace> port-forward svc/<service> <local>:<service port>
        assert how[:2] == ["kubectl", "-n"] and how[3] == "port-forward" and how[4].startswith("svc/"), how
        local, remote = how[5].split(":")
        assert int(local) == url.port, name
        ports.add(url.port)
        if exported is not None:  # the Service the stack's in-cluster URL names, on its port
            inside = urllib.parse.urlsplit(plain.outputs[exported])
            assert inside.hostname == f"{how[4].removeprefix('svc/')}.{how[2]}.svc.cluster.local", name
            assert inside.port == int(remote), name
    assert len(ports) == len(URL_SETTINGS), "two port-forwards on one local port cannot run together"
    assert not any(ID_TOKEN_ENV in s["value"] for s in found.values())
    gateway = found["KSERVE_INGRESS_URL"]["how"]
    assert "svc/istio-ingressgateway" in gateway and found["KSERVE_DOMAIN"]["value"] == plain.outputs["servingDomain"]
    assert found["KSERVE_NAMESPACE"]["value"] == plain.outputs["inferenceNamespace"]


def test_with_a_domain_each_url_is_its_sso_host_and_credentials_are_references_only(signed_in) -> None:
    cfg = load_config(namespace_values(domain_config()), "dev")
    found = settings(signed_in)
    for name, (label, _) in URL_SETTINGS.items():
        assert found[name]["value"] == f"https://{cfg.client.host(label)}", name
        assert "kubectl" not in found[name]["how"], name
    assert found["MLFLOW_TRACKING_TOKEN"]["value"] == f"${{{ID_TOKEN_ENV}}}"
    assert SSO["sso"]["issuerUrl"] in found["MLFLOW_TRACKING_TOKEN"]["how"]
    assert "GRAFANA_ADMIN_SECRET" not in found  # with single sign-on, no break-glass password reference
    store = yaml.safe_load(signed_in.outputs[OUTPUT]["featureStoreYaml"])
    assert store["auth"] == {"type": "oidc", "token_env_var": ID_TOKEN_ENV}
    assert store["online_store"] == {"type": "remote", "path": f"https://{cfg.client.host('feast')}"}
    # the SSO client secret the program reads (the mock's value) is nowhere in what a client gets
    secrets = [r.inputs for r in signed_in.resources if r.type == "kubernetes:core/v1:Secret"]
    assert secrets, "the SSO client secret reaches the cluster as Secrets (helper EDGE)"
    text = json.dumps(signed_in.outputs[OUTPUT])
    assert "clientSecret" not in text and "mlplatform/sso" not in text


def test_the_configuration_is_known_before_anything_is_deployed(plain) -> None:
    """A first preview leaves every provider-computed value unknown: the output must not change, so the
    files `plan` writes are the deployed stack's."""
    preview = synthesize("dev", preview=True)
    assert preview.outputs[OUTPUT] == plain.outputs[OUTPUT]


def test_the_env_file_loads_in_a_shell_with_exactly_the_settings(plain, signed_in, tmp_path) -> None:
    env, store = written(plain, tmp_path / "plain")
    for name, s in settings(plain).items():
        assert env[name] == s["value"], name
    assert Path(env[FEAST_YAML_ENV]).is_absolute() and yaml.safe_load(Path(env[FEAST_YAML_ENV]).read_text()) == store
    assert store["project"] == FEAST_PROJECT and store["registry"]["path"] == NO_REGISTRY

    env, _ = written(signed_in, tmp_path / "signed-in", {ID_TOKEN_ENV: TOKEN})
    assert env["MLFLOW_TRACKING_TOKEN"] == TOKEN
    assert json.loads(env["RAY_JOB_HEADERS"]) == {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.slow
def test_the_plan_command_writes_the_files_from_the_plan_it_writes(tmp_path) -> None:
    """`python -m mlplatform plan` as a person runs it: the env file and the YAML hold the plan's output."""
    out, clients = tmp_path / "plan.json", tmp_path / "clients"
    done = subprocess.run(
        [sys.executable, "-m", "mlplatform", "plan", "--stack", "dev", "--summary", "--out", str(out),
         "--clients", str(clients)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads(out.read_text())["outputs"][OUTPUT]
    env = shell_env(clients / "dev.env")
    assert {s["name"]: env[s["name"]] for s in output["settings"]} == {
        s["name"]: s["value"] for s in output["settings"]
    }
    assert Path(env[FEAST_YAML_ENV]) == (clients / "dev" / "feature_store.yaml").resolve()
    assert Path(env[FEAST_YAML_ENV]).read_text() == output["featureStoreYaml"]
    assert f"client configuration written to {clients / 'dev.env'}" in done.stdout


# --- slow: the real clients against local servers ---------------------------------------------------------


class BearerGate(http.server.ThreadingHTTPServer):
    """The gateway's authenticated path, locally: a request with `Authorization: Bearer <token>` is forwarded
    to the upstream server, any other is answered 401 (oauth2-proxy's answer on an API route)."""

    def __init__(self, upstream: str, token: str) -> None:
        self.upstream, self.token, self.seen = urllib.parse.urlsplit(upstream), token, []
        super().__init__(("127.0.0.1", 0), _GateHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _GateHandler(http.server.BaseHTTPRequestHandler):
    server: BearerGate

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorization = self.headers.get("Authorization")
        self.server.seen.append(authorization)
        if authorization != f"Bearer {self.server.token}":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        up = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
        up.request(self.command, self.path, body=body or None, headers=headers)
        answer = up.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


@contextmanager
def gate(upstream: str, token: str) -> Iterator[BearerGate]:
    server = BearerGate(upstream, token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def pointed_at(value: str, local: str) -> str:
    """`value` with its scheme and address replaced by `local`'s: where this test's server listens instead of
    the port-forward's local end or the SSO host."""
    parsed, target = urllib.parse.urlsplit(value), urllib.parse.urlsplit(local)
    return urllib.parse.urlunsplit((target.scheme, target.netloc, parsed.path, parsed.query, parsed.fragment))


@contextmanager
def mlflow_server(python: str, work: Path) -> Iterator[str]:
    port, log = free_port(), work / "mlflow.log"
    mlflow = str(Path(python).parent / "mlflow")
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{work}/mlflow.db", "--serve-artifacts",
           "--artifacts-destination", f"file://{work}/artifacts"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        health = f"{url}/health"  # answers a plain "OK"
        fs.wait_until(
            lambda: urllib.request.urlopen(health, timeout=2).status == 200, "mlflow server", process, log, 120
        )
        yield url
    finally:
        fs.stop(process)


# One process runs every phase (the client's import is most of its cost): each phase's environment replaces
# the process's whole environment, and MLflow reads its tracking URI and token from it on every request.
TRACK = """
import json, os, sys
import mlflow

results = []
for phase in json.loads(sys.argv[1]):
    os.environ.clear()
    os.environ.update(phase)
    try:
        mlflow.set_experiment("client-config")
        with mlflow.start_run() as run:
            mlflow.log_param("model", "logistic")
            mlflow.log_metric("auc", 0.87)
            # through the server's artifact proxy (--serve-artifacts), as a laptop logs models
            mlflow.log_text("trained on the laptop", "notes.txt")
        results.append({"run": run.info.run_id})
    except Exception as e:
        results.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(results))
"""


def track(python: str, phases: list[dict[str, str]], cwd: Path) -> list[dict[str, str]]:
    """Each phase's run, tracked by MLflow's client with nothing but that phase's environment (the env file's
    variables; retries cut short for the refused phase)."""
    phases = [{**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"} for env in phases]
    done = subprocess.run(
        [python, "-c", TRACK, json.dumps(phases)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mlflow_client_tracks_a_run_with_the_generated_files(plain, signed_in) -> None:
    python = venv_python(".venv-mlflow", "tests/venvs/mlflow.txt")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-client-mlflow-", dir="/tmp"))
    try:
        with mlflow_server(python, work) as server, gate(server, TOKEN) as gateway:
            direct, _ = written(plain, work / "plain")
            assert direct["MLFLOW_TRACKING_URI"] == "http://localhost:5000"
            direct["MLFLOW_TRACKING_URI"] = pointed_at(direct["MLFLOW_TRACKING_URI"], server)
            signed, _ = written(signed_in, work / "signed-in", {ID_TOKEN_ENV: TOKEN})
            signed["MLFLOW_TRACKING_URI"] = pointed_at(signed["MLFLOW_TRACKING_URI"], gateway.url)
            # without the user's token the reference expands to nothing: the gateway refuses the client
            anonymous, _ = written(signed_in, work / "no-token")
            anonymous["MLFLOW_TRACKING_URI"] = pointed_at(anonymous["MLFLOW_TRACKING_URI"], gateway.url)

            port_forwarded, through_gateway, refused = track(python, [direct, signed, anonymous], work)
            for tracked in (port_forwarded, through_gateway):
                assert "run" in tracked, tracked
                status, run = request(f"{server}/api/2.0/mlflow/runs/get?run_id={tracked['run']}")
                assert status == 200, run
                assert {m["key"]: m["value"] for m in run["run"]["data"]["metrics"]} == {"auc": 0.87}
                artifact = f"{run['run']['info']['experiment_id']}/{tracked['run']}/artifacts/notes.txt"
                assert (work / "artifacts" / artifact).read_text() == "trained on the laptop"
            assert "401" in refused.get("error", ""), refused
            # the signed-in phase sent the user's token on every request, the anonymous one no Authorization at all
            assert set(gateway.seen) == {f"Bearer {TOKEN}", None}
    finally:
        shutil.rmtree(work, ignore_errors=True)


READ = """
import json, os, sys, time
from feast import FeatureStore

features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
results = []
for phase in json.loads(sys.argv[1]):
    os.environ.clear()
    os.environ.update(phase)
    store = FeatureStore()  # FEAST_FS_YAML_FILE_PATH from the env file
    online = store.get_online_features(features, [{"driver_id": d} for d in (1001, 1002, 4242)]).to_dict()
    started = time.monotonic()
    try:
        store.list_feature_views()
        registry = "answered"
    except Exception as e:
        registry = type(e).__name__
    results.append({"online": online, "registry": registry, "registry_seconds": time.monotonic() - started})
print(json.dumps(results))
"""


def push_body() -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    drivers = list(PUSHED)
    return {
        "push_source_name": "driver_stats_push",
        "df": {
            "driver_id": drivers,
            "event_timestamp": [now] * len(drivers),
            "created": [now] * len(drivers),
            "conv_rate": [PUSHED[d][0] for d in drivers],
            "acc_rate": [PUSHED[d][1] for d in drivers],
            "avg_daily_trips": [PUSHED[d][2] for d in drivers],
        },
        "to": "online",
    }


@contextmanager
def platform_feature_server(python: str, work: Path) -> Iterator[str]:
    """`feast serve` on the platform's feature_repo/ (applied to a local registry, online store on a local
    Redis, the example's rows in a local datasets directory)."""
    datasets = work / "datasets"
    sample = datasets / "feast" / "examples" / "driver_stats.parquet"
    sample.parent.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "feature_repo" / "data" / "driver_stats.parquet", sample)
    repo = work / "repo"
    repo.mkdir()
    for source in (PROJECT_DIR / "feature_repo").glob("*.py"):
        shutil.copy(source, repo / source.name)
    for ignore in (PROJECT_DIR / "feature_repo").glob(".feastignore"):
        shutil.copy(ignore, repo / ignore.name)
    env = {"DATASETS_URI": str(datasets), "FEAST_USAGE": "False", "HOME": str(work)}
    with fs.redis(work) as redis_port:
        store = {
            "project": FEAST_PROJECT, "provider": "local", "registry": str(work / "registry.db"),
            "online_store": {"type": "redis", "connection_string": f"127.0.0.1:{redis_port}"},
            "offline_store": {"type": "file"}, "entity_key_serialization_version": 3,
        }  # fmt: skip
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(store))
        feast = str(Path(python).parent / "feast")
        applied = subprocess.run([feast, "apply"], cwd=repo, env={**os.environ, **env}, capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr[-3000:]
        port = free_port()
        with fs.feature_server(python, repo, ["serve", "-h", "127.0.0.1", "-p", str(port)], port, env) as url:
            yield url


def read_online(python: str, phases: list[tuple[dict[str, str], dict[str, Any], str]], work: Path) -> list[dict]:
    """FeatureStore() with each phase's env file variables and generated YAML, the YAML's feature server
    address only pointed at this test's (one process for every phase: Feast's import takes most of a run)."""
    envs = []
    for k, (env, store, server) in enumerate(phases):
        local = dict(store, online_store=dict(store["online_store"], path=server))
        path = work / f"feature_store-{k}.yaml"
        path.write_text(yaml.safe_dump(local, sort_keys=False))
        envs.append({**env, FEAST_YAML_ENV: str(path), "FEAST_USAGE": "False"})
    done = subprocess.run([python, "-c", READ, json.dumps(envs)], cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_pushed_rows_read(found: dict[str, Any]) -> None:
    online = found["online"]
    assert online["driver_id"] == [1001, 1002, 4242]
    for column, index in (("conv_rate", 0), ("acc_rate", 1), ("avg_daily_trips", 2)):
        assert online[column][:2] == pytest.approx([PUSHED[1001][index], PUSHED[1002][index]]), column
        assert online[column][2] is None, "a driver never pushed has no online features"
    # registry-backed calls fail at once, never answering from an empty local registry
    assert found["registry"] != "answered" and found["registry_seconds"] < 60


@pytest.mark.slow
def test_feast_sdk_reads_pushed_features_with_the_generated_files(plain, signed_in) -> None:
    required_tool("redis-server", "redis-server")
    python = venv_python(".venv-feast", "tests/venvs/feast.txt")
    work = Path(tempfile.mkdtemp(prefix="mlplatform-client-feast-", dir="/tmp"))
    try:
        with platform_feature_server(python, work) as server, gate(server, TOKEN) as gateway:
            env, store = written(plain, work / "plain")
            assert store["online_store"]["path"] == env["FEAST_FEATURE_SERVER_URL"] == "http://localhost:6566"
            assert "auth" not in store
            # push as a laptop does: the feature server's HTTP API at the env file's address
            status, answer = request(f"{pointed_at(env['FEAST_FEATURE_SERVER_URL'], server)}/push", push_body())
            assert status == 200, answer
            signed_env, signed_store = written(signed_in, work / "signed-in", {ID_TOKEN_ENV: TOKEN})
            assert signed_store["auth"]["token_env_var"] == ID_TOKEN_ENV
            port_forwarded, through_gateway = read_online(
                python, [(env, store, server), (signed_env, signed_store, gateway.url)], work
            )
            assert_pushed_rows_read(port_forwarded)
            assert_pushed_rows_read(through_gateway)
            assert gateway.seen and set(gateway.seen) == {f"Bearer {TOKEN}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _RayJobApi(http.server.BaseHTTPRequestHandler):
    """The two answers `ray job list` needs from a head's job API: its version, and no jobs."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = {"/api/version": {"version": "4", "ray_version": "2.52.0", "ray_commit": "0"}, "/api/jobs/": []}
        data = json.dumps(body.get(self.path.split("?")[0], {})).encode()
        self.send_response(200 if self.path.split("?")[0] in body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.slow
def test_ray_job_cli_sends_the_token_from_the_generated_env_file(signed_in, tmp_path) -> None:
    """`ray job` reads RAY_API_SERVER_ADDRESS and parses RAY_JOB_HEADERS (JSON) as the env file writes them."""
    ray = Path(venv_python(".venv-ray", "tests/venvs/ray.txt")).parent / "ray"
    head = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RayJobApi)
    threading.Thread(target=head.serve_forever, daemon=True).start()
    try:
        with gate(f"http://127.0.0.1:{head.server_address[1]}", TOKEN) as gateway:
            env, _ = written(signed_in, tmp_path, {ID_TOKEN_ENV: TOKEN})
            env["RAY_API_SERVER_ADDRESS"] = pointed_at(env["RAY_API_SERVER_ADDRESS"], gateway.url)
            done = subprocess.run(
                [str(ray), "job", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
            )
            assert done.returncode == 0, done.stderr[-3000:]
            assert gateway.seen and set(gateway.seen) == {f"Bearer {TOKEN}"}
    finally:
        head.shutdown()
        head.server_close()
