"""Kubernetes building blocks shared by the in-cluster layers: namespaces, identity-bound service
accounts and Secrets fed from typed credentials."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.charts import ChartPin
from components.contracts import ClusterOutputs, Namespace, WorkloadIdentity
from components.guardrails import network_policies, pod_security_labels

PART_OF = {"app.kubernetes.io/part-of": "mlplatform", "app.kubernetes.io/managed-by": "pulumi"}


def namespace(parent: pulumi.Resource, ns: Namespace, cluster: ClusterOutputs) -> k8s.core.v1.Namespace:
    """A platform namespace with its guard rails: Pod Security labels and default-deny NetworkPolicies plus
    the allows of components/guardrails.py. Every platform namespace is made here, so none lacks them."""
    created = k8s.core.v1.Namespace(
        f"ns-{ns.value}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=ns.value, labels={**PART_OF, **pod_security_labels(ns, cluster.kubernetes_version)}
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    network_policies(parent, ns, created)
    return created


def identity_service_account(
    parent: pulumi.Resource, identity: WorkloadIdentity, ns: k8s.core.v1.Namespace
) -> k8s.core.v1.ServiceAccount:
    """The service account named by the identity's spec, annotated with its cloud principal."""
    spec = identity.spec
    return k8s.core.v1.ServiceAccount(
        f"sa-{spec.key}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=spec.service_account,
            namespace=ns.metadata.name,
            labels=PART_OF,
            annotations=identity.service_account_annotations,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def opaque_secret(
    parent: pulumi.Resource, name: str, ns: k8s.core.v1.Namespace, data: Mapping[str, pulumi.Input[str]]
) -> k8s.core.v1.Secret:
    """A Secret whose values stay Pulumi secrets end to end (never plaintext in state or in Helm values)."""
    return k8s.core.v1.Secret(
        f"secret-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns.metadata.name, labels=PART_OF),
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def pinned_release(
    parent: pulumi.Resource,
    resource_name: str,
    pin: ChartPin,
    namespace: pulumi.Input[str],
    values: Mapping[str, object],
    provider: k8s.Provider,
) -> k8s.helm.v3.Release:
    """A helm.v3.Release of a chart exactly at its pin in components/charts.py (chart, repo and version)."""
    return k8s.helm.v3.Release(
        resource_name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
        namespace=namespace,
        values=dict(values),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
