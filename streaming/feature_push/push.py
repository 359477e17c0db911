"""The sink: rows POSTed in micro-batches to the Feast feature server's /push, standard library only (the job
image needs no HTTP client beyond PyFlink's, and tests run it against a real `feast serve`).

/push takes `{"push_source_name", "df": {column: [values]}, "to": "online" | "offline" |
"online_and_offline", ...}` and answers 200, or 202 when the server batches offline writes
(feast v0.66.0 sdk/python/feast/feature_server.py PushFeaturesRequest and `push`).

Delivery is at least once: a batch that fails after the retries raises, Flink restarts the job from its
last checkpoint, and the rows since then are pushed again. A repeated row is harmless online (Redis keeps
the row with the newest event timestamp per entity); the offline copy may hold it twice.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feature_push.events import push_frame

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class PushError(RuntimeError):
    """A batch the feature server refused, or did not take within the retries."""


@dataclass
class PushClient:
    """POSTs batches to `<url>/push` for one push source."""

    url: str  # the feature server, e.g. http://feast-feature-server.mlplatform.svc.cluster.local:80
    push_source: str
    to: str = "online_and_offline"
    timeout_seconds: float = 30.0
    attempts: int = 5
    backoff_seconds: float = 0.5  # doubled after each failed attempt
    sleep: Callable[[float], None] = time.sleep
    pushed_rows: int = 0
    pushed_batches: int = 0

    def body(self, rows: Iterable[Mapping[str, Any]]) -> bytes:
        doc = {"push_source_name": self.push_source, "df": push_frame(rows), "to": self.to}
        return json.dumps(doc).encode()

    def push(self, rows: list[Mapping[str, Any]]) -> None:
        """One batch, retried on connection errors and on the statuses a restart or overload answers."""
        if not rows:
            return
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/push",
            data=self.body(rows),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        delay, last = self.backoff_seconds, ""
        for attempt in range(1, self.attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    if response.status in (200, 202):
                        self.pushed_rows += len(rows)
                        self.pushed_batches += 1
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")[:500]
                if error.code not in RETRYABLE_STATUS:
                    raise PushError(f"/push refused {len(rows)} rows: HTTP {error.code}: {detail}") from error
                last = f"HTTP {error.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last = str(error)
            if attempt < self.attempts:
                self.sleep(delay)
                delay *= 2
        raise PushError(f"/push failed {self.attempts} times for {len(rows)} rows: {last}")


@dataclass
class MicroBatcher:
    """Rows collected and flushed in batches of at most `max_rows`: when that many wait, or when `flush` is
    called (the job calls it when a processing-time window fires, every flushSeconds)."""

    send: Callable[[list[Mapping[str, Any]]], None]
    max_rows: int
    pending: list[Mapping[str, Any]] = field(default_factory=list)

    def add(self, row: Mapping[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) >= self.max_rows:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            self.send(self.pending[: self.max_rows])  # kept until sent: a failure leaves the rows pending
            self.pending = self.pending[self.max_rows :]
