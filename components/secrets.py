"""Secrets the program generates itself (Flask and API keys, admin passwords, AUTH tokens): a shared helper
of every layer, beside kube.py, so in-cluster layers never import an infra layer's module for it."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_secret(parent: pulumi.Resource, name: str, length: int = 32) -> pulumi.Output[str]:
    """A random secret without special characters (safe in URLs, Redis AUTH tokens and env vars)."""
    password = random.RandomPassword(name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent))
    # the provider marks `result` secret; said here too, so the offline plan (whose mocks know no schema)
    # treats it as `pulumi up` does
    return pulumi.Output.secret(password.result)
