"""Who may spend the key: the relay's access token, and when it is required.

Deliberate choices (the long story is docs/classroom.md, "Who can spend your key"):

- **Jupyter's own way.** A random token (:func:`new_token`); Python and curl send
  ``Authorization: Bearer <token>``; a browser gets it in the link's *fragment*
  (``page/#token=...``): browsers never send a fragment to a server, so the token lands in no
  proxy's or Jupyter's access log, and the page (``static/access.js``) keeps it for the tab.
  Never in a query string, a served page, a log line or an error message.
- **Required where someone else can reach the relay** (:func:`why_token_required`): bound
  beyond loopback; on a multi-user host, i.e. a JupyterHub single-user server (its
  ``JUPYTERHUB_USER``), whose loopback other students' kernels share on one machine
  (The Littlest JupyterHub, a classroom server). Binder is *not* one: each launch runs in a
  container of its own, with a loopback nobody else shares, so a Binder session
  (``BINDER_LAUNCH_HOST`` and friends) is treated like a laptop. On a laptop on loopback the
  token stays optional, so lesson 4's first steps stay simple.
- **Checked before anything else runs**, after the Host/Origin guards: a request without a
  valid token gets 401 in the one error shape and never reaches a route, so the provider is
  never called. Compared with :func:`hmac.compare_digest` against every token (the time does
  not depend on where a guess first differs, nor on which token matched).
- **HTTP only**: a WebSocket (or any scope but ``http`` and the server's ``lifespan``) is
  refused, never passed on unchecked (:func:`helpers.relay.guards.refuse_scope`).
- **Open without a token**: the page and its static files (they hold no secret) and
  ``/healthz`` (liveness; it names the provider and model, never the key).
- **Per-client tokens** (a mapping name -> token, one per student, or a tokens file,
  :class:`~helpers.relay.roster.RosterFile`, re-read when it changes) name the client in the
  ASGI scope under :data:`helpers.relay.identity.CLIENT_SCOPE_KEY`, so limits and budgets
  count per student (:mod:`helpers.relay.identity`); one shared token names nobody. A token
  removed from the file is refused from the next look at it on (about a second).
- **Open too: the usage page** (``/usage``, static like the chat page); its data
  (``/usage.json``) needs the teacher's token (:mod:`helpers.relay.usage`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .bodies import error_response
from .guards import refuse_scope
from .identity import CLIENT_SCOPE_KEY
from .roster import RosterFile

__all__ = ["HUB_USER_VARS", "AccessToken", "bearer_token", "is_loopback", "new_token",
           "why_token_required"]

log = logging.getLogger("helpers.relay")

#: Set in the environment of a JupyterHub single-user server and of the kernels it starts.
HUB_USER_VARS = ("JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN")
#: Set by BinderHub in every Binder session (one visitor, one container of its own).
BINDER_VARS = ("BINDER_LAUNCH_HOST", "BINDER_REQUEST", "BINDER_REPO_URL", "BINDER_REF_URL")
_OPEN_PREFIXES = ("/static/",)
_OPEN_PATHS = frozenset({"/", "/healthz", "/usage"})


def new_token() -> str:
    """Return a fresh random token (32 bytes, URL-safe, like Jupyter's own)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.1``, ``::1``, ``localhost`` (what only this machine reaches)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def why_token_required(host: str, env: Mapping[str, str] | None = None) -> str | None:
    """Say why a relay bound to ``host`` must require a token here, or None when optional."""
    env = os.environ if env is None else env
    if not is_loopback(host):
        return f"it listens on {host or 'every interface'}, beyond this machine's loopback"
    user = next((env[v] for v in HUB_USER_VARS if env.get(v)), None)
    if user is not None and not any(env.get(v) for v in BINDER_VARS):
        return "this is a multi-user host (JupyterHub): other users' kernels share its loopback"
    return None


def bearer_token(headers: Headers) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class AccessToken:
    """ASGI middleware: no valid bearer token, no route (401 in the one error shape).

    Args:
        app: the app to protect.
        tokens: one shared token, per-client tokens as ``{name: token}``, or a tokens file
            (:class:`~helpers.relay.roster.RosterFile`), looked at again at most once a second.
    """

    def __init__(self, app: ASGIApp, *,
                 tokens: str | Mapping[str, str] | RosterFile) -> None:
        self.app = app
        self.roster = tokens if isinstance(tokens, RosterFile) else None
        self._known: Mapping[str, str] | None = None
        self.tokens = self._encode(tokens.tokens if self.roster is not None else tokens)

    @staticmethod
    def _encode(tokens: str | Mapping[str, str]) -> list[tuple[str | None, bytes]]:
        pairs = [(None, tokens)] if isinstance(tokens, str) else list(tokens.items())
        encoded = [(name, token.encode()) for name, token in pairs]
        if not encoded or not all(token for _, token in encoded):
            raise ValueError("an access token must not be empty")
        return encoded

    def client(self, presented: str) -> tuple[bool, str | None]:
        """Return (valid, client name) for a presented token, comparing in constant time."""
        given, found, name = presented.encode(), False, None
        for candidate, token in self.tokens:  # every one, whatever matches
            if hmac.compare_digest(given, token):
                found, name = True, candidate
        return found, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            else:
                await refuse_scope(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope["method"] in ("GET", "HEAD") and (
                path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES)):
            await self.app(scope, receive, send)
            return
        if self.roster is not None:  # a tokens file: its last good roster, looked at again
            current = await self.roster.current()
            if current is not self._known:
                self.tokens, self._known = self._encode(current), current
        presented = bearer_token(Headers(scope=scope))
        valid, name = self.client(presented) if presented else (False, None)
        if not valid:
            log.info("refused %s %s: %s relay token", scope["method"], path,
                     "a wrong" if presented else "no")
            kind, said = (("relay_token_invalid", "This is not the relay's access token")
                          if presented else ("relay_token_required",
                                             "This relay requires its access token"))
            await error_response(401, kind, (
                f"{said}: send 'Authorization: Bearer <token>'. The page takes it from the "
                "link the relay printed (the part after #token=); in Python, "
                "relay.headers has it."), {"WWW-Authenticate": 'Bearer realm="relay"'}
            )(scope, receive, send)
            return
        if name is not None:
            scope[CLIENT_SCOPE_KEY] = name
        await self.app(scope, receive, send)
