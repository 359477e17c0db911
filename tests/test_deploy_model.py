"""The deployment flow (dags/deploy_model.py's steps, dags/mlplatform_deploy/) against real services: the pinned
MLflow server (.venv-mlflow) with registered models whose versions get the production alias, a real
Prometheus (Debian's) scraping series shaped exactly as the platform stores queue-proxy's, and the Kubernetes
API through the official client (.venv-airflow, the Airflow image's versions) to a recording stand-in that
reconciles InferenceServices as KServe v0.20.0 does (tests/support/fake_kserve.py).

The flow runs from the platform's DAG ConfigMap as the plan ships it, mounted as the kubelet lays it out,
with the canary queries the plan gives Airflow (built from the alert rules): nothing from this repository is
on its path, so what is tested is what Airflow gets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from components.contracts import Namespace
from components.lifecycle.airflow import DAGS_FOLDER, PLATFORM_DAGS_MOUNT
from dags.mlplatform_deploy.clients import FIELD_MANAGER
from tests.support.fake_kserve import FakeKServe
from tests.support.graph import helm_release, platform_dags
from tests.support.kubelet import mount_config_map
from tests.support.net import free_port
from tests.support.scrape import Pod, scrape_target, stored, target_labels
from tests.support.tools import required_tool, venv_python

pytestmark = pytest.mark.slow

NAMESPACE = Namespace.SERVING.value
DESTINATION = "s3://mlplatform-test-artifacts/mlflow"  # the stack output mlflowArtifactsDestination
# healthy (a), failing (b), no new version (c), Prometheus unreachable (d), still on the program's first
# storageUri, models:/<name>@<alias> (e), with a transformer: a failing canary, then a healthy one (f)
MODELS = ("churn-a", "churn-b", "churn-c", "churn-d", "churn-e", "churn-f")


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


# -- MLflow: the pinned server, models registered as MLflow 3 logs them (a LoggedModel per version) ---------

REGISTER = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
experiment = client.create_experiment("deployments")
out = {}
for name, alias_version in json.loads(sys.argv[2]).items():
    client.create_registered_model(name)
    versions = []
    for _ in range(3):
        logged = client.create_logged_model(experiment, name="model")
        v = client.create_model_version(
            name, source=f"models:/{logged.model_id}", model_id=logged.model_id, await_creation_for=0
        )
        versions.append({"version": str(v.version), "artifacts": logged.artifact_location})
    client.set_registered_model_alias(name, "production", alias_version)
    out[name] = versions
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, list[dict[str, str]]]]]:
    python = venv_python(".venv-mlflow", "tests/venvs/mlflow.txt")
    work = tmp_path_factory.mktemp("mlflow")
    port, log = free_port(), work / "server.log"
    process = subprocess.Popen(
        [str(Path(python).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
         "--artifacts-destination", str(work / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", process, log)
        aliases = {"churn-a": "2", "churn-b": "2", "churn-c": "1", "churn-d": "2", "churn-e": "2", "churn-f": "2"}
        done = subprocess.run(
            [python, "-c", REGISTER, url, json.dumps(aliases)], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield url, json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        _stop(process)


def bucket_uri(artifacts: str) -> str:
    """Where the version's files are in the bucket (what mlplatform_client.models resolves to)."""
    return f"{DESTINATION}/{artifacts.removeprefix('mlflow-artifacts:/')}"


