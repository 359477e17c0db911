"""The certificates and keys a plan holds, as PEM files a real server can present.

The plan document redacts secrets (a server's key, the CA's key, a Secret's data), but the plan's tls mocks
(mlplatform/plan/tls_mocks.py) derive every key from its resource's name and sign deterministically, so the
same mocks, fed the registration's own inputs, give back exactly what the plan handed the Secret: the key of
the PrivateKey registration and the certificate the LocallySignedCert registration was issued. Each is
checked against what the plan shows in clear (the CSR's public key, the CA certificate), so a file here is
the plan's, not a look-alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mlplatform.plan import tls_mocks
from mlplatform.plan.document import PlanDocument

KEY = "tls:index/privateKey:PrivateKey"
CSR = "tls:index/certRequest:CertRequest"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"


@dataclass(frozen=True)
class ServerCertificate:
    cert_pem: str
    key_pem: str
    ca_pem: str

    @property
    def dns_names(self) -> list[str]:
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """(cert, key) files, as tests/support/postgres.local_postgres takes them."""
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_text(self.cert_pem)
        key.write_text(self.key_pem)
        return cert, key


def _public(pem_key: object) -> bytes:
    return pem_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def server_certificate(doc: PlanDocument, resource_name: str) -> ServerCertificate:
    """The server key and certificate the plan made under `resource_name` (PlatformCa.server_secret's), and
    the CA certificate that signed it."""
    signed = doc.one(SIGNED, resource_name).inputs
    ca_pem = str(signed["caCertPem"])
    ca_public = _public(x509.load_pem_x509_certificate(ca_pem.encode()).public_key())
    # the CA's key: the PrivateKey registration whose key is the CA certificate's
    [ca_key] = [k for k in (tls_mocks._key(r.name) for r in doc.by_type(KEY)) if _public(k.public_key()) == ca_public]
    issued = tls_mocks._locally_signed(resource_name, {**signed, "caPrivateKeyPem": tls_mocks._key_pem(ca_key)})
    # the key as the plan's PrivateKey holds it (its privateKeyPem, which the Secret's tls.key is)
    key = doc.one(KEY, resource_name)
    key_pem = tls_mocks._private_key(key.name, key.inputs)["privateKeyPem"]
    csr = x509.load_pem_x509_csr(str(signed["certRequestPem"]).encode())
    assert _public(tls_mocks._load_key(key_pem).public_key()) == _public(csr.public_key()), "not the plan's key"
    return ServerCertificate(issued["certPem"], key_pem, ca_pem)
