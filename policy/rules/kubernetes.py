"""Kubernetes objects: every one the program declares and every one its Helm charts install as rendered
with the program's values (`policy.charts`, reusing mlplatform/manifests.py), checked as admission and
the scheduler would see them (mlplatform/podsecurity.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from mlplatform.podsecurity import Violation, check_pod, containers, missing_requests, pod_specs
from policy.rules import resource_rule, stack_rule
from policy.view import HELM_TYPES, Context, Resource, Stack, plain

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
# a key that names a secret value: password, token, API key, private key, credentials... (separators and
# case ignored); keys that name where a secret is (existingSecret, secretName, tokenPath) do not match
SECRET_KEY = re.compile(r"(password|passwd|secret|token|apikey|privatekey|secretaccesskey|credentials?)$")


def _chart_of(res: Resource) -> str:
    return str(res.get("chart") or "")


def _accepted(res: Resource, v: Violation) -> bool:
    """Findings `render` accepts with a reason read in the chart (mlplatform/manifests.py ACCEPTED)."""
    if res.type not in HELM_TYPES:
        return False
    from mlplatform.manifests import accepted

    return accepted(_chart_of(res), v) is not None


def _pods(stack: Stack) -> Iterator[tuple[Resource, str, str, Mapping[str, Any]]]:
    """(owner, where, namespace, pod spec) of every pod the stack makes."""
    for res, where, _obj, namespace, label, spec in _pod_templates(stack):
        yield res, _where(where, label), namespace, spec


def _where(where: str, label: str) -> str:
    return where if where.endswith(label.split(" ", 1)[-1]) else f"{where} ({label})"


def _pod_templates(stack: Stack) -> Iterator[tuple[Resource, str, dict[str, Any], str, str, Mapping[str, Any]]]:
    for res, where, obj in stack.kubernetes_objects():
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        for label, spec, _labels in pod_specs(obj):
            yield res, where, obj, namespace, label, spec


def _template_meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    return template.get("metadata") or {}


@stack_rule("pod-security", "Every pod passes its namespace's Pod Security level")
def pod_security(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Admission rejects a pod that breaks its namespace's `pod-security.kubernetes.io/enforce` level
    (Kubernetes docs, "Pod Security Standards"), and a rejected chart pod fails `pulumi up` half way; the
    level is the one the stack's Namespace declares (components/guardrails.py POD_SECURITY). Namespaces the
    stack does not create (kube-system) are not checked."""
    levels = stack.namespace_levels()
    for res, where, namespace, spec in _pods(stack):
        level = levels.get(namespace)
        if level is None:
            continue
        for v in check_pod(spec, level, where):
            if not _accepted(res, v):
                yield res, f"{v} (namespace {namespace} enforces {level})"


