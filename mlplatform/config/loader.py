"""Loading the `mlplatform:` namespace: profile defaults, then the stack's overrides, then validation.

The same function serves `pulumi up` (values come from the engine's config) and the offline plan (values
come from `Pulumi.<stack>.yaml`), so both fail the same way on the same bad value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlplatform.config.errors import _MISSING, NAMESPACE, ConfigError, ConfigProblem, problems_from
from mlplatform.config.models import Cloud, PlatformConfig, Profile
from mlplatform.config.profiles import data_modes, profile_defaults
from mlplatform.mappings import deep_merge


def load_config(raw: dict[str, Any], stack: str) -> PlatformConfig:
    """Validate a stack's `mlplatform:` values (keys without the namespace) merged over its profile."""
    profile, cloud, problems = _choose_profile(raw)
    if problems:
        raise ConfigError(stack, problems)
    region = raw.get("region") if isinstance(raw.get("region"), str) else None
    merged = deep_merge(profile_defaults(profile, cloud, region, data_modes(profile, cloud, raw)), raw)
    try:
        return PlatformConfig.model_validate(merged, context={"profile": profile, "cloud": cloud})
    except ValidationError as e:
        raise ConfigError(stack, problems_from(e, PlatformConfig)) from None


def _choose_profile(raw: dict[str, Any]) -> tuple[Profile, Cloud, list[ConfigProblem]]:
    problems = []
    profile, cloud = Profile.DEV, Cloud.AWS
    value = raw.get("profile", _MISSING)
    try:
        profile = Profile(value)
    except ValueError:
        problems.append(ConfigProblem(f"{NAMESPACE}:profile", value, _one_of("profile", Profile)))
    value = raw.get("cloud", Cloud.AWS.value)
    try:
        cloud = Cloud(value)
    except ValueError:
        problems.append(ConfigProblem(f"{NAMESPACE}:cloud", value, _one_of("cloud", Cloud)))
    return profile, cloud, problems


def _one_of(key: str, enum: type[Profile] | type[Cloud]) -> str:
    return f"{key} must be one of: {', '.join(m.value for m in enum)}"


# -- where the raw values come from -----------------------------------------------------------------


def namespace_values(config_map: dict[str, Any]) -> dict[str, Any]:
    """Keys of the `mlplatform:` namespace, without the prefix, with Pulumi's JSON-encoded objects decoded."""
    out = {}
    for full_key, value in config_map.items():
        ns, _, key = full_key.rpartition(":")
        if ns == NAMESPACE:
            out[key] = _decode(value)
    return out


def _decode(value: Any) -> Any:
    """The engine passes object and list values as JSON text; scalars stay as they are."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_stack_file(project_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` block of Pulumi.<stack>.yaml with every key fully qualified (`ns:key`)."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name} in {project_dir}")
    doc = yaml.safe_load(path.read_text()) or {}
    config = doc.get("config") or {}
    return {(k if ":" in k else f"{NAMESPACE}:{k}"): v for k, v in config.items()}


def engine_config_map() -> dict[str, Any]:
    """The config the Pulumi engine handed this program (or the plan set through the SDK)."""
    from pulumi.runtime import config as runtime_config

    merged = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def load_stack_config() -> PlatformConfig:
    """Entry for the Pulumi program: the running stack's validated config, or a clean RunError."""
    import pulumi

    try:
        return load_config(namespace_values(engine_config_map()), pulumi.get_stack())
    except ConfigError as e:
        raise pulumi.RunError(e.render()) from None
