"""The relay: a small web server that keeps the API key and streams answers to a browser.

The browser never talks to the provider. It POSTs a question to the relay; the relay asks the
provider with the official ``openai`` SDK (the key stays in this process) and forwards the
answer as Server-Sent Events. The wire contract is in docs/architecture.md; in short:

- ``POST /api/chat/stream``: ``{"question", "history"}`` or ``{"messages"}`` in,
  ``text/event-stream`` out: ``delta``/``reasoning``/``usage`` events, then ``done`` or ``error``;
- ``POST /chatbot/llm/chatstream``: ``{"question"}`` in, the bare answer text out (the blog's);
- ``GET /`` the chat page (helpers/static/), ``GET /healthz`` a liveness check.

Deliberate choices:

- **Fail before streaming with a status, after streaming with an event.** The handler waits
  for the provider's first piece of answer before it sends headers, so a bad key, a rate
  limit or a timeout becomes an HTTP error (``{"error": {"type", "message"}}``). Once text
  has gone out the status is already 200, so a later failure is an ``event: error``.
- **A client that leaves cancels the upstream request.** sse-starlette's
  ``EventSourceResponse`` (and Starlette's ``StreamingResponse``) watch for
  ``http.disconnect`` and cancel the generator; its ``finally`` closes the provider's
  response, which closes the provider connection (tokens are money). The close is shielded from the
  cancellation, or it would be cancelled too. When the provider's bytes are already waiting,
  reading and writing never suspend, so the relay yields to the event loop after every
  event: otherwise it would not hear of the hang-up until the whole answer was relayed.
- **Guards, not "bind and hope".** Bound to 127.0.0.1; the Host header must be a loopback
  name or an allowed host (a DNS-rebinding page reaches 127.0.0.1 under *its own* name); an
  ``Origin`` must be the same origin or an allowed one (other sites' pages get 403, allowed
  ones get CORS). Requests without ``Origin`` (curl, Python) pass.
- **Behind jupyter-server-proxy** (``/proxy/<port>/``) the browser's Host and Origin arrive
  unchanged. A local Jupyter is on a loopback host, so nothing is needed. Under JupyterHub or
  Binder (``JUPYTERHUB_SERVICE_PREFIX`` is set in the kernel's environment) the hub's public
  host is allowed when JupyterHub tells it (``JUPYTERHUB_PUBLIC_URL``,
  ``JUPYTERHUB_PUBLIC_HUB_URL``, ``JUPYTERHUB_HOST``); when it does not (Binder), requests
  forwarded by jupyter-server-proxy to *this* port (its ``X-Forwarded-Context`` header) are
  accepted from any host: there the relay listens on a remote container's loopback, which a
  rebinding page in the learner's browser cannot reach except through the hub's
  authenticated proxy. The Origin check still applies.
- **The key never leaves.** It is not in the page, the health check, any log line we write,
  or any error message: provider error texts are passed through :func:`_scrub`.
- **An upstream read timeout** (``read_timeout``, default 60 s) well under the SDK's 600 s:
  a stalled provider becomes an ``error`` event instead of a hung page.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.lowlevel
import httpx2
import openai
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sse_starlette import EventSourceResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .servers import BackgroundServer, wait_for_signal
from .settings import Config, load_config, mask_key
from .sse import encode_event
from .upstream import Batch, IncompleteStream, relay_client, upstream_batches

__all__ = ["DEFAULT_READ_TIMEOUT", "Relay", "create_app", "jupyter_allowances", "main",
           "start_relay"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_PORT = 4020
MAX_BODY_BYTES = 256_000
MAX_TEXT_CHARS = 20_000
MAX_HISTORY = 40
DEFAULT_SYSTEM_PROMPT = (
    "You assist a mathematics teacher. Answer precisely and briefly, stay on the question, "
    "and write formulas in LaTeX."
)
#: The page runs only its own scripts and talks only to where it came from.
_PAGE_POLICY = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
#: Providers that report usage in a stream only when asked (``stream_options``).
_ASK_FOR_USAGE = {"openai", "qwen", "qwen-intl", "deepseek", "offline"}
#: Upstream statuses passed through as they are; the others become 502 (the relay's own
#: configuration is wrong, not the browser's request).
_PASS_THROUGH = {400, 413, 422, 429, 503}


# -- request bodies ---------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryMessage(_Strict):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ChatMessage(_Strict):
    """One message in the OpenAI ``messages`` form."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ChatRequest(_Strict):
    """``{"question", "history"}`` or ``{"messages"}``."""

    question: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    history: list[HistoryMessage] = Field(default_factory=list, max_length=MAX_HISTORY)
    messages: list[ChatMessage] | None = Field(None, max_length=MAX_HISTORY + 1)

    @model_validator(mode="after")
    def _one_form(self) -> ChatRequest:
        if self.messages is not None:
            if self.question is not None or self.history:
                raise ValueError("send either 'question' (with 'history') or 'messages', "
                                 "not both")
            if not self.messages or self.messages[-1].role != "user":
                raise ValueError("'messages' must end with a user message")
            if not self.messages[-1].content.strip():
                raise ValueError("the last user message is empty")
        elif self.question is None:
            raise ValueError("'question' is required")
        elif not self.question.strip():
            raise ValueError("'question' is empty")
        return self

    def to_messages(self, system_prompt: str | None) -> list[dict[str, str]]:
        """Return the messages to send upstream, with the relay's system prompt first."""
        if self.messages is not None:
            turns = [m.model_dump() for m in self.messages]
        else:
            turns = [m.model_dump() for m in self.history]
            turns.append({"role": "user", "content": self.question or ""})
        if system_prompt and not any(t["role"] == "system" for t in turns):
            turns.insert(0, {"role": "system", "content": system_prompt})
        return turns


