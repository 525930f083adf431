"""What a client may do (:class:`Limits`) and how the relay refuses (:class:`RelayLimit`).

The counting and the reservations are :mod:`helpers.relay.limits`; these are what its
configuration and its 429s look like, shared by the routes, the uploads and the tool loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import JSONResponse

from .bodies import error_response

__all__ = ["Limits", "RelayLimit"]


@dataclass(frozen=True)
class Limits:
    """What one client may do; None: no limit.

    Args:
        concurrent_streams: answers streaming at once.
        requests_per_minute: requests in any 60 s window.
        max_tokens: the largest ``max_tokens`` a request may ask for (and the default).
        daily_tokens: tokens (prompt + answer) per UTC day.
        daily_cost: money per UTC day, in the model's price currency (helpers/providers/table.py).
        stream_lease: seconds a worker that died keeps a stream slot taken.
    """

    concurrent_streams: int | None = None
    requests_per_minute: int | None = None
    max_tokens: int | None = None
    daily_tokens: int | None = None
    daily_cost: float | None = None
    stream_lease: float = 3600.0

    @property
    def any(self) -> bool:
        """True when at least one limit is set."""
        return any(v is not None for v in (self.concurrent_streams, self.requests_per_minute,
                                           self.max_tokens, self.daily_tokens,
                                           self.daily_cost))


class RelayLimit(Exception):
    """A request the relay itself refuses (429), with the limit's own type and message."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.retry_after = kind, message, retry_after

    def response(self) -> JSONResponse:
        """The 429 in the relay's error shape, with Retry-After when a time is known."""
        headers = {} if self.retry_after is None else {
            "Retry-After": str(max(1, int(self.retry_after + 0.999)))}
        return error_response(429, self.kind, self.message, headers)
