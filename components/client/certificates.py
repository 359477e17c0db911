"""The UIs' TLS certificate: one cert-manager Certificate for every UI host, in the ingress gateway's namespace
(an Istio Gateway's `credentialName` names a Secret in the gateway's own namespace), from the configured
issuer: an ACME ClusterIssuer the platform makes (DNS-01 through the cloud's DNS, solved by cert-manager's
workload identity, which the storage layer grants the zone) or one the operator runs (`provided`).

DNS-01 rather than HTTP-01: it needs nothing reachable from the internet (the gateway may be internal) and
cert-manager's solver reaches only the cloud's DNS API over HTTPS.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PART_OF
from mlplatform.config import Cloud
from mlplatform.config.client import AcmeDns01Issuer, ClientConfig, ProvidedIssuer

ACME_ISSUER = "mlplatform-acme"
CERTIFICATE = "mlplatform-ui"
TLS_SECRET = "mlplatform-ui-tls"


def acme_issuer_spec(tls: AcmeDns01Issuer, domain: str, cloud: Cloud, region: str, project: str | None) -> dict:
    """The ClusterIssuer's spec (cert-manager v1.21 ACMEIssuer; DNS-01 solvers route53 and cloudDNS).
    No credentials in the solver: cert-manager's controller uses its pod's ambient cloud credentials (IRSA on
    EKS, Workload Identity on GKE), which a ClusterIssuer may by default (--cluster-issuer-ambient-credentials)."""
    if cloud is Cloud.AWS:
        solver = {"route53": {"region": region, "hostedZoneID": tls.hosted_zone_id}}
    else:
        solver = {"cloudDNS": {"project": tls.dns_project or project}}
    return {
        "acme": {
            "email": tls.email,
            "server": tls.server,
            # the ACME account's key, kept by cert-manager in its own namespace
            "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
            "solvers": [{"selector": {"dnsZones": [domain]}, "dns01": solver}],
        }
    }


def issuer_ref(tls: AcmeDns01Issuer | ProvidedIssuer) -> dict[str, str]:
    if isinstance(tls, ProvidedIssuer):
        return {"group": "cert-manager.io", "kind": tls.issuer_kind, "name": tls.name}
    return {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": ACME_ISSUER}


def certificate_spec(tls: AcmeDns01Issuer | ProvidedIssuer, hosts: Sequence[str]) -> dict[str, object]:
    return {
        "secretName": TLS_SECRET,
        "dnsNames": list(hosts),
        "issuerRef": issuer_ref(tls),
        # a fresh key at every renewal (cert-manager's default from v1.18, stated here)
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }


def ui_certificate(
    parent: pulumi.Resource,
    name: str,
    client: ClientConfig,
    cloud: Cloud,
    region: str,
    project: str | None,
    namespace: pulumi.Input[str],
    hosts: Sequence[str],
    provider: k8s.Provider,
    after: Sequence[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    """The issuer (ACME only) and the Certificate; `after`: cert-manager's release (CRDs and webhook)."""
    tls, domain = client.tls, client.domain
    if tls is None or domain is None:
        raise ValueError("a UI certificate needs client.domain and client.tls")
    depends: list[pulumi.Resource] = list(after)
    if isinstance(tls, AcmeDns01Issuer):
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ACME_ISSUER, labels=PART_OF),
            spec=acme_issuer_spec(tls, domain, cloud, region, project),
            opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(after)),
        )
        depends.append(issuer)
    return k8s.apiextensions.CustomResource(
        f"{name}-certificate",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=CERTIFICATE, namespace=namespace, labels=PART_OF),
        spec=certificate_spec(tls, hosts),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends),
    )
