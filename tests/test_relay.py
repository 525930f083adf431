"""The relay: wire contract, bad input, upstream failures, disconnects, guards, key hygiene, CLI.

Logic runs in-process through ``httpx.ASGITransport`` (which collects a whole response, so
those streams must finish by themselves); anything about *timing of arrival* or a client
leaving runs over a real socket with :func:`helpers.relay.start_relay`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import FAKE_KEY, sse_events
from httpx_sse import connect_sse

from helpers.money.tokens import count_prompt_tokens, count_tokens
from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.relay import (
    DEFAULT_READ_TIMEOUT,
    DEFAULT_SYSTEM_PROMPT,
    MAX_BODY_BYTES,
    MAX_HISTORY,
    Relay,
    create_app,
    jupyter_allowances,
    start_relay,
)
from helpers.servers import running_servers
from helpers.settings import Config

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[1]
LOCAL = "http://127.0.0.1:4020"


def answer_to(question: str) -> str:
    """What the offline model answers to a lone question (markers do not change it)."""
    return compose_reply([{"role": "user", "content": question}]).text




def text_of(events: list[tuple[str, dict]]) -> str:
    return "".join(d["content"] for e, d in events if e == "delta")


_LOOP: list[asyncio.AbstractEventLoop] = []


@pytest.fixture(autouse=True)
def _one_event_loop() -> Iterator[None]:
    """One event loop per test: an app's SDK client pools connections on the loop it met."""
    loop = asyncio.new_event_loop()
    _LOOP.append(loop)
    yield
    _LOOP.remove(loop)

    async def cancel_leftovers() -> None:  # e.g. sse-starlette's shutdown watcher
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    loop.run_until_complete(cancel_leftovers())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def call(app: Any, method: str, path: str, *, base_url: str = LOCAL,
         **kwargs: Any) -> httpx.Response:
    """One request to ``app`` in-process."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.request(method, path, **kwargs)
    return _LOOP[-1].run_until_complete(go())


@pytest.fixture
def config(offline: OfflineProvider) -> Config:
    return Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")


@pytest.fixture
def app(config: Config) -> Any:
    return create_app(config, read_timeout=5)


@pytest.fixture
def relay(config: Config) -> Iterator[Relay]:
    """A relay on a real socket (a free port), stopped after the test."""
    server = start_relay(config, read_timeout=5, jupyter=False, name="relay-tests")
    yield server
    server.stop()


# -- the wire contract -----------------------------------------------------------------------
def test_stream_sends_deltas_then_usage_then_done(app: Any, offline: OfflineProvider) -> None:
    question = "What is the Pythagorean theorem?"
    response = call(app, "POST", "/api/chat/stream", json={"question": question})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert text_of(events) == answer_to(question)
    assert set(names[:-2]) == {"delta"}
    assert names[-2:] == ["usage", "done"]
    assert events[-1][1] == {"finish_reason": "stop"}
    usage = events[-2][1]
    assert usage["completion_tokens"] == count_tokens(text_of(events))  # the offline rule
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] == count_prompt_tokens(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
         {"role": "user", "content": question}])
    stats = offline.stats()
    assert (stats["chat_requests"], stats["completed"]) == (1, 1)


def test_a_resumable_answer_is_the_same_response_with_ids(relay: Relay) -> None:
    """One response path: ``"resumable": true`` adds an id to each event and the answer's
    header, nothing else (the same headers, the same event bytes)."""
    question = "What is the Pythagorean theorem?"
    plain, resumable = (httpx.post(relay.url + "api/chat/stream", timeout=30,
                                   json={"question": question, "resumable": flag})
                        for flag in (False, True))
    answer = resumable.headers["x-relay-answer"]
    assert "x-relay-answer" not in plain.headers
    for name in ("content-type", "cache-control", "x-accel-buffering", "connection"):
        assert resumable.headers[name] == plain.headers[name], name
    lines = resumable.text.split("\n")
    ids = [line for line in lines if line.startswith("id: ")]
    assert ids == [f"id: {answer}.{n}" for n in range(1, len(ids) + 1)]
    assert "\n".join(line for line in lines if not line.startswith("id: ")) == plain.text
    assert len(ids) == plain.text.count("event: ")


def test_reasoning_model_streams_reasoning_events_first(offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "kimi-k2-thinking", "test-key")
    question = "What is a derivative?"
    events = sse_events(call(create_app(config), "POST", "/api/chat/stream",
                             json={"question": question}).text)
    names = [name for name, _ in events]
    first_delta = names.index("delta")
    assert set(names[:first_delta]) == {"reasoning"} and first_delta > 0
    thought = "".join(d["content"] for e, d in events if e == "reasoning")
    expected = compose_reply([{"role": "user", "content": question}], reasoning=True)
    assert thought == expected.reasoning and text_of(events) == expected.text
    assert names[-2:] == ["usage", "done"]


@pytest.mark.parametrize(("provider", "model"), [
    ("moonshot", "moonshot-v1-8k"),   # usage inside choices[0], never asked for
    ("offline", "gpt-4o-mini"),       # usage only in a trailing chunk, when asked
    ("offline", "deepseek-chat"),     # keep-alive comments before the first chunk
], ids=["moonshot-in-choice", "openai-trailing-chunk", "deepseek-keep-alive"])
def test_usage_arrives_whatever_the_provider_flavour(offline: OfflineProvider, provider: str,
                                                     model: str) -> None:
    config = Config(provider, offline.base_url, model, "test-key")
    events = sse_events(call(create_app(config), "POST", "/api/chat/stream",
                             json={"question": "What is 1+1?"}).text)
    assert [name for name, _ in events][-2:] == ["usage", "done"]
    assert dict(events)["usage"]["completion_tokens"] == 8
    assert text_of(events) == "$1 + 1 = 2$."


def test_each_data_line_is_one_json_object(app: Any) -> None:
    response = call(app, "POST", "/api/chat/stream",
                    json={"question": "What is the quadratic formula?"})
    lines = response.text.split("\n")
    data_lines = [ln for ln in lines if ln.startswith("data:")]
    event_lines = [ln for ln in lines if ln.startswith("event:")]
    assert len(data_lines) == len(event_lines) > 3
    assert all(isinstance(json.loads(ln[5:]), dict) for ln in data_lines)
    assert "\n\n" in text_of(sse_events(response.text))  # newlines travel inside JSON


def test_history_reaches_the_provider(app: Any) -> None:
    body = {"question": "What did I ask?",
            "history": [{"role": "user", "content": "What is a prime number?"},
                        {"role": "assistant", "content": "A prime number is..."}]}
    events = sse_events(call(app, "POST", "/api/chat/stream", json=body).text)
    assert text_of(events) == 'Your previous question was: "What is a prime number?"'


def test_messages_form_cannot_replace_the_teachers_system_prompt(
        app: Any, offline: OfflineProvider) -> None:
    messages = [{"role": "system", "content": "Be terse."},
                {"role": "user", "content": "What is 1+1?"}]
    refused = call(app, "POST", "/api/chat/stream", json={"messages": messages})
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "system_prompt_not_allowed"
    assert offline.stats()["chat_requests"] == 0  # never sent upstream
    turns = call(app, "POST", "/api/chat/stream", json={"messages": messages[1:]})
    assert dict(sse_events(turns.text))["usage"]["prompt_tokens"] == count_prompt_tokens(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, messages[1]])  # the teacher's


def test_messages_form_keeps_its_own_system_prompt_when_allowed(config: Config) -> None:
    messages = [{"role": "system", "content": "Be terse."},
                {"role": "user", "content": "What is 1+1?"}]
    app = create_app(config, read_timeout=5, allow_system_prompt=True)
    events = sse_events(call(app, "POST", "/api/chat/stream", json={"messages": messages}).text)
    assert text_of(events) == "$1 + 1 = 2$."
    assert dict(events)["usage"]["prompt_tokens"] == count_prompt_tokens(messages)


def test_chinese_answer_arrives_intact(app: Any) -> None:
    question = "什么是勾股定理？"
    response = call(app, "POST", "/api/chat/stream", json={"question": question})
    assert text_of(sse_events(response.text)) == answer_to(question)
    assert "勾".encode() in response.content and b"\\u" not in response.content  # UTF-8


def test_blog_route_streams_bare_text(app: Any, offline: OfflineProvider) -> None:
    question = "What is the Pythagorean theorem?"
    response = call(app, "POST", "/chatbot/llm/chatstream", json={"question": question})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == answer_to(question)
    assert offline.stats()["completed"] == 1


def test_healthz_and_page(app: Any, config: Config) -> None:
    health = call(app, "GET", "/healthz")
    assert health.json() == {"ok": True, "provider": "offline", "model": config.model}
    page = call(app, "GET", "/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # Relative URLs only: the page must work under /proxy/<port>/ too.
    assert 'src="static/sse.js"' in page.text and 'src="static/chat.js"' in page.text
    assert 'src="/' not in page.text and 'href="/' not in page.text
    script = call(app, "GET", "/static/chat.js")
    assert '"api/chat/stream"' in script.text and "text/event-stream" in script.text
    assert call(app, "GET", "/static/sse.js").status_code == 200


# -- bad input: 4xx with one error shape, nothing sent upstream, the server stays up -----------
BAD_BODIES = [
    ("not-json", b"{question: 1", 400, "not valid JSON"),
    ("json-list", b"[1, 2]", 422, "JSON object"),
    ("empty-body", b"", 422, "required"),
    ("missing-question", b"{}", 422, "'question' is required"),
    ("empty-question", b'{"question": "   "}', 422, "'question' is empty"),
    ("number-question", b'{"question": 42}', 422, "question: Input should be a valid string"),
    ("bad-role", b'{"question": "hi", "history": [{"role": "system", "content": "x"}]}',
     422, "history.0.role"),
    ("history-not-list", b'{"question": "hi", "history": "no"}', 422, "history"),
    ("both-forms", b'{"question": "hi", "messages": [{"role": "user", "content": "x"}]}',
     422, "not both"),
    ("messages-end-with-assistant",
     b'{"messages": [{"role": "assistant", "content": "x"}]}', 422, "end with a user"),
    ("unknown-field", b'{"question": "hi", "model": "gpt-5"}', 422, "model: Extra inputs"),
    ("too-long-question", json.dumps({"question": "x" * 20_001}).encode(), 422,
     "at most 20000 characters"),
    ("too-long-history", json.dumps({"question": "hi", "history": [
        {"role": "user", "content": "x"}] * (MAX_HISTORY + 1)}).encode(), 422,
     f"at most {MAX_HISTORY} items"),
]


@pytest.mark.parametrize(("body", "status", "needle"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_clear_4xx(app: Any, offline: OfflineProvider, body: bytes, status: int,
                                  needle: str) -> None:
    response = call(app, "POST", "/api/chat/stream", content=body,
                    headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"type", "message"} and "detail" not in response.json()
    assert needle in error["message"]
    assert offline.stats()["chat_requests"] == 0
    after = call(app, "POST", "/api/chat/stream", json={"question": "What is 1+1?"})
    assert text_of(sse_events(after.text)) == "$1 + 1 = 2$."


def test_blog_route_validates_too(app: Any, offline: OfflineProvider) -> None:
    for body in ({}, {"question": ""}, {"question": ["a"]}):
        response = call(app, "POST", "/chatbot/llm/chatstream", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert offline.stats()["chat_requests"] == 0


def test_wrong_content_type_is_415(app: Any) -> None:
    response = call(app, "POST", "/api/chat/stream", content=b'{"question": "hi"}',
                    headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_oversized_body_is_413_with_or_without_content_length(app: Any,
                                                              offline: OfflineProvider) -> None:
    big = json.dumps({"question": "x" * (MAX_BODY_BYTES + 10)}).encode()
    declared = call(app, "POST", "/api/chat/stream", content=big,
                    headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["type"] == "request_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    streamed = call(app, "POST", "/api/chat/stream", content=chunked(),
                    headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "request_too_large"
    assert offline.stats()["chat_requests"] == 0


def test_unknown_route_and_method_use_the_error_shape(app: Any) -> None:
    missing = call(app, "GET", "/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    wrong = call(app, "GET", "/api/chat/stream")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"


# -- upstream failures -------------------------------------------------------------------------
@pytest.mark.parametrize(("marker", "status", "kind"), [
    ("[fault:429]", 429, "rate_limit_reached_error"),
    ("[fault:503]", 503, "engine_overloaded_error"),
    ("[fault:401]", 502, "invalid_authentication_error"),
    ("[fault:404]", 502, "resource_not_found_error"),
], ids=["429", "503", "401", "404"])
def test_failure_before_streaming_is_an_http_error(app: Any, offline: OfflineProvider,
                                                   marker: str, status: int, kind: str) -> None:
    for path in ("/api/chat/stream", "/chatbot/llm/chatstream"):
        response = call(app, "POST", path, json={"question": f"hi {marker}"})
        assert response.status_code == status
        assert response.json()["error"]["type"] == kind
    assert offline.stats()["faults"] >= 2


def test_wrong_upstream_key_is_a_502_that_names_the_problem(app: Any,
                                                             offline: OfflineProvider) -> None:
    offline.api_key = "a-different-key"
    response = call(app, "POST", "/api/chat/stream", json={"question": "hi"})
    assert response.status_code == 502
    assert "refused the relay's API key (401)" in response.json()["error"]["message"]
    assert offline.stats()["statuses"].get("401", 0) >= 1


def test_failure_after_streaming_started_is_an_error_event(app: Any) -> None:
    question = "hello [fault:midstream]"
    response = call(app, "POST", "/api/chat/stream", json={"question": question})
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "error" and "done" not in names and names.count("error") == 1
    assert events[-1][1] == {"type": "server_error",
                             "message": "The stream failed midway (simulated)", "status": None}
    sent = text_of(events)
    assert sent and answer_to(question).startswith(sent) and sent != answer_to(question)


@pytest.mark.parametrize(("marker", "kind"), [
    ("[fault:cut]", "upstream_connection_error"),
    ("[fault:malformed]", "upstream_error"),
], ids=["cut", "malformed"])
def test_broken_upstream_stream_ends_with_an_error_event(app: Any, marker: str,
                                                         kind: str) -> None:
    events = sse_events(call(app, "POST", "/api/chat/stream",
                             json={"question": f"hello {marker}"}).text)
    assert events[0][0] == "delta"
    assert events[-1][0] == "error" and events[-1][1]["type"] == kind


def test_stalled_upstream_times_out_and_is_hung_up_on(config: Config,
                                                      offline: OfflineProvider) -> None:
    app = create_app(config, read_timeout=0.3)
    events = sse_events(call(app, "POST", "/api/chat/stream",
                             json={"question": "hello [fault:stall]"}).text)
    assert events[-1] == ("error", {"type": "upstream_timeout", "status": None,
                                    "message": "The provider sent nothing for 0.3 s "
                                               "(read timeout)"})
    stats = offline.wait_for(lambda s: s["open_streams"] == 0)
    assert stats["recent"][-1]["outcome"] == "disconnected"


def test_default_read_timeout_is_well_under_the_sdk_default() -> None:
    assert DEFAULT_READ_TIMEOUT <= 120 < openai.DEFAULT_TIMEOUT.read


def test_blog_route_cannot_signal_a_midstream_failure(app: Any) -> None:
    """Why the lessons prefer SSE: the bare-text route just stops, looking complete."""
    question = "hello [fault:midstream]"
    response = call(app, "POST", "/chatbot/llm/chatstream", json={"question": question})
    assert response.status_code == 200
    assert answer_to(question).startswith(response.text)
    assert response.text != answer_to(question)


# -- over a real socket: arrival before the end, and clients that leave ---------------------------
def test_first_events_arrive_before_the_stream_ends(relay: Relay,
                                                    offline: OfflineProvider) -> None:
    with httpx.Client(base_url=relay.url, timeout=10) as client, connect_sse(
            client, "POST", "api/chat/stream",
            json={"question": "What is a prime number? [hold]"}) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.iter_sse()
        first = next(events)
        assert first.event == "delta" and json.loads(first.data)["content"]
        # The provider is still holding back its final chunk: we are mid-stream.
        assert offline.wait_for(lambda s: s["held"] == 1)["completed"] == 0
        offline.release()
        rest = [event.event for event in events]
    assert rest[-2:] == ["usage", "done"] and set(rest[:-2]) == {"delta"}
    assert offline.stats()["completed"] == 1


@pytest.mark.parametrize("path", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_client_that_leaves_closes_the_upstream_request(relay: Relay, offline: OfflineProvider,
                                                        path: str) -> None:
    with httpx.Client(base_url=relay.url, timeout=10) as client:
        with client.stream("POST", path, json={"question": "What is a prime number? [hold]"},
                           headers={"accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            chunks = response.iter_bytes()  # keep a reference: a dropped iterator hangs up
            assert next(chunks)
            offline.wait_for(lambda s: s["held"] == 1)
        # Leaving the block closed the connection mid-stream.
    # held == 0 too: the provider has let go of the stream (the next test starts clean).
    stats = offline.wait_for(lambda s: s["disconnects"] == 1 and s["held"] == 0, timeout=5)
    assert stats["completed"] == 0 and stats["open_streams"] == 0
    assert stats["recent"][-1]["outcome"] == "disconnected"


@pytest.mark.parametrize("path", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_regression_hang_up_noticed_while_upstream_bytes_are_already_waiting(
        relay: Relay, offline: OfflineProvider, path: str) -> None:
    """A zero-delay provider never made the relay suspend, so it sometimes relayed the whole
    answer into a closed socket (asyncio logged "socket.send() raised exception")."""
    for attempt in range(1, 11):  # it was intermittent: repeat on one relay (pooled upstream)
        with httpx.Client(base_url=relay.url, timeout=10) as client:
            with client.stream("POST", path, json={"question": "[tokens:3000] hi"}) as response:
                chunks = response.iter_bytes()
                assert next(chunks)
        stats = offline.wait_for(
            lambda s, n=attempt: s["open_streams"] == 0 and s["streams"] == n, timeout=5)
        assert (stats["disconnects"], stats["completed"]) == (attempt, 0)
        assert stats["recent"][-1]["sent"] < stats["recent"][-1]["planned"]


def test_start_relay_replaces_the_previous_one_of_the_same_name(config: Config) -> None:
    first = start_relay(config, jupyter=False, name="relay-replace")
    try:
        second = start_relay(config, jupyter=False, name="relay-replace")
        try:
            assert not first.running and second.running
            assert running_servers()["relay-replace"] is second.server
            assert httpx.get(second.url + "healthz").json()["ok"] is True
        finally:
            second.stop()
    finally:
        first.stop()
    assert "relay-replace" not in running_servers()


# -- guards --------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost:4020", "127.0.0.1", "[::1]:8888", "LOCALHOST"])
def test_loopback_hosts_pass(app: Any, host: str) -> None:
    assert call(app, "GET", "/healthz", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example:4020", "127.0.0.1.evil.example", "0.0.0.0:4020",
                                  "localhost.evil.example"])
def test_other_hosts_are_refused_dns_rebinding(app: Any, offline: OfflineProvider,
                                               host: str) -> None:
    response = call(app, "POST", "/api/chat/stream", json={"question": "hi"},
                    headers={"host": host})
    assert response.status_code == 403
    assert "DNS-rebinding" in response.json()["error"]["message"]
    assert call(app, "GET", "/", headers={"host": host}).status_code == 403
    assert offline.stats()["chat_requests"] == 0


def test_allowed_host_passes(config: Config) -> None:
    app = create_app(config, allow_hosts=["Hub.Example.org"])
    assert call(app, "GET", "/healthz", headers={"host": "hub.example.org"}).status_code == 200
    assert call(app, "GET", "/healthz", headers={"host": "other.example.org"}).status_code == 403


def test_cross_site_origin_is_refused_same_origin_passes(app: Any,
                                                         offline: OfflineProvider) -> None:
    body = {"question": "What is 1+1?"}
    evil = call(app, "POST", "/api/chat/stream", json=body,
                headers={"origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["error"]["message"]
    other_port = call(app, "POST", "/api/chat/stream", json=body,
                      headers={"origin": "http://127.0.0.1:9999"})
    assert other_port.status_code == 403
    assert offline.stats()["chat_requests"] == 0
    same = call(app, "POST", "/api/chat/stream", json=body, headers={"origin": LOCAL})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    assert text_of(sse_events(same.text)) == "$1 + 1 = 2$."


def test_allowed_origin_gets_cors(config: Config) -> None:
    dev_server = "http://localhost:5173"
    app = create_app(config, allow_origins=[dev_server + "/"])
    preflight = call(app, "OPTIONS", "/api/chat/stream", headers={
        "origin": dev_server, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == dev_server
    response = call(app, "POST", "/api/chat/stream", json={"question": "What is 1+1?"},
                    headers={"origin": dev_server})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == dev_server
    refused = call(app, "OPTIONS", "/api/chat/stream", headers={
        "origin": "http://localhost:6000", "access-control-request-method": "POST"})
    assert refused.status_code == 403


def test_binder_proxy_prefix_trusts_only_requests_forwarded_to_this_port(config: Config) -> None:
    app = create_app(config, trust_proxy_prefix="/user/ada/")
    hub = {"host": "hub.binder.example", "origin": "https://hub.binder.example"}
    ok = call(app, "GET", "/healthz",
              headers={**hub, "x-forwarded-context": "/user/ada/proxy/4020"})
    assert ok.status_code == 200
    for context in (None, "/user/ada/proxy/9999", "/user/bob/proxy/4020"):
        headers = dict(hub, **({"x-forwarded-context": context} if context else {}))
        assert call(app, "GET", "/healthz", headers=headers).status_code == 403
    cross = call(app, "GET", "/healthz", headers={
        "host": "hub.binder.example", "origin": "https://evil.example",
        "x-forwarded-context": "/user/ada/proxy/4020"})
    assert cross.status_code == 403


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ([], None)),
    ({"JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/"}, ([], None)),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/",
      "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/"}, (["hub.example.org"], None)),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/", "JUPYTERHUB_HOST": "ada.hub.example.org"},
     (["ada.hub.example.org"], None)),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/", "BINDER_LAUNCH_HOST": "https://mybinder.org/"},
     ([], "/user/ada/")),
], ids=["plain", "no-hub", "hub-public-url", "hub-subdomain", "binder"])
def test_jupyter_allowances(env: dict, expected: tuple) -> None:
    assert jupyter_allowances(env) == expected


# -- the key never leaves ------------------------------------------------------------------------
def test_key_never_appears_in_responses_pages_or_logs(offline: OfflineProvider,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    offline.api_key = FAKE_KEY  # the provider accepts only the real key...
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    app = create_app(config, read_timeout=0.3)
    requests = [
        ("POST", "/api/chat/stream", {"question": "What is 1+1?"}),
        ("POST", "/api/chat/stream", {"question": "hi [fault:midstream]"}),
        ("POST", "/api/chat/stream", {"question": "hi [fault:stall]"}),
        ("POST", "/api/chat/stream", {"question": "hi [fault:429]"}),
        ("POST", "/api/chat/stream", {"question": "hi [fault:401]"}),
        ("POST", "/api/chat/stream", {"question": ""}),
        ("POST", "/chatbot/llm/chatstream", {"question": "What is 1+1?"}),
        ("GET", "/", None), ("GET", "/static/chat.js", None), ("GET", "/static/sse.js", None),
        ("GET", "/healthz", None), ("GET", "/nope", None),
    ]
    seen = []
    for method, path, body in requests:
        response = call(app, method, path, json=body)
        seen.append(response.text + str(response.headers))
    # ...so an answer proves the relay sent the key upstream.
    assert text_of(sse_events(seen[0].split("Headers(")[0])) == "$1 + 1 = 2$."
    with start_relay(config, jupyter=False, name="relay-key") as relay:
        page = httpx.get(relay.url)
        seen.append(page.text + str(page.headers))
        with httpx.stream("POST", relay.url + "api/chat/stream",
                          json={"question": "hi [fault:cut]"}) as response:
            seen.append(response.read().decode())
    assert all(FAKE_KEY not in text for text in seen)
    assert caplog.records  # the logs were really captured...
    assert FAKE_KEY not in caplog.text  # ...and hold no key
    assert repr(config).count(FAKE_KEY) == 0


def test_a_provider_that_echoes_the_key_is_scrubbed(config: Config) -> None:
    def upstream(request: Any) -> Any:
        import httpx2
        key = request.headers["authorization"].split()[-1]
        return httpx2.Response(401, json={"error": {
            "type": "invalid_api_key", "message": f"Incorrect API key provided: {key}"}})

    import httpx2
    client = openai.AsyncOpenAI(api_key=FAKE_KEY, base_url="http://upstream.test/v1",
                                max_retries=0, http_client=openai.DefaultAsyncHttpxClient(
                                    transport=httpx2.MockTransport(upstream)))
    leaky = Config("openai", "http://upstream.test/v1", "gpt-4o-mini", FAKE_KEY)
    app = create_app(leaky, client=client)
    response = call(app, "POST", "/api/chat/stream", json={"question": "hi"})
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "Incorrect API key provided: sk-…ef" in message
    assert FAKE_KEY not in response.text


# -- the command line ------------------------------------------------------------------------------
def _run_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "helpers.relay", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = _run_cli("--port", str(port))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in err


@pytest.mark.parametrize("upstream", ["offline-in-process", "base-url"])
def test_cli_serves_until_sigterm(offline: OfflineProvider, upstream: str) -> None:
    args = ["--port", "0", "--read-timeout", "0.5"]
    if upstream == "base-url":
        args += ["--base-url", offline.base_url, "--api-key", "local-key",
                 "--model", "moonshot-v1-8k"]
    proc = _run_cli(*args)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("relay serving at http://127.0.0.1:"), line
        url = line.split()[3]
        health = httpx.get(url + "healthz", timeout=10).json()
        assert health["provider"] == ("local" if upstream == "base-url" else "offline")
        events = sse_events(httpx.post(url + "api/chat/stream", timeout=10,
                                       json={"question": "What is 1+1?"}).text)
        assert text_of(events) == "$1 + 1 = 2$."
        stalled = sse_events(httpx.post(url + "api/chat/stream", timeout=10,
                                        json={"question": "hi [fault:stall]"}).text)
        assert stalled[-1][1]["message"] == "The provider sent nothing for 0.5 s (read timeout)"
        if upstream == "base-url":
            assert offline.stats()["completed"] == 1  # it really used the given upstream
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_unreadable_body_says_what_to_send(app: Any) -> None:
    """Regression: FastAPI's 'There was an error parsing the body' told the client nothing."""
    response = call(app, "POST", "/api/chat/stream", content=b'{"question": "\xff"}',
                    headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "UTF-8 JSON" in response.json()["error"]["message"]


def test_a_long_unknown_path_is_not_echoed_in_full(app: Any) -> None:
    response = call(app, "GET", "/" + "x" * 20_000)
    assert response.status_code == 404
    assert len(response.json()["error"]["message"]) < 300
