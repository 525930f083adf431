"""What each student used today, for the teacher: recorded in the shared store, read by any worker.

Deliberate choices (the teacher's side is docs/classroom.md, "Reading the usage"):

- **Recorded when the relay has per-student tokens** (``--tokens FILE``, or ``token={name:
  token}``), whatever limits or budgets are set; without them nothing is recorded, and the
  default relay never touches its store. One store call per answer and per refusal, off the
  answer's path: a record that fails is a warning in the log, never a failed answer.
- **What a record holds** (:class:`~helpers.relay.store.UsageRecords`, per client and day):
  ``requests`` (answers the relay began to stream), ``prompt_tokens``, ``completion_tokens``
  and ``total_tokens`` as the provider reported them (an answer cut off before its usage
  counts as a request with no tokens), ``cost`` (the usage event's cost, priced by
  helpers/providers/table.py), ``refused:<type>`` for each refusal by the relay's limits (a 429
  of type ``relay_*``, from any route: :class:`RefusalRecorder` sees every response; a tool
  loop's round refused mid-answer too) and ``last``, the time of the last of these.
- **The day is the machine's local date** (:func:`usage_day`), a school day.
- **The teacher's token alone reads it.** ``GET /usage.json`` answers the teacher's token
  (the roster's line named ``teacher``, or ``--teacher NAME``); a student's token gets 403
  ``usage_teacher_only`` in the one error shape, no token the access guard's 401. ``GET
  /usage`` is a static page (no secret in it) that reads the JSON with the token from its
  link's ``#token=`` fragment, as the chat page does (``static/access.js``).
- Every name on the roster is listed, zeros included (who has not started yet shows too).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..providers.table import price_of
from .bodies import error_response
from .identity import CLIENT_SCOPE_KEY
from .store import Store
from .upstream import Batch

__all__ = ["COUNTS", "RefusalRecorder", "Usage", "usage_day"]

log = logging.getLogger("helpers.relay")

#: The counts of a usage record that are summed, in the order the view shows them.
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost")
_TOKENS = COUNTS[1:4]
#: The most of a 429's body read to learn its type (the relay's error bodies are small).
_REFUSAL_BYTES = 4096


def usage_day(now: float | None = None) -> str:
    """The usage day of a time (default now): the machine's local date, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(time.time() if now is None else now).date().isoformat()


