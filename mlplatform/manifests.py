"""`python -m mlplatform render`: every Helm release of a stack's plan rendered with exactly the values the
program passes, written out as manifests, and checked the way admission and the scheduler would see them.

Values keys are checked elsewhere (mlplatform/chart_keys); this looks at what a chart makes of them: which
containers exist, which security context and requests each one really ends up with, and whether the pods a
NetworkPolicy flow admits carry the labels and ports the flow names. Rendering is offline (helm-python-sdk,
no cluster; `lookup` returns nothing). Chart sources come from a local directory (`--charts DIR`, holding
the Helm packages `<chart>-<version>.tgz`, or `<chart>-<version>/` or `<chart>/` with a matching
Chart.yaml) or, when online, are pulled from the pinned repository into a cache directory.

The values a release is rendered with are the ones Helm receives (`helm_values`): the plan's recorded inputs
(the RegisterResource request, i.e. after the SDK's serialization), `valueYamlFiles` merged first and
`values` over them, as the Kubernetes provider does, and a null inside `values` treated as never arriving.
"""

from __future__ import annotations

import copy
import functools
import json
import pickle
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.contracts import Namespace
from components.guardrails import FLOWS, POD_SECURITY
from mlplatform.helm_apply import applied, lingering_jobs, made_at_run_time, missing_references
from mlplatform.mappings import deep_merge
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration
from mlplatform.podsecurity import Violation, check_pod, missing_requests, pod_specs

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
# how Helm splits a rendered template into documents (releaseutil.SplitManifests): a `---` at a line start
# ends a document even when text follows it on the same line
HELM_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")
# libyaml's safe loader when PyYAML has it (the wheels do): the CRD-heavy charts (kserve-crd, istio base,
# cert-manager) are megabytes of YAML, most of a stack's render time with the pure-Python loader
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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

    def objects_of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]


class ChartNotFound(LookupError):
    pass


def release_name(reg: Registration) -> str:
    """The Helm release name: the one the program sets, else Pulumi's resource name (as Release does)."""
    return str(reg.inputs.get("name") or reg.name)


def find_chart(charts_dir: Path, chart: str, version: str) -> Path:
    """The pinned chart's source under charts_dir: the Helm package `<chart>-<version>.tgz` (as `helm
    package` names it), else `<chart>-<version>/` or `<chart>/` whose Chart.yaml has the pinned version."""
    package = charts_dir / f"{chart}-{version}.tgz"
    if package.is_file():
        found = str(_package_metadata(package, chart).get("version"))
        if found.lstrip("v") == version.lstrip("v"):
            return package
        raise ChartNotFound(f"{package} holds {chart} {found}, the plan pins {version}")
    for candidate in (charts_dir / f"{chart}-{version}", charts_dir / chart):
        meta = candidate / "Chart.yaml"
        if meta.is_file():
            found = str(yaml.safe_load(meta.read_text()).get("version"))
            if found.lstrip("v") == version.lstrip("v"):
                return candidate
            raise ChartNotFound(f"{candidate} holds {chart} {found}, the plan pins {version}")
    raise ChartNotFound(
        f"no source of {chart} {version} in {charts_dir} (expected {chart}-{version}.tgz, {chart}-{version}/ "
        f"or {chart}/)"
    )


def _package_metadata(package: Path, chart: str) -> dict[str, Any]:
    """Chart.yaml of a Helm package (a gzipped tar with `<chart>/` at the top), read without unpacking."""
    with tarfile.open(package, "r:gz") as archive:
        member = archive.extractfile(f"{chart}/Chart.yaml")
        if member is None:
            raise ChartNotFound(f"{package} has no {chart}/Chart.yaml")
        return dict(yaml.safe_load(member.read()) or {})


@functools.cache
def _load_chart(source: Path, mtime_ns: int) -> Any:
    """One parsed chart per source and modification time: the four stacks share most charts, and Helm
    parses a package's templates on every load (helm_python.Chart objects are immutable and thread-safe)."""
    import helm_python

    return helm_python.Chart.load(str(source))


def load_chart(source: Path) -> Any:
    return _load_chart(source, source.stat().st_mtime_ns)


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
    namespace = str(reg.inputs.get("namespace") or "default")
    name = release_name(reg)
    values = json.dumps(helm_values(reg.inputs), sort_keys=True)
    objects = pickle.loads(_render(chart_dir, chart_dir.stat().st_mtime_ns, values, name, namespace))
    if reg.inputs.get("postrender"):
        objects = post_rendered(objects, str(reg.inputs["postrender"]))
    return RenderedRelease(reg.name, name, str(reg.inputs["chart"]), str(reg.inputs["version"]), namespace, objects)


def post_rendered(objects: list[dict[str, Any]], command: str) -> list[dict[str, Any]]:
    """The objects as Helm applies them after a release's `postrender` executable (Helm's --post-renderer:
    the manifests on its stdin, what it prints applied), run from the project directory as the provider runs it."""
    import subprocess

    project = Path(__file__).resolve().parents[1]
    text = "".join(f"---\n{yaml.safe_dump(o, sort_keys=False)}" for o in objects)
    out = subprocess.run([command], input=text, capture_output=True, text=True, check=True, cwd=project).stdout
    return [d for d in yaml.safe_load_all(out) if isinstance(d, dict) and d.get("kind")]


