"""The offline provider's HTTP server: routes, key check, and the Python API around them.

Deliberate choices: Starlette, not FastAPI (we want the provider's own error shape and
validation messages, not a framework's); it runs in a :class:`~helpers.servers.BackgroundServer`
thread, so a notebook cell can start it and keep going. The process's shared instance
(:func:`start_offline`) accepts only ``OFFLINE_KEY``, as a real provider accepts only its key.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..money.tokens import count_prompt_tokens
from ..providers.table import MODELS, OFFLINE_KEY
from ..servers import BackgroundServer
from .calls import plan_tool_turn
from .chunks import compose_answer, stream_events
from .counters import Counters
from .errors import BadRequest, error_response
from .fileroutes import file_routes
from .filestore import FileLimits, FileStore
from .gate import HoldGate
from .plan import make_plan, read_json, status_fault
from .stream import ChunkStream
from .toolwire import json_mode_answer, tool_response

__all__ = ["DEFAULT_DELAY_MS", "OfflineProvider", "start_offline"]

DEFAULT_DELAY_MS = 15


class OfflineProvider:
    """An OpenAI-compatible server on 127.0.0.1 with Moonshot's wire format.

    Args:
        delay_ms: pause between streamed chunks (0 for tests and benchmarks).
        api_key: accept only this bearer key; ``None`` accepts any non-empty key.
        host: interface to bind.
        port: TCP port, 0 for a free one.
        name: background-server name; starting again under the same name replaces it.
        files_dir: where uploaded files live (default ``$OFFLINE_FILES_DIR``, else
            ``<temp dir>/offline-provider-files``); they survive a restart.
        file_limits: upload limits (Moonshot's by default).
    """

    def __init__(self, *, delay_ms: float = DEFAULT_DELAY_MS, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, name: str = "offline",
                 files_dir: str | os.PathLike[str] | None = None,
                 file_limits: FileLimits | None = None) -> None:
        self.delay_ms = delay_ms
        self.api_key = api_key
        self.files = FileStore(files_dir or os.environ.get("OFFLINE_FILES_DIR") or
                               os.path.join(tempfile.gettempdir(), "offline-provider-files"),
                               file_limits)
        self._counters = Counters()
        self._gate = HoldGate(self._counters)
        self._attempts: dict[str, int] = {}
        self.app = Starlette(routes=[
            Route("/", self._root, methods=["GET"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            *file_routes(self.files, self._file_guard, self._counters.status),
            Route("/_offline/stats", self._stats, methods=["GET"]),
            Route("/_offline/reset", self._reset, methods=["POST"]),
            Route("/_offline/hold", self._hold, methods=["POST"]),
            Route("/_offline/release", self._release, methods=["POST"]),
        ])
        self.app.add_exception_handler(404, self._not_found)
        self.app.add_exception_handler(405, self._not_allowed)
        self.server = BackgroundServer(self.app, host=host, port=port, name=name)

    # -- Python API -----------------------------------------------------------------------
    def start(self) -> OfflineProvider:
        """Start serving in a background thread; return self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving (bounded; open streams are cut after a short grace period)."""
        self.release()
        self.server.stop()

    def __enter__(self) -> OfflineProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The URL to give the SDK, e.g. ``http://127.0.0.1:8001/v1``."""
        return f"{self.server.url}/v1"

    @property
    def running(self) -> bool:
        """True while serving."""
        return self.server.running

    def stats(self) -> dict[str, Any]:
        """Return a snapshot of the counters (also at ``GET /_offline/stats``)."""
        return self._counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self._counters.reset()
        self._attempts.clear()

    def hold(self) -> None:
        """Make every stream wait before its final chunk until :meth:`release`."""
        self._gate.hold()

    def release(self) -> None:
        """Let held streams finish."""
        self._gate.release()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict:
        """Wait until ``predicate(stats())`` holds; return the stats, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.stats()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"offline provider: condition not met in {timeout} s: {snap}")
            time.sleep(0.01)

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"<OfflineProvider {where} delay_ms={self.delay_ms}>"

    # -- HTTP plumbing --------------------------------------------------------------------
    async def _not_found(self, request: Request, exc: Exception) -> Response:
        self._counters.status(404)
        path = request.url.path if len(request.url.path) <= 200 else request.url.path[:200] + "…"
        return error_response(404, f"No route for {request.method} {path}",
                              "resource_not_found_error")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        self._counters.status(405)
        return error_response(405, f"Method {request.method} is not allowed on "
                                   f"{request.url.path}", "invalid_request_error")

    async def _root(self, request: Request) -> Response:
        return JSONResponse({"name": "offline provider", "base_url": str(request.base_url) + "v1",
                             "models": sorted(MODELS)})

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _reset(self, request: Request) -> Response:
        self.reset_stats()
        return JSONResponse({"ok": True})

    async def _hold(self, request: Request) -> Response:
        self.hold()
        return JSONResponse({"ok": True})

    async def _release(self, request: Request) -> Response:
        self.release()
        return JSONResponse({"ok": True})

    def _auth_error(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return error_response(401, "No API key provided: send 'Authorization: Bearer <key>'")
        if self.api_key is not None and key != self.api_key:
            return error_response(401)
        return None

    def _file_guard(self, request: Request) -> Response | None:
        self._counters.add("requests")
        return self._auth_error(request)

    async def _models(self, request: Request) -> Response:
        self._counters.add("requests")
        problem = self._auth_error(request)
        if problem is not None:
            self._counters.status(401)
            return problem
        self._counters.status(200)
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "offline"}
                for m in MODELS]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        self._counters.add("requests")
        self._counters.add("chat_requests")
        response = await self._chat_response(request)
        self._counters.status(response.status_code)
        return response

    async def _chat_response(self, request: Request) -> Response:
        problem = self._auth_error(request)
        if problem is not None:
            return problem
        try:
            body = await read_json(request)
            plan = make_plan(body, self.delay_ms)
            turn = plan_tool_turn(body, plan)  # tools: a call, or an answer from results
        except BadRequest as exc:
            return error_response(exc.status, str(exc), "invalid_request_error")
        if plan.headers_delay_s:  # [delay-headers:N]: queueing before the response starts
            await asyncio.sleep(plan.headers_delay_s)
        status = status_fault(plan)
        if status == 429 and plan.fault_arg is not None:
            tries = self._attempts.get(plan.body_hash, 0) + 1
            self._attempts[plan.body_hash] = tries
            if tries > plan.fault_arg:
                status = None
        if status is not None:
            self._counters.add("faults")
            headers = {"retry-after-ms": "20", "retry-after": "1"} if status == 429 else None
            return error_response(status, headers=headers)
        model = MODELS.get(plan.model)
        if model is None:
            return error_response(404, f"Not found the model {plan.model} or Permission denied")
        prompt_tokens = count_prompt_tokens(plan.messages)
        if prompt_tokens + (plan.max_tokens or 0) > model.context_window:
            return error_response(400, f"Invalid request: your request exceeded model token "
                                       f"limit: {model.context_window} "
                                       f"(prompt {prompt_tokens} tokens)")
        ident = "chatcmpl-" + plan.body_hash[:24]
        if turn is not None:
            return tool_response(plan, body, turn, ident, self._gate, self._counters)
        try:
            answer = json_mode_answer(body, plan, compose_answer(plan, prompt_tokens))
        except BadRequest as exc:
            return error_response(exc.status, str(exc), "invalid_request_error")
        if not plan.stream:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(answer.pieces)}
            if answer.thoughts and plan.traits.reasoning_field:
                message[plan.traits.reasoning_field] = "".join(answer.thoughts)
            return JSONResponse({
                "id": ident, "object": "chat.completion", "created": int(time.time()),
                "model": plan.model, "usage": answer.usage,
                "choices": [{"index": 0, "message": message, "finish_reason": answer.finish}],
            })
        events = stream_events(plan, ident, answer, self._gate, self._counters)
        planned = len(answer.pieces) + len(answer.thoughts) + 2
        return ChunkStream(self._counters, events, planned=planned, plan=plan,
                           usage=answer.usage)


_SHARED: dict[str, OfflineProvider] = {}


def start_offline(*, delay_ms: float = DEFAULT_DELAY_MS, api_key: str | None = OFFLINE_KEY,
                  port: int = 0) -> OfflineProvider:
    """Return the process's shared offline provider, started (re-running a cell reuses it).

    It accepts only ``api_key`` (``OFFLINE_KEY`` unless you say otherwise; ``None`` accepts
    any non-empty key).
    """
    current = _SHARED.get("offline")
    if current is not None and current.running:
        current.delay_ms = delay_ms
        current.api_key = api_key
        if port in (0, current.server.port):
            return current
    provider = OfflineProvider(delay_ms=delay_ms, api_key=api_key, port=port).start()
    _SHARED["offline"] = provider
    return provider
