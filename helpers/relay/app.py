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
- **One response path:** every SSE answer is an :class:`~.eventstream.EventStream`;
  ``"resumable": true`` only changes where its frames come from (the store, :mod:`.resume`).
- **An upstream read timeout** (default 60 s) well under the SDK's 600 s: a stalled provider
  becomes an error instead of a hung page.
- **The relay's state is one object** (:class:`ChatRoutes`: the provider client, limits,
  answers, file owners) whose methods are the routes; :func:`create_app` wires it to FastAPI.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import openai
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from ..errors import describe_failure
from ..providers.table import traits_for
from ..settings import Config, load_config
from ..tools.loop import Tool
from .access import AccessToken
from .bodies import BlogRequest, ChatRequest, SystemPromptRefused, error_response
from .eventstream import EventStream, answer_frames
from .guards import MAX_UPLOAD_BYTES, Guards
from .handlers import add_error_handlers
from .identity import TrustedProxies, client_identity
from .limits import Limiter, Limits, RelayLimit
from .resume import DEFAULT_GRACE, Answers
from .roster import TEACHER, RosterFile
from .store import Store, open_store
from .toolstream import tool_batches
from .uploads import FileOwners, add_file_routes, files_message
from .upstream import Batch, relay_client, upstream_batches
from .usage import RefusalRecorder, Usage

__all__ = ["DEFAULT_READ_TIMEOUT", "DEFAULT_SYSTEM_PROMPT", "STATIC_DIR", "ChatRoutes",
           "create_app", "frame_ancestors"]

log = logging.getLogger("helpers.relay")

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_SYSTEM_PROMPT = (
    "You assist a mathematics teacher. Answer precisely and briefly, stay on the question, "
    "and write formulas in LaTeX."
)
#: The page runs only its own scripts and talks only to where it came from; inline styles are
#: allowed because KaTeX positions its formulas with style attributes (docs/page.md). Only
#: 'self' and the allowed origins may frame it (:func:`frame_ancestors`).
_PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "object-src 'none'; base-uri 'none'; form-action 'none'")
_RAW_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame_ancestors(origins: Iterable[str] = ()) -> str:
    """The CSP directive naming who may frame the page: 'self' and ``origins``.

    Issue 23: without it, a page on another localhost port framed the relay invisibly and one
    click sent a question (clickjacking). No ``X-Frame-Options``: ``frame-ancestors`` replaces
    it in every current browser, and its only useful value (SAMEORIGIN) would hide the page
    from a notebook's ``IFrame`` served by Jupyter on another port.
    """
    allowed = ["'self'"]
    for origin in origins:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc \
                or parts.path.strip("/") or parts.query or parts.fragment \
                or any(c in parts.netloc for c in " ;,'\"@"):
            raise ValueError(f"a frame origin is scheme://host[:port], not {origin!r}")
        allowed.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return "frame-ancestors " + " ".join(dict.fromkeys(allowed))


