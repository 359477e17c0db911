"""Pod volumes as the kubelet lays them out, for tests that run a planned container's command on this machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
