"""Where the platform's own services run, and how they survive a node or zone going away."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import NodePoolContract, ServiceEndpoint
from components.guardrails import NAME_LABEL
from components.kube import PART_OF, pinned_chart
from mlplatform.pins import ChartPin


@dataclass(frozen=True)
class Placement:
    """The pool the platform services schedule on (by its contract) and whether replicas spread over zones."""

    pool: NodePoolContract
    spread: bool  # ha: multi-zone
    # services.sizing small (dev, local): the services that idle well below their standard requests ask for
    # less (`resources(..., small=...)`); memory limits do not change
    small: bool = False

    @property
    def node_selector(self) -> dict[str, str]:
        return self.pool.node_selector()

    @property
    def tolerations(self) -> list[dict[str, str]]:
        return self.pool.tolerations()

    def resources(
        self, cpu: str, memory: str, memory_limit: str, *, small: tuple[str, str] | None = None
    ) -> dict[str, dict[str, str]]:
        """Requests so the autoscaler can place the pod; a memory limit (no CPU limit: no throttling).
        `small`: the (cpu, memory) requests under services.sizing small, where the service has them."""
        if self.small and small is not None:
            cpu, memory = small
        return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def pod_disruption_budget(
    parent: pulumi.Resource, resource_name: str, app: str, namespace: pulumi.Input[str], replicas: int
) -> k8s.policy.v1.PodDisruptionBudget | None:
    """With 2+ replicas, node drains (upgrades, scale-down) keep at least one serving; none for a single
    replica, where a budget would only block drains."""
    if replicas < 2:
        return None
    return k8s.policy.v1.PodDisruptionBudget(
        f"{resource_name}-disruption-budget",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=namespace, labels=PART_OF),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: app})
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def replicated_chart(
    parent: pulumi.Resource,
    resource_name: str,
    *,
    pin: ChartPin,
    endpoint: ServiceEndpoint,
    app: str,
    values: dict[str, object],
    replicas: int,
    namespace: pulumi.Input[str],
    provider: k8s.Provider,
    depends_on: list[pulumi.Resource],
) -> k8s.helm.v4.Chart:
    """A hook-free chart serving `endpoint` (its release name is the Service name), with its disruption budget."""
    chart = pinned_chart(
        parent, resource_name, pin, namespace, values, provider, release_name=endpoint.name, depends_on=depends_on
    )
    pod_disruption_budget(parent, resource_name, app, namespace, replicas)
    return chart
