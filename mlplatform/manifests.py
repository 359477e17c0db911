"""`python -m mlplatform render`: every Helm release of a stack's plan rendered with exactly the values the
program passes, written out as manifests, and checked the way admission and the scheduler would see them.

Values keys are checked elsewhere (mlplatform/chart_keys); this looks at what a chart makes of them: which
containers exist, which security context and requests each one really ends up with, and whether the pods a
NetworkPolicy flow admits carry the labels and ports the flow names. Rendering is offline (helm-python-sdk,
no cluster; `lookup` returns nothing). Chart sources come from a local directory (`--charts DIR`, holding
`<chart>-<version>/` or `<chart>/` with a matching Chart.yaml) or, when online, are pulled from the pinned
repository into a cache directory.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.contracts import Namespace
from components.guardrails import FLOWS, POD_SECURITY
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from mlplatform.podsecurity import Violation, check_pod, missing_requests, pod_specs

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
# how Helm splits a rendered template into documents (releaseutil.SplitManifests): a `---` at a line start
# ends a document even when text follows it on the same line
HELM_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


@dataclass
class RenderedRelease:
    resource: str  # the Pulumi resource name
    release: str  # the Helm release name
    chart: str
    version: str
    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def manifest(self) -> str:
        return yaml.safe_dump_all(self.objects, sort_keys=False)


class ChartNotFound(LookupError):
    pass


def release_name(reg: Registration) -> str:
    """The Helm release name: the one the program sets, else Pulumi's resource name (as Release does)."""
    return str(reg.inputs.get("name") or reg.name)


def find_chart(charts_dir: Path, chart: str, version: str) -> Path:
    """`<chart>-<version>/` or `<chart>/` under charts_dir whose Chart.yaml has the pinned version."""
    for candidate in (charts_dir / f"{chart}-{version}", charts_dir / chart):
        meta = candidate / "Chart.yaml"
        if meta.is_file():
            found = str(yaml.safe_load(meta.read_text()).get("version"))
            if found.lstrip("v") == version.lstrip("v"):
                return candidate
            raise ChartNotFound(f"{candidate} holds {chart} {found}, the plan pins {version}")
    raise ChartNotFound(f"no source of {chart} {version} in {charts_dir} (expected {chart}-{version}/ or {chart}/)")


def pull_chart(chart: str, version: str, repo: str, cache: Path) -> Path:
    """The pinned chart from its repository (online only), unpacked under cache/<chart>-<version>/."""
    import helm_python

    target = cache / f"{chart}-{version}"
    if not (target / "Chart.yaml").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            ref = f"{repo.rstrip('/')}/{chart}" if repo.startswith("oci://") else chart
            helm_python.pull(
                ref, version=version, repo_url=None if repo.startswith("oci://") else repo, untar=True, untar_dir=tmp
            )
            (Path(tmp) / chart).rename(target)
    return target


def render_release(reg: Registration, chart_dir: Path) -> RenderedRelease:
    import helm_python

    values = reg.inputs.get("values") or {}
    namespace = str(reg.inputs.get("namespace") or "default")
    name = release_name(reg)
    rendered = helm_python.Chart.load(str(chart_dir)).render(values, name=name, namespace=namespace, is_install=True)
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for part in HELM_SEPARATOR.split(text)
        for doc in [yaml.safe_load(part)]
        if isinstance(doc, dict) and doc.get("kind")
    ]
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    return RenderedRelease(reg.name, name, str(reg.inputs["chart"]), str(reg.inputs["version"]), namespace, objects)


def helm_merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values coalescing: maps merge key by key, anything else replaces, and a key set to null in
    the overrides is deleted from the chart's defaults."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def level_of(namespace: str) -> str | None:
    """The Pod Security level enforced in a platform namespace; None outside them (e.g. kube-system)."""
    try:
        return POD_SECURITY[Namespace(namespace)]
    except ValueError:
        return None


