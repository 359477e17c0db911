"""The rules: each a resource rule (one resource at a time, as CrossGuard's ResourceValidationPolicy) or a
stack rule (all resources at once, as StackValidationPolicy), mandatory or advisory, with a docstring that
says why. `ALL_RULES` lists them in the order `plan` reports them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from policy.view import Context, Resource, Stack


@dataclass(frozen=True)
class Finding:
    """One violation: the rule, the resource (URN and a readable name; empty for the stack as a whole)."""

    rule: str
    mandatory: bool
    urn: str
    resource: str
    message: str

    def __str__(self) -> str:
        level = "mandatory" if self.mandatory else "advisory"
        where = f" {self.resource}:" if self.resource else ""
        return f"[{level}] {self.rule}:{where} {self.message}"


ResourceCheck = Callable[[Resource, Context], Iterable[str]]
# a stack check yields (resource or None for the stack, message)
StackCheck = Callable[[Stack], Iterable[tuple[Resource | None, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    mandatory: bool
    types: tuple[str, ...]  # the resource types it looks at
    check: ResourceCheck

    @property
    def why(self) -> str:
        return (self.check.__doc__ or "").strip()


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    mandatory: bool
    check: StackCheck

    @property
    def why(self) -> str:
        return (self.check.__doc__ or "").strip()


Rule = ResourceRule | StackRule


def resource_rule(
    name: str, description: str, *types: str, mandatory: bool = True
) -> Callable[[ResourceCheck], ResourceRule]:
    def wrap(fn: ResourceCheck) -> ResourceRule:
        return ResourceRule(name, description, mandatory, types, fn)

    return wrap


def stack_rule(name: str, description: str, *, mandatory: bool = True) -> Callable[[StackCheck], StackRule]:
    def wrap(fn: StackCheck) -> StackRule:
        return StackRule(name, description, mandatory, fn)

    return wrap


def all_rules() -> list[Rule]:
    """Every rule of the pack, imported here so `policy.rules.<area>` modules stay independent."""
    from policy.rules import cluster, data, ha, iam, kubernetes, protection, storage

    found: list[Rule] = []
    for module in (storage, data, cluster, iam, kubernetes, protection, ha):
        found += [v for v in vars(module).values() if isinstance(v, (ResourceRule, StackRule))]
    names = [r.name for r in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"rule names must be unique: {sorted(duplicates)}")
    return found