class Usage:
    """One relay's usage records: written as answers end and refusals happen, and the view.

    Args:
        store: the shared store (every worker's records land in it).
        identify: the client a request's scope comes from (``token:<name>`` or ``addr:...``).
        names: the roster's names now (the view lists each).
        teacher: the name whose token may read the view; None: nobody's.
        model: the relay's model (its price's currency).
        offline: whether the offline provider counted the tokens (the view says so).
    """

    def __init__(self, store: Store, *, identify: Callable[[Scope], str],
                 names: Callable[[], Iterable[str]], teacher: str | None, model: str,
                 offline: bool = False) -> None:
        self.store, self.identify, self.names = store, identify, names
        self.teacher, self.model, self.offline = teacher, model, offline

    async def add(self, client: str, counts: dict[str, float]) -> None:
        """Add to ``client``'s record of today; a failure is logged, never raised."""
        now = time.time()
        try:
            with anyio.CancelScope(shield=True):
                await self.store.add_usage(client, usage_day(now), {**counts, "last": now})
        except Exception as exc:  # the answer went out; only the record is missing
            log.warning("usage not recorded (%s): the store failed", type(exc).__name__)

    async def metered(self, client: str, batches: AsyncIterator[Batch]) -> AsyncIterator[Batch]:
        """Pass an answer's batches through; when they end, record the request and its usage."""
        counts: dict[str, float] = {"requests": 1}
        try:
            async for batch in batches:
                for name, data in batch:
                    if name == "usage":
                        counts.update({k: float(data.get(k) or 0) for k in _TOKENS})
                        if isinstance(data.get("cost"), dict):
                            counts["cost"] = float(data["cost"].get("amount") or 0)
                    elif name == "error" and str(data.get("type", "")).startswith("relay_"):
                        key = f"refused:{data['type']}"  # a tool loop's round refused
                        counts[key] = counts.get(key, 0) + 1
                yield batch
        finally:
            with anyio.CancelScope(shield=True):
                await batches.aclose()  # type: ignore[attr-defined]
                await self.add(client, counts)

    async def refused(self, client: str, kind: str) -> None:
        """Record one refusal of ``kind`` (a ``relay_*`` error type)."""
        await self.add(client, {f"refused:{kind}": 1})

    async def report(self, day: str | None = None) -> dict[str, Any]:
        """The usage view's data: every roster name and every client with a record of ``day``."""
        day = day or usage_day()
        records = await self.store.usage(day)
        roster = list(self.names())
        clients = [f"token:{name}" for name in roster]
        clients += sorted(set(records) - set(clients))
        students = [_row(client, records.get(client, {}), client in clients[:len(roster)])
                    for client in clients]
        totals: dict[str, Any] = {k: sum(s[k] for s in students) for k in COUNTS}
        totals["refused"] = sum(s["refused"] for s in students)
        price = price_of(self.model)
        return {"day": day, "timezone": dt.datetime.now().astimezone().tzname(),
                "model": self.model, "currency": getattr(price, "currency", None),
                "offline": self.offline, "students": students, "totals": totals}

    async def usage_json(self, request: Request) -> Response:
        """``GET /usage.json``: today's usage, for the teacher's token only."""
        if self.teacher is None or request.scope.get(CLIENT_SCOPE_KEY) != self.teacher:
            who = (f"the teacher's token (the line named {self.teacher!r} in the tokens file)"
                   if self.teacher else "a teacher's token, and this relay has none")
            return error_response(403, "usage_teacher_only",
                                  f"Only {who} may read this relay's usage.")
        return JSONResponse(await self.report(), headers={"Cache-Control": "no-store"})

    def add_routes(self, app: FastAPI, page: Callable[[str], FileResponse]) -> None:
        """Add ``GET /usage`` (the page, served by ``page(file name)``) and ``/usage.json``."""
        async def usage_page() -> Response:
            return page("usage.html")

        app.add_api_route("/usage", usage_page, methods=["GET"])
        app.add_api_route("/usage.json", self.usage_json, methods=["GET"])


def _row(client: str, record: dict[str, float], on_roster: bool) -> dict[str, Any]:
    by, _, name = client.partition(":")
    refusals = {k.removeprefix("refused:"): int(v) for k, v in sorted(record.items())
                if k.startswith("refused:")}
    last = record.get("last")
    row: dict[str, Any] = {"name": name, "by": "token" if by == "token" else "address",
                           "on_roster": on_roster}
    row.update({k: int(record.get(k, 0)) for k in COUNTS if k != "cost"})
    row["cost"] = round(record.get("cost", 0.0), 10)
    row.update(refusals=refusals, refused=sum(refusals.values()),
               last_activity=None if last is None else
               dt.datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds"))
    return row


class RefusalRecorder:
    """ASGI middleware: a 429 of the relay's own (type ``relay_*``), from any route, is one
    refusal in its client's usage record. Other responses pass untouched."""

    def __init__(self, app: ASGIApp, *, usage: Usage) -> None:
        self.app, self.usage = app, usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, body = 0, bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status == 429 and message["type"] == "http.response.body":
                body.extend(message.get("body", b"")[:_REFUSAL_BYTES - len(body)])
            await send(message)

        await self.app(scope, receive, watch)
        if status == 429:
            try:
                kind = str(json.loads(body)["error"]["type"])
            except (ValueError, KeyError, TypeError):
                return  # not the relay's error shape: not a refusal of its limits
            if kind.startswith("relay_"):
                await self.usage.refused(self.usage.identify(scope), kind)