def tags(url: str, name: str, version: str) -> dict[str, str]:
    doc = requests.get(f"{url}/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version}).json()
    return {t["key"]: t["value"] for t in doc["model_version"].get("tags", [])}


# -- Prometheus: queue-proxy's series as the platform stores them, scraped every second ----------------------
# knative/serving pkg/queue/request_metric.go (kn_serving_invocation_duration_seconds, latencyBounds) and
# pkg/queue/sharedmain/handlers.go (otelhttp's http_server_request_duration_seconds for every answer), with
# the target labels of the platform's `model-requests` PodMonitor (tests/support/scrape.py runs it), exactly
# as tests/test_alerts.py shapes them.
KN_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
OTELHTTP_SCOPE = {
    "otel_scope_name": "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
    "otel_scope_version": "0.64.0",
    "http_request_method": "POST",
    "network_protocol_name": "http",
    "network_protocol_version": "1.1",
    "url_scheme": "http",
}


def revision_pod(isvc: str, revision: str, generation: int) -> Pod:
    """A predictor revision's pod as Knative labels it (pkg/reconciler/revision/resources/meta.go makeLabels)."""
    ksvc = f"{isvc}-predictor"
    labels = {
        "serving.knative.dev/service": ksvc,
        "serving.knative.dev/configuration": ksvc,
        "serving.knative.dev/configurationGeneration": str(generation),
        "serving.knative.dev/revision": revision,
        "app": revision,
        "serving.kserve.io/inferenceservice": isvc,
        "component": "predictor",
    }
    ports = {"queue-port": 8012, "http-autometric": 9090, "http-usermetric": 9091}
    return Pod(NAMESPACE, f"{revision}-deployment-7c9f8b-x2k4q", labels, "queue-proxy", ports)


@dataclass
class Traffic:
    ok: float  # 200s per second
    errors: float  # 500s per second
    latency: float  # seconds, every request


class QueueProxies:
    """An exporter serving every revision's queue-proxy series at once (counters grow with the clock)."""

    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str, int], Traffic] = {}
        self.start = time.monotonic()

    def text(self) -> str:
        elapsed = time.monotonic() - self.start
        target = scrape_target("model-requests")
        lines = []
        for (isvc, revision, generation), t in self.revisions.items():
            labels = target_labels(target, revision_pod(isvc, revision, generation))

            def line(metric: str, value: float, exposed: dict[str, str], _labels: dict = labels) -> str:
                merged = stored(exposed, _labels)
                body = ",".join(f'{k}="{v}"' for k, v in sorted(merged.items()))
                return f"{metric}{{{body}}} {value}"

            host = {"server_address": f"{isvc}-predictor.{NAMESPACE}.svc.cluster.local"}
            for code, rate in (("200", t.ok), ("500", t.errors)):
                exposed = OTELHTTP_SCOPE | host | {"http_response_status_code": code}
                lines.append(line("http_server_request_duration_seconds_count", rate * elapsed, exposed))
            scope = {"otel_scope_name": "knative.dev/serving/pkg/queue", "http_response_status_code": "200"}
            total = (t.ok + t.errors) * elapsed
            for le in KN_BOUNDS:
                lines.append(line("kn_serving_invocation_duration_seconds_bucket", total if t.latency <= le else 0,
                                  scope | {"le": f"{le:g}"}))  # fmt: skip
            lines.append(line("kn_serving_invocation_duration_seconds_bucket", total, scope | {"le": "+Inf"}))
            lines.append(line("kn_serving_invocation_duration_seconds_count", total, scope))
        return "\n".join(lines) + "\n"

    def serve(self) -> ThreadingHTTPServer:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, QueueProxies]]:
    binary = required_tool("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    proxies = QueueProxies()
    # the canaries (revision 2 of each InferenceService; fake_kserve names them as Knative does) and the
    # stable revisions beside them
    for isvc in MODELS:
        proxies.revisions[(isvc, f"{isvc}-predictor-00001", 1)] = Traffic(ok=50, errors=0, latency=0.04)
    # (rate() over 5 m of series seconds old reads a fraction of their real rate: enough traffic to judge)
    proxies.revisions[("churn-a", "churn-a-predictor-00002", 2)] = Traffic(ok=50, errors=0, latency=0.04)
    proxies.revisions[("churn-b", "churn-b-predictor-00002", 2)] = Traffic(ok=30, errors=30, latency=0.04)
    proxies.revisions[("churn-d", "churn-d-predictor-00002", 2)] = Traffic(ok=50, errors=0, latency=0.04)
    # churn-f: version 2's canary fails, the rollback restores version 1 (revision 3), version 3's canary is fine
    proxies.revisions[("churn-f", "churn-f-predictor-00002", 2)] = Traffic(ok=30, errors=30, latency=0.04)
    proxies.revisions[("churn-f", "churn-f-predictor-00004", 4)] = Traffic(ok=50, errors=0, latency=0.04)
    exporter = proxies.serve()
    # honor_labels: the series keep the labels the platform's PodMonitor would have given them
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "queue-proxy", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{exporter.server_address[1]}"]}]}
        ],
    }  # fmt: skip
    (work / "prometheus.yml").write_text(json.dumps(config))
    port, log = free_port(), work / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/-/ready", process, log, 30)
        # rate() needs two samples of each series in its window
        deadline = time.monotonic() + 30
        query = 'count(rate(http_server_request_duration_seconds_count{kn_revision_name=~".+-00002"}[5m]) > 0)'
        while True:
            result = requests.get(f"{url}/api/v1/query", params={"query": query}).json()["data"]["result"]
            if result and float(result[0]["value"][1]) >= 4:
                break
            assert time.monotonic() < deadline, f"no rates yet:\n{log.read_text()[-2000:]}"
            time.sleep(0.5)
        yield url, proxies
    finally:
        _stop(process)
        exporter.shutdown()


