"""The relay's guards: who may call it (Host, Origin), how much they may send, and JupyterHub.

Deliberate choices:

- **Guards, not "bind and hope".** Bound to 127.0.0.1; the Host header must be a loopback
  name or an allowed host (a DNS-rebinding page reaches 127.0.0.1 under *its own* name); an
  ``Origin`` must be the same origin or an allowed one (other sites' pages get 403, allowed
  ones get CORS). Requests without ``Origin`` (curl, Python) pass.
- **Bodies are bounded** by ``Content-Length`` and, for a chunked body, by counting: 256 kB
  for JSON, and a limit of its own for a file upload (``POST /api/files``, 8 MB by default,
  ``create_app(max_upload_bytes=...)``): a worksheet PDF is often over 256 kB, and the relay
  reads an upload into memory before handing it to the provider (whose own limit is 100 MB).
- **HTTP only.** A scope of any other type than ``http`` (and the server's ``lifespan``) is
  refused here, before any guard would be skipped: a WebSocket is closed before it is
  accepted (code 1008; the server answers 403), anything else raises. The relay has no
  WebSocket route, and its servers run uvicorn with ``ws="none"``; this holds whatever
  server runs the app. The access token refuses them the same way (:mod:`.access`).
- **Under JupyterHub or Binder** the hub's public host is allowed when the hub names it;
  when it does not (Binder), requests that jupyter-server-proxy forwarded to *this* port are
  accepted from any host: the relay then listens on a remote container's loopback, which a
  rebinding page cannot reach except through the hub's authenticated proxy.
- **Framing follows the notebook.** The page may be framed by its own origin only (a hub's
  proxy serves it same-origin) plus, when the relay starts in a kernel of a plain Jupyter
  server (another port: another origin), that one server (:func:`jupyter_frame_origins`:
  the server whose ``jpserver-<pid>.json`` names the kernel's parent process).

Details in docs/architecture.md (the relay's guards).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bodies import error_response

__all__ = ["LOOPBACK", "MAX_BODY_BYTES", "MAX_UPLOAD_BYTES", "Guards", "jupyter_allowances",
           "jupyter_frame_origins", "refuse_scope"]

MAX_BODY_BYTES = 256_000
MAX_UPLOAD_BYTES = 8_000_000  # POST /api/files
UPLOAD_PATH = "/api/files"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_HUB_HOST_VARS = ("JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_HOST")


def _hostname(netloc: str) -> str:
    """``"[::1]:4020"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


async def refuse_scope(scope: Scope, receive: Receive, send: Send) -> None:
    """Refuse a connection that is not HTTP: close a WebSocket unaccepted, raise for others."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008,
                    "reason": "this relay speaks HTTP only"})
        return
    raise RuntimeError(f"the relay does not serve ASGI {scope['type']!r} connections")


class Guards:
    """ASGI middleware: DNS-rebinding (Host) and cross-site (Origin) guards, body size."""

    def __init__(self, app: ASGIApp, *, allow_hosts: Iterable[str],
                 allow_origins: Iterable[str], forwarded_prefix: str | None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.hosts = {_hostname(h) for h in allow_hosts} | LOOPBACK
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
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await refuse_scope(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self._problem(scope, headers)
        if problem is not None:
            await error_response(403, "forbidden", problem)(scope, receive, send)
            return
        limit, refusal = self._limit(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, "request_too_large", refusal)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            # A chunked body has no Content-Length: count it as it arrives.
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, detail=refusal)
            return message

        await self.app(scope, counting_receive, send)

    def _limit(self, scope: Scope) -> tuple[int, str]:
        """Return the body limit of this request, and what a 413 says."""
        if scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == UPLOAD_PATH:
            limit = self.max_upload_bytes
            return limit, (f"File too large for this relay: at most {limit:,} bytes per upload "
                           f"({limit / 1e6:g} MB; create_app(max_upload_bytes=...) sets it)")
        return MAX_BODY_BYTES, f"Request body too large: at most {MAX_BODY_BYTES} bytes"


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
    for var in _HUB_HOST_VARS:
        value = env.get(var, "").strip()
        if value:
            netloc = urlsplit(value if "//" in value else f"//{value}").netloc
            if netloc:
                hosts.append(netloc)
    return hosts, (None if hosts else prefix)


def jupyter_frame_origins(env: Mapping[str, str] | None = None,
                          runtime_dir: str | Path | None = None) -> list[str]:
    """Return the origin of the Jupyter server this kernel runs under, to let it frame the page.

    The server that launched this kernel is the one whose runtime file
    ``jpserver-<pid>.json`` has the kernel's ``JPY_PARENT_PID``; its ``url`` gives the origin
    (a loopback server under both localhost and 127.0.0.1, as a browser may open either).
    Outside a kernel, under JupyterHub (the page is then same-origin) or when no such file
    exists, returns ``[]``.
    """
    env = os.environ if env is None else env
    pid = env.get("JPY_PARENT_PID", "").strip()
    if not pid.isdigit() or env.get("JUPYTERHUB_SERVICE_PREFIX"):
        return []
    if runtime_dir is None:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            return []
        runtime_dir = jupyter_runtime_dir()
    try:
        info = json.loads((Path(runtime_dir) / f"jpserver-{pid}.json").read_text())
    except (OSError, ValueError):
        return []
    url = urlsplit(str(info.get("url", "")))
    if str(info.get("pid")) != pid or url.scheme not in ("http", "https") or not url.hostname:
        return []
    port = f":{url.port}" if url.port else ""
    # CSP has no syntax for an IPv6 literal (Chromium ignores "http://[::1]:8888"): two names
    names = ["localhost", "127.0.0.1"] if _hostname(url.netloc) in LOOPBACK \
        else [url.netloc.lower().rsplit(":", 1)[0] if url.port else url.netloc.lower()]
    return [f"{url.scheme}://{name}{port}" for name in names]
