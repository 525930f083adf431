"""``python -m helpers.relay --workers N``: the same relay in N processes (uvicorn's workers).

Deliberate choices:

- **uvicorn's own supervisor** (``uvicorn.supervisors.Multiprocess``), not gunicorn: one
  dependency fewer, and it restarts a worker that dies and stops them all on SIGTERM or Ctrl-C.
- **The parent binds the socket** (:mod:`helpers.servers`' rules: a taken port
  is a clear error at once) and hands it to every worker; the kernel spreads connections.
- **Workers get their options, secrets included, through a pipe, never the environment.**
  The parent resolves the provider once (the key from the environment, ``.env`` or
  ``--api-key``; the offline provider started once, in itself, when there is no key), so
  every worker talks to the same upstream with the same key. uvicorn starts each worker with
  multiprocessing's *spawn*, which pickles the server's config (here the app factory
  :func:`worker_app` with the relay's options: :func:`functools.partial`) and sends it down a
  pipe to the new process: the key and the access token are in no worker's
  ``/proc/<pid>/environ`` and in no child it might start. A worker that dies is restarted
  the same way, from the same config. (Before, the options travelled in an environment
  variable, readable there and inherited by children.) What the parent's own environment
  holds, a key you exported or ``RELAY_TOKEN``, its workers inherit as any child does.
- **What workers share lives in the store** (limits, resumable answers): a worker-count > 1
  without ``--store`` gets one SQLite file made by the parent and removed when it exits.
- **Connections are bounded below the app** (:mod:`helpers.bounded_http`): head and body
  deadlines, keep-alive, open connections per client, per worker process (``--head-timeout``,
  ``--body-timeout``, ``--keep-alive``, ``--max-connections-per-client``); the proxies the
  relay trusts are not bounded (one proxy carries many clients), nor is loopback.
- **Clean shutdown:** SIGTERM reaches the parent, which passes it to each worker; a worker
  stops accepting, gives open streams ``timeout_graceful_shutdown`` seconds, then cancels them
  (each closes its upstream request) and runs its lifespan shutdown (resumable answers closed,
  store closed).
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from ..bounded_http import DEFAULT_LIMITS, LOOPBACK_NETWORKS, ConnectionLimits
from ..servers import _bind as bind_socket
from ..settings import Config
from .collector import serving_gc
from .limits import Limits
from .resume import DEFAULT_GRACE
from .roster import TEACHER, RosterFile

__all__ = ["add_scale_options", "connection_limits", "scale_options", "serve_workers",
           "worker_app"]

#: Seconds open streams get when the relay stops before they are cut.
GRACEFUL_SECONDS = 3


def add_scale_options(parser: argparse.ArgumentParser) -> None:
    """Add the CLI's options for workers, limits, the shared store and resumable answers."""
    group = parser.add_argument_group("several processes, limits and budgets (docs/deploy.md)")
    group.add_argument("--workers", type=int, default=1, metavar="N",
                       help="serve with N processes (uvicorn's workers)")
    group.add_argument("--store", default=None, metavar="URL",
                       help="what workers share: sqlite:///path/file.sqlite3 (default: a "
                            "temporary file) or redis://host:port/0 (several machines)")
    group.add_argument("--max-streams", type=int, default=None, metavar="N",
                       help="answers one client may stream at once")
    group.add_argument("--requests-per-minute", type=int, default=None, metavar="N",
                       help="requests one client may make in any 60 s")
    group.add_argument("--max-tokens", type=int, default=None, metavar="N",
                       help="the largest max_tokens a request may ask for (and the default)")
    group.add_argument("--daily-tokens", type=int, default=None, metavar="N",
                       help="tokens (prompt + answer) one client may use per UTC day")
    group.add_argument("--daily-cost", type=float, default=None, metavar="AMOUNT",
                       help="money one client may spend per UTC day (the model's price "
                            "currency, from helpers/providers/table.py)")
    group.add_argument("--trust-proxy", action="append", default=[], metavar="ADDR",
                       help="a proxy (address or network) whose X-Forwarded-For names clients")
    group.add_argument("--resume-grace", type=float, default=DEFAULT_GRACE, metavar="S",
                       help="seconds a dropped page has to reconnect and resume its answer")
    group.add_argument("--head-timeout", type=float, default=DEFAULT_LIMITS.head_timeout,
                       metavar="S", help="seconds a client has to send a request's head")
    group.add_argument("--body-timeout", type=float, default=DEFAULT_LIMITS.body_timeout,
                       metavar="S", help="seconds a client has to send a body after its head")
    group.add_argument("--keep-alive", type=float, default=DEFAULT_LIMITS.keep_alive_timeout,
                       metavar="S", help="seconds an idle connection stays open between requests")
    group.add_argument("--max-connections-per-client", type=int,
                       default=DEFAULT_LIMITS.max_per_client, metavar="N",
                       help="open connections one address (an IPv6 /64) may hold, per worker; "
                            "loopback and trusted proxies are not bounded; 0: no bound")


