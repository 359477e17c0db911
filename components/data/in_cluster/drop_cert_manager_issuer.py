#!/usr/bin/env python3
"""Helm post-renderer for the Barman Cloud plugin's chart: drops the chart's cert-manager `Issuer`.

Chart plugin-barman-cloud 0.7.0 renders a self-signed cert-manager Issuer unconditionally
(cloudnative-pg/charts templates/certificate-issuer.yaml @ plugin-barman-cloud-v0.7.0; `certificate.createIssuer`
exists only on the chart's unreleased main), while its two Certificates can be switched off
(`certificate.createServerCertificate`, `createClientCertificate`). cert-manager is installed by the serving
layer, after the data layer, and only with KServe: its CRDs may not exist, and Helm refuses a release with a
kind the API server does not know. The platform issues both Secrets from its own CA (backups.py), so the
Issuer is unused; this drops it. Helm runs it with the rendered manifests on stdin and applies its stdout
(helm.sh/docs/topics/advanced "Post Rendering"). Standard library only: the deployer's python3 runs it.
"""

from __future__ import annotations

import re
import sys

DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
ISSUER = re.compile(r"^kind:[ \t]*Issuer[ \t]*$", re.MULTILINE)
CERT_MANAGER = re.compile(r"^apiVersion:[ \t]*cert-manager\.io/", re.MULTILINE)


def drop_issuers(manifests: str) -> str:
    """The documents of `manifests`, less every cert-manager Issuer (top-level `kind` and `apiVersion`)."""
    kept = [d for d in DOCUMENT_SEPARATOR.split(manifests) if not (ISSUER.search(d) and CERT_MANAGER.search(d))]
    return "---".join(kept)


if __name__ == "__main__":
    sys.stdout.write(drop_issuers(sys.stdin.read()))
