"""Pod volumes as the kubelet lays them out, for tests that run a planned container's command on this machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KUBELET_STAMP = "..2026_01_01_00_00_00.000000001"


def mount_config_map(target: Path, data: Mapping[str, str], items: Sequence[Mapping[str, str]] | None = None) -> None:
    """A ConfigMap volume as kubernetes' AtomicWriter writes it (pkg/volume/util/atomic_writer.go): the files
    in a timestamped directory, `..data` a link to it, and each top-level entry of the payload a link
    through `..data`. With `items`, only those keys, each at its `path` (which may name a subdirectory)."""
    payload = {i["path"]: data[i["key"]] for i in items} if items else dict(data)
    stamped = target / KUBELET_STAMP
    for path, text in payload.items():
        (stamped / path).parent.mkdir(parents=True, exist_ok=True)
        (stamped / path).write_text(text)
    (target / "..data").symlink_to(KUBELET_STAMP)
    for top in sorted({p.split("/", 1)[0] for p in payload}):
        (target / top).symlink_to(f"..data/{top}")


def lay_out_mounts(
    root: Path,
    volumes: Sequence[Mapping[str, Any]],
    mounts: Sequence[Mapping[str, Any]],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """A container's volume mounts under `root` (a mountPath `/etc/x` becomes `<root>/etc/x`): ConfigMap volumes
    from `config_maps` and Secret volumes from `secrets` (by name, their decoded values) as the kubelet writes
    them (the same AtomicWriter), emptyDir and persistentVolumeClaim volumes as empty directories (a new
    volume)."""
    by_name = {v["name"]: v for v in volumes}
    for mount in mounts:
        target = root / mount["mountPath"].lstrip("/")
        volume = by_name[mount["name"]]
        target.mkdir(parents=True)
        if "configMap" in volume:
            source = volume["configMap"]
            mount_config_map(target, config_maps[source["name"]], source.get("items"))
        elif "secret" in volume:
            source = volume["secret"]
            mount_config_map(target, (secrets or {})[source["secretName"]], source.get("items"))
        elif "emptyDir" not in volume and "persistentVolumeClaim" not in volume:
            raise AssertionError(f"no stand-in for volume {volume}")


def in_root(env: Mapping[str, str], root: Path, mounts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """`env` with each value that is a path inside one of the mounts moved under `root`, where
    `lay_out_mounts` put that mount."""
    tops = [m["mountPath"].rstrip("/") for m in mounts]
    return {k: f"{root}{v}" if any(v == t or v.startswith(f"{t}/") for t in tops) else v for k, v in env.items()}


def container_env(container: Mapping[str, Any], secret: Mapping[str, str]) -> dict[str, str]:
    """A container's `env` as the kubelet resolves it: plain values as written, each secretKeyRef from
    `secret` (what the referenced Secret holds, by key; a key the test does not fill fails, naming it)."""
    entries = container.get("env") or []
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in entries if "valueFrom" in e}
    unknown = {name: key for name, key in refs.items() if key not in secret}
    assert not unknown, f"from Secret keys this test does not fill (the credentials and address only): {unknown}"
    plain = {e["name"]: str(e.get("value", "")) for e in entries if "valueFrom" not in e}
    return plain | {name: secret[key] for name, key in refs.items()}