class BlogRequest(_Strict):
    """The blog's body: ``{"question"}``."""

    question: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _not_blank(self) -> BlogRequest:
        if not self.question.strip():
            raise ValueError("'question' is empty")
        return self


# -- the upstream -----------------------------------------------------------------------------
# Reading the provider is helpers/upstream.py's one idea: the SDK's raw streaming response,
# a lean SSE decoder, and one batch of events per network read (docs/performance.md).


def _scrub(text: str, secret: str) -> str:
    """Replace the key (if a provider echoes it) with its masked form."""
    if secret and len(secret) >= 8 and secret in text:
        text = text.replace(secret, mask_key(secret))
    return text


def _refused(exc: BaseException) -> bool:
    """True if a "timeout" is really a refused or failed connection.

    The SDK's aiohttp transport maps aiohttp's ClientConnectorError (connection refused, no
    route) to httpx's ConnectTimeout, so the SDK raises APITimeoutError for it; the cause
    chain still holds the original error.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorError | httpx2.ConnectError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _failure(exc: BaseException, secret: str,
             read_timeout: float) -> tuple[int, str, str, int | None]:
    """Map an upstream failure to (relay status, error type, message, upstream status)."""
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return (504, "upstream_timeout",
                f"The provider sent nothing for {read_timeout:g} s (read timeout)", None)
    if isinstance(exc, openai.APIConnectionError):
        return 502, "upstream_connection_error", "The connection to the provider failed", None
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        kind = str(body.get("type") or "upstream_error")
        message = str(body.get("message") or f"The provider answered {exc.status_code}")
        if exc.status_code in (401, 403):
            message = f"The provider refused the relay's API key ({exc.status_code}): {message}"
        status = exc.status_code if exc.status_code in _PASS_THROUGH else 502
        return status, kind, _scrub(message, secret), exc.status_code
    if isinstance(exc, openai.APIError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        kind = str(body.get("type") or "upstream_error")
        return 502, kind, _scrub(exc.message, secret), None
    if isinstance(exc, IncompleteStream):
        return 502, "incomplete_stream", str(exc), None
    return 502, "upstream_error", f"The provider's stream failed ({type(exc).__name__})", None


def _shorten(text: str, limit: int = 200) -> str:
    """Cut what a client sent to a bounded length before echoing it in an error."""
    return text if len(text) <= limit else text[:limit] + "…"


def _error_response(status: int, kind: str, message: str,
                    headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status,
                        headers=dict(headers or {}))


# -- guards ------------------------------------------------------------------------------------
def _hostname(netloc: str) -> str:
    """``"[::1]:4020"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class _Guards:
    """ASGI middleware: DNS-rebinding (Host) and cross-site (Origin) guards, body size."""

    def __init__(self, app: ASGIApp, *, allow_hosts: Iterable[str],
                 allow_origins: Iterable[str], forwarded_prefix: str | None) -> None:
        self.app = app
        self.hosts = {_hostname(h) for h in allow_hosts} | _LOOPBACK
        self.origins = {o.strip().rstrip("/").lower() for o in allow_origins}
        self.forwarded_prefix = forwarded_prefix

    def _problem(self, scope: Scope, headers: Headers) -> str | None:
        host = headers.get("host", "")
        if _hostname(host) not in self.hosts and not self._forwarded_to_us(scope, headers):
            return (f"Host {host!r} is not allowed: this relay answers on localhost only "
                    "(DNS-rebinding guard). Allow it with allow_hosts=[...] or --allow-host.")
        origin = headers.get("origin")
        if origin is not None:
            same = urlsplit(origin).netloc.lower() == host.lower()
            if not same and origin.rstrip("/").lower() not in self.origins:
                return (f"Origin {origin!r} is not allowed (cross-site guard). Allow it with "
                        "allow_origins=[...] or --allow-origin.")
        return None

    def _forwarded_to_us(self, scope: Scope, headers: Headers) -> bool:
        if self.forwarded_prefix is None or not scope.get("server"):
            return False
        expected = f"{self.forwarded_prefix.rstrip('/')}/proxy/{scope['server'][1]}"
        return headers.get("x-forwarded-context", "").rstrip("/") == expected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self._problem(scope, headers)
        if problem is not None:
            await _error_response(403, "forbidden", problem)(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _error_response(413, "request_too_large",
                                  f"Request body too large: at most {MAX_BODY_BYTES} bytes"
                                  )(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            # A chunked body has no Content-Length: count it as it arrives.
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)


def jupyter_allowances(env: Mapping[str, str] | None = None) -> tuple[list[str], str | None]:
    """Return (hosts to allow, proxy prefix to trust) when running under JupyterHub/Binder.

    Outside JupyterHub (no ``JUPYTERHUB_SERVICE_PREFIX``) returns ``([], None)``: a local
    Jupyter is reached on a loopback host, which is always allowed.
    """
    env = os.environ if env is None else env
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return [], None
    hosts = []
    for var in ("JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_HOST"):
        value = env.get(var, "").strip()
        if value:
            netloc = urlsplit(value if "//" in value else f"//{value}").netloc
            if netloc:
                hosts.append(netloc)
    return hosts, (None if hosts else prefix)


# -- the app -----------------------------------------------------------------------------------
def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return 400, "invalid_request_error", f"Request body is not valid JSON: {detail}".strip()
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing" and not where:
            message = "a JSON body is required"
        elif error.get("type") == "model_attributes_type" and not where:
            message = "the body must be a JSON object"
        parts.append(f"{where}: {message}" if where else message)
    return 422, "invalid_request_error", "Invalid request: " + "; ".join(parts)


def create_app(config: Config | None = None, *, allow_origins: Iterable[str] = (),
               allow_hosts: Iterable[str] = (), read_timeout: float = DEFAULT_READ_TIMEOUT,
               system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
               client: openai.AsyncOpenAI | None = None,
               trust_proxy_prefix: str | None = None) -> FastAPI:
    """Build the relay's FastAPI app for ``config`` (default: ``load_config()``).

    Args:
        config: provider, model and key; the key stays inside this app.
        allow_origins: other origins whose pages may call the relay (they also get CORS).
        allow_hosts: extra Host names to answer (any port), e.g. a JupyterHub's host.
        read_timeout: seconds to wait for the provider's next bytes before giving up.
        system_prompt: prepended when the request brings no system message (None: none).
        client: an ``openai.AsyncOpenAI`` to use instead of one built from ``config``.
        trust_proxy_prefix: a JupyterHub prefix; see the module docstring (Binder).
    """
    config = config or load_config()
    secret = config.api_key
    owns_client = client is None
    upstream = client or relay_client(config, read_timeout=read_timeout)
    ask_for_usage = config.provider in _ASK_FOR_USAGE

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_client:  # close the connection pool in the loop that opened it
            await upstream.close()

    app = FastAPI(title="Streaming chat relay", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower():
            return _error_response(415, "unsupported_media_type",
                                   "Content-Type must be application/json, got "
                                   f"{content_type or 'none'!r}")
        return _error_response(*_validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        path = _shorten(request.url.path)
        kinds = {400: "invalid_request_error", 404: "not_found", 405: "method_not_allowed",
                 413: "request_too_large"}
        message = {400: "Request body could not be read: send UTF-8 JSON, not nested too deeply",
                   404: f"No route for {request.method} {path}",
                   405: f"Method {request.method} is not allowed on {path}",
                   413: f"Request body too large: at most {MAX_BODY_BYTES} bytes"}
        return _error_response(exc.status_code, kinds.get(exc.status_code, "http_error"),
                               message.get(exc.status_code, str(exc.detail)), exc.headers)

    async def open_stream(messages: list[dict]) -> tuple[Batch, AsyncIterator[Batch]]:
        batches = upstream_batches(upstream, config.model, messages,
                                   ask_for_usage=ask_for_usage)
        return await anext(batches), batches

    def refuse(exc: Exception) -> JSONResponse:
        status, kind, message, _ = _failure(exc, secret, read_timeout)
        log.info("upstream failed before streaming: %s %s", status, kind)
        return _error_response(status, kind, message)

    @app.post("/api/chat/stream")
    async def chat_stream(body: ChatRequest) -> Response:
        """Stream the answer as named SSE events."""
        try:
            first, events = await open_stream(body.to_messages(system_prompt))
        except Exception as exc:
            return refuse(exc)

        async def sse() -> AsyncIterator[bytes]:
            try:
                yield b"".join(encode_event(name, data) for name, data in first)
                async for batch in events:  # one write per upstream read
                    yield b"".join(encode_event(name, data) for name, data in batch)
                    await anyio.lowlevel.checkpoint()  # notice a hang-up: module docstring
            except Exception as exc:
                _, kind, message, upstream = _failure(exc, secret, read_timeout)
                log.info("upstream failed while streaming: %s", kind)
                yield encode_event("error", {"type": kind, "message": message,
                                             "status": upstream})
            finally:
                with anyio.CancelScope(shield=True):
                    await events.aclose()

        return EventSourceResponse(sse(), sep="\n")

    @app.post("/chatbot/llm/chatstream")
    async def blog_stream(body: BlogRequest) -> Response:
        """Stream the bare answer text, the way the original blog post did."""
        messages = ChatRequest(question=body.question).to_messages(system_prompt)
        try:
            first, events = await open_stream(messages)
        except Exception as exc:
            return refuse(exc)

        async def text() -> AsyncIterator[bytes]:
            # No framing: a failure midway can only end the text early, and the reader
            # cannot tell it from a short answer. That is the lesson's point.
            try:
                batch = first
                while True:
                    text = "".join(data["content"] for name, data in batch if name == "delta")
                    if text:
                        yield text.encode()
                    await anyio.lowlevel.checkpoint()
                    batch = await anext(events)
            except StopAsyncIteration:
                pass
            except Exception as exc:
                log.info("upstream failed while streaming raw text: %s",
                         _failure(exc, secret, read_timeout)[1])
            finally:
                with anyio.CancelScope(shield=True):
                    await events.aclose()

        return StreamingResponse(text(), media_type="text/plain; charset=utf-8",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @app.get("/healthz")
    async def healthz() -> dict:
        """Say the relay is up, and which provider and model it uses (never the key)."""
        return {"ok": True, "provider": config.provider, "model": config.model}

    @app.get("/")
    async def page() -> Response:
        """Serve the chat page."""
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": _PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(CORSMiddleware, allow_origins=[o.rstrip("/") for o in allow_origins],
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type", "Accept"])
    app.add_middleware(_Guards, allow_hosts=list(allow_hosts), allow_origins=allow_origins,
                       forwarded_prefix=trust_proxy_prefix)
    return app


# -- running it --------------------------------------------------------------------------------
class Relay:
    """A running relay: its URLs, its app, and how to stop it."""

    def __init__(self, app: FastAPI, server: BackgroundServer, config: Config,
                 proxy_prefix: str | None = None) -> None:
        self.app = app
        self.server = server
        self.config = config
        self.proxy_prefix = proxy_prefix

    @property
    def url(self) -> str:
        """The relay's root URL on this machine, e.g. ``http://127.0.0.1:4020/``."""
        return self.server.url + "/"

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.server.port or 0)

    @property
    def page_url(self) -> str:
        """Where a browser opens the page: through the hub's proxy under JupyterHub."""
        if self.proxy_prefix:
            return f"{self.proxy_prefix.rstrip('/')}/proxy/{self.port}/"
        return self.url

    @property
    def running(self) -> bool:
        """True while serving."""
        return self.server.running

    def stop(self) -> None:
        """Stop serving (bounded; open streams are cut after a short grace period)."""
        self.server.stop()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.running else "stopped"
        return f"<Relay {state} provider={self.config.provider} model={self.config.model}>"


def start_relay(config: Config | None = None, *, host: str = "127.0.0.1", port: int = 0,
                allow_origins: Iterable[str] = (), allow_hosts: Iterable[str] = (),
                read_timeout: float = DEFAULT_READ_TIMEOUT, jupyter: bool | None = None,
                name: str = "relay", loop: str = "asyncio", **app_options: Any) -> Relay:
    """Start the relay in a background thread (re-running replaces the previous one).

    Args:
        config: provider settings (default: ``load_config()``, offline when there is no key).
        host, port: where to listen; port 0 picks a free port.
        allow_origins, allow_hosts, read_timeout: see :func:`create_app`.
        jupyter: apply the JupyterHub/Binder allowances (see :func:`jupyter_allowances`);
            ``None`` detects them from the environment.
        name: background-server name; one relay per name.
        loop: uvicorn's event loop; the CLI uses "uvloop" when installed (a relay in its own
            process), a notebook keeps "asyncio" (it shares the kernel's process).
    """
    config = config or load_config()
    hosts, prefix = jupyter_allowances() if jupyter is not False else ([], None)
    app = create_app(config, allow_origins=allow_origins, allow_hosts=[*allow_hosts, *hosts],
                     read_timeout=read_timeout, trust_proxy_prefix=prefix, **app_options)
    server = BackgroundServer(app, host=host, port=port, name=name, lifespan="on", loop=loop)
    server.start()
    hub_prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") if jupyter is not False else None
    return Relay(app, server, config, proxy_prefix=hub_prefix)


def main(argv: list[str] | None = None) -> int:
    """Run the relay from the shell until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.relay",
        description="Relay a provider's streamed answers to a browser as Server-Sent Events. "
                    "Real keys come from the environment or .env, not from flags.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--provider", default=None, help="a provider preset (default: auto)")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible endpoint")
    parser.add_argument("--api-key", default=None,
                        help="for local upstreams and tests (a flag is visible in ps)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST")
    parser.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT,
                        metavar="S", help="seconds to wait for the provider's next bytes")
    args = parser.parse_args(argv)
    provider = args.provider or ("local" if args.base_url else None)
    try:
        config = load_config(provider, model=args.model, base_url=args.base_url,
                             api_key=args.api_key)
        relay = start_relay(config, host=args.host, port=args.port,
                            allow_origins=args.allow_origin, allow_hosts=args.allow_host,
                            read_timeout=args.read_timeout, jupyter=False, name="relay-cli",
                            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"relay serving at {relay.url} (provider {config.provider}, model {config.model})",
          flush=True)
    wait_for_signal(relay.server)
    relay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
