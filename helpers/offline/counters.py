"""Counters the tests read: what really happened on the wire (requests, streams, chunks, faults).

Thread-safe (the server runs in a background thread, tests read from the main one); ``recent``
keeps the last 200 streams, each with how many chunks were planned and sent, and its outcome.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["Counters"]


class Counters:
    """Counters the tests read: what really happened on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget recent streams. ``open_streams`` and ``held`` are not
        counts but how many are open (held) now: a stream still settling when a test resets
        is still open, and zeroing it would take the gauge to -1 when it ends."""
        with self.lock:
            now = getattr(self, "values", {})
            self.values: dict[str, int] = dict.fromkeys(
                ("requests", "chat_requests", "streams", "completed", "disconnects", "faults",
                 "chunks_sent", "errors"), 0)
            self.values["held"] = now.get("held", 0)
            self.values["open_streams"] = self.values["peak_streams"] = now.get("open_streams", 0)
            self.statuses: dict[str, int] = {}
            self.recent: deque[dict] = deque(maxlen=200)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (and track the peak of open streams)."""
        with self.lock:
            self.values[name] += n
            if name == "open_streams":
                self.values["peak_streams"] = max(self.values["peak_streams"],
                                                  self.values["open_streams"])

    def status(self, code: int) -> None:
        """Count one response with HTTP status ``code``."""
        with self.lock:
            self.statuses[str(code)] = self.statuses.get(str(code), 0) + 1
            if code >= 400:
                self.values["errors"] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return a copy of every counter, the statuses and the recent streams."""
        with self.lock:
            return {**self.values, "statuses": dict(self.statuses),
                    "recent": [dict(r) for r in self.recent]}
