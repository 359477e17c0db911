"""The resource view every rule is written against, and its two sources: the offline plan's registrations
(`mlplatform.plan.document.PlanDocument`) and the policy SDK's validation arguments (`pulumi_policy`).

A rule reads `type`, `name`, `urn`, `props` (the resource's inputs, camelCase as the engine sends them),
`protect`, `retain_on_delete`, `parent` and `dependencies`. The analyzer protocol carries no
retainOnDelete (pulumi's analyzer.proto `AnalyzerResourceOptions` has protect, ignoreChanges,
deleteBeforeReplace, aliases, customTimeouts, parent: pulumi/pulumi proto/pulumi/analyzer.proto @ v3.272.0),
so under the CLI it is None and rules fall back to `protect`.

During a preview the engine sends values not known yet (a new KMS key's ARN, a bucket policy built from a
new bucket's ARN) as unknowns (pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go: Analyze and
AnalyzeStack marshal with KeepUnknowns). A view drops them, so a rule never crashes on one, and records
their paths in `Resource.unknown`: a finding that could rest on one is not a verdict yet (`policy.pack`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A function giving the Kubernetes objects a Helm resource installs (rendered from its chart with the
# values Helm receives); raises when the chart cannot be found or rendered.
ChartRenderer = Callable[["Resource"], list[dict[str, Any]]]

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
HELM_CHART = "kubernetes:helm.sh/v4:Chart"
# Outputs no rule reads that a preview always sends unknown: a helm.v3.Release's "pure outputs"
# (pulumi-kubernetes provider/pkg/provider/helm_release.go checkpointRelease: on preview, `status` and
# `resourceNames` are computed placeholders)
PURE_OUTPUTS = {"kubernetes:helm.sh/v3:Release": ("status", "resourceNames")}
# `helm.sh/chart: <chart>-<version>`, the label charts put on their objects (Helm's chart template
# `<chart>.chart`, as `helm create` writes it)
_CHART_LABEL = re.compile(r"^(?P<chart>.+?)-v?\d+\.\d+\.\d+.*$")


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool | None = None  # None: not known (under the CLI)
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # paths of inputs not known during a preview (under the CLI only)

    def get(self, path: str, default: Any = None) -> Any:
        """A nested input by dotted path (`settings.ipConfiguration.sslMode`); default when absent."""
        return dig(self.props, path, default)

    @property
    def kubernetes_kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Context:
    """What a resource rule needs beyond the resource: the stack's name and profile."""

    stack: str
    profile: str  # `mlplatform:profile`: dev | prod (prod when unknown: the strict reading)

    @property
    def prod(self) -> bool:
        return self.profile == "prod"


@dataclass
class Stack:
    """Every resource of one stack, the context, and how to see what a Helm resource installs."""

    context: Context
    resources: list[Resource]
    render: ChartRenderer | None = None
    _rendered: dict[str, list[dict[str, Any]] | Exception] = field(default_factory=dict, repr=False)
    _expanded: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        """Under the CLI a helm.v4.Chart arrives expanded: AnalyzeStack sends each resource's outputs
        (pulumi/pulumi pkg/resource/deploy/step_generator.go AnalyzeResources), and the Chart component's
        outputs are only `resources`; its objects are resources of the stack with the Chart as parent. Such a
        Chart is not rendered again: its children are its objects (`chart_objects`, not yielded on their
        own), and its chart's name is read from their `helm.sh/chart` label, so the rules name and count them
        as they do in the offline plan."""
        for i, res in enumerate(self.resources):
            if res.type != HELM_CHART or res.get("chart") is not None:
                continue
            children = [r for r in self.resources if r.parent == res.urn]
            if not children:
                continue
            labels = [dig(c.props, "metadata.labels") or {} for c in children]
            names = {m["chart"] for m in (_CHART_LABEL.match(str(lab.get("helm.sh/chart", ""))) for lab in labels) if m}
            props = {**res.props, "chart": sorted(names)[0]} if len(names) == 1 else dict(res.props)
            self.resources[i] = Resource(**{**vars(res), "props": props})
            self._expanded.add(res.urn)
            self._rendered[res.urn] = [o for o in (kubernetes_object(c) for c in children) if o is not None]

    @property
    def prod(self) -> bool:
        return self.context.prod

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def dependents(self, res: Resource, *types: str) -> list[Resource]:
        """Resources of `types` that depend on `res` (an S3 bucket's versioning, policy, encryption...)."""
        return [r for r in self.of_type(*types) if res.urn in r.dependencies]

    def chart_objects(self, res: Resource) -> list[dict[str, Any]]:
        """The objects a Helm resource installs; raises what rendering raised (cached per resource)."""
        if res.urn not in self._rendered:
            if self.render is None:
                self._rendered[res.urn] = LookupError("no chart renderer")
            else:
                try:
                    self._rendered[res.urn] = self.render(res)
                except Exception as e:
                    self._rendered[res.urn] = e
        found = self._rendered[res.urn]
        if isinstance(found, Exception):
            raise found
        return found

    def uncertain(self, res: Resource | None) -> list[str]:
        """Values unknown during a preview that a finding on `res` may rest on: the resource's own, those of
        the resources it depends on and of those depending on it (the stack rules read companions both
        ways: an S3 bucket's encryption and policy resources, an RDS instance's parameter group and
        replicas), and an expanded chart's objects. A finding on the stack as a whole may rest on any."""
        if res is None:
            near = self.resources
        else:
            near = [
                r
                for r in self.resources
                if r.urn == res.urn
                or r.urn in res.dependencies
                or res.urn in r.dependencies
                or (r.parent == res.urn and res.urn in self._expanded)
            ]
        return [f"{r.name}.{path}" for r in near for path in r.unknown]

    def kubernetes_objects(self) -> Iterator[tuple[Resource, str, dict[str, Any]]]:
        """(owning resource, where, object) for every Kubernetes object the program declares and every one
        its Helm resources install (those that render). `where` names the object for a finding."""
        for res in self.resources:
            if res.type.startswith("kubernetes:") and res.type not in HELM_TYPES:
                obj = kubernetes_object(res)
                if obj is not None and res.parent not in self._expanded:
                    yield res, f"{res.kubernetes_kind} {object_name(obj, res)}", obj
        for res in self.of_type(*HELM_TYPES):
            try:
                objects = self.chart_objects(res)
            except Exception:
                continue
            for obj in objects:
                yield res, f"release {res.name}: {obj.get('kind')} {object_name(obj, res)}", obj

    def namespace_levels(self) -> dict[str, str]:
        """Pod Security level each namespace the stack creates enforces (its `enforce` label)."""
        levels = {}
        for ns in self.of_type("kubernetes:core/v1:Namespace"):
            meta = ns.get("metadata") or {}
            level = (meta.get("labels") or {}).get("pod-security.kubernetes.io/enforce")
            if meta.get("name") and level:
                levels[str(meta["name"])] = str(level)
        return levels


