"""Supported version ranges, inclusive. One place, so the README and the validators agree."""

from __future__ import annotations

import re

KUBERNETES_RANGE = ((1, 28), (1, 35))
POSTGRES_RANGE = ((15, 0), (18, 0))
REDIS_RANGE = ((7, 0), (8, 99))
KAFKA_MAJOR = 3


def parse_major_minor(v: str, *, major_only: bool = False) -> tuple[int, int] | None:
    """'1.31' -> (1, 31); with major_only, '16' -> (16, 0). None when the text is not a version."""
    if major_only:
        m = re.fullmatch(r"(\d+)", v)
        return (int(m.group(1)), 0) if m else None
    m = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)?", v)
    return (int(m.group(1)), int(m.group(2))) if m else None
