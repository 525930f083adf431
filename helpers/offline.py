"""The offline provider: a real OpenAI-compatible HTTP server that speaks Moonshot's wire format.

It lets every lesson and test run with no key and no network, and it is honest about itself:
the openai SDK is its client, so if the SDK can parse it, the wire format is right.

Wire format (Moonshot's, for ``moonshot-*`` and ``kimi-*`` models): the first chunk's delta
carries ``role: "assistant"``; content deltas follow; the final chunk carries
``finish_reason`` and ``usage`` *inside* ``choices[0]``; then ``data: [DONE]``.
``stream_options.include_usage`` is honoured the OpenAI way (a trailing chunk with empty
``choices`` and top-level ``usage``). Other model families imitate their provider's quirks,
see ``FLAVORS``: ``deepseek-*`` always puts top-level ``usage`` on the chunk that carries
``finish_reason`` (and never sends a separate usage chunk, as DeepSeek's API reference says).

Markers in the last user message provoke behaviour on demand (lessons, tests, the browser page):

=====================  ===================================================================
``[fault:401]``        401 (so do a missing or, when ``api_key`` is set, a different key)
``[fault:403]``        403 permission denied
``[fault:404]``        404 (so does an unknown model)
``[fault:400]``        400 input too long (so does a prompt over the model's context)
``[fault:429]``        429 rate limit; ``[fault:429:N]`` fails the first N tries, then answers
``[fault:500]``        500; ``[fault:503]`` 503 engine overloaded
``[fault:midstream]``  some text, then an ``{"error": ...}`` event (the SDK raises APIError)
``[fault:cut]``        some text, then the connection drops without an end
``[fault:stall]``      some text, then silence until the client gives up
``[fault:malformed]``  some text, then a chunk that is not JSON
``[hold]``             the final chunk waits until :meth:`OfflineProvider.release`
``[delay:N]``          N ms between chunks for this request
``[tokens:N]``         an answer of exactly N tokens (filler words)
=====================  ===================================================================

Deliberate choices: Starlette, not FastAPI (we want the provider's own error shape and
validation messages, not a framework's); our own small streaming response that watches for
``http.disconnect`` while it writes, so a client that leaves is noticed even during a stall,
and the counters record exactly how far each stream got.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .replies import compose_reply, count_prompt_tokens, filler_reply, message_text, split_pieces
from .servers import BackgroundServer, wait_for_signal
from .settings import OFFLINE_KEY  # the shared provider accepts only it, as a real one would

__all__ = ["FLAVORS", "MODELS", "OFFLINE_KEY", "OfflineProvider", "main", "start_offline"]

DEFAULT_DELAY_MS = 15
MAX_BODY_BYTES = 1_000_000
MAX_TOKENS_MARKER = 100_000
_ROLES = {"system", "user", "assistant", "tool"}
_STREAM_FAULTS = {"midstream", "cut", "stall", "malformed"}
_MARKER = re.compile(r"\[(fault|hold|delay|tokens)(?::([a-z0-9]+))?(?::(\d+))?\]", re.I)


@dataclass(frozen=True)
class Flavor:
    """How one provider family shapes its stream."""

    usage_in_choice: bool  # Moonshot: usage inside choices[0] of the final chunk
    keep_alive: bool  # DeepSeek: ": keep-alive" comment lines before the first chunk
    reasoning: bool  # streams delta.reasoning_content before the answer
    usage_on_final: bool = False  # DeepSeek: top-level usage on the finish_reason chunk, always


FLAVORS: dict[str, Flavor] = {
    "moonshot": Flavor(usage_in_choice=True, keep_alive=False, reasoning=False),
    "openai": Flavor(usage_in_choice=False, keep_alive=False, reasoning=False),
    "deepseek": Flavor(usage_in_choice=False, keep_alive=True, reasoning=False,
                       usage_on_final=True),
    "deepseek-reasoner": Flavor(usage_in_choice=False, keep_alive=True, reasoning=True,
                                usage_on_final=True),
    "kimi-thinking": Flavor(usage_in_choice=True, keep_alive=False, reasoning=True),
}

#: model id -> (flavor, context window in tokens)
MODELS: dict[str, tuple[str, int]] = {
    "moonshot-v1-8k": ("moonshot", 8192),
    "moonshot-v1-32k": ("moonshot", 32768),
    "moonshot-v1-128k": ("moonshot", 131072),
    "kimi-k2-turbo-preview": ("moonshot", 262144),
    "kimi-k2-thinking": ("kimi-thinking", 262144),
    "qwen-plus": ("openai", 131072),
    "qwen-turbo": ("openai", 131072),
    "deepseek-chat": ("deepseek", 131072),
    "deepseek-reasoner": ("deepseek-reasoner", 131072),
    "gpt-4o-mini": ("openai", 128000),
    "gpt-4.1-mini": ("openai", 1047576),
    "qwen2.5:0.5b": ("openai", 32768),  # a local server (Ollama >= 0.5.2 honours include_usage)
    "offline-tiny": ("moonshot", 64),
}

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error",
          "Invalid request: your request exceeded the model's token limit"),
    401: ("invalid_authentication_error", "Invalid Authentication"),
    403: ("permission_denied_error", "Permission denied: this key may not use this resource"),
    404: ("resource_not_found_error", "Not found the model or Permission denied"),
    429: ("rate_limit_reached_error", "Rate limit reached: too many requests, retry later"),
    500: ("server_error", "The offline provider hit an internal error (simulated)"),
    503: ("engine_overloaded_error", "The engine is currently overloaded, please try again later"),
}


class _DeliberateCut(Exception):
    """Raised to drop a connection mid-stream on purpose ([fault:cut])."""


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DeliberateCut)


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


def error_body(status: int, message: str | None = None, kind: str | None = None) -> dict:
    """Return the provider's error shape: ``{"error": {"type", "message"}}``."""
    default_kind, default_message = _ERRORS.get(status, ("invalid_request_error", "Bad request"))
    return {"error": {"type": kind or default_kind, "message": message or default_message}}


