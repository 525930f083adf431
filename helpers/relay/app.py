"""The relay's app: routes that stream a provider's answer to a browser.

Deliberate choices (the wire contract and the rest are in docs/architecture.md):

- **Fail before streaming with a status, after streaming with an event.** A route waits for
  the provider's first piece of answer before it sends headers, so a bad key, a rate limit or
  a timeout becomes an HTTP error; once text has gone out, a failure is an ``event: error``.
  Both say what :func:`helpers.errors.describe_failure` says, with the key scrubbed.
- **A client that leaves cancels the upstream request.** The response's generator is
  cancelled on ``http.disconnect``; its ``finally`` closes the provider's response (shielded,
  or the close would be cancelled too). The relay yields to the event loop after every write,
  or it would not hear of a hang-up while the provider's bytes are already waiting.
- **An upstream read timeout** (default 60 s) well under the SDK's 600 s: a stalled provider
  becomes an error instead of a hung page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import openai
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from ..errors import describe_failure
from ..providers.table import traits_for
from ..settings import Config, load_config
from ..streams.sse import encode_event
from ..tools.loop import Tool
from .access import AccessToken
from .bodies import BlogRequest, ChatRequest, error_response
from .eventstream import EventStream, Last
from .guards import MAX_UPLOAD_BYTES, Guards
from .identity import TrustedProxies, client_identity
from .limits import Limiter, Limits, RelayLimit
from .resume import DEFAULT_GRACE, Answers
from .store import Store, open_store
from .toolstream import tool_batches
from .uploads import add_file_routes, files_message
from .upstream import Batch, relay_client, upstream_batches

__all__ = ["DEFAULT_READ_TIMEOUT", "DEFAULT_SYSTEM_PROMPT", "STATIC_DIR", "create_app"]

log = logging.getLogger("helpers.relay")

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_SYSTEM_PROMPT = (
    "You assist a mathematics teacher. Answer precisely and briefly, stay on the question, "
    "and write formulas in LaTeX."
)
#: The page runs only its own scripts and talks only to where it came from; inline styles are
#: allowed because KaTeX positions its formulas with style attributes (docs/page.md).
_PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "object-src 'none'; base-uri 'none'; form-action 'none'")
_HTTP_KINDS = {400: "invalid_request_error", 404: "not_found", 405: "method_not_allowed",
               413: "request_too_large"}


def _shorten(text: str, limit: int = 200) -> str:
    """Cut what a client sent to a bounded length before echoing it in an error."""
    return text if len(text) <= limit else text[:limit] + "…"


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
               trust_proxy_prefix: str | None = None, tools: Sequence[Tool] = (),
               limits: Limits | None = None, store: Store | str | None = None,
               trusted_proxies: Iterable[str] = (),
               resume_grace: float = DEFAULT_GRACE,
               token: str | Mapping[str, str] | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """Build the relay's FastAPI app for ``config`` (default: ``load_config()``).

    Args:
        config: provider, model and key; the key stays inside this app.
        allow_origins: other origins whose pages may call the relay (they also get CORS).
        allow_hosts: extra Host names to answer (any port), e.g. a JupyterHub's host.
        read_timeout: seconds to wait for the provider's next bytes before giving up.
        system_prompt: prepended when the request brings no system message (None: none).
        client: an ``openai.AsyncOpenAI`` to use instead of one built from ``config``.
        trust_proxy_prefix: a JupyterHub prefix (Binder); see :mod:`helpers.relay.guards`.
        tools: functions the model may call, run here in a tool loop (e.g. ``MATH_TOOLS``);
            the page is told with events of their own (:mod:`helpers.relay.toolstream`).
        limits: per-client limits and budgets (:mod:`helpers.relay.limits`); default none.
        store: where limits and resumable answers live, shared by every worker: a
            :class:`~helpers.relay.store.Store` or its URL (``sqlite:///file``,
            ``redis://host/0``); default a temporary SQLite file (one process).
        trusted_proxies: proxies whose ``X-Forwarded-For`` names the client
            (:mod:`helpers.relay.identity`).
        resume_grace: seconds a resumable answer waits for its reader to come back.
        token: require ``Authorization: Bearer <token>`` (one shared token, or ``{name:
            token}`` per client); see :mod:`helpers.relay.access`. Default: none needed.
        max_upload_bytes: the largest file ``POST /api/files`` takes (other bodies: 256 kB).
    """
    config = config or load_config()
    secret = config.api_key
    owns_client = client is None
    provider_client = client or relay_client(config, read_timeout=read_timeout)
    ask_for_usage = traits_for(config.provider, config.model).ask_for_usage
    shared = store if isinstance(store, Store) else open_store(store)
    limiter = Limiter(limits or Limits(), shared, TrustedProxies(trusted_proxies),
                      model=config.model)

    def error_data(exc: Exception) -> dict:
        failure = describe_failure(exc, secret=secret, read_timeout=read_timeout)
        log.info("upstream failed while streaming: %s", failure.type)
        return {"type": failure.type, "message": failure.message,
                "status": failure.upstream_status}

    answers = Answers(shared, grace=resume_grace, failure=error_data)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await answers.close()  # resumable answers of this worker: close their upstreams
        if not isinstance(store, Store):
            await shared.close()
        if owns_client:  # close the connection pools in the loop that opened them
            await provider_client.close()

    app = FastAPI(title="Streaming chat relay", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.config = config
    app.state.limiter, app.state.answers = limiter, answers  # for tests and the curious

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower():
            return error_response(415, "unsupported_media_type",
                                  "Content-Type must be application/json, got "
                                  f"{content_type or 'none'!r}")
        return error_response(*_validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        path = _shorten(request.url.path)
        message = {400: "Request body could not be read: send UTF-8 JSON, not nested too deeply",
                   404: f"No route for {request.method} {path}",
                   405: f"Method {request.method} is not allowed on {path}",
                   413: str(exc.detail)}  # the guards say which limit (guards.py)
        return error_response(exc.status_code, _HTTP_KINDS.get(exc.status_code, "http_error"),
                              message.get(exc.status_code, str(exc.detail)), exc.headers)

    async def open_stream(messages: list[dict], request: Request, max_tokens: int | None = None
                          ) -> tuple[Batch, AsyncIterator[Batch]]:
        ticket = await limiter.admit(request.scope, messages, max_tokens)  # or RelayLimit
        options = {"ask_for_usage": ask_for_usage, "max_tokens": ticket.max_tokens,
                   "offline": config.provider == "offline"}  # the usage event's cost says so
        batches = (tool_batches(provider_client, config.model, messages, tools, **options)
                   if tools else upstream_batches(provider_client, config.model, messages,
                                                  **options))
        if ticket.limiter is not None:  # no limits: no wrapper to pass every batch through
            batches = ticket.metered(batches)
        return await anext(batches), batches

    def refuse(exc: Exception) -> JSONResponse:
        if isinstance(exc, RelayLimit):
            log.info("relay limit: %s", exc.kind)
            return exc.response()
        failure = describe_failure(exc, secret=secret, read_timeout=read_timeout)
        log.info("upstream failed before streaming: %s %s", failure.status, failure.type)
        return error_response(failure.status, failure.type, failure.message)

    @app.post("/api/chat/stream")
    async def chat_stream(body: ChatRequest, request: Request) -> Response:
        """Stream the answer as named SSE events."""
        try:
            messages = body.to_messages(system_prompt)
            if body.files:  # the client's own uploads, as one system message (relay/files.py)
                attached = await files_message(provider_client, file_owners, client_identity(
                    request.scope, TrustedProxies(trusted_proxies)), body.files)
                if isinstance(attached, Response):
                    return attached
                messages.insert(0, attached)
            first, events = await open_stream(messages, request, body.max_tokens)
        except Exception as exc:
            return refuse(exc)
        if body.resumable:
            return await answers.respond(first, events)

        def encode(batch: Batch) -> bytes:
            data = b"".join(encode_event(name, data) for name, data in batch)
            return Last(data) if batch and batch[-1][0] == "done" else data  # ends with it

        async def sse() -> AsyncIterator[bytes]:
            try:
                yield encode(first)
                async for batch in events:  # one write per upstream read
                    yield encode(batch)
                    await asyncio.sleep(0)  # notice a hang-up: module docstring
            except Exception as exc:
                yield Last(encode_event("error", error_data(exc)))
            finally:
                with anyio.CancelScope(shield=True):
                    await events.aclose()

        return EventStream(sse())

    @app.post("/chatbot/llm/chatstream")
    async def blog_stream(body: BlogRequest, request: Request) -> Response:
        """Stream the bare answer text, the way the original blog post did."""
        messages = ChatRequest(question=body.question).to_messages(system_prompt)
        try:
            first, events = await open_stream(messages, request)
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
                    await asyncio.sleep(0)
                    batch = await anext(events)
            except StopAsyncIteration:
                pass
            except Exception as exc:
                log.info("upstream failed while streaming raw text: %s",
                         describe_failure(exc, secret=secret).type)
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

    answers.add_routes(app)
    file_owners = add_file_routes(app, provider_client, lambda scope: client_identity(
        scope, TrustedProxies(trusted_proxies)), secret=secret)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if token:  # inside CORS (a preflight carries no token) and the Host/Origin guards
        app.add_middleware(AccessToken, tokens=token)
    cors_origins = [o.rstrip("/") for o in allow_origins]
    if cors_origins:  # none allowed: the guards refuse other origins, CORS has nothing to add
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Accept", "Authorization"])
    app.add_middleware(Guards, allow_hosts=list(allow_hosts), allow_origins=allow_origins,
                       forwarded_prefix=trust_proxy_prefix, max_upload_bytes=max_upload_bytes)
    return app
