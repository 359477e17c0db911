"""Real certificates for the tls provider's resources in the plan's mocks.

The program's CA and server certificates (components/data/in_cluster/tls.py) reach servers and clients as
PEM; the tests run real PostgreSQL, Valkey and Kafka clients on exactly what the plan hands them, so the
mocks issue what the tls provider would: keys of the requested kind, a self-signed CA, CSRs and certificates
signed by it with the requested names and uses. Deterministic (keys derived from the resource name, RFC 6979
signatures, a fixed validity start) so that two plans of the same program are identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_ORDER_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _key(name: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(f"tls-key:{name}".encode()).digest()) % (_ORDER_P256 - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _load_key(pem: str | Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    if isinstance(pem, Mapping):  # a secret input (tls.PrivateKey's privateKeyPem) arrives wrapped: {sig, value}
        pem = str(pem["value"])
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _subject(subject: Mapping[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"])] if subject.get("commonName") else []
    if subject.get("organization"):
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    return x509.Name(attrs)


def _serial(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial:{name}".encode()).digest()[:16]) >> 1


def _uses(builder: x509.CertificateBuilder, uses: list[str], is_ca: bool) -> x509.CertificateBuilder:
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature="digital_signature" in uses,
            content_commitment=False,
            key_encipherment="key_encipherment" in uses,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign="cert_signing" in uses,
            crl_sign="crl_signing" in uses,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    extended = [
        u
        for u, oid in (
            ("server_auth", ExtendedKeyUsageOID.SERVER_AUTH),
            ("client_auth", ExtendedKeyUsageOID.CLIENT_AUTH),
        )
        if u in uses
    ]
    if extended:
        oids = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
        builder = builder.add_extension(x509.ExtendedKeyUsage([oids[u] for u in extended]), critical=False)
    return builder


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> str:
    cert = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _private_key(n: str, i: Mapping[str, Any]) -> dict[str, Any]:
    if i.get("algorithm") != "ECDSA" or i.get("ecdsaCurve") != "P256":
        raise ValueError(f"the plan's tls mocks issue ECDSA P256 keys; {n} asks for {i.get('algorithm')}")
    key = _key(n)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # as terraform-provider-tls writes them: private_key_pem in the key type's own PEM (SEC1 `EC PRIVATE KEY` for
    # ECDSA), private_key_pem_pkcs8 in PKCS #8 (`PRIVATE KEY`), which some servers require (Kafka's PEM store)
    sec1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return {
        "privateKeyPem": sec1,
        "privateKeyPemPkcs8": _key_pem(key),
        "publicKeyPem": public.decode(),
        "algorithm": "ECDSA",
    }


def _self_signed(n: str, i: Mapping[str, Any]) -> dict[str, Any]:
    key = _load_key(i["privateKeyPem"])
    name = _subject(i.get("subject"))
    hours = int(i.get("validityPeriodHours", 24))
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(n))
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(hours=hours))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    builder = _uses(builder, list(i.get("allowedUses", [])), bool(i.get("isCaCertificate")))
    return {"certPem": _sign(builder, key)}


def _cert_request(n: str, i: Mapping[str, Any]) -> dict[str, Any]:
    key = _load_key(i["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(i.get("subject")))
    if i.get("dnsNames"):
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in i["dnsNames"]]), critical=False
        )
    csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def _locally_signed(n: str, i: Mapping[str, Any]) -> dict[str, Any]:
    csr = x509.load_pem_x509_csr(i["certRequestPem"].encode())
    ca = x509.load_pem_x509_certificate(i["caCertPem"].encode())
    ca_key = _load_key(i["caPrivateKeyPem"])
    hours = int(i.get("validityPeriodHours", 24))
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(_serial(n))
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(hours=hours))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    for ext in csr.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    builder = _uses(builder, list(i.get("allowedUses", [])), False)
    return {"certPem": _sign(builder, ca_key)}


TLS_OUTPUTS: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/selfSignedCert:SelfSignedCert": _self_signed,
    "tls:index/certRequest:CertRequest": _cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": _locally_signed,
}
