"""Running the relay: in a notebook's background thread (:func:`start_relay`) or from a shell.

Deliberate choices: one relay per name (re-running a cell replaces the previous one); under
JupyterHub the page's URL goes through the hub's proxy (``Relay.page_url``); the CLI takes no
real key as a flag (keys come from the environment or ``.env``) and uses uvloop when installed,
while a notebook keeps asyncio (it shares the kernel's process). A relay others can reach
requires its access token (:mod:`.access`): ``Relay.page_url`` carries it in the fragment,
``Relay.headers`` for Python; neither ``repr`` nor a log line ever shows it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ..bounded_http import LOOPBACK_NETWORKS, ConnectionLimits
from ..servers import BackgroundServer, wait_for_signal
from ..settings import Config, load_config
from .access import new_token, why_token_required
from .app import DEFAULT_READ_TIMEOUT, create_app
from .collector import serving_gc
from .guards import jupyter_allowances, jupyter_frame_origins
from .roster import TEACHER, RosterFile
from .toolstream import MATH_TOOLS
from .workers import add_scale_options, connection_limits, scale_options, serve_workers

__all__ = ["DEFAULT_PORT", "Relay", "main", "start_relay"]

DEFAULT_PORT = 4020
#: The CLI's access token, when the teacher wants a fixed one (a flag would show in ``ps``).
TOKEN_VAR = "RELAY_TOKEN"


class Relay:
    """A running relay: its URLs, its app, and how to stop it."""

    def __init__(self, app: FastAPI, server: BackgroundServer, config: Config,
                 proxy_prefix: str | None = None, token: str | None = None,
                 roster: Mapping[str, str] | RosterFile | None = None) -> None:
        self.app = app
        self.server = server
        self.config = config
        self.proxy_prefix = proxy_prefix
        self.token = token
        #: per-student tokens (a mapping or a tokens file): then ``token`` is None
        self.roster = roster

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
        """Where a browser opens the page: through the hub's proxy under JupyterHub.

        With a token, it ends with ``#token=...``: the page keeps it for the tab, and a browser
        never sends a fragment to a server (so it lands in no access log). Do not print it.
        """
        url = (f"{self.proxy_prefix.rstrip('/')}/proxy/{self.port}/" if self.proxy_prefix
               else self.url)
        return f"{url}#token={self.token}" if self.token else url

    @property
    def headers(self) -> dict[str, str]:
        """Headers a Python client sends: ``Authorization: Bearer <token>`` when required."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

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
        locked = (" token required" if self.token else  # never the token itself
                  " per-student tokens" if self.roster is not None else "")
        return (f"<Relay {state} provider={self.config.provider} model={self.config.model}"
                f"{locked}>")


def start_relay(config: Config | None = None, *, host: str = "127.0.0.1", port: int = 0,
                allow_origins: Iterable[str] = (), allow_hosts: Iterable[str] = (),
                read_timeout: float = DEFAULT_READ_TIMEOUT, jupyter: bool | None = None,
                name: str = "relay", loop: str = "asyncio", require_token: bool | None = None,
                token: str | Mapping[str, str] | os.PathLike[str] | RosterFile | None = None,
                allow_frame_origins: Iterable[str] = (),
                connections: ConnectionLimits | None = None, **app_options: Any) -> Relay:
    """Start the relay in a background thread (re-running replaces the previous one).

    Args:
        config: provider settings (default: ``load_config()``, offline when there is no key).
        host, port: where to listen; port 0 picks a free port.
        allow_origins, allow_hosts, read_timeout: see :func:`create_app`.
        jupyter: apply the JupyterHub/Binder allowances (see :func:`jupyter_allowances`) and
            let this kernel's Jupyter server frame the page (:func:`jupyter_frame_origins`);
            ``None`` detects them from the environment.
        name: background-server name; one relay per name.
        loop: uvicorn's event loop; the CLI uses "uvloop" when installed (a relay in its own
            process), a notebook keeps "asyncio" (it shares the kernel's process).
        require_token: True: require an access token; None (default): only where others
            can reach the relay (:func:`~helpers.relay.access.why_token_required`); False
            there is an error.
        token: the token to require (default: a new random one when required), or
            per-student tokens: ``{name: token}``, or a tokens file's ``Path`` (re-read when it
            changes, :mod:`~helpers.relay.roster`; ``teacher=NAME`` names the teacher's
            line, default ``teacher``). Then ``Relay.token`` is None and ``Relay.roster``
            holds them.
        allow_frame_origins: other origins that may show the page in a frame
            (:func:`~helpers.relay.app.create_app`).
        connections: head and body deadlines, keep-alive, connections per client
            (:mod:`helpers.bounded_http`; default its classroom limits, the trusted proxies
            unbounded like loopback).
    """
    config = config or load_config()
    token = _access_token(host, require_token, token)
    if isinstance(token, os.PathLike):  # read here: a bad file fails before anything starts
        token = RosterFile(token, app_options.get("teacher", TEACHER))
    hosts, prefix = jupyter_allowances() if jupyter is not False else ([], None)
    frames = [*allow_frame_origins, *(jupyter_frame_origins() if jupyter is not False else ())]
    app = create_app(config, allow_origins=allow_origins, allow_hosts=[*allow_hosts, *hosts],
                     read_timeout=read_timeout, trust_proxy_prefix=prefix, token=token,
                     allow_frame_origins=frames, **app_options)
    if connections is None:
        connections = ConnectionLimits(unbounded=(
            *LOOPBACK_NETWORKS, *app_options.get("trusted_proxies", ())))
    server = BackgroundServer(app, host=host, port=port, name=name, lifespan="on", loop=loop,
                              limits=connections)
    server.start()
    hub_prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") if jupyter is not False else None
    shared = token if isinstance(token, str) else None
    return Relay(app, server, config, proxy_prefix=hub_prefix, token=shared,
                 roster=None if token is None or shared else token)  # type: ignore[arg-type]