def dig(value: Any, path: str, default: Any = None) -> Any:
    node = value
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return default if node is None else node


def kubernetes_object(res: Resource) -> dict[str, Any] | None:
    """The object a `kubernetes:<group>/<version>:<Kind>` resource declares, in API shape (apiVersion, kind,
    metadata, spec/data...), from its inputs. Patches and non-object types (providers, YAML groups) give
    None."""
    kind = res.kubernetes_kind
    if kind.endswith("Patch") or res.type.startswith("kubernetes:yaml"):
        return None
    obj = plain(res.props)
    if not isinstance(obj, dict):
        return None
    obj.setdefault("kind", kind)
    return obj


def object_name(obj: Mapping[str, Any], res: Resource) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or res.name
    return f"{meta['namespace']}/{name}" if meta.get("namespace") else str(name)


def plain(value: Any, unknown: list[str] | None = None, path: str = "") -> Any:
    """Plain dicts, lists and scalars from the policy SDK's proxies and assets (`pulumi.StringAsset` →
    `{"text": ...}`, FileAsset → `{"path": ...}`, the shape the plan records).

    The SDK's proxies raise UnknownValueError on a value not known during a preview (pulumi_policy/proxy.py
    @ 1.21.0); such a value reads as unset here, so a rule still runs on the rest of the resource and the
    stack; its dotted path is appended to `unknown` when given."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            where = f"{path}.{key}" if path else str(key)
            known, inner = _known(value, key)
            if known:
                out[str(key)] = plain(inner, unknown, where)
            elif unknown is not None:
                unknown.append(where)
        return out
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Sequence):
        items = []
        for i in range(len(value)):
            known, inner = _known(value, i)
            if known:
                items.append(plain(inner, unknown, f"{path}[{i}]"))
            elif unknown is not None:
                unknown.append(f"{path}[{i}]")
        return items
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return {"text": text}
    path = getattr(value, "path", None)
    if isinstance(path, str):
        return {"path": path}
    return value


def json_document(value: Any) -> Any:
    """A JSON document input (an IAM policy), parsed; None when it is not JSON."""
    if isinstance(value, Mapping):
        return plain(value)
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _known(container: Any, key: Any) -> tuple[bool, Any]:
    try:
        return True, container[key]
    except Exception as e:
        if type(e).__name__ == "UnknownValueError":
            return False, None
        raise


# -- sources -------------------------------------------------------------------------------------------


def from_registration(reg: Any) -> Resource:
    """A view of one registration of the offline plan (`mlplatform.plan.mocks.Registration`)."""
    return Resource(
        type=reg.type,
        name=reg.name,
        urn=reg.urn,
        props=reg.inputs,
        protect=bool(reg.protect),
        retain_on_delete=bool(reg.retain_on_delete),
        parent=reg.parent or None,
        dependencies=tuple(reg.dependencies),
    )


def from_policy_resource(r: Any, retain_on_delete: bool | None = None) -> Resource:
    """A view of `pulumi_policy`'s ResourceValidationArgs or PolicyResource (stack validation)."""
    parent = getattr(r, "parent", None)
    parent_urn = getattr(parent, "urn", None) or getattr(r.opts, "parent", None)
    unknown: list[str] = []
    props = plain(r.props, unknown)
    return Resource(
        type=r.resource_type,
        name=r.name,
        urn=r.urn,
        props=props,
        protect=bool(r.opts.protect),
        retain_on_delete=retain_on_delete,
        parent=parent_urn,
        dependencies=tuple(d.urn for d in getattr(r, "dependencies", []) or []),
        unknown=tuple(u for u in unknown if u.split(".")[0].split("[")[0] not in PURE_OUTPUTS.get(r.resource_type, ())),
    )


def context_from_environment() -> Context:
    """The stack's name and profile under the Pulumi CLI: PULUMI_STACK and the stack's config as JSON in
    PULUMI_CONFIG, which the Python language host sets from the engine's ConfigureStack call before it
    starts the pack (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go RunPlugin; pulumi_policy's
    `_configure_runtime_settings` reads them too)."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    return Context(stack=os.environ.get("PULUMI_STACK", ""), profile=str(config.get("mlplatform:profile", "prod")))


def context_from_config(stack: str, config: Mapping[str, Any]) -> Context:
    return Context(stack=stack, profile=str(config.get("mlplatform:profile", "prod")))


def resources_from_plan(registrations: Iterable[Any]) -> list[Resource]:
    return [from_registration(r) for r in registrations]
