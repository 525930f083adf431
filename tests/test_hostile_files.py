"""The relay's files under hostile use (issue 23): nothing stalls the event loop, nothing slips
past a limit. Each test is named after what broke; the heavy work is held at a known point (a
threading.Event in a monkeypatched function) to show ``/healthz`` answering while it runs: the
ORDER of events is asserted, never a time (benchmarks/bench_stall.py measures the stalls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import Hold

import helpers.money.tokens as tokens
import helpers.relay.limits as limits_module
import helpers.relay.uploads as uploads
from helpers.offline import OfflineProvider
from helpers.offline.filestore import parse_upload
from helpers.relay import Relay, create_app, start_relay
from helpers.relay.limits import Limits
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
LOCAL = "http://127.0.0.1:4020"
ALICE = ("10.0.0.1", 5000)
FORM = "multipart/form-data; boundary=B"
#: 1 MB of empty parts: the email parser took 6.9 s on it, on the event loop
EMPTY_PARTS = b"--B\r\n\r\nx\r\n" * (1024 * 1024 // 10)


def nested(depth: int) -> bytes:
    """A multipart body nested ``depth`` deep (boundary b0 outside)."""
    heads = b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n"
                     .encode() for i in range(depth))
    return heads + b"x" + b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[OfflineProvider]:
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-hostile-files") as p:
        yield p


def relay_for(provider: OfflineProvider, **options: Any) -> Relay:
    config = Config("offline", provider.base_url, "moonshot-v1-8k", "relay-key")
    return start_relay(config, read_timeout=30, jupyter=False, name="relay-hostile-files",
                       **options)


@pytest.fixture
def relay(provider: OfflineProvider) -> Iterator[Relay]:
    server = relay_for(provider)
    yield server
    server.stop()


def url(relay: Relay, path: str) -> str:
    return relay.url.rstrip("/") + path


# -- finding 2: the upload parser ----------------------------------------------------------------

def test_healthz_answers_while_an_upload_body_is_parsed(relay, monkeypatch):
    hold = Hold()
    monkeypatch.setattr(uploads, "parse_upload", hold.wrap(uploads.parse_upload))
    answer = hold.healthz_during(lambda: httpx.post(
        url(relay, "/api/files"), content=EMPTY_PARTS, headers={"content-type": FORM},
        timeout=120), url(relay, "/healthz"))
    assert answer.status_code == 400


def test_a_megabyte_of_empty_parts_is_a_400_that_names_the_bound(relay, provider):
    before = provider.stats()["requests"]
    r = httpx.post(url(relay, "/api/files"), content=EMPTY_PARTS, headers={"content-type": FORM},
                   timeout=120)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "more than 8 parts" in r.json()["error"]["message"]
    assert provider.stats()["requests"] == before  # refused here, the provider never asked


def test_a_multipart_body_nested_2000_deep_is_a_400_not_a_500(relay, provider):
    for base, path in ((relay.url.rstrip("/"), "/api/files"), (provider.base_url, "/files")):
        r = httpx.post(base + path, content=nested(2000), timeout=60,
                       headers={"content-type": "multipart/form-data; boundary=b0",
                                "authorization": "Bearer k"})
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert r.json()["error"] == {"type": "invalid_request_error", "message":
                                     "Invalid request: the multipart body has no 'file' field"}
    assert httpx.get(url(relay, "/healthz"), timeout=10).status_code == 200


@pytest.mark.parametrize("name", ["练习 1.pdf", 'a"b.txt', "café.md", "x\\y.txt", "semi;colon.txt",
                                  "no extension"])
def test_the_bounded_parser_reads_what_the_sdk_and_browsers_send(name):
    request = httpx.Request("POST", LOCAL, files={"file": (name, b"\r\n--B\r\nbytes\r\n")},
                            data={"purpose": "file-extract"})
    body = request.read()
    expected = name.replace('"', "%22")  # httpx escapes a quote as browsers do (the email
    assert parse_upload(request.headers["content-type"], body) == (  # parser gave the same)
        expected, b"\r\n--B\r\nbytes\r\n", "file-extract")


# -- finding 6: the per-client file cap, and requests per minute ----------------------------------

async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_concurrent_uploads_cannot_pass_the_per_client_cap(provider, monkeypatch):
    client = openai.AsyncOpenAI(base_url=provider.base_url, api_key="relay-key")
    app = create_app(Config("offline", provider.base_url, "moonshot-v1-8k", "relay-key"),
                     client=client, read_timeout=30)
    reached = 0
    gate = asyncio.Event()
    create = client.files.create

    async def gated(**kwargs: Any) -> Any:  # no upload reaches the provider before all decided
        nonlocal reached
        reached += 1
        await gate.wait()
        return await create(**kwargs)

    monkeypatch.setattr(client.files, "create", gated)

    async def script() -> tuple[list[int], list[dict]]:
        transport = httpx.ASGITransport(app=app, client=ALICE)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as alice:
            tasks = [asyncio.create_task(alice.post("/api/files", files={
                "file": (f"n{i}.md", b"# note")})) for i in range(40)]
            await until(lambda: reached + sum(t.done() for t in tasks) == 40)
            gate.set()
            answers = await asyncio.gather(*tasks)
            listed = (await alice.get("/api/files")).json()["data"]
        await client.close()
        return [a.status_code for a in answers], listed

    statuses, listed = asyncio.run(script())
    cap = uploads.MAX_FILES_PER_CLIENT
    assert reached == cap and sorted(statuses) == [200] * cap + [429] * (40 - cap)
    assert len(listed) == cap and len(list(provider.files.list())) == cap


def test_an_upload_the_provider_refuses_gives_its_slot_back(tmp_path):
    from helpers.offline.filestore import FileLimits

    limits = FileLimits(max_file_bytes=100)
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, file_limits=limits,
                         name="offline-hostile-slots") as p:
        app = create_app(Config("offline", p.base_url, "moonshot-v1-8k", "k"), read_timeout=30)

        async def script() -> list[int]:
            transport = httpx.ASGITransport(app=app, client=ALICE)
            async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as alice:
                refused = [await alice.post("/api/files", files={"file": ("big.md", b"x" * 500)})
                           for _ in range(uploads.MAX_FILES_PER_CLIENT + 5)]
                kept = [await alice.post("/api/files", files={"file": (f"{i}.md", b"# ok")})
                        for i in range(uploads.MAX_FILES_PER_CLIENT)]
            return [r.status_code for r in refused + kept]

        statuses = asyncio.run(script())
    cap = uploads.MAX_FILES_PER_CLIENT
    assert statuses == [400] * (cap + 5) + [200] * cap


def test_uploads_count_against_requests_per_minute(provider):
    server = relay_for(provider, limits=Limits(requests_per_minute=3))
    try:
        answers = [httpx.post(url(server, "/api/files"), files={"file": (f"{i}.md", b"# n")},
                              timeout=30) for i in range(4)]
        chat = httpx.post(url(server, "/api/chat/stream"), json={"question": "q"}, timeout=30)
    finally:
        server.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"]["type"] == "relay_rate_limit"
    assert answers[3].headers["retry-after"]
    assert chat.status_code == 429 and chat.json()["error"]["type"] == "relay_rate_limit"
    assert len(list(provider.files.list())) == 3


# -- finding 3: attached files and budgets -------------------------------------------------------

def upload_texts(server: Relay, sizes: list[int]) -> list[str]:
    return [httpx.post(url(server, "/api/files"), timeout=60, files={
        "file": (f"notes{i}.txt", b"word " * (size // 5))}).json()["id"]
        for i, size in enumerate(sizes)]


def test_healthz_answers_while_attached_files_are_counted(provider, monkeypatch):
    server = relay_for(provider, limits=Limits(daily_tokens=50_000, max_tokens=100))
    try:
        ids = upload_texts(server, [300_000, 300_000])
        hold = Hold()
        monkeypatch.setattr(limits_module, "count_prompt_tokens",
                            hold.wrap(limits_module.count_prompt_tokens))
        answer = hold.healthz_during(lambda: httpx.post(
            url(server, "/api/chat/stream"), json={"question": "Sum them up.", "files": ids},
            timeout=120), url(server, "/healthz"))
    finally:
        server.stop()
    assert answer.status_code == 429 and answer.json()["error"]["type"] == "relay_budget_limit"


class CountingPattern:
    """The token rule's pattern, counting the tokens it is asked for."""

    def __init__(self, pattern: Any) -> None:
        self.pattern, self.matches = pattern, 0

    def finditer(self, text: str, *args: Any) -> Iterator[Any]:
        for match in self.pattern.finditer(text, *args):
            self.matches += 1
            yield match


