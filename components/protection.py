"""Delete protection for stateful resources: on in prod, off in dev so dev tears down cleanly."""

from __future__ import annotations

import pulumi

from components.environment import Environment
from mlplatform.config import Profile


def stateful(cfg: Environment, parent: pulumi.Resource, **extra: object) -> pulumi.ResourceOptions:
    """Options for a resource holding data: prod protects it and retains it if removed from the program."""
    prod = cfg.profile is Profile.PROD
    return pulumi.ResourceOptions(parent=parent, protect=prod, retain_on_delete=prod, **extra)  # type: ignore[arg-type]
