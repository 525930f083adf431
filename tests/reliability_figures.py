"""Measured figures for docs/reliability.md: tests record them, nothing asserts on them.

Set ``RELIABILITY_FIGURES=/some/file.jsonl`` to collect them (one JSON object a line);
without it, :func:`record` does nothing. Tests keep generous deadlines (5 s and more) for
liveness; the figures (typically milliseconds) go into the docs, never into an assert.
"""

from __future__ import annotations

import json
import os
import threading

_LOCK = threading.Lock()


def record(name: str, value: float, unit: str = "s", **extra: object) -> None:
    """Append one measurement to the file named by ``RELIABILITY_FIGURES``, if set."""
    path = os.environ.get("RELIABILITY_FIGURES")
    if not path:
        return
    line = json.dumps({"name": name, "value": value, "unit": unit, **extra})
    with _LOCK, open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