@pytest.mark.parametrize("budget", [{"daily_tokens": 20_000}, {"daily_cost": 0.004}],
                         ids=["tokens", "money"])  # money: (0.004 - 100 answer tokens) / price
def test_counting_stops_once_a_prompt_is_certainly_over_the_budget(provider, monkeypatch,
                                                                    budget):
    server = relay_for(provider, limits=Limits(max_tokens=100, **budget))
    try:
        ids = upload_texts(server, [600_000, 600_000])  # 240,000 tokens of "word "
        counting = CountingPattern(tokens._UNIT)
        monkeypatch.setattr(tokens, "_UNIT", counting)
        answer = httpx.post(url(server, "/api/chat/stream"), timeout=120,
                            json={"question": "Sum them up.", "files": ids})
        again = httpx.post(url(server, "/api/chat/stream"), json={"question": "What is 1+1?"},
                           timeout=30)
    finally:
        server.stop()
    assert counting.matches <= 20_000  # the budget's worth, not the 240,000 tokens attached
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["type"] == "relay_budget_limit" and "not counted to the end" in error["message"]
    assert again.status_code == 200 and "event: done" in again.text  # nothing was reserved


def test_attached_files_over_the_text_cap_are_a_413_before_any_counting(provider, monkeypatch):
    server = relay_for(provider, limits=Limits(daily_tokens=10_000_000))
    monkeypatch.setattr(uploads, "MAX_ATTACHED_CHARS", 1000)
    try:
        ids = upload_texts(server, [600, 600])
        counting = CountingPattern(tokens._UNIT)
        monkeypatch.setattr(tokens, "_UNIT", counting)
        chats = provider.stats()["requests"]
        answer = httpx.post(url(server, "/api/chat/stream"), timeout=60,
                            json={"question": "Sum them up.", "files": ids})
        asked = provider.stats()["requests"] - chats
    finally:
        server.stop()
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["type"] == "attachments_too_large"
    assert "more than 1000 characters" in answer.json()["error"]["message"]
    assert counting.matches == 0
    assert asked == 4  # the two files' metadata and text; no chat request


def test_a_count_with_a_stop_is_exact_below_it_and_stop_plus_one_above():
    messages = [{"role": "system", "content": "word " * 1000}, {"role": "user", "content": "q"}]
    exact = tokens.count_prompt_tokens(messages)
    assert exact == 4 + 1001 + 4 + 1  # 1000 words and the trailing space
    assert tokens.count_prompt_tokens(messages, exact) == exact
    assert [tokens.count_prompt_tokens(messages, s) for s in (0, 3, 500, exact - 1)] == [
        1, 4, 501, exact]
    assert tokens.count_tokens("word " * 1000, 10) == 11