class ChatRoutes:
    """One relay's state (provider client, limits, resumable answers) and its routes.

    The arguments are :func:`create_app`'s; ``store`` is already a :class:`Store` here.
    """

    def __init__(self, config: Config, *, client: openai.AsyncOpenAI | None,
                 read_timeout: float, system_prompt: str | None, tools: Sequence[Tool],
                 limits: Limits | None, store: Store, trusted_proxies: TrustedProxies,
                 resume_grace: float, allow_system_prompt: bool = False) -> None:
        self.config, self.read_timeout, self.system_prompt = config, read_timeout, system_prompt
        self.allow_system_prompt = allow_system_prompt
        self.tools, self.proxies = tools, trusted_proxies
        if tools:  # the tool loop checks arguments with jsonschema, imported on its first call:
            importlib.import_module("jsonschema")  # ~0.9 s on the event loop; here, at start
        self.owns_client = client is None
        self.provider = client or relay_client(config, read_timeout=read_timeout)
        self.options = {"ask_for_usage": traits_for(config.provider, config.model).ask_for_usage,
                        "offline": config.provider == "offline"}  # the usage event's cost says
        self.limiter = Limiter(limits or Limits(), store, trusted_proxies, model=config.model)
        self.answers = Answers(store, grace=resume_grace, failure=self.error_data,
                               identify=self.identify, limiter=self.limiter)
        self.file_owners = FileOwners()  # replaced by the file routes' own in add_routes
        self.usage: Usage | None = None  # per-student tokens: create_app sets it
        self.page_policy = f"{_PAGE_POLICY}; {frame_ancestors()}"  # create_app sets others

    def identify(self, scope: dict) -> str:
        """The client a request comes from (for its files)."""
        return client_identity(scope, self.proxies)

    def error_data(self, exc: Exception) -> dict:
        """The ``error`` event's data for a failure after the stream began."""
        failure = describe_failure(exc, secret=self.config.api_key,
                                   read_timeout=self.read_timeout)
        if failure.type == "relay_error":  # the relay's own failure, not the provider's
            log.warning("relay failed while streaming: %s", failure.message)
        else:
            log.info("upstream failed while streaming: %s", failure.type)
        return {"type": failure.type, "message": failure.message,
                "status": failure.upstream_status}

    def refuse(self, exc: Exception) -> JSONResponse:
        """The HTTP error for a failure before the stream began."""
        if isinstance(exc, RelayLimit | SystemPromptRefused):
            log.info("refused by the relay: %s", exc.kind)
            return exc.response()
        failure = describe_failure(exc, secret=self.config.api_key,
                                   read_timeout=self.read_timeout)
        log.info("upstream failed before streaming: %s %s", failure.status, failure.type)
        return error_response(failure.status, failure.type, failure.message)

    async def open_stream(self, messages: list[dict], request: Request,
                          max_tokens: int | None = None) -> tuple[Batch, AsyncIterator[Batch]]:
        """Admit the request, ask the provider; its first batch and the rest (or raise)."""
        specs = [t.spec() for t in self.tools]  # billed as prompt, every round (limits.py)
        ticket = await self.limiter.admit(request.scope, messages, max_tokens,
                                          tools=specs)  # or RelayLimit
        model = self.config.model
        batches = (tool_batches(self.provider, model, messages, self.tools, ticket=ticket,
                                max_tokens=ticket.max_tokens, **self.options) if self.tools
                   else upstream_batches(self.provider, model, messages,
                                         max_tokens=ticket.max_tokens, **self.options))
        if ticket.limiter is not None:  # no limits: no wrapper to pass every batch through
            batches = ticket.metered(batches)
        if self.usage is not None:  # per-student tokens: the teacher's usage view
            batches = self.usage.metered(self.identify(request.scope), batches)
        return await anext(batches), batches

    async def chat_stream(self, body: ChatRequest, request: Request) -> Response:
        """Stream the answer as named SSE events (resumable when the body asks)."""
        try:
            messages = body.to_messages(self.system_prompt,
                                        allow_system=self.allow_system_prompt)
            if body.files:  # the client's own uploads, as one system message (uploads.py)
                attached = await files_message(self.provider, self.file_owners,
                                               self.identify(request.scope), body.files)
                if isinstance(attached, Response):
                    return attached
                messages.insert(0, attached)
            first, events = await self.open_stream(messages, request, body.max_tokens)
        except Exception as exc:
            return self.refuse(exc)
        if body.resumable:
            return await self.answers.respond(first, events, self.identify(request.scope))
        return EventStream(answer_frames(first, events, self.error_data))

    async def blog_stream(self, body: BlogRequest, request: Request) -> Response:
        """Stream the bare answer text, the way the original blog post did."""
        messages = ChatRequest(question=body.question).to_messages(self.system_prompt)
        try:
            first, events = await self.open_stream(messages, request)
        except Exception as exc:
            return self.refuse(exc)
        return StreamingResponse(self._text(first, events), headers=_RAW_HEADERS,
                                 media_type="text/plain; charset=utf-8")

    async def _text(self, batch: Batch, events: AsyncIterator[Batch]) -> AsyncIterator[bytes]:
        # No framing: a failure midway can only end the text early, and the reader cannot
        # tell it from a short answer. That is the lesson's point.
        try:
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
                     describe_failure(exc, secret=self.config.api_key).type)
        finally:
            with anyio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]

    async def healthz(self) -> dict:
        """Say the relay is up, and which provider and model it uses (never the key)."""
        return {"ok": True, "provider": self.config.provider, "model": self.config.model}

    async def page(self) -> Response:
        """Serve the chat page."""
        return self.static_page("index.html")

    def static_page(self, name: str) -> FileResponse:
        """A page of helpers/static, with the page's Content-Security-Policy."""
        return FileResponse(STATIC_DIR / name, headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": self.page_policy})

    def add_routes(self, app: FastAPI) -> None:
        """Add every route to ``app``: the streams, resume and stop, files, page, health."""
        self.file_owners = add_file_routes(app, self.provider, self.identify,
                                           secret=self.config.api_key)
        app.add_api_route("/api/chat/stream", self.chat_stream, methods=["POST"])
        app.add_api_route("/chatbot/llm/chatstream", self.blog_stream, methods=["POST"])
        self.answers.add_routes(app)
        app.add_api_route("/healthz", self.healthz, methods=["GET"])
        app.add_api_route("/", self.page, methods=["GET"])
        if self.usage is not None:
            self.usage.add_routes(app, self.static_page)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def close(self) -> None:
        """Close what this relay opened: its producers, and its own client's pools."""
        await self.answers.close()  # resumable answers of this worker: close their upstreams
        if self.owns_client:  # close the connection pools in the loop that opened them
            await self.provider.close()


def _add_middleware(app: FastAPI, *, token: str | Mapping[str, str] | RosterFile | None,
                    allow_origins: Iterable[str], allow_hosts: Iterable[str],
                    trust_proxy_prefix: str | None, max_upload_bytes: int,
                    usage: Usage | None = None) -> None:
    """The usage recorder inside the access token inside CORS inside the Host/Origin guards
    (the last added is outermost)."""
    if usage is not None:  # inside the token, which names the client
        app.add_middleware(RefusalRecorder, usage=usage)
    if token is not None:  # inside CORS (a preflight has no token) and the Host/Origin guards
        app.add_middleware(AccessToken, tokens=token)
    cors_origins = [o.rstrip("/") for o in allow_origins]
    if cors_origins:  # none allowed: the guards refuse other origins, CORS has nothing to add
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Accept", "Authorization"])
    app.add_middleware(Guards, allow_hosts=list(allow_hosts), allow_origins=allow_origins,
                       forwarded_prefix=trust_proxy_prefix, max_upload_bytes=max_upload_bytes)


def create_app(config: Config | None = None, *, allow_origins: Iterable[str] = (),
               allow_hosts: Iterable[str] = (), read_timeout: float = DEFAULT_READ_TIMEOUT,
               system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
               client: openai.AsyncOpenAI | None = None,
               trust_proxy_prefix: str | None = None, tools: Sequence[Tool] = (),
               limits: Limits | None = None, store: Store | str | None = None,
               trusted_proxies: Iterable[str] = (),
               resume_grace: float = DEFAULT_GRACE,
               token: str | Mapping[str, str] | os.PathLike[str] | RosterFile | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES,
               allow_frame_origins: Iterable[str] = (),
               allow_system_prompt: bool = False, teacher: str = TEACHER) -> FastAPI:
    """Build the relay's FastAPI app for ``config`` (default: ``load_config()``).

    Args:
        config: provider, model and key; the key stays inside this app.
        allow_origins: other origins whose pages may call the relay (they also get CORS).
        allow_hosts: extra Host names to answer (any port), e.g. a JupyterHub's host.
        read_timeout: seconds to wait for the provider's next bytes before giving up.
        system_prompt: the teacher's system prompt, first in every request (None: none).
        allow_system_prompt: let a ``messages`` body's own system message replace it
            (default: such a body is a 400, :class:`~helpers.relay.bodies.SystemPromptRefused`).
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
        token: require ``Authorization: Bearer <token>`` (one shared token, ``{name:
            token}`` per client, or a tokens file's path, re-read when it changes:
            :mod:`helpers.relay.roster`); see :mod:`helpers.relay.access`. Default: none
            needed. Per-client tokens turn on the usage records and the teacher's view
            (:mod:`helpers.relay.usage`).
        teacher: the name whose per-client token alone may read the usage view (a tokens
            file's line of that name).
        max_upload_bytes: the largest file ``POST /api/files`` takes (other bodies: 256 kB).
        allow_frame_origins: origins whose pages may show the chat page in a frame, besides
            its own (``http://127.0.0.1:8888``); others cannot (clickjacking).
    """
    config = config or load_config()
    allow_origins = list(allow_origins)  # read twice: the guards and CORS
    shared = store if isinstance(store, Store) else open_store(store)
    routes = ChatRoutes(config, client=client, read_timeout=read_timeout,
                        system_prompt=system_prompt, tools=tools, limits=limits, store=shared,
                        trusted_proxies=TrustedProxies(trusted_proxies),
                        resume_grace=resume_grace, allow_system_prompt=allow_system_prompt)
    routes.page_policy = f"{_PAGE_POLICY}; {frame_ancestors(allow_frame_origins)}"
    if isinstance(token, os.PathLike):
        token = RosterFile(token, teacher)  # or RosterError / OSError: the relay cannot start
    if token is not None and not isinstance(token, str):  # named tokens: who used what
        roster = token if isinstance(token, RosterFile) else None
        fixed = dict(token) if roster is None else {}
        routes.usage = Usage(shared, identify=routes.identify, model=config.model,
                             names=lambda: (roster.tokens if roster else fixed).keys(),
                             teacher=roster.teacher if roster else teacher,
                             offline=config.provider == "offline")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await routes.close()
        if shared is not store:  # a store this app opened from a URL, or the default one
            await shared.close()

    app = FastAPI(title="Streaming chat relay", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.config = config
    app.state.limiter, app.state.answers = routes.limiter, routes.answers  # tests, the curious
    add_error_handlers(app)
    routes.add_routes(app)
    _add_middleware(app, token=token, allow_origins=allow_origins, allow_hosts=allow_hosts,
                    trust_proxy_prefix=trust_proxy_prefix, max_upload_bytes=max_upload_bytes,
                    usage=routes.usage)
    return app