def check_objects(where: str, objects: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """Pod Security at each object's namespace level, and CPU/memory requests on every container."""
    found: list[Violation] = []
    for obj in objects:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        level = level_of(namespace)
        for label, spec, _labels in pod_specs(obj):
            spot = f"{where} / {label}"
            if level is not None:
                found += check_pod(spec, level, spot)
            found += missing_requests(spec, spot)
    return found


def check_flows(where: str, objects: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """Every pod a release makes under a flow's labels, in the flow's namespace, serves the flow's port (a
    container declares it, or a Service of the release targets it there); otherwise the NetworkPolicy
    admits traffic to a port nothing serves and the clients fail."""
    objects = list(objects)
    found: list[Violation] = []
    for obj in objects:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        for label, spec, labels in pod_specs(obj):
            for flow in FLOWS:
                wanted = flow.pod_labels
                if flow.to.value != namespace or not wanted or not wanted.items() <= labels.items():
                    continue
                if flow.opened_by is not None:
                    continue  # a listener configured at run time: not visible in the chart
                ports = {p.get("containerPort") for _, c in _containers(spec) for p in c.get("ports") or []}
                ports |= _service_target_ports(objects, namespace, labels)
                if flow.port not in ports:
                    found.append(
                        Violation(
                            f"{where} / {label}",
                            None,
                            "containers[].ports",
                            f"flow {flow.name} admits TCP {flow.port} to pods {wanted}; pod listens on "
                            f"{sorted(p for p in ports if p)}",
                        )
                    )
    return found


def _service_target_ports(objects: list[Any], namespace: str, labels: Mapping[str, str]) -> set[int]:
    """Numeric target ports of the release's Services that select pods with `labels`."""
    ports: set[int] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        selector = (obj.get("spec") or {}).get("selector") or {}
        if obj.get("kind") != "Service" or meta.get("namespace") != namespace or not selector:
            continue
        if selector.items() <= labels.items():
            ports |= {p["targetPort"] for p in obj["spec"].get("ports") or [] if isinstance(p.get("targetPort"), int)}
    return ports


def _containers(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(f"containers[{i}]", c) for i, c in enumerate(spec.get("containers") or [])]


# Findings a chart gives no value to fix, each read in its templates at the pinned version, with why it is
# acceptable. (chart, container, rule prefix) -> reason. `render` lists them apart; they never pass silently.
ACCEPTED: dict[tuple[str, str, str], str] = {
    ("nvidia-device-plugin", container, "no "): (
        "templates/daemonset-*.yml give the config-manager containers no resources field; each watches one "
        "node label and only runs when a GPU pool time-slices"
    )
    for container in (
        "nvidia-device-plugin-init",
        "nvidia-device-plugin-sidecar",
        "mps-control-daemon-init",
        "mps-control-daemon-sidecar",
    )
}


def accepted(chart: str, violation: Violation) -> str | None:
    for (name, container, rule), reason in ACCEPTED.items():
        if name == chart and violation.container == container and violation.rule.startswith(rule):
            return reason
    return None


@dataclass
class RenderReport:
    releases: list[RenderedRelease]
    violations: list[Violation]
    missing: list[str]  # charts that could not be found
    accepted: list[tuple[Violation, str]] = field(default_factory=list)


def render_plan(
    doc: PlanDocument, charts_dir: Path | None, out_dir: Path | None, *, cache: Path | None = None
) -> RenderReport:
    """Renders and checks every Helm resource of the plan; writes <out_dir>/<release>.yaml when asked."""
    releases, violations, missing, known = [], [], [], []
    for reg in sorted((r for t in HELM_TYPES for r in doc.by_type(t)), key=lambda r: r.name):
        chart, version = str(reg.inputs["chart"]), str(reg.inputs["version"])
        try:
            if charts_dir is not None:
                chart_dir = find_chart(charts_dir, chart, version)
            else:
                repo = str((reg.inputs.get("repositoryOpts") or {}).get("repo", ""))
                chart_dir = pull_chart(chart, version, repo, cache or Path(tempfile.mkdtemp()))
        except Exception as e:
            missing.append(f"{reg.name}: {e}")
            continue
        rendered = render_release(reg, chart_dir)
        releases.append(rendered)
        where = f"release {rendered.release} ({chart} {version})"
        for v in check_objects(where, rendered.objects) + check_flows(where, rendered.objects):
            reason = accepted(chart, v)
            if reason is None:
                violations.append(v)
            else:
                known.append((v, reason))
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{rendered.release}.yaml").write_text(rendered.manifest())
    return RenderReport(releases, violations, missing, known)
