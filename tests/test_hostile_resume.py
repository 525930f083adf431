"""Resumable answers under hostile use (issue 23): a forged Last-Event-ID, another client's
answer, resume readers beyond the limits. In-process (``httpx.ASGITransport``): each answer is
short and finished before it is resumed, so nothing waits on a timer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import FAKE_KEY

from helpers.offline import OfflineProvider
from helpers.relay import create_app
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
Client = httpx.AsyncClient


def run(offline: OfflineProvider, work: Callable[[Client], Awaitable[Any]],
        **options: Any) -> Any:
    """Run ``work`` against a fresh relay app of ``options``, in process."""
    async def go() -> Any:
        config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
        app = create_app(config, **options)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with Client(transport=transport, base_url="http://127.0.0.1", timeout=30) as c:
            return await work(c)
    return asyncio.run(go())


async def answer_of(c: Client, headers: dict[str, str] | None = None) -> str:
    """Ask for a short resumable answer; return its id."""
    r = await c.post("/api/chat/stream", json={"question": "Hi", "resumable": True},
                     headers=headers or {})
    assert r.status_code == 200 and "event: done" in r.text
    return r.headers["x-relay-answer"]


def test_a_last_event_id_not_in_ascii_digits_or_out_of_range_is_a_400(
        offline: OfflineProvider) -> None:
    async def work(c: Client) -> list[tuple[int, str]]:
        answer = await answer_of(c)
        got = []
        for number in ["²", "٣", "9223372036854775808", "1" * 40, "-1", "+1", " 1", "1e3"]:
            r = await c.get("/api/chat/resume", headers={
                "Last-Event-ID": f"{answer}.{number}".encode("latin-1", "replace")
                if number.isascii() else f"{answer}.".encode() + number.encode()})
            got.append((r.status_code, r.headers["content-type"]))
            assert r.json()["error"]["type"] == "invalid_request_error"
        ok = await c.get("/api/chat/resume", headers={"Last-Event-ID": f"{answer}.0"})
        assert ok.status_code == 200 and "event: done" in ok.text
        return got

    assert set(run(offline, work)) == {(400, "application/json")}