@stack_rule("container-requests", "Every container requests CPU and memory")
def container_requests(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """The scheduler and the cluster autoscaler place pods by their requests (Kubernetes docs, "Resource
    Management for Pods and Containers"); a container without them lands anywhere and is evicted first.
    Findings `render` accepts for a chart that offers no value to set them are not repeated here."""
    for res, where, _namespace, spec in _pods(stack):
        for v in missing_requests(spec, where):
            if not _accepted(res, v):
                yield res, str(v)


# Airflow's `[kubernetes_secrets]` settings name a Secret and key ("<secret>=<key>"), never a value
# (apache-airflow-providers-cncf-kubernetes config reference, section kubernetes_secrets)
AIRFLOW_SECRET_REFERENCE = re.compile(r"^AIRFLOW__KUBERNETES_SECRETS__")
SECRET_AND_KEY = re.compile(r"^[a-z0-9][a-z0-9.-]*=[A-Za-z0-9_.-]+$")


def image_pinned(image: str, template: Mapping[str, Any] | None = None) -> bool:
    """A digest, or a tag other than `latest` (the tag follows the last `:` after the last `/`). `auto` in
    a pod Istio injects (`sidecar.istio.io/inject: "true"` and an `inject.istio.io/templates`
    annotation) is replaced by istiod's pinned proxy image at admission (istio manifests/charts/gateway
    values.yaml and templates/deployment.yaml @ 1.30.3: "image: auto")."""
    if "@sha256:" in image:
        return True
    if image == "auto" and template is not None:
        meta = template or {}
        injected = (meta.get("labels") or {}).get("sidecar.istio.io/inject") == "true"
        return injected and bool((meta.get("annotations") or {}).get("inject.istio.io/templates"))
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")


@stack_rule("images-pinned", "Every container image is pinned by tag or digest, never latest")
def images_pinned(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """An untagged or `latest` image changes under a running deployment and makes a rollback restore
    something else (Kubernetes docs, "Images": avoid `:latest` in production)."""
    for res, where, obj, _namespace, label, spec in _pod_templates(stack):
        for path, c in containers(spec):
            image = str(c.get("image") or "")
            if not image_pinned(image, _template_meta(obj)):
                yield res, f"{_where(where, label)}: {path} {c.get('name')}: image {image!r} is not pinned"


@stack_rule("default-deny-network-policy", "Every platform namespace has a default-deny NetworkPolicy")
def default_deny(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Traffic is allowed only by the named flows (components/guardrails.py FLOWS); without a policy that
    selects every pod and allows nothing, pods accept any connection (Kubernetes docs, "Network Policies":
    default deny all ingress and all egress traffic)."""
    denying: set[str] = set()
    for pol in stack.of_type(NETWORK_POLICY):
        spec = pol.get("spec") or {}
        selects_all = not (
            (spec.get("podSelector") or {}).get("matchLabels")
            or (spec.get("podSelector") or {}).get("matchExpressions")
        )
        types = set(spec.get("policyTypes") or [])
        if selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress"):
            denying.add(str(pol.get("metadata.namespace")))
    for ns in stack.of_type(NAMESPACE):
        name = str(ns.get("metadata.name"))
        if name not in denying:
            yield ns, f"namespace {name} has no NetworkPolicy selecting every pod with no ingress or egress rule"


def _secret_key(key: object) -> bool:
    normal = re.sub(r"[^a-z]", "", str(key).lower())
    return bool(SECRET_KEY.search(normal)) and not normal.startswith("existing")


def literal(value: object) -> bool:
    """A value that is the secret itself, not a reference to one: a non-empty string with no whitespace
    and no `${VAR}` / `$(VAR)` expansion (code reading os.environ spans lines, so it never matches)."""
    return (
        isinstance(value, str)
        and bool(value)
        and not any(ch.isspace() for ch in value)
        and not value.startswith("$")
        and "${" not in value
        and "$(" not in value
    )


def secret_literals(value: Any, path: str = "") -> Iterator[str]:
    """Paths of secret-named keys with literal values, at any depth."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _secret_key(key) and literal(inner):
                yield where
            yield from secret_literals(inner, where)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from secret_literals(inner, f"{path}[{i}]")


def helm_values(res: Resource) -> dict[str, Any]:
    """The values the program hands Helm: each valueYamlFiles text, then `values` (mlplatform/manifests.py
    helm_values reads them the same way)."""
    merged: dict[str, Any] = {}
    for i, asset in enumerate(plain(res.get("valueYamlFiles") or [])):
        if isinstance(asset, Mapping) and isinstance(asset.get("text"), str):
            merged[f"valueYamlFiles[{i}]"] = yaml.safe_load(asset["text"]) or {}
    merged["values"] = plain(res.get("values") or {})
    return merged


@stack_rule("no-plaintext-secrets", "No secret value in Helm values, container env or ConfigMaps")
def no_plaintext_secrets(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Helm keeps values in its release record and in `helm get values`; env values and ConfigMaps are
    readable by anyone who may read pods or ConfigMaps (Kubernetes docs, "Good practices for Kubernetes
    Secrets"). Secrets go in Secrets and reach pods as secretKeyRef or files. Heuristic: a key named like a
    password, secret, token, API key or credentials with a literal value (a Pulumi secret included: it
    is still a literal to Helm)."""
    for res in stack.of_type(*HELM_TYPES):
        for path in secret_literals(helm_values(res)):
            yield res, f"Helm value {path} is a literal secret"
    for res, where, obj in stack.kubernetes_objects():
        if obj.get("kind") == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if _secret_key(key) and literal(value):
                    yield res, f"{where}: data key {key} holds a literal secret"
        for _label, spec, _labels in pod_specs(obj):
            for path, c in containers(spec):
                for env in c.get("env") or []:
                    name, value = str((env or {}).get("name")), (env or {}).get("value")
                    if AIRFLOW_SECRET_REFERENCE.match(name) and SECRET_AND_KEY.match(str(value)):
                        continue
                    if _secret_key(name) and literal(value):
                        yield res, f"{where}: {path} env {name} is a literal secret"


@resource_rule("helm-release-timeout", "Every Helm release sets an explicit timeout", HELM_RELEASE)
def helm_release_timeout(res: Resource, ctx: Context) -> Iterable[str]:
    """A release's default wait is 300 s (pulumi-kubernetes helm.v3.Release `timeout`); each release states
    how long its pods may take, so a slow one fails with its name instead of timing out at a default
    nobody chose. helm.v4.Chart has no release wait (each object is awaited on its own), so it is not
    checked."""
    timeout = res.get("timeout")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        yield f"timeout is {timeout!r}"


@stack_rule("charts-rendered", "Every Helm chart of the stack could be rendered and checked", mandatory=False)
def charts_rendered(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """The pod rules above see a chart's pods only when the pinned chart renders (from a local copy, or
    pulled from its repository under the CLI). Advisory: a chart not rendered is named so its pods are
    known to be unchecked; `python -m mlplatform render` fails on it."""
    for res in stack.of_type(*HELM_TYPES):
        try:
            stack.chart_objects(res)
        except Exception as e:
            yield res, f"chart {_chart_of(res)} {res.get('version')} not rendered: {e}"
