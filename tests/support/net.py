"""Loopback plumbing the real-process tests share: a free port for a server the test starts, a JSON
request whose HTTP errors are answers (status and body), not exceptions, and a certificate for 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, body: Mapping[str, Any] | None = None, timeout: float = 30) -> tuple[int, Any]:
    """(status, JSON body) of a GET, or of a POST of `body`; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def loopback_certificate(work: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) and key for a TLS server on 127.0.0.1, valid for a day."""
    cert, key = work / "redis.crt", work / "redis.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
