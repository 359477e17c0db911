"""`python -m mlplatform render`: its machinery on small charts the tests write, offline. The real pinned
charts are rendered the same way from their sources (`--charts DIR`); see the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlplatform.cli import main
from mlplatform.manifests import ChartNotFound, check_flows, find_chart, render_plan
from mlplatform.plan.document import PlanDocument
from tests.support.registrations import custom_registration

pytest.importorskip("helm_python")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: {{ .Values.app }}}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: {{ .Values.app }}}
    spec:
      securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: server
          image: example/server:1.0
          ports: [{containerPort: {{ .Values.port }}}]
          securityContext: {{- toYaml .Values.securityContext | nindent 12 }}
          resources: {{- toYaml .Values.resources | nindent 12 }}
        - name: sidecar
          image: example/sidecar:1.0
          securityContext: {runAsUser: 1000}
"""
TEMPLATE_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: pod-template}
data:
  pod_template_file.yaml: |
    apiVersion: v1
    kind: Pod
    metadata: {name: task}
    spec:
      containers: [{name: base, image: example/task:1.0}]
"""
RESTRICTED = {
    "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
}


def write_chart(root: Path, name: str = "demo", version: str = "1.2.3") -> Path:
    chart = root / f"{name}-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "values.yaml").write_text(
        "app: demo\nport: 8080\npodSecurityContext: {}\nsecurityContext: {}\nresources: {}\n"
    )
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (chart / "templates" / "pod-template.yaml").write_text(TEMPLATE_CONFIGMAP)
    (chart / "templates" / "NOTES.txt").write_text("Thanks: installed {{ .Release.Name }}: not YAML")
    return chart


def plan_with(values: dict, namespace: str = "mlplatform") -> PlanDocument:
    release = custom_registration(
        "urn:pulumi:t::mlplatform::kubernetes:helm.sh/v3:Release::demo-release",
        "kubernetes:helm.sh/v3:Release",
        "demo-release",
        {"chart": "demo", "version": "1.2.3", "namespace": namespace, "name": "demo", "values": values},
    )
    return PlanDocument("mlplatform", "t", [release], {})


def test_renders_with_the_plans_values_and_names_each_violation(tmp_path: Path) -> None:
    write_chart(tmp_path)
    report = render_plan(plan_with(RESTRICTED), tmp_path, tmp_path / "out")
    [release] = report.releases
    assert release.release == "demo" and {o["kind"] for o in release.objects} == {"Deployment", "ConfigMap"}
    written = list(yaml.safe_load_all((tmp_path / "out" / "demo.yaml").read_text()))
    assert [o["kind"] for o in written] == [o["kind"] for o in release.objects]
    found = {(v.where.split(" / ")[-1], v.container, v.field) for v in report.violations}
    # the server takes the values; the sidecar and the pod template in the ConfigMap do not
    assert not [f for f in found if f[1] == "server"]
    assert ("Deployment demo", "sidecar", "containers[1].securityContext.allowPrivilegeEscalation") in found
    assert ("Deployment demo", "sidecar", "containers[1].resources.requests") in found
    assert ("ConfigMap pod-template [pod_template_file.yaml] Pod", "base", "containers[0].resources.requests") in found
    assert all(v.where.startswith("release demo (demo 1.2.3)") for v in report.violations)


def test_pod_security_follows_the_namespace_level(tmp_path: Path) -> None:
    write_chart(tmp_path)
    in_agents = render_plan(plan_with(RESTRICTED, "monitoring-agents"), tmp_path, None)  # privileged level
    assert {v.field.rsplit(".", 1)[-1] for v in in_agents.violations} == {"requests"}


def test_flow_ports_are_checked_on_the_rendered_pods(tmp_path: Path) -> None:
    write_chart(tmp_path)
    wrong_port = render_plan(plan_with({**RESTRICTED, "app": "mlflow", "port": 8080}), tmp_path, None)
    [flow] = [v for v in wrong_port.violations if "flow mlflow" in v.rule]
    assert "5000" in flow.rule and "8080" in flow.rule
    right = render_plan(plan_with({**RESTRICTED, "app": "mlflow", "port": 5000}), tmp_path, None)
    assert not check_flows("x", right.releases[0].objects)


def test_chart_source_must_match_the_pin(tmp_path: Path) -> None:
    write_chart(tmp_path, version="9.9.9")
    (tmp_path / "demo-9.9.9").rename(tmp_path / "demo")
    with pytest.raises(ChartNotFound, match=r"holds demo 9\.9\.9, the plan pins 1\.2\.3"):
        find_chart(tmp_path, "demo", "1.2.3")
    report = render_plan(plan_with(RESTRICTED), tmp_path, None)
    assert report.missing and not report.releases


def test_render_command_fails_on_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI over the dev stack with no chart sources: every release is reported missing, exit 1."""
    assert main(["render", "--stack", "dev", "--charts", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "missing chart: mlplatform-airflow" in out and "0 releases" in out