def _error(status: int, message: str | None = None, kind: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind), status_code=status, headers=headers)


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Plan:
    model: str
    flavor: Flavor
    messages: list[dict]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    fault: str | None
    fault_arg: int | None
    hold: bool
    delay_s: float
    tokens: int | None
    body_hash: str


class _Counters:
    """Counters the tests read: what really happened on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.values: dict[str, int] = dict.fromkeys(
                ("requests", "chat_requests", "streams", "completed", "disconnects", "faults",
                 "open_streams", "peak_streams", "chunks_sent", "errors", "held"), 0)
            self.statuses: dict[str, int] = {}
            self.recent: deque[dict] = deque(maxlen=200)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.values[name] += n
            if name == "open_streams":
                self.values["peak_streams"] = max(self.values["peak_streams"],
                                                  self.values["open_streams"])

    def status(self, code: int) -> None:
        with self.lock:
            self.statuses[str(code)] = self.statuses.get(str(code), 0) + 1
            if code >= 400:
                self.values["errors"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**self.values, "statuses": dict(self.statuses),
                    "recent": [dict(r) for r in self.recent]}


class OfflineProvider:
    """An OpenAI-compatible server on 127.0.0.1 with Moonshot's wire format.

    Args:
        delay_ms: pause between streamed chunks (0 for tests and benchmarks).
        api_key: accept only this bearer key; ``None`` accepts any non-empty key.
        host: interface to bind.
        port: TCP port, 0 for a free one.
        name: background-server name; starting again under the same name replaces it.
    """

    def __init__(self, *, delay_ms: float = DEFAULT_DELAY_MS, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, name: str = "offline") -> None:
        self.delay_ms = delay_ms
        self.api_key = api_key
        self._counters = _Counters()
        self._gate = threading.Event()
        self._gate.set()
        self._releases = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, once it serves
        self._waiters: list[asyncio.Future[None]] = []  # held streams (touched on that loop)
        self._attempts: dict[str, int] = {}
        self.app = Starlette(routes=[
            Route("/", self._root, methods=["GET"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
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
        self._gate.clear()

    def release(self) -> None:
        """Let held streams finish."""
        self._releases += 1
        self._gate.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_waiters)
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                pass

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
        return _error(404, f"No route for {request.method} {path}",
                      "resource_not_found_error")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        self._counters.status(405)
        return _error(405, f"Method {request.method} is not allowed on {request.url.path}",
                      "invalid_request_error")

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
            return _error(401, "No API key provided: send 'Authorization: Bearer <key>'")
        if self.api_key is not None and key != self.api_key:
            return _error(401)
        return None

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
            plan = self._plan(await _read_json(request))
        except _BadRequest as exc:
            return _error(exc.status, str(exc), "invalid_request_error")
        status = _status_fault(plan)
        if status == 429 and plan.fault_arg is not None:
            tries = self._attempts.get(plan.body_hash, 0) + 1
            self._attempts[plan.body_hash] = tries
            if tries > plan.fault_arg:
                status = None
        if status is not None:
            self._counters.add("faults")
            headers = {"retry-after-ms": "20", "retry-after": "1"} if status == 429 else None
            return _error(status, headers=headers)
        if plan.model not in MODELS:
            return _error(404, f"Not found the model {plan.model} or Permission denied")
        _, context = MODELS[plan.model]
        prompt_tokens = count_prompt_tokens(plan.messages)
        if prompt_tokens + (plan.max_tokens or 0) > context:
            return _error(400, f"Invalid request: your request exceeded model token limit: "
                               f"{context} (prompt {prompt_tokens} tokens)")
        reply = compose_reply(plan.messages, reasoning=plan.flavor.reasoning)
        text = filler_reply(plan.tokens) if plan.tokens is not None else reply.text
        pieces = split_pieces(text)
        finish = "stop"
        if plan.max_tokens is not None and len(pieces) > plan.max_tokens:
            pieces, finish = pieces[: plan.max_tokens], "length"
        thoughts = split_pieces(reply.reasoning)
        usage = {"prompt_tokens": prompt_tokens,
                 "completion_tokens": len(pieces) + len(thoughts),
                 "total_tokens": prompt_tokens + len(pieces) + len(thoughts)}
        if thoughts:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(thoughts)}
        ident = "chatcmpl-" + plan.body_hash[:24]
        if not plan.stream:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if thoughts:
                message["reasoning_content"] = "".join(thoughts)
            return JSONResponse({
                "id": ident, "object": "chat.completion", "created": int(time.time()),
                "model": plan.model, "usage": usage,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            })
        events = self._events(plan, ident, pieces, thoughts, finish, usage)
        return _ChunkStream(self, events, planned=len(pieces) + len(thoughts) + 2, plan=plan)

    def _plan(self, body: Any) -> _Plan:
        if not isinstance(body, dict):
            raise _BadRequest("Request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            raise _BadRequest("'model' is required and must be a non-empty string")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' is required and must be a non-empty list")
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise _BadRequest(f"messages[{i}] must be an object with 'role' and 'content'")
            if m.get("role") not in _ROLES:
                raise _BadRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}, "
                                  f"got {m.get('role')!r}")
            content = m.get("content")
            if not isinstance(content, (str, list)) and not (
                    content is None and m["role"] == "assistant"):
                raise _BadRequest(f"messages[{i}].content must be a string")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _BadRequest("'stream' must be true or false")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int)
                                       or isinstance(max_tokens, bool) or max_tokens < 1):
            raise _BadRequest("'max_tokens' must be a positive integer")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise _BadRequest("'stream_options' must be an object")
        temperature = body.get("temperature")
        if temperature is not None and (not isinstance(temperature, (int, float))
                                        or isinstance(temperature, bool)
                                        or not 0 <= temperature <= 2):
            raise _BadRequest("'temperature' must be a number between 0 and 2")
        last_user = next((message_text(m) for m in reversed(messages)
                          if m.get("role") == "user"), "")
        fault = fault_arg = tokens = None
        hold = False
        delay_s = self.delay_ms / 1000
        for kind, arg, num in _MARKER.findall(last_user):
            kind = kind.lower()
            if kind == "fault":
                fault = arg.lower() if arg else None
                fault_arg = int(num) if num else None
            elif kind == "hold":
                hold = True
            elif kind == "delay" and arg.isdigit():
                delay_s = int(arg) / 1000
            elif kind == "tokens" and arg.isdigit():
                tokens = max(1, min(int(arg), MAX_TOKENS_MARKER))
        cleaned = [dict(m) for m in messages]
        for m in reversed(cleaned):
            if m.get("role") == "user":
                m["content"] = _MARKER.sub("", message_text(m)).strip()
                break
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
        flavor_name = MODELS.get(model, ("moonshot", 0))[0]
        return _Plan(
            model=model, flavor=FLAVORS[flavor_name], messages=cleaned, stream=stream,
            include_usage=bool(options.get("include_usage")), max_tokens=max_tokens,
            fault=fault, fault_arg=fault_arg, hold=hold, delay_s=delay_s, tokens=tokens,
            body_hash=hashlib.sha256(canonical).hexdigest(),
        )

    async def _events(self, plan: _Plan, ident: str, pieces: list[str], thoughts: list[str],
                      finish: str, usage: dict) -> AsyncIterator[tuple[str, bytes]]:
        """Yield (kind, bytes) wire events; kind is "chunk", "comment" or "done"."""
        created = int(time.time())

        def chunk(delta: dict, finish_reason: str | None = None, top: dict | None = None,
                  **extra: Any) -> bytes:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            choice.update(extra)
            payload = {"id": ident, "object": "chat.completion.chunk", "created": created,
                       "model": plan.model, "choices": [choice], **(top or {})}
            return b"data: " + json.dumps(payload, ensure_ascii=False,
                                          separators=(",", ":")).encode() + b"\n\n"

        async def pause() -> None:
            # Always yield, even with no delay: writing to a socket does not, so a zero-delay
            # stream would otherwise never let the event loop notice a client that left.
            await asyncio.sleep(plan.delay_s)

        if plan.flavor.keep_alive:
            yield "comment", b": keep-alive\n\n"
        yield "chunk", chunk({"role": "assistant", "content": ""})
        for piece in thoughts:
            await pause()
            yield "chunk", chunk({"reasoning_content": piece})
        faulty = plan.fault in _STREAM_FAULTS
        cut_at = max(1, len(pieces) // 3) if faulty else None
        for i, piece in enumerate(pieces):
            if i == cut_at:
                async for event in self._fault_events(plan.fault):
                    yield event
                return
            await pause()
            yield "chunk", chunk({"content": piece})
        if plan.hold or not self._gate.is_set():
            await self._wait_for_release(plan.hold)
        await pause()
        extra = {"usage": usage} if plan.flavor.usage_in_choice else {}
        top = {"usage": usage} if plan.flavor.usage_on_final else None
        yield "chunk", chunk({}, finish, top, **extra)
        if plan.include_usage and not plan.flavor.usage_on_final:
            payload = {"id": ident, "object": "chat.completion.chunk", "created": created,
                       "model": plan.model, "choices": [], "usage": usage}
            yield "chunk", b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
        yield "done", b"data: [DONE]\n\n"

    async def _wait_for_release(self, marked: bool) -> None:
        # A [hold] stream waits for a release() that comes after it started waiting; with
        # hold() every stream waits until the gate opens again. Waiting is on a future that
        # release() resolves through the loop: polling instead costs every held stream a
        # timer wake-up (1000 held streams starved the whole process of the GIL).
        seen = self._releases
        self._loop = asyncio.get_running_loop()
        self._counters.add("held")
        try:
            while (marked and self._releases == seen) or not self._gate.is_set():
                waiter = self._loop.create_future()
                self._waiters.append(waiter)
                if not ((marked and self._releases == seen) or not self._gate.is_set()):
                    break  # released between the check and the registration
                await waiter
        finally:
            self._counters.add("held", -1)

    def _wake_waiters(self) -> None:
        """Resolve every waiting stream's future (runs on the server's loop)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _fault_events(self, fault: str | None) -> AsyncIterator[tuple[str, bytes]]:
        self._counters.add("faults")
        if fault == "midstream":
            body = error_body(500, "The stream failed midway (simulated)", "server_error")
            yield "chunk", b"data: " + json.dumps(body).encode() + b"\n\n"
        elif fault == "malformed":
            yield "chunk", b'data: {"id": "broken", "choices": [\n\n'
        elif fault == "stall":
            await anyio.sleep_forever()
        elif fault == "cut":
            raise _DeliberateCut()


