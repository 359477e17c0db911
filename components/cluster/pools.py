"""Configured node pools paired with their contracts: the one walk over config every cluster adapter shares."""

from __future__ import annotations

from collections.abc import Iterator

from components.contracts import NodePoolContract, pool_contract
from components.environment import ClusterArgs
from mlplatform.config import Cloud, NodePoolConfig


def configured_pools(cfg: ClusterArgs) -> Iterator[tuple[NodePoolConfig, NodePoolContract]]:
    """System pool, CPU pool, then each GPU pool, in config order. On EKS a time-sliced pool's nodes select
    the device plugin configuration named after the pool; on GKE the node pool itself carries the sharing."""
    c = cfg.cluster
    # nodeLabels is set exactly on local (config validation), where the nodes exist and the contract selects them
    yield (
        c.system_pool,
        pool_contract(c.system_pool.name, max_nodes=c.system_pool.max_nodes, node_labels=c.system_pool.node_labels),
    )
    yield c.cpu_pool, pool_contract(c.cpu_pool.name, max_nodes=c.cpu_pool.max_nodes, node_labels=c.cpu_pool.node_labels)
    for pool in c.gpu_pools:
        yield (
            pool,
            pool_contract(
                pool.name,
                accelerator=pool.accelerator,
                gpus_per_node=pool.accelerator_count,
                max_nodes=pool.max_nodes,
                shares_per_gpu=pool.shares_per_gpu,
                device_plugin_config=pool.name if pool.sharing is not None and cfg.cloud is Cloud.AWS else None,
                node_labels=pool.node_labels,
            ),
        )
