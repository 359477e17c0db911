"""What each Helm mechanism really applies, and what that means for the pods it starts.

`helm.v4.Chart` renders the chart with hooks disabled and applies the release manifest only
(pulumi-kubernetes provider/pkg/provider/helm/v4/chart.go; pulumi/pulumi-kubernetes#3284 is open), so an
object a chart makes only as a hook never exists. `helm.v3.Release` runs Helm itself: hooks run (their Jobs
are deleted per their hook-delete-policy), test hooks do not. A pod that loads a Secret or ConfigMap no one
applies stays in CreateContainerConfigError (or ContainerCreating for a volume).

Helm upgrades an ordinary (non-hook) Job by patching it, and a Job's pod template is immutable: while the
Job of the previous release still exists, any upgrade that changes its template fails ("field is
immutable", helm/helm#7725). Helm recreates a manifest object it finds missing (pkg/kube/client.go
`Update`: NotFound -> create), so such a Job must be gone once it finished: `ttlSecondsAfterFinished: 0`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mlplatform.podsecurity import Violation, pod_specs

HOOK = "helm.sh/hook"
V4_CHART = "kubernetes:helm.sh/v4:Chart"
V3_RELEASE = "kubernetes:helm.sh/v3:Release"

# Objects in every namespace, or made at run time by a controller the platform installs, each with why.
# (kind, name) -> who makes it
RUNTIME_OBJECTS: Mapping[tuple[str, str], str] = {
    ("ConfigMap", "kube-root-ca.crt"): "kube-controller-manager's root CA publisher, in every namespace",
    ("ConfigMap", "istio-ca-root-cert"): "istiod's namespace controller, in every namespace",
}


def hooks_of(obj: Mapping[str, Any]) -> set[str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {h.strip() for h in str(annotations.get(HOOK, "")).split(",") if h.strip()}


def applied(kind: str, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered objects the mechanism `kind` (a Pulumi type) puts in the cluster."""
    if kind == V4_CHART:
        return [o for o in objects if not hooks_of(o)]
    return [o for o in objects if not hooks_of(o) & {"test", "test-success", "test-failure"}]


def _references(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(container or volume, kind, name) of every Secret and ConfigMap a pod needs to start."""
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            who = f"container {c.get('name')}"
            for source in c.get("envFrom") or []:
                for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    ref = source.get(key)
                    if ref and not ref.get("optional"):
                        yield who, kind, ref["name"]
            for env in c.get("env") or []:
                value_from = env.get("valueFrom") or {}
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    ref = value_from.get(key)
                    if ref and not ref.get("optional"):
                        yield f"{who} env {env.get('name')}", kind, ref["name"]
    for v in spec.get("volumes") or []:
        who = f"volume {v.get('name')}"
        if (v.get("secret") or {}).get("secretName") and not v["secret"].get("optional"):
            yield who, "Secret", v["secret"]["secretName"]
        if (v.get("configMap") or {}).get("name") and not v["configMap"].get("optional"):
            yield who, "ConfigMap", v["configMap"]["name"]
        for source in (v.get("projected") or {}).get("sources") or []:
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                ref = source.get(key)
                if ref and ref.get("name") and not ref.get("optional"):
                    yield who, kind, ref["name"]


def made_at_run_time(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """(namespace, kind, name) of the Secrets applied objects make when they run: a cert-manager
    Certificate's `spec.secretName` (cert-manager's certificates controller), and the Secret a
    kube-webhook-certgen `create` Job writes (`--namespace`, `--secret-name`: its cmd/create.go)."""
    made: set[tuple[str, str, str]] = set()
    for obj in objects:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        if obj.get("kind") == "Certificate" and str(obj.get("apiVersion", "")).startswith("cert-manager.io/"):
            made.add((str(meta.get("namespace", "")), "Secret", str(spec.get("secretName"))))
        if obj.get("kind") != "Job":
            continue
        for _, pod, _ in pod_specs(obj):
            for c in pod.get("containers") or []:
                args = [str(a) for a in c.get("args") or []]
                if "kube-webhook-certgen" not in str(c.get("image")) or "create" not in args:
                    continue
                flags = dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith("--") and "=" in a)
                if "secret-name" in flags:
                    made.add((flags.get("namespace", str(meta.get("namespace", ""))), "Secret", flags["secret-name"]))
    return made


def missing_references(
    where: str, objects: Iterable[Mapping[str, Any]], existing: set[tuple[str, str, str]]
) -> list[Violation]:
    """Pods whose Secrets or ConfigMaps nobody applies. `existing` holds (namespace, kind, name) of every
    object the stack applies (program and every release)."""
    found: list[Violation] = []
    for obj in objects:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        for label, spec, _ in pod_specs(obj):
            for who, kind, name in _references(spec):
                if (namespace, kind, name) in existing or (kind, name) in RUNTIME_OBJECTS:
                    continue
                why = f"needs {kind} {namespace}/{name}, which nothing applies"
                found.append(Violation(f"{where} / {label}", None, who, why))
    return found


def lingering_jobs(where: str, kind: str, objects: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """Ordinary Jobs of a helm.v3.Release that outlive their run (see the module's docstring)."""
    if kind != V3_RELEASE:
        return []
    return [
        Violation(
            f"{where} / Job {o['metadata'].get('name')}",
            None,
            "spec.ttlSecondsAfterFinished",
            f"{(o.get('spec') or {}).get('ttlSecondsAfterFinished')!r}: a finished Job Helm patches on the next "
            "upgrade rejects any template change (immutable); must be 0",
        )
        for o in objects
        if o.get("kind") == "Job" and not hooks_of(o) and (o.get("spec") or {}).get("ttlSecondsAfterFinished") != 0
    ]