def _status_fault(plan: _Plan) -> int | None:
    if plan.fault and plan.fault.isdigit() and int(plan.fault) in _ERRORS:
        return int(plan.fault)
    return None


async def _read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        raise _BadRequest(f"Content-Type must be application/json, got {content_type or 'none'!r}",
                          status=415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BadRequest(f"Request body too large: at most {MAX_BODY_BYTES} bytes", status=413)
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY_BYTES:
            raise _BadRequest(f"Request body too large: at most {MAX_BODY_BYTES} bytes",
                              status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRequest(f"Request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise _BadRequest("Request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None


class _ChunkStream:
    """A streaming ASGI response that notices a client leaving, even while idle."""

    def __init__(self, provider: OfflineProvider, events: AsyncIterator[tuple[str, bytes]],
                 *, planned: int, plan: _Plan) -> None:
        self.provider = provider
        self.events = events
        self.planned = planned
        self.plan = plan
        self.status_code = 200

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        counters = self.provider._counters
        counters.add("streams")
        counters.add("open_streams")
        record = {"model": self.plan.model, "planned": self.planned, "sent": 0,
                  "outcome": "open"}
        with counters.lock:
            counters.recent.append(record)
        outcome = "disconnected"
        settled = False

        def settle(final: str) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            record["outcome"] = final
            counters.add("open_streams", -1)
            if final == "completed":
                counters.add("completed")
            elif final == "disconnected":
                counters.add("disconnects")

        try:
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                async def produce() -> None:
                    nonlocal outcome
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ]})
                    try:
                        async for kind, data in self.events:
                            await send({"type": "http.response.body", "body": data,
                                        "more_body": True})
                            if kind == "chunk":
                                record["sent"] += 1
                                counters.add("chunks_sent")
                        outcome = "fault" if self.plan.fault in _STREAM_FAULTS else "completed"
                        # Count before the last byte goes out: a client that has the whole
                        # answer must already see it counted (no race with the next test).
                        settle(outcome)
                        await send({"type": "http.response.body", "body": b"",
                                    "more_body": False})
                    except _DeliberateCut:
                        outcome = "cut"
                    except OSError:
                        outcome = "disconnected"
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                tg.start_soon(produce)
            if outcome == "cut":
                raise _DeliberateCut()  # uvicorn drops the connection without an end
        finally:
            settle(outcome)
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


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


def main(argv: list[str] | None = None) -> int:
    """Run the offline provider from the shell until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m helpers.offline",
                                     description="An offline OpenAI-compatible provider "
                                                 "(Moonshot wire format) on this machine.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY_MS)
    parser.add_argument("--api-key", default=None,
                        help="accept only this key (default: any non-empty key)")
    args = parser.parse_args(argv)
    provider = OfflineProvider(delay_ms=args.delay_ms, api_key=args.api_key,
                               host=args.host, port=args.port, name="offline-cli")
    try:
        provider.start()
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print(f"offline provider serving at {provider.base_url}", flush=True)
    wait_for_signal(provider.server)
    provider.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