def _access_token(host: str, require: bool | None, token: Any) -> Any:
    """Decide the relay's token: required where others reach it, else when asked; per-student
    tokens (a mapping, a tokens file) pass as they are."""
    reason = why_token_required(host)
    if require is False and (reason or token is not None):
        raise ValueError(f"this relay must require a token: {reason or 'a token was given'}")
    if token is not None and not isinstance(token, str):
        if isinstance(token, Mapping) and not token:
            raise ValueError("per-student tokens must name at least one student")
        return token
    if token is not None and not token.strip():
        raise ValueError("an access token must not be empty")
    return token or (new_token() if require or reason else None)


def _cli_tokens(args: argparse.Namespace) -> str | Path | None:
    """The CLI's access: a tokens file (read now: a bad line stops the start), or RELAY_TOKEN."""
    if args.tokens is None:
        return os.environ.get(TOKEN_VAR) or None
    if os.environ.get(TOKEN_VAR):
        raise ValueError(f"--tokens and {TOKEN_VAR} are both set: per-student tokens replace "
                         f"the shared one (unset {TOKEN_VAR})")
    RosterFile(args.tokens, args.teacher)
    return Path(args.tokens)


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
    parser.add_argument("--allow-frame-origin", action="append", default=[], metavar="ORIGIN",
                        help="an origin whose pages may show the chat page in a frame "
                             "(default: only the relay's own)")
    parser.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT,
                        metavar="S", help="seconds to wait for the provider's next bytes")
    parser.add_argument("--math-tools", action="store_true",
                        help="give the assistant a calculator it calls (a server-side tool loop)")
    parser.add_argument("--allow-system-prompt", action="store_true",
                        help="let a 'messages' body's own system message replace the relay's "
                             "system prompt (default: such a body is a 400)")
    parser.add_argument("--require-token", action="store_true",
                        help="require an access token even on loopback (always required "
                             "beyond loopback and on a JupyterHub); RELAY_TOKEN in the "
                             "environment sets it, else a random one is printed")
    parser.add_argument("--tokens", default=None, metavar="FILE",
                        help="per-student tokens, one 'name token' per line (python -m "
                             "helpers.relay.tokens make writes one); re-read when it changes")
    parser.add_argument("--teacher", default=TEACHER, metavar="NAME",
                        help="the line of --tokens whose token may read the usage view "
                             f"(default: {TEACHER})")
    add_scale_options(parser)
    args = parser.parse_args(argv)
    provider = args.provider or ("local" if args.base_url else None)
    try:
        config = load_config(provider, model=args.model, base_url=args.base_url,
                             api_key=args.api_key)
        scale = scale_options(args)
        connections = connection_limits(args)
        if args.workers > 1:
            token = _access_token(args.host, args.require_token or None, _cli_tokens(args))
            return serve_workers(config, workers=args.workers, host=args.host, port=args.port,
                                 math_tools=args.math_tools, token=token, teacher=args.teacher,
                                 loop="uvloop" if importlib.util.find_spec("uvloop")
                                 else "asyncio", allow_origins=args.allow_origin,
                                 allow_hosts=args.allow_host, read_timeout=args.read_timeout,
                                 allow_frame_origins=args.allow_frame_origin,
                                 allow_system_prompt=args.allow_system_prompt,
                                 connections=connections, **scale)
        relay = start_relay(config, host=args.host, port=args.port,
                            allow_origins=args.allow_origin, allow_hosts=args.allow_host,
                            read_timeout=args.read_timeout, jupyter=False, name="relay-cli",
                            require_token=args.require_token or None,
                            token=_cli_tokens(args), teacher=args.teacher,
                            tools=MATH_TOOLS if args.math_tools else (),
                            allow_frame_origins=args.allow_frame_origin,
                            allow_system_prompt=args.allow_system_prompt,
                            connections=connections, **scale,
                            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    serving_gc()  # its own process: the collector tuned for serving (workers.py)
    print(f"relay serving at {relay.url} (provider {config.provider}, model {config.model})",
          flush=True)
    if relay.token:  # on the terminal only, like Jupyter's own link; never to a log
        print(f"access token required: open {relay.page_url}\n"
              "  (Python, curl: send 'Authorization: Bearer' and the part after #token=)",
              flush=True)
    elif isinstance(relay.roster, RosterFile):  # no token printed: each has their own link
        print(relay.roster.describe(relay.url), flush=True)
    wait_for_signal(relay.server)
    relay.stop()
    return 0
