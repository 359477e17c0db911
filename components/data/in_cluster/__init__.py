"""The data services inside the cluster, behind the same contracts as the managed ones: PostgreSQL by
CloudNativePG (postgres.py), Redis by Valkey (redis.py), Kafka by Strimzi (kafka.py), each in the `data`
namespace with TLS from the platform's CA (tls.py). Chosen per service by `data.<service>.mode`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from components.contracts import ClusterOutputs, WorkloadSpec
from components.data.in_cluster.tls import PlatformCa
from components.environment import DataArgs


@dataclass(frozen=True)
class InClusterArgs:
    """What an in-cluster data service is built from: the environment and data config, the cluster (its pool
    contracts for placement, its block storage class), the `data` namespace and the CA that signs servers."""

    config: DataArgs
    cluster: ClusterOutputs
    namespace: k8s.core.v1.Namespace
    ca: PlatformCa
    # the platform's workloads: those with a Kafka grant become Kafka users with their ACLs
    workloads: tuple[WorkloadSpec, ...] = ()
