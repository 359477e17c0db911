"""The Pod Security Standards, as admission enforces them, over plain pod specs (dicts in API shape).

Used on every pod the program declares directly and on every pod a pinned chart renders with the program's
values (`python -m mlplatform render`), so a pod that admission would reject in its namespace is found
before `pulumi up`, with the object, container and field named.

Rules: https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline, then restricted,
which includes baseline). Only the `privileged` level allows everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")

# baseline: capabilities a container may add
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
BASELINE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# restricted: the only volume types allowed
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
VOLUME_META_KEYS = frozenset({"name"})
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})


@dataclass(frozen=True)
class Violation:
    where: str  # e.g. "release airflow / Deployment airflow-statsd"
    container: str | None  # None: a pod-level field
    field: str  # the offending field's path in the pod spec
    rule: str  # what the level requires

    def __str__(self) -> str:
        who = f"container {self.container}" if self.container else "pod"
        return f"{self.where}: {who}: {self.field}: {self.rule}"


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(field path, container) for init, regular and ephemeral containers."""
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(kind) or []):
            yield f"{kind}[{i}]", c


def check_pod(spec: Mapping[str, Any], level: str, where: str) -> list[Violation]:
    """Every way `spec` breaks `level` (baseline or restricted); empty when admission would accept it."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}; levels: {LEVELS}")
    if level == "privileged":
        return []
    found = _baseline(spec, where)
    if level == "restricted":
        found += _restricted(spec, where)
    return found


def _baseline(spec: Mapping[str, Any], where: str) -> list[Violation]:
    out: list[Violation] = []

    def bad(container: str | None, field: str, rule: str) -> None:
        out.append(Violation(where, container, field, rule))

    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            bad(None, host, "host namespaces are not allowed (baseline)")
    pod_sc = spec.get("securityContext") or {}
    _baseline_context(pod_sc, None, "securityContext", bad)
    for i, sysctl in enumerate(pod_sc.get("sysctls") or []):
        if sysctl.get("name") not in BASELINE_SYSCTLS:
            bad(None, f"securityContext.sysctls[{i}]", f"sysctl {sysctl.get('name')} is not allowed (baseline)")
    for i, vol in enumerate(spec.get("volumes") or []):
        if "hostPath" in vol:
            bad(None, f"volumes[{i}].hostPath", "hostPath volumes are not allowed (baseline)")
    for path, c in containers(spec):
        name = c.get("name", path)
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            bad(name, f"{path}.securityContext.privileged", "privileged containers are not allowed (baseline)")
        added = set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            bad(name, f"{path}.securityContext.capabilities.add", f"{sorted(added)} may not be added (baseline)")
        if sc.get("procMount", "Default") != "Default":
            bad(name, f"{path}.securityContext.procMount", "procMount must be Default (baseline)")
        _baseline_context(sc, name, f"{path}.securityContext", bad)
        for j, port in enumerate(c.get("ports") or []):
            if port.get("hostPort"):
                bad(name, f"{path}.ports[{j}].hostPort", "host ports are not allowed (baseline)")
    return out


def _baseline_context(sc: Mapping[str, Any], container: str | None, path: str, bad: Any) -> None:
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        bad(container, f"{path}.windowsOptions.hostProcess", "hostProcess is not allowed (baseline)")
    if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        bad(container, f"{path}.seccompProfile.type", "seccomp must not be Unconfined (baseline)")
    if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        bad(container, f"{path}.appArmorProfile.type", "AppArmor must not be Unconfined (baseline)")
    se = sc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
        bad(container, f"{path}.seLinuxOptions", "custom SELinux user, role or type is not allowed (baseline)")


def _restricted(spec: Mapping[str, Any], where: str) -> list[Violation]:
    out: list[Violation] = []

    def bad(container: str | None, field: str, rule: str) -> None:
        out.append(Violation(where, container, field, rule))

    pod_sc = spec.get("securityContext") or {}
    for i, vol in enumerate(spec.get("volumes") or []):
        kinds = set(vol) - VOLUME_META_KEYS
        if kinds and not kinds <= RESTRICTED_VOLUMES:
            bad(None, f"volumes[{i}]", f"volume type {sorted(kinds - RESTRICTED_VOLUMES)} is not allowed (restricted)")
    if pod_sc.get("runAsUser") == 0:
        bad(None, "securityContext.runAsUser", "must not run as UID 0 (restricted)")
    for path, c in containers(spec):
        name = c.get("name", path)
        sc = c.get("securityContext") or {}
        field = f"{path}.securityContext"
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(name, f"{field}.allowPrivilegeEscalation", "must be false (restricted)")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            bad(name, f"{field}.runAsNonRoot", "must be true, on the container or the pod (restricted)")
        if sc.get("runAsUser") == 0:
            bad(name, f"{field}.runAsUser", "must not run as UID 0 (restricted)")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in SECCOMP_OK:
            bad(name, f"{field}.seccompProfile.type", "must be RuntimeDefault or Localhost (restricted)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad(name, f"{field}.capabilities.drop", "must drop ALL (restricted)")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            bad(name, f"{field}.capabilities.add", f"only NET_BIND_SERVICE may be added, not {sorted(extra)}")
    return out


def missing_requests(spec: Mapping[str, Any], where: str) -> list[Violation]:
    """Containers the scheduler and autoscaler would place blind: no CPU or memory request."""
    out = []
    for path, c in containers(spec):
        requests = (c.get("resources") or {}).get("requests") or {}
        lacking = [r for r in ("cpu", "memory") if r not in requests]
        if lacking and not path.startswith("ephemeralContainers"):
            out.append(
                Violation(
                    where, c.get("name", path), f"{path}.resources.requests", f"no {' or '.join(lacking)} request"
                )
            )
    return out


POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, str]]]:
    """(label, pod spec, pod labels) of every pod an object makes: workloads, RayCluster groups, and pod
    templates carried as YAML in a ConfigMap (Airflow's KubernetesExecutor pod_template_file)."""
    kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
    path = POD_TEMPLATE_PATHS.get(str(kind))
    if path is not None:
        node: Any = obj
        for key in path:
            node = (node or {}).get(key)
        template_meta = (obj.get("metadata") if kind == "Pod" else _template_metadata(obj, path)) or {}
        if node:
            yield f"{kind} {name}", node, template_meta.get("labels") or {}
    elif kind == "RayCluster":
        spec = obj.get("spec") or {}
        head = (spec.get("headGroupSpec") or {}).get("template") or {}
        yield f"RayCluster {name} head", head.get("spec") or {}, (head.get("metadata") or {}).get("labels") or {}
        for group in spec.get("workerGroupSpecs") or []:
            tpl = group.get("template") or {}
            label = f"RayCluster {name} worker group {group.get('groupName')}"
            yield label, tpl.get("spec") or {}, (tpl.get("metadata") or {}).get("labels") or {}
    elif kind == "ConfigMap":
        import yaml

        for key, text in (obj.get("data") or {}).items():
            if "kind: Pod" not in str(text):
                continue
            pod = yaml.safe_load(text)
            if isinstance(pod, dict) and pod.get("kind") == "Pod":
                meta = pod.get("metadata") or {}
                yield f"ConfigMap {name} [{key}] Pod", pod.get("spec") or {}, meta.get("labels") or {}


def _template_metadata(obj: Mapping[str, Any], spec_path: tuple[str, ...]) -> Mapping[str, Any]:
    node: Any = obj
    for key in spec_path[:-1]:
        node = (node or {}).get(key)
    return (node or {}).get("metadata") or {}
