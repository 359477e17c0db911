"""cert-manager, first in the serving chain: KServe's webhook certificates (and any TLS certificates later)
come from it, so its CRDs and webhook must be serving before KServe is installed.

helm.v3.Release: the chart installs its CRDs as templates (`crds.enabled`, kept on uninstall with
`crds.keep`) and runs a post-install `startupapicheck` hook that only succeeds once the webhook answers;
Helm's wait then means "cert-manager is usable", which is exactly what the next releases depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import WorkloadIdentity
from components.kube import pinned_release, zone_spread
from components.placement import Placement
from mlplatform.pins import ChartPin


@dataclass(frozen=True)
class CertManagerArgs:
    namespace: k8s.core.v1.Namespace
    pin: ChartPin
    replicas: int  # controller, webhook and cainjector each
    placement: Placement
    provider: k8s.Provider
    # its cloud identity, when it solves ACME DNS-01 challenges in the cloud's DNS (the UIs' certificate)
    identity: WorkloadIdentity | None = None


def dns01_values(identity: WorkloadIdentity) -> dict[str, object]:
    """The controller as an ACME DNS-01 solver: its service account bound to the cloud identity the storage
    layer granted the DNS zone (components/workloads.py dns01_workloads), and the propagation check asked
    of the cluster's DNS only. By default cert-manager also queries the zone's authoritative nameservers
    directly on port 53 (pkg/issuer/acme/dns/util/wait.go), which the namespace's egress policy blocks
    (only the cluster DNS is allowed on 53); with --dns01-recursive-nameservers-only and no list, it asks
    the resolvers of its /etc/resolv.conf, the cluster DNS (util/wait.go getNameservers)."""
    return {
        "serviceAccount": {"annotations": identity.service_account_annotations},
        "extraArgs": ["--dns01-recursive-nameservers-only"],
    }


RELEASE = "cert-manager"


def cert_manager_values(replicas: int, placement: Placement) -> dict[str, object]:
    budget = {"enabled": replicas > 1, "maxUnavailable": 1}
    # controllers with small caches: a few tens of MiB each at the platform's scale
    small = placement.resources("20m", "64Mi", "256Mi")

    def part(**extra: object) -> dict[str, object]:
        return {"tolerations": placement.tolerations, "resources": small, **extra}

    def spread(app: str, component: str) -> list[dict[str, object]]:
        """Replicas over zones (the HA table); the chart's pod labels (templates/*-deployment.yaml)."""
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": RELEASE}
        labels["app.kubernetes.io/component"] = component
        return zone_spread(labels) if placement.spread and replicas > 1 else []

    return {
        "crds": {"enabled": True, "keep": True},
        "global": {"nodeSelector": placement.node_selector},
        "replicaCount": replicas,
        "podDisruptionBudget": budget,
        **part(topologySpreadConstraints=spread("cert-manager", "controller")),
        "webhook": part(
            replicaCount=replicas, podDisruptionBudget=budget, topologySpreadConstraints=spread("webhook", "webhook")
        ),
        "cainjector": part(
            replicaCount=replicas,
            podDisruptionBudget=budget,
            topologySpreadConstraints=spread("cainjector", "cainjector"),
        ),
        "startupapicheck": part(),
    }


class CertManager(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:CertManager", name, None, opts)
        self.release = pinned_release(
            self,
            name,
            args.pin,
            args.namespace.metadata.name,
            {
                **cert_manager_values(args.replicas, args.placement),
                **(dns01_values(args.identity) if args.identity is not None else {}),
            },
            args.provider,
            release_name=RELEASE,
            # three small Deployments on the CPU pool, which may be at zero nodes (~3 min for a node), plus
            # the startupapicheck hook waiting for the webhook
            timeout_seconds=600,
        )
        self.register_outputs({})
