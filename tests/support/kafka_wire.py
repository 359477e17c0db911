"""Kafka's wire framing for the tests' stand-in brokers (a 4-byte big-endian size, then the request): what the
real clients' handshakes (librdkafka, the Java client) are read with."""

from __future__ import annotations

import ssl
import struct


def read_frame(conn: ssl.SSLSocket) -> bytes | None:
    """One request, or None when the client closed the connection."""
    header = _read(conn, 4)
    return None if header is None else _read(conn, struct.unpack(">i", header)[0])


def _read(conn: ssl.SSLSocket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
