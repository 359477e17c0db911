"""The in-cluster data services' TLS: one CA the program creates and server certificates it signs.

Why the program and not cert-manager: the data layer comes before cert-manager (the serving layer installs
it, with an identity the storage layer makes after the data layer), and every client must be handed the
CA's certificate as a value at plan time, as it is handed RDS's bundle or Cloud SQL's instance CA, so it
verifies the server (libpq verify-full, redis-py and librdkafka hostname checks). A CA cert-manager
generates exists only inside the cluster. Certificates are renewed by `pulumi up`: a server certificate is
valid for five years and replaced by any `up` in its last year (tls provider: early_renewal_hours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.kube import PART_OF

CA_VALIDITY_HOURS = 20 * 365 * 24
SERVER_VALIDITY_HOURS = 5 * 365 * 24
SERVER_EARLY_RENEWAL_HOURS = 365 * 24
# the keys of a kubernetes.io/tls Secret, plus the CA beside them as cert-manager and CloudNativePG expect
TLS_CERT, TLS_KEY, CA_CERT = "tls.crt", "tls.key", "ca.crt"


class PlatformCa(pulumi.ComponentResource):
    """The CA that signs every in-cluster data service's certificate; `certificate_pem` is what clients trust."""

    certificate_pem: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:data:PlatformCa", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._key = tls.PrivateKey(f"{name}-ca", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        self._cert = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=self._key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"{name} in-cluster data services CA", organization="mlplatform"
            ),
            is_ca_certificate=True,
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        self.certificate_pem = self._cert.cert_pem
        self.register_outputs({"certificatePem": self.certificate_pem})

    def server_secret(
        self,
        parent: pulumi.Resource,
        resource_name: str,
        secret_name: str,
        namespace: k8s.core.v1.Namespace,
        dns_names: Sequence[str],
        labels: Mapping[str, str] | None = None,
        pkcs8: bool = False,
        client: bool = False,
    ) -> k8s.core.v1.Secret:
        """A kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) for a server answering on `dns_names`; the
        first name is the certificate's common name. `labels`: added to the Secret's (an operator's reload
        label, e.g. CloudNativePG's cnpg.io/reload). `pkcs8`: tls.key as unencrypted PKCS #8 (`BEGIN PRIVATE KEY`)
        instead of the provider's SEC1 `BEGIN EC PRIVATE KEY`, for servers that read only PKCS #8 (Kafka's PEM
        key store, which Strimzi's brokerCertChainAndKey feeds: the Kafka CRD's description of `key`). `client`: the
        certificate authenticates a client (extended key usage clientAuth) instead of a server (serverAuth)."""
        child = pulumi.ResourceOptions(parent=parent)
        key = tls.PrivateKey(resource_name, algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        request = tls.CertRequest(
            resource_name,
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=dns_names[0], organization="mlplatform"),
            dns_names=list(dns_names),
            opts=child,
        )
        cert = tls.LocallySignedCert(
            resource_name,
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=self._key.private_key_pem,
            ca_cert_pem=self._cert.cert_pem,
            validity_period_hours=SERVER_VALIDITY_HOURS,
            early_renewal_hours=SERVER_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "client_auth" if client else "server_auth"],
            opts=child,
        )
        return k8s.core.v1.Secret(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=namespace.metadata.name, labels={**PART_OF, **(labels or {})}
            ),
            type="kubernetes.io/tls",
            string_data={
                TLS_CERT: pulumi.Output.secret(cert.cert_pem),
                TLS_KEY: pulumi.Output.secret(key.private_key_pem_pkcs8 if pkcs8 else key.private_key_pem),
                CA_CERT: self.certificate_pem,
            },
            opts=child,
        )
