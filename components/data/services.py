"""What a data adapter hands back: the endpoints of the services it built. The cloud adapters build the
services whose mode is managed, components/data/in_cluster the rest; the Data component joins them into
the one DataOutputs contract the in-cluster layers consume, which does not say where a service runs."""

from __future__ import annotations

from dataclasses import dataclass

from components.contracts import KafkaEndpoint, PostgresEndpoint, RedisEndpoint


@dataclass(frozen=True)
class ManagedServices:
    postgres: PostgresEndpoint | None = None
    redis: RedisEndpoint | None = None
    kafka: KafkaEndpoint | None = None