# -- the flow, as Airflow's tasks run it, from the plan's DAG ConfigMap ---------------------------------------

DRIVER = """
import json, logging, sys
config = json.loads(sys.argv[1])
sys.path.insert(0, config["mount"])
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
from kubernetes import client
from mlplatform_deploy import flow
from mlplatform_deploy.clients import InferenceServices, MlflowRegistry, Prometheus
kube = client.Configuration()
kube.host = config["kube"]
s = flow.Services(
    registry=MlflowRegistry(config["mlflow"]),
    isvcs=InferenceServices(client.ApiClient(kube), config["namespace"]),
    prometheus=Prometheus(config["prometheus"], timeout=2),
    artifacts_destination=config["destination"],
    queries=json.loads(config["queries"]),
)
targets = [flow.ModelTarget.from_json(m) for m in config["models"]]
results = []
# find_new_versions -> roll_out -> watch_canary -> promote_or_roll_back, as dags/deploy_model.py chains them
for plan in flow.find_new_versions(targets, s):
    rollout = flow.roll_out(plan, s)
    results.append(flow.conclude(rollout, flow.judge(rollout, s), s))
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def shipped(dev, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, str]]:
    """The Airflow venv, the DAG ConfigMap mounted as Airflow's pods mount it, and the plan's Airflow env."""
    python = venv_python(".venv-airflow", "tests/venvs/airflow.txt")
    values = helm_release(dev, "airflow").inputs["values"]
    mount = tmp_path_factory.mktemp("dags") / Path(PLATFORM_DAGS_MOUNT).relative_to(DAGS_FOLDER)
    mount_config_map(mount, *platform_dags(dev))
    env = {e["name"]: str(e["value"]) for e in values["env"] if "value" in e}
    return python, mount, env


def run_flow(shipped, mlflow_url: str, prometheus_url: str, kube: str, model: str) -> tuple[list[dict], str]:
    python, mount, env = shipped
    target = {"name": model, "registeredModel": model, "alias": "production", "canaryPercent": 10,
              "watchSeconds": 3, "checkSeconds": 1, "readySeconds": 5}  # fmt: skip
    config = {
        "mount": str(mount), "kube": kube, "mlflow": mlflow_url, "prometheus": prometheus_url,
        "namespace": env["AIRFLOW_VAR_SERVING_NAMESPACE"], "destination": DESTINATION,
        "queries": env["AIRFLOW_VAR_CANARY_QUERIES"], "models": [target],
    }  # fmt: skip
    done = subprocess.run(
        [python, "-c", DRIVER, json.dumps(config)], capture_output=True, text=True, timeout=120, cwd=mount.parent
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def serving(model: str, uri: str, transformer: dict[str, Any] | None = None) -> FakeKServe:
    """An InferenceService the program created (Pulumi's field manager), its first revision rolled out."""
    fake = FakeKServe()
    spec: dict[str, Any] = {
        "predictor": {"model": {"modelFormat": {"name": "mlflow"}, "runtime": "mlflow-3", "storageUri": uri}}
    }
    if transformer is not None:
        spec["transformer"] = transformer
    fake.seed(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": model, "namespace": NAMESPACE},
            "spec": spec,
        }
    )
    return fake


