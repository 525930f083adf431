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


ANNA, BEN = {"Authorization": "Bearer tok-a"}, {"Authorization": "Bearer tok-b"}
TOKENS = {"anna": "tok-a", "ben": "tok-b"}


def test_another_clients_answer_cannot_be_read_or_stopped_given_its_id(
        offline: OfflineProvider) -> None:
    async def work(c: Client) -> list[tuple[str, int, str]]:
        answer = await answer_of(c, ANNA)
        got = []
        for name, headers in [("ben", BEN), ("anna", ANNA)]:
            for _ in range(2):  # once from memory; then (after its final flush) from the store
                r = await c.get("/api/chat/resume", headers={**headers,
                                                             "Last-Event-ID": f"{answer}.0"})
                kind = r.json()["error"]["type"] if r.status_code != 200 else "done" * (
                    "event: done" in r.text)
                got.append((name, r.status_code, kind))
                while answer in c._transport.app.state.answers._local:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.05)  # the final flush: the answer leaves memory
        stopped = [(await c.post(f"/api/chat/stop/{answer}", headers=headers)).status_code
                   for headers in (BEN, ANNA)]
        return got + [("stop", *stopped)]  # type: ignore[list-item]

    assert run(offline, work, token=TOKENS) == [
        ("ben", 404, "resume_expired"), ("ben", 404, "resume_expired"),
        ("anna", 200, "done"), ("anna", 200, "done"), ("stop", 404, 204)]


def test_another_clients_running_answer_cannot_be_stopped(offline: OfflineProvider) -> None:
    async def work(c: Client) -> tuple[int, int, bool]:
        app = c._transport.app  # type: ignore[attr-defined]
        first = [("delta", {"content": "a"})]

        async def forever():  # a producer that never ends by itself
            await asyncio.Event().wait()
            yield first
        response = await app.state.answers.respond(first, forever(), "token:anna")
        answer = response.headers["x-relay-answer"]
        by_ben = (await c.post(f"/api/chat/stop/{answer}", headers=BEN)).status_code
        local = app.state.answers._local[answer]
        still_running = local.why is None
        by_anna = (await c.post(f"/api/chat/stop/{answer}", headers=ANNA)).status_code
        return by_ben, by_anna, still_running and local.why is not None

    assert run(offline, work, token=TOKENS) == (404, 204, True)


def test_a_store_file_from_before_owners_gets_its_owner_column(tmp_path: Any) -> None:
    import sqlite3

    from helpers.relay.store import SQLiteStore

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE answers (id TEXT PRIMARY KEY, state TEXT, expires REAL, "
                    "seen REAL, stop INTEGER DEFAULT 0)")

    async def work() -> list[Any]:
        store = SQLiteStore(path)
        await store.open_answer("a", 60, "token:anna")
        got = [await store.owner("a"), await store.owner("nope"),
               await store.ask_stop("a", "token:ben"), await store.ask_stop("a", "token:anna")]
        await store.close()
        return got

    assert asyncio.run(work()) == ["token:anna", None, False, True]


def test_resume_readers_count_as_requests_per_minute(offline: OfflineProvider) -> None:
    from helpers.relay.limits import Limits

    async def work(c: Client) -> list[tuple[int, str]]:
        answer = await answer_of(c)  # request 1 of 5
        got = []
        for _ in range(5):  # requests 2-5, then one too many
            r = await c.get("/api/chat/resume", headers={"Last-Event-ID": f"{answer}.0"})
            got.append((r.status_code, "done" if "event: done" in r.text
                        else r.json()["error"]["type"]))
        return got

    assert run(offline, work, limits=Limits(requests_per_minute=5)) == [
        (200, "done")] * 4 + [(429, "relay_rate_limit")]


def test_resume_readers_hold_a_stream_slot_and_the_page_can_still_come_back(
        offline: OfflineProvider) -> None:
    from conftest import wait_until

    from helpers.relay import start_relay
    from helpers.relay.limits import Limits

    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    relay = start_relay(config, jupyter=False, name="relay-hostile-resume",
                        limits=Limits(concurrent_streams=1))
    try:
        with httpx.Client(timeout=30) as c:
            with c.stream("POST", relay.url + "api/chat/stream", json={
                    "question": "What is a prime number? [hold]", "resumable": True}) as first:
                assert first.status_code == 200
                answer = first.headers["x-relay-answer"]
            # the page's connection dropped; its producer holds the slot, the page comes back
            resume = {"Last-Event-ID": f"{answer}.0"}
            with c.stream("GET", relay.url + "api/chat/resume", headers=resume) as back:
                assert back.status_code == 200
                extra = c.get(relay.url + "api/chat/resume", headers=resume)
                assert extra.status_code == 429
                assert extra.json()["error"]["type"] == "relay_concurrency_limit"

            def again() -> bool:  # the reader's slot was given back when its response ended
                with c.stream("GET", relay.url + "api/chat/resume", headers=resume) as r:
                    return r.status_code == 200
            wait_until(again, timeout=10)
            assert c.post(relay.url + f"api/chat/stop/{answer}").status_code == 204
    finally:
        relay.stop()
