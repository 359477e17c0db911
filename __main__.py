"""Pulumi entry point: validate this stack's config, then compose the platform. Nothing else lives here."""

from mlplatform.config import load_stack_config
from stacks import build_platform

build_platform(load_stack_config())
