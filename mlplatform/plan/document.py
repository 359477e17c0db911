"""The plan document: every registration of one stack plus its outputs, as JSON, and queries over it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlplatform.plan.mocks import Registration

FORMAT_VERSION = 1


@dataclass
class PlanDocument:
    project: str
    stack: str
    resources: list[Registration]
    outputs: dict[str, Any]
    seconds: float = 0.0
    # CPU time of the process while synthesizing: the figure that does not grow with the machine's load
    cpu_seconds: float = 0.0

    # -- queries (used by tests and the renderer) ------------------------------------------------

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registration:
        found = [r for r in self.by_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> list[Registration]:
        return [r for r in self.resources if r.name == name]

    def by_urn(self, urn: str) -> Registration:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise LookupError(urn)

    def children(self, parent_urn: str) -> list[Registration]:
        return [r for r in self.resources if r.parent == parent_urn]

    def descendants(self, parent_urn: str) -> Iterator[Registration]:
        for child in self.children(parent_urn):
            yield child
            yield from self.descendants(child.urn)

    @property
    def stack_urn(self) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::pulumi:pulumi:Stack::{self.project}-{self.stack}"

    def top_level_of(self, res: Registration) -> Registration:
        """The stack-level ancestor of a resource: its layer component, or itself (e.g. a provider)."""
        index = {r.urn: r for r in self.resources}
        node = res
        while node.parent != self.stack_urn and node.parent in index:
            node = index[node.parent]
        return node

    # -- JSON ----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "formatVersion": FORMAT_VERSION,
            "project": self.project,
            "stack": self.stack,
            "resources": [_registration_json(r) for r in sorted(self.resources, key=lambda r: r.urn)],
            "outputs": self.outputs,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PlanDocument:
        resources = [
            Registration(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                parent=r["parent"],
                provider=r["provider"],
                custom=r["custom"],
                dependencies=r["dependencies"],
                protect=r["protect"],
                retain_on_delete=r["retainOnDelete"],
                delete_before_replace=r["deleteBeforeReplace"],
                ignore_changes=r["ignoreChanges"],
                inputs=r["inputs"],
            )
            for r in doc["resources"]
        ]
        return cls(doc["project"], doc["stack"], resources, doc["outputs"])

    @classmethod
    def read(cls, path: Path) -> PlanDocument:
        return cls.from_json(json.loads(path.read_text()))


def _registration_json(r: Registration) -> dict[str, Any]:
    d = asdict(r)
    return {
        "urn": d["urn"],
        "type": d["type"],
        "name": d["name"],
        "parent": d["parent"],
        "provider": d["provider"],
        "custom": d["custom"],
        "dependencies": d["dependencies"],
        "protect": d["protect"],
        "retainOnDelete": d["retain_on_delete"],
        "deleteBeforeReplace": d["delete_before_replace"],
        "ignoreChanges": d["ignore_changes"],
        "inputs": d["inputs"],
    }
