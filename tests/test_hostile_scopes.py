"""Issue 23: the guards and the access token passed any scope that was not HTTP (a WebSocket
with a foreign Host and Origin, no token) straight to the app. They refuse it now: a WebSocket
is closed before it is accepted (1008), any other type raises; the lifespan still passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from helpers.relay import create_app
from helpers.relay.access import AccessToken
from helpers.relay.guards import Guards
from helpers.settings import Config

HOSTILE = [(b"host", b"evil.example"), (b"origin", b"http://evil.example")]


def run(app: Callable, scope: dict) -> list:
    """Call ``app`` with ``scope``; return what it sent (or the exception it raised)."""
    sent: list = []

    async def receive() -> dict:
        return {"type": "websocket.connect" if scope["type"] == "websocket" else
                "lifespan.startup"}

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except RuntimeError as exc:
        sent.append(exc)
    return sent


def middlewares(inner: Callable) -> list:
    return [Guards(inner, allow_hosts=[], allow_origins=[], forwarded_prefix=None),
            AccessToken(inner, tokens="the-token")]


@pytest.mark.parametrize("which", [0, 1], ids=["guards", "access-token"])
def test_a_websocket_is_closed_unaccepted_and_never_reaches_the_app(which: int) -> None:
    reached: list[str] = []

    async def inner(scope: dict, receive: Callable, send: Callable) -> None:
        reached.append(scope["type"])

    guard = middlewares(inner)[which]
    sent = run(guard, {"type": "websocket", "path": "/api/chat/stream", "headers": HOSTILE})
    assert sent == [{"type": "websocket.close", "code": 1008,
                     "reason": "this relay speaks HTTP only"}]
    other = run(guard, {"type": "mystery", "path": "/", "headers": HOSTILE})
    assert [str(e) for e in other] == ["the relay does not serve ASGI 'mystery' connections"]
    run(guard, {"type": "lifespan"})
    assert reached == ["lifespan"]  # the lifespan still reaches the app; nothing else did


def test_the_relay_app_refuses_a_websocket_before_any_route(offline) -> None:
    app = create_app(Config("offline", offline.base_url, "moonshot-v1-8k", "k"),
                     token="the-token")
    sent = run(app, {"type": "websocket", "path": "/api/chat/stream", "headers": HOSTILE,
                     "query_string": b"", "root_path": "", "scheme": "ws"})
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008
    assert offline.stats()["chat_requests"] == 0
