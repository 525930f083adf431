"""Where every worker of a relay keeps what they share (limit counters, resumable answers).

- :mod:`.base`: the interface, :class:`Store` (:class:`LimitCounters` and :class:`AnswerLog`);
- :mod:`.sqlite`: :class:`SQLiteStore`, one file on this machine (the default);
- :mod:`.redis`: :class:`RedisStore`, for relays on several machines (imported on demand:
  the ``redis`` package is needed only then).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import AnswerLog, LimitCounters, Store, UsageRecords
from .sqlite import SQLiteStore

__all__ = ["AnswerLog", "LimitCounters", "SQLiteStore", "Store", "UsageRecords", "open_store"]


def open_store(url: str | None) -> Store:
    """Open the store at ``url`` (``sqlite:///file``, ``redis://...``); None: a temporary file."""
    if url is None:
        return SQLiteStore()
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteStore(url.removeprefix("sqlite:///"))  # sqlite:////abs, sqlite:///rel
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore
        return RedisStore(url)
    raise ValueError(f"unknown store {url!r}: use sqlite:///path/to/file or redis://host:port/0")