@functools.cache
def _render(source: Path, mtime_ns: int, values: str, name: str, namespace: str) -> bytes:
    """The objects of one chart rendered with one set of values (JSON), parsed, pickled: the stacks install
    several releases with identical values (the CRD charts, megabytes of YAML that dominate the parse
    time), so each is rendered and parsed once per process; every caller gets its own copy."""
    rendered = load_chart(source).render(json.loads(values), name=name, namespace=namespace, is_install=True)
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for part in HELM_SEPARATOR.split(text)
        for doc in [yaml.load(part, Loader=SAFE_LOADER)]
        if isinstance(doc, dict) and doc.get("kind")
    ]
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    return pickle.dumps(objects)


def helm_values(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The user-supplied values Helm gets from a Release's or Chart's recorded inputs.

    The provider reads each `valueYamlFiles` asset as YAML and merges them in order, then merges `values`
    over the result, both with Helm's CLI merge (`mlplatform.mappings.deep_merge`): pulumi-kubernetes
    provider/pkg/provider/helm_release.go `decodeRelease` (helm.v3.Release) and provider/pkg/helm/values.go
    `ValueOpts.MergeValues` (helm.v4.Chart). A `null` in a file is kept, so Helm's coalescing then deletes
    that chart default (`helm_merge`).

    A null inside `values` is dropped here. Where it arrives depends on the path: the Python SDK 3.272 does
    send a nested None as a protobuf null (pulumi/runtime/rpc.py `serialize_property`; only top-level None
    inputs are skipped), and the provider keeps nulls since 4.30 (CHANGELOG, #2997), but helm.v4.Chart is
    a component the provider builds with the Go SDK, whose map marshalling drops null entries
    (pulumi/pulumi sdk/go/pulumi/rpc.go `marshalInputOptions`), and the other SDKs strip them before the
    engine (pulumi/pulumi#12178 and siblings, listed in pulumi/pulumi-kubernetes#4306, which documents
    `valueYamlFiles` as the way to delete a default). So the program never relies on it
    (components/kube.py moves every None into a values file), and render shows what happens if it did.
    """
    merged: dict[str, Any] = {}
    for asset in inputs.get("valueYamlFiles") or []:
        merged = deep_merge(merged, _asset_yaml(asset))
    return deep_merge(merged, drop_nulls(inputs.get("values") or {}))


def _asset_yaml(asset: Any) -> dict[str, Any]:
    """A recorded asset (`{<sig>: ..., "text"|"path": ...}`, as the SDK serializes pulumi.StringAsset or
    FileAsset) read as a YAML mapping."""
    if isinstance(asset, Mapping) and isinstance(asset.get("text"), str):
        text = asset["text"]
    elif isinstance(asset, Mapping) and isinstance(asset.get("path"), str):
        text = Path(asset["path"]).read_text()
    else:
        raise ValueError(f"valueYamlFiles entry render cannot read (only text and file assets): {asset!r}")
    loaded = yaml.safe_load(text)
    return dict(loaded) if isinstance(loaded, Mapping) else {}


def drop_nulls(value: Any) -> Any:
    """`value` without null map entries, at any depth (lists keep their items: the SDKs drop map entries)."""
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def helm_merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over a chart's defaults (helm/helm pkg/chartutil/coalesce.go,
    `coalesceValues` at the top level, `coalesceTablesFullKey` below it): the user's values win; maps
    merge key by key; a null deletes the key (below the top level every null is deleted, at the top level
    only one that shadows a default); a table and a non-table never merge, the user's value stays."""
    return _coalesce(copy.deepcopy(dict(overrides)), copy.deepcopy(dict(defaults)), top=True)


def _coalesce(dst: dict[str, Any], src: Mapping[str, Any], *, top: bool) -> dict[str, Any]:
    nulls = [k for k, v in dst.items() if v is None]
    for key, default in src.items():
        if key not in dst:
            dst[key] = default
        elif isinstance(dst[key], dict) and isinstance(default, Mapping):
            dst[key] = _coalesce(dst[key], default, top=False)
    for key in nulls:
        if not top or key in src:
            del dst[key]
    return dst


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

    def release(self, name: str) -> RenderedRelease:
        """The one release installed under Helm release name `name`."""
        [found] = [r for r in self.releases if r.release == name]
        return found


def render_plan(
    doc: PlanDocument, charts_dir: Path | None, out_dir: Path | None, *, cache: Path | None = None
) -> RenderReport:
    """Renders and checks every Helm resource of the plan; writes <out_dir>/<release>.yaml when asked."""
    releases, violations, missing, known = [], [], [], []
    kinds: dict[str, str] = {}
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
        # what the mechanism applies: no hooks for helm.v4.Chart (mlplatform/helm_apply.py)
        rendered.objects = applied(reg.type, rendered.objects)
        releases.append(rendered)
        kinds[rendered.release] = reg.type
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{rendered.release}.yaml").write_text(rendered.manifest())
    every = [o for r in releases for o in r.objects]
    existing = program_objects(doc) | {_key(o) for o in every} | made_at_run_time(every)
    for rendered in releases:
        where = f"release {rendered.release} ({rendered.chart} {rendered.version})"
        found = check_objects(where, rendered.objects) + check_flows(where, rendered.objects)
        found += missing_references(where, rendered.objects, existing)
        found += lingering_jobs(where, kinds[rendered.release], rendered.objects)
        for v in found:
            reason = accepted(rendered.chart, v)
            if reason is None:
                violations.append(v)
            else:
                known.append((v, reason))
    return RenderReport(releases, violations, missing, known)


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(obj.get("kind")), str(meta.get("name"))


def program_objects(doc: PlanDocument) -> set[tuple[str, str, str]]:
    """(namespace, kind, name) of the Secrets and ConfigMaps the program declares itself."""
    return {
        _key({**r.inputs, "kind": r.type.rsplit(":", 1)[-1]})
        for t in ("kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap")
        for r in doc.by_type(t)
    }
