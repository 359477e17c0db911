"""Plans of a stack with chosen data services managed by the cloud (RDS / ElastiCache / MSK on aws, Cloud SQL
/ Memorystore / Managed Kafka on gcp) whatever the profile's default mode (mlplatform/config/profiles.py,
DEFAULT_MODES: dev runs them in the cluster). The managed services' own tests run on these plans; prod keeps
every service managed by default, so its tests use the session's plan (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SERVICES = ("postgres", "redis", "kafka")


def managed_plan(
    stack: str,
    services: Iterable[str] = SERVICES,
    name: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """`stack`'s plan with `services` managed and `overrides` (service -> keys) merged into data.<service>.
    Planned anew on each call; `name` is the plan's stack name (the stack's own by default)."""
    from mlplatform.config.loader import deep_merge, read_stack_file
    from mlplatform.plan.synth import PROJECT_DIR, synthesize

    config = read_stack_file(PROJECT_DIR, stack)
    wanted: dict[str, Any] = {s: {"mode": "managed"} for s in services}
    for service, keys in (overrides or {}).items():
        wanted[service] = {**wanted.get(service, {}), **keys}
    data = deep_merge(config.get("mlplatform:data") or {}, wanted)
    return synthesize(name or stack, config_map={**config, "mlplatform:data": data})


_made: dict[tuple[str, tuple[str, ...]], Any] = {}


def managed_stack(stack: str, services: Iterable[str] = SERVICES) -> Any:
    """managed_plan(stack, services), planned once per test process."""
    key = (stack, tuple(sorted(services)))
    if key not in _made:
        _made[key] = managed_plan(stack, key[1])
    return _made[key]