def applied(fake: FakeKServe) -> list[tuple[str, int]]:
    """Every write as (storageUri, canaryTrafficPercent), after checking it is the flow's server-side apply."""
    out = []
    for r in fake.writes():
        assert (r.method, r.content_type) == ("PATCH", "application/apply-patch+yaml"), r
        assert r.query == {"fieldManager": FIELD_MANAGER, "force": "true"}, r
        predictor = r.body["spec"]["predictor"]
        assert set(predictor) == {"canaryTrafficPercent", "model"} and set(predictor["model"]) == {"storageUri"}
        out.append((predictor["model"]["storageUri"], predictor["canaryTrafficPercent"]))
    return out


def test_a_healthy_canary_is_promoted(shipped, mlflow, prometheus) -> None:
    (url, versions), (prom, _) = mlflow, prometheus
    v1, v2, _ = (bucket_uri(v["artifacts"]) for v in versions["churn-a"])
    fake = serving("churn-a", v1)
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, prom, kube, "churn-a")
    assert [r["outcome"] for r in results] == ["promoted"], logs
    assert applied(fake) == [(v2, 10), (v2, 100)]
    status = fake.predictor(NAMESPACE, "churn-a")
    assert status["latestRolledoutRevision"] == "churn-a-predictor-00002"
    assert status["previousRolledoutRevision"] == "churn-a-predictor-00001"
    assert status["traffic"] == [{"latestRevision": True, "percent": 100, "revisionName": "churn-a-predictor-00002"}]
    found = tags(url, "churn-a", "2")
    assert found["deployment.status"] == "promoted" and found["deployment.revision"] == "churn-a-predictor-00002"
    checks = results[0]["checks"]
    assert len(checks) >= 3 and all(c["errorRate"] == 0 and c["p99Seconds"] <= 0.05 for c in checks), checks
    assert "promoted churn-a-predictor-00002" in logs


def test_a_failing_canary_is_rolled_back_and_tagged(shipped, mlflow, prometheus) -> None:
    (url, versions), (prom, _) = mlflow, prometheus
    v1, v2, _ = (bucket_uri(v["artifacts"]) for v in versions["churn-b"])
    fake = serving("churn-b", v1)
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, prom, kube, "churn-b")
        # the next scheduled run: the alias still names the rolled-back version, which is not tried again
        again, later_logs = run_flow(shipped, url, prom, kube, "churn-b")
    assert [r["outcome"] for r in results] == ["rolled_back"], logs
    # the canary, then traffic back to the stable revision with the old model, then the restored revision
    assert applied(fake) == [(v2, 10), (v1, 0), (v1, 100)]
    status = fake.predictor(NAMESPACE, "churn-b")
    assert status["latestRolledoutRevision"] == "churn-b-predictor-00003"  # the restored model, v1 again
    assert "churn-b-predictor-00002" not in {t["revisionName"] for t in status["traffic"]}
    found = tags(url, "churn-b", "2")
    assert found["deployment.status"] == "rolled_back"
    assert found["deployment.reason"].startswith("error rate 50.0% above 5.0%"), found
    assert again == [] and "was rolled back before" in later_logs, later_logs


def test_no_new_version_changes_nothing(shipped, mlflow, prometheus) -> None:
    (url, versions), (prom, _) = mlflow, prometheus
    v1 = bucket_uri(versions["churn-c"][0]["artifacts"])
    fake = serving("churn-c", v1)
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, prom, kube, "churn-c")
    assert results == [] and fake.writes() == [], logs
    assert [r.method for r in fake.requests] == ["GET"]
    assert tags(url, "churn-c", "1") == {}
    assert "already serves churn-c version 1" in logs


