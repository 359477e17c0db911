"""Stack composition: the six layers wired together from one validated config."""

from stacks.platform import Platform, build_platform

__all__ = ["Platform", "build_platform"]