def scale_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return :func:`create_app`'s keyword arguments for :func:`add_scale_options`' flags."""
    if args.workers < 1:
        raise ValueError("--workers must be 1 or more")
    limits = Limits(concurrent_streams=args.max_streams,
                    requests_per_minute=args.requests_per_minute,
                    max_tokens=args.max_tokens, daily_tokens=args.daily_tokens,
                    daily_cost=args.daily_cost)
    return {"limits": limits, "store": args.store, "trusted_proxies": args.trust_proxy,
            "resume_grace": args.resume_grace}


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """Return the :class:`~helpers.bounded_http.ConnectionLimits` of the connection flags."""
    return ConnectionLimits(head_timeout=args.head_timeout, body_timeout=args.body_timeout,
                            keep_alive_timeout=args.keep_alive,
                            max_per_client=args.max_connections_per_client or None,
                            unbounded=(*LOOPBACK_NETWORKS, *args.trust_proxy))


def worker_app(options: dict[str, Any]) -> FastAPI:
    """Build a worker's app from the parent's options (uvicorn calls this in each worker)."""
    from .app import create_app
    from .toolstream import MATH_TOOLS

    options = dict(options)  # a restarted worker gets the same options again
    config = Config(**options.pop("config"))
    limits = Limits(**options.pop("limits"))
    tools = MATH_TOOLS if options.pop("math_tools", False) else ()
    app = create_app(config, limits=limits, tools=tools, **options)
    serving_gc()
    return app


def serve_workers(config: Config, *, workers: int, host: str, port: int,
                  limits: Limits, store: str | None, math_tools: bool = False,
                  loop: str = "asyncio", connections: ConnectionLimits | None = None,
                  **app_options: Any) -> int:
    """Serve the relay with ``workers`` processes until SIGTERM or Ctrl-C; return 0.

    ``connections``: the connection bounds (default: :data:`~helpers.bounded_http.
    DEFAULT_LIMITS`, with the trusted proxies unbounded too).
    """
    made_store = None
    if store is None:
        handle, name = tempfile.mkstemp(prefix="helpers-relay-", suffix=".sqlite3")
        os.close(handle)
        made_store = Path(name)
        store = f"sqlite:///{made_store}"
    trusted = list(app_options.pop("trusted_proxies", ()))
    if connections is None:
        connections = ConnectionLimits(unbounded=(*LOOPBACK_NETWORKS, *trusted))
    options = {"config": asdict(config), "limits": asdict(limits), "store": store,
               "trusted_proxies": trusted, "math_tools": math_tools, **app_options}
    sock = bind_socket(host, port)
    # the options, key and token with them, reach each worker pickled down spawn's pipe
    settings = uvicorn.Config(functools.partial(worker_app, options), factory=True, host=host,
                              port=sock.getsockname()[1], workers=workers, loop=loop,
                              **connections.uvicorn_options(), ws="none", lifespan="on",
                              log_config=None, log_level="warning", access_log=False,
                              timeout_graceful_shutdown=GRACEFUL_SECONDS,
                              proxy_headers=False)  # whom to trust: relay/identity.py
    display = f"[{host}]" if ":" in host else host
    url = f"http://{display}:{sock.getsockname()[1]}/"
    where = urlsplit(store)  # a Redis URL may hold a password: print its host only
    shown = store if where.scheme == "sqlite" else f"{where.scheme}://{where.hostname}"
    print(f"relay serving at {url} with {workers} workers (provider {config.provider}, model "
          f"{config.model}, store {shown})", flush=True)
    token = app_options.get("token")
    if isinstance(token, str):  # on the terminal only, as the one-process relay does
        print(f"access token required: open {url}#token={token}", flush=True)
    elif isinstance(token, os.PathLike):  # a tokens file: each worker re-reads it (roster.py)
        print(RosterFile(token, app_options.get("teacher", TEACHER)).describe(url), flush=True)
    try:
        Multiprocess(settings, sockets=[sock]).run()
    finally:
        sock.close()
        if made_store is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(made_store) + suffix).unlink(missing_ok=True)
    return 0