def test_prometheus_unreachable_means_no_promotion(shipped, mlflow) -> None:
    url, versions = mlflow
    v1, v2, _ = (bucket_uri(v["artifacts"]) for v in versions["churn-d"])
    fake = serving("churn-d", v1)
    closed = f"http://127.0.0.1:{free_port()}"
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, closed, kube, "churn-d")
    assert [r["outcome"] for r in results] == ["rolled_back"], logs
    assert (v2, 100) not in applied(fake) and applied(fake)[0] == (v2, 10)
    assert fake.predictor(NAMESPACE, "churn-d")["latestRolledoutRevision"] != "churn-d-predictor-00002"
    reason = tags(url, "churn-d", "2")["deployment.reason"]
    assert reason.startswith(f"canary not verified: Prometheus at {closed} unreachable"), reason
    assert f"Prometheus at {closed} unreachable" in logs


def test_a_missing_inference_service_is_left_to_the_program(shipped, mlflow, prometheus) -> None:
    """The program creates every configured model's InferenceService (`pulumi up`); one the flow created
    would make that create fail on an existing object. The flow writes nothing and says why."""
    (url, _), (prom, _) = mlflow, prometheus
    fake = FakeKServe()
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, prom, kube, "churn-a")
    assert results == [] and fake.writes() == [], logs
    assert [r.method for r in fake.requests] == ["GET"]
    assert "no InferenceService churn-a in model-serving yet: it is created by `pulumi up`" in logs


def test_an_inference_service_that_follows_the_alias_is_pinned_without_a_canary(shipped, mlflow, prometheus) -> None:
    """The program creates an InferenceService with `models:/<model>@<alias>`, whose pods already load the
    alias's version: the first run pins it to that version's files at 100 % in one revision, judges nothing
    (there is nothing to compare with) and rolls nothing back (a URI that follows the alias cannot be gone
    back to)."""
    (url, versions), (prom, _) = mlflow, prometheus
    v2 = bucket_uri(versions["churn-e"][1]["artifacts"])
    fake = serving("churn-e", "models:/churn-e@production")
    with fake.serve() as kube:
        results, logs = run_flow(shipped, url, prom, kube, "churn-e")
        again, _ = run_flow(shipped, url, prom, kube, "churn-e")
    assert [r["outcome"] for r in results] == ["promoted"] and results[0]["checks"] == [], logs
    assert applied(fake) == [(v2, 100)]
    status = fake.predictor(NAMESPACE, "churn-e")
    assert status["latestCreatedRevision"] == status["latestRolledoutRevision"] == "churn-e-predictor-00002"
    assert tags(url, "churn-e", "2")["deployment.status"] == "promoted"
    assert again == [], "pinned: the next run finds it already served"


def test_after_a_rollback_the_next_canary_of_a_model_with_a_transformer_is_judged(shipped, mlflow, prometheus) -> None:
    """KServe's InferenceService observedGeneration is the transformer's Knative Service generation, which
    the rollback's predictor-only changes leave behind: the flow must still see the next canary become ready.
    And no step but a storageUri change makes a revision (the annotations it writes reach every template)."""
    (url, versions), (prom, _) = mlflow, prometheus
    v1, v2, v3 = (bucket_uri(v["artifacts"]) for v in versions["churn-f"])
    transformer = {"containers": [{"name": "kserve-container", "image": "feast-transformer@sha256:" + "0" * 64}]}
    fake = serving("churn-f", v1, transformer)
    with fake.serve() as kube:
        first, logs = run_flow(shipped, url, prom, kube, "churn-f")
        moved = requests.post(f"{url}/api/2.0/mlflow/registered-models/alias",
                              json={"name": "churn-f", "alias": "production", "version": "3"}, timeout=30)  # fmt: skip
        assert moved.status_code == 200, moved.text
        second, more_logs = run_flow(shipped, url, prom, kube, "churn-f")
    assert [r["outcome"] for r in first] == ["rolled_back"], logs
    assert [r["outcome"] for r in second] == ["promoted"], more_logs
    assert applied(fake) == [(v2, 10), (v1, 0), (v1, 100), (v3, 10), (v3, 100)]
    status = fake.predictor(NAMESPACE, "churn-f")
    # revisions: 1 (v1), 2 (v2's canary), 3 (v1 restored), 4 (v3's canary, promoted): none from traffic alone
    assert status["latestCreatedRevision"] == status["latestRolledoutRevision"] == "churn-f-predictor-00004"
    assert tags(url, "churn-f", "3")["deployment.revision"] == "churn-f-predictor-00004"
