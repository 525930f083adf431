"""Run an ASGI app with uvicorn in a background thread, safely, from a notebook or a test.

Deliberate choices:

- **We bind the socket ourselves** and hand it to uvicorn. Port 0 lets the OS pick a free port
  with no race, and a taken port fails at once with :class:`PortInUseError` instead of uvicorn
  logging an error and calling ``sys.exit`` inside a thread (which looks like a hang).
- **One server per name.** Starting a server under a name that is already running stops the
  old one first, so re-running a notebook cell neither leaks a thread nor holds the port.
- **``loop="asyncio"`` and ``log_config=None``.** uvicorn must not install a global event-loop
  policy or reconfigure logging inside a Jupyter kernel; its loggers stay quiet except for
  real errors (nbval compares stderr).
- **TCP_NODELAY on the listening socket** (inherited by accepted ones): streaming is many
  small writes, and Nagle's algorithm would hold them for the client's delayed ACK.
- **httptools, bounded** (:mod:`helpers.bounded_http`): uvicorn's C parser, with h11's 16 KiB
  bound on a request's head put back (uvicorn's own httptools protocol read a 64 MB header
  and answered 200), deadlines for a head (10 s) and a body (60 s), keep-alive 5 s and at
  most 64 connections per client beyond loopback (``limits=ConnectionLimits(...)``); h11
  where httptools is missing.
- **No WebSockets** (``ws="none"``): no server here has a WebSocket route, and an upgrade
  would leave the HTTP protocol's bounds behind.
- **Bounded stop.** ``should_exit`` asks uvicorn to finish; open streams get
  ``timeout_graceful_shutdown`` seconds, then ``force_exit``; the join is always bounded.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time
from typing import Any

import uvicorn

from .bounded_http import DEFAULT_LIMITS, ConnectionLimits

__all__ = ["BackgroundServer", "PortInUseError", "running_servers", "stop_all",
           "wait_for_signal"]

_REGISTRY: dict[str, BackgroundServer] = {}
_REGISTRY_LOCK = threading.Lock()


class PortInUseError(OSError):
    """The requested host:port is already taken by another program."""


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this on Linux. asyncio sets it only on sockets whose
    # ``proto`` is IPPROTO_TCP, which a plain ``socket.socket()`` is not; without it, Nagle's
    # algorithm holds each small SSE write until the client ACKs the previous one, and a
    # client that delays its ACK (40 ms on Linux, on a reused connection) stalls the stream.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                errno.EADDRINUSE,
                f"{host}:{port} is already in use (is another server running there?). "
                "Stop it, pick another port, or use port=0 to let the OS choose a free one.",
            ) from None
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class BackgroundServer:
    """An ASGI app served by uvicorn in a daemon thread on ``host:port``.

    Args:
        app: the ASGI application.
        host: interface to bind; 127.0.0.1 unless you really mean to expose it.
        port: TCP port, or 0 for a free one chosen by the OS.
        name: servers are unique per name; starting one stops the previous holder.
        limits: deadlines and the per-client connection bound (:mod:`helpers.bounded_http`).
        uvicorn_options: extra keyword arguments for ``uvicorn.Config``.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        limits: ConnectionLimits = DEFAULT_LIMITS,
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.limits = limits
        self.host = host
        self.requested_port = port
        self.name = name or f"server-{id(self):x}"
        self.uvicorn_options = uvicorn_options
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start serving and wait until uvicorn accepts connections."""
        if self.running:
            return self
        with _REGISTRY_LOCK:
            previous = _REGISTRY.get(self.name)
        if previous is not None and previous is not self:
            previous.stop()
        self._socket = _bind(self.host, self.requested_port)
        self.port = self._socket.getsockname()[1]
        options = {
            "log_config": None,
            "log_level": "warning",
            "access_log": False,
            "loop": "asyncio",
            # httptools, bounded: head size and deadline, body deadline, keep-alive, per client
            **self.limits.uvicorn_options(),
            "ws": "none",
            "lifespan": "off",
            "timeout_graceful_shutdown": 1,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 and rewrite the client's
            # address; the relay decides whom to trust itself (helpers/relay/identity.py)
            "proxy_headers": False,
        }
        options.update(self.uvicorn_options)
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn-{self.name}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise RuntimeError(f"{self.name}: uvicorn stopped during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name}: not started after {timeout:.0f} s")
            time.sleep(0.01)
        with _REGISTRY_LOCK:
            _REGISTRY[self.name] = self
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; open streams get a short grace period, the join is bounded."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout / 2)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout / 2)
        self._close_socket()
        self._server = self._thread = None
        with _REGISTRY_LOCK:
            if _REGISTRY.get(self.name) is self:
                del _REGISTRY[self.name]

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @property
    def running(self) -> bool:
        """True while the server thread is serving."""
        return bool(self._thread and self._thread.is_alive() and self._server
                    and self._server.started)

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:8001``."""
        if self.port is None:
            raise RuntimeError(f"{self.name} is not started")
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state}>"


def wait_for_signal(server: BackgroundServer) -> None:
    """Block until Ctrl-C or SIGTERM (or the server stops by itself); for the CLIs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5) and server.running:
        pass


def running_servers() -> dict[str, BackgroundServer]:
    """Return the servers started in this process that are still running, by name."""
    with _REGISTRY_LOCK:
        return {name: srv for name, srv in _REGISTRY.items() if srv.running}


def stop_all() -> None:
    """Stop every background server this process started."""
    with _REGISTRY_LOCK:
        servers = list(_REGISTRY.values())
    for srv in servers:
        srv.stop()
