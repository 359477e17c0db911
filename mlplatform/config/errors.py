"""Turns validation failures into one short message per bad key, with the full `mlplatform:` key path."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

NAMESPACE = "mlplatform"


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    value: Any
    message: str

    def render(self) -> str:
        shown = "" if self.value is _MISSING else f" = {self.value!r}"
        return f"{self.path}{shown}: {self.message}"


_MISSING = object()


class ConfigError(Exception):
    """Every problem in a stack's configuration, reported together."""

    def __init__(self, stack: str, problems: list[ConfigProblem]) -> None:
        self.stack = stack
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"invalid configuration for stack '{self.stack}' ({n} problem{'s' if n != 1 else ''}):"
        return "\n".join([head, *(f"  - {p.render()}" for p in self.problems)])


def key_path(loc: tuple[int | str, ...]) -> str:
    """('cluster', 'gpuPools', 0, 'maxNodes') -> 'mlplatform:cluster.gpuPools[0].maxNodes'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return f"{NAMESPACE}:{out}" if out else NAMESPACE


def problems_from(error: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(ConfigProblem(key_path(loc), _MISSING, _unknown_key_message(root, loc)))
        elif err["type"] == "missing":
            problems.append(ConfigProblem(key_path(loc), _MISSING, "required key is missing"))
        else:
            problems.append(ConfigProblem(key_path(loc), err.get("input", _MISSING), _clean(err["msg"])))
    return problems


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _unknown_key_message(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    allowed = _allowed_keys(root, loc[:-1])
    msg = "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean '{close[0]}'?"
    elif allowed:
        msg += f"; allowed here: {', '.join(sorted(allowed))}"
    return msg


def _allowed_keys(root: type[BaseModel], parent_loc: tuple[int | str, ...]) -> list[str]:
    """The camelCase keys accepted at parent_loc, found by walking the model types along the path."""
    model: Any = root
    for part in parent_loc:
        if isinstance(part, int):
            continue  # list index: the element type was already unwrapped below
        field = _field_by_alias(model, part)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, f in model.model_fields.items():
        if alias in (f.alias, name):
            return f
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation such as `GpuPoolConfig`, `list[GpuPoolConfig]`, `Annotated[...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
