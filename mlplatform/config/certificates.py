"""CA bundles named in stack config: read from the repository and checked before anything is planned.

A bundle is a PEM file of CA certificates (for RDS, the region's bundle AWS publishes:
`curl -fsSL https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem`, RDS User Guide, "Using
SSL/TLS to encrypt a connection to a DB instance or cluster"). It is checked with the same OpenSSL that
clients use (Python's ssl): every certificate parses, every one is a CA (basicConstraints CA:TRUE), and at
least one is valid now. A file that would make every client refuse the database fails at `plan`, not at
the first connection.
"""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def bundle_path(path: str) -> Path:
    """A bundle's file: absolute as written, else relative to the project directory (where Pulumi.yaml is)."""
    given = Path(path)
    return given if given.is_absolute() else PROJECT_DIR / given


def ca_bundle_problems(path: str, now: float | None = None) -> list[str]:
    """Why the file at `path` is not a usable CA bundle; empty when it is."""
    file = bundle_path(path)
    if not file.is_file():
        return [f"{path}: no such file (relative paths start at the project directory, {PROJECT_DIR})"]
    text = file.read_text(errors="replace")
    blocks = PEM_CERTIFICATE.findall(text)
    if not blocks:
        return [f"{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata="\n".join(blocks))
    except ssl.SSLError as e:
        return [f"{path}: a certificate does not parse ({e.reason or e})"]
    stats = context.cert_store_stats()
    if stats["x509_ca"] != stats["x509"]:
        return [f"{path}: {stats['x509'] - stats['x509_ca']} certificate(s) are not CAs (basicConstraints CA:TRUE)"]
    now = time.time() if now is None else now
    expiries = [ssl.cert_time_to_seconds(c["notAfter"]) for c in context.get_ca_certs()]
    if all(expiry < now for expiry in expiries):
        return [f"{path}: every certificate has expired; download the current bundle"]
    return []


def read_ca_bundle(path: str) -> str:
    """The bundle's certificates as PEM (text around them dropped), for a ConfigMap's ca.crt."""
    return "\n".join(PEM_CERTIFICATE.findall(bundle_path(path).read_text())) + "\n"
