"""PLACEHOLDER being written by a helper (issue 22): replaced before anything lands."""

from __future__ import annotations

import pulumi

from components.contracts import PostgresEndpoint
from components.data.in_cluster import InClusterArgs


class CloudNativePostgres(pulumi.ComponentResource):
    endpoint: PostgresEndpoint

    def __init__(self, name: str, args: InClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        raise NotImplementedError("CloudNativePostgres is being written")
