"""PLACEHOLDER being written by a helper (issue 22): replaced before anything lands."""

from __future__ import annotations

import pulumi

from components.contracts import RedisEndpoint
from components.data.in_cluster import InClusterArgs


class Valkey(pulumi.ComponentResource):
    endpoint: RedisEndpoint

    def __init__(self, name: str, args: InClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        raise NotImplementedError("Valkey is being written")
