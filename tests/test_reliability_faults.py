"""Reliability, family 2: upstream faults reach the user as a clear error, promptly, with the
partial text kept: through the relay (over a real socket), the SDK alone, and the widget view.

tests/test_relay.py already covers 429, 503, 401 and 404 before streaming (in-process), a wrong
key, midstream/cut/malformed/stall after streaming started; tests/test_offline.py the SDK
exception classes; tests/test_widgets.py the view for 401, 429, midstream and cut. This module
adds what was missing (400, 403, 500, retries that succeed or run out, connection refused, the
stall for the SDK and the view, malformed for the view) and runs every case over a real socket,
recording how long the error took (docs/reliability.md; the asserts use generous deadlines).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import openai
import pytest
from conftest import FAKE_KEY
from httpx_sse import connect_sse
from reliability_figures import record

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config
from helpers.streams.chunks import collect
from helpers.views.meter import WireMeter
from helpers.views.show import StreamView

pytestmark = pytest.mark.timeout(120)
QUESTION = "What is the Pythagorean theorem?"
FULL = compose_reply([{"role": "user", "content": QUESTION}]).text
READ_TIMEOUT = 1.0


@dataclass
class Outcome:
    """What a client saw: HTTP status, events with arrival times, or an error body."""

    status: int
    started: float
    events: list[tuple[str, dict, float]] = field(default_factory=list)
    error: dict | None = None
    ended: float = 0.0

    @property
    def text(self) -> str:
        return "".join(d["content"] for e, d, _ in self.events if e == "delta")

    @property
    def last(self) -> tuple[str, dict, float]:
        return self.events[-1]

    def gap_before_last(self) -> float:
        """Seconds between the last delta and the terminal event."""
        deltas = [t for e, _, t in self.events if e == "delta"]
        return self.events[-1][2] - deltas[-1]


def ask(relay: Relay, question: str, path: str = "api/chat/stream") -> Outcome:
    with httpx.Client(base_url=relay.url, timeout=30) as client, connect_sse(
            client, "POST", path, json={"question": question}) as source:
        outcome = Outcome(source.response.status_code, time.perf_counter())
        if outcome.status != 200:
            outcome.error = json.loads(source.response.read())["error"]
        else:
            for event in source.iter_sse():
                outcome.events.append((event.event, json.loads(event.data), time.perf_counter()))
        outcome.ended = time.perf_counter()
    return outcome


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    server = start_relay(config, read_timeout=READ_TIMEOUT, jupyter=False,
                         name="relay-reliability-faults")
    yield server
    server.stop()


# -- before the stream: an HTTP status the page can show ---------------------------------------
@pytest.mark.parametrize(("fault", "status", "kind", "attempts"), [
    (400, 400, "invalid_request_error", 1),
    (401, 502, "invalid_authentication_error", 1),
    (403, 502, "permission_denied_error", 1),
    (404, 502, "resource_not_found_error", 1),
    (429, 429, "rate_limit_reached_error", 3),   # the SDK retried twice, then gave up
    (500, 502, "server_error", 3),
    (503, 503, "engine_overloaded_error", 3),
])
def test_status_fault_is_a_clear_http_error_from_the_relay(relay: Relay, offline: OfflineProvider,
                                                           fault: int, status: int, kind: str,
                                                           attempts: int) -> None:
    started = time.perf_counter()
    outcome = ask(relay, f"{QUESTION} [fault:{fault}]")
    record("fault_to_client_error", time.perf_counter() - started, fault=str(fault),
           where="relay", attempts=attempts)
    assert outcome.status == status
    assert outcome.error is not None and outcome.error["type"] == kind
    assert len(outcome.error["message"]) > 10 and FAKE_KEY not in outcome.error["message"]
    if fault in (401, 403):
        assert f"refused the relay's API key ({fault})" in outcome.error["message"]
    stats = offline.stats()
    assert stats["statuses"] == {str(fault): attempts}  # retried only what is worth retrying
    assert stats["streams"] == 0
    assert httpx.get(relay.url + "healthz").json()["ok"] is True


def test_rate_limit_that_clears_is_retried_and_the_answer_is_whole(relay: Relay,
                                                                   offline: OfflineProvider
                                                                   ) -> None:
    started = time.perf_counter()
    outcome = ask(relay, f"{QUESTION} [fault:429:2]")
    record("retry_429_twice_then_answer", time.perf_counter() - started, where="relay")
    assert outcome.status == 200
    assert outcome.text == FULL and outcome.last[0] == "done"
    assert offline.stats()["statuses"] == {"429": 2, "200": 1}


def test_rate_limit_that_outlasts_the_retries_reaches_the_user(relay: Relay,
                                                                offline: OfflineProvider) -> None:
    outcome = ask(relay, f"{QUESTION} [fault:429:5]")
    assert outcome.status == 429 and outcome.error is not None
    assert "Rate limit" in outcome.error["message"]
    assert offline.stats()["statuses"] == {"429": 3}


def test_connection_refused_is_a_502_that_says_so(offline: OfflineProvider) -> None:
    """Regression: on the aiohttp transport a refused connection surfaced as ConnectTimeout,
    and the relay said 504 "the provider sent nothing for 60 s" (fixed in 6ab02e0)."""
    placeholder = socket.socket()  # bound, never listening: connections to it are refused
    placeholder.bind(("127.0.0.1", 0))
    dead_port = placeholder.getsockname()[1]
    config = Config("local", f"http://127.0.0.1:{dead_port}/v1", "moonshot-v1-8k", FAKE_KEY)
    with placeholder, start_relay(config, read_timeout=READ_TIMEOUT, jupyter=False,
                                  name="relay-reliability-refused") as relay:
        for path in ("api/chat/stream", "chatbot/llm/chatstream"):
            started = time.perf_counter()
            response = httpx.post(relay.url + path, json={"question": QUESTION}, timeout=30)
            record("connection_refused_to_client_error", time.perf_counter() - started,
                   where=path)
            assert response.status_code == 502
            assert response.json()["error"] == {
                "type": "upstream_connection_error",
                "message": "The connection to the provider failed"}
        assert httpx.get(relay.url + "healthz").json()["ok"] is True


# -- after the stream started: an error event after the text already sent ----------------------
@pytest.mark.parametrize(("fault", "kind"), [
    ("midstream", "server_error"),
    ("cut", "upstream_connection_error"),
    ("malformed", "upstream_error"),
    ("stall", "upstream_timeout"),
])
def test_stream_fault_is_an_error_event_after_the_partial_text(relay: Relay,
                                                               offline: OfflineProvider,
                                                               fault: str, kind: str) -> None:
    outcome = ask(relay, f"{QUESTION} [fault:{fault}]")
    assert outcome.status == 200
    name, data, _ = outcome.last
    assert name == "error" and data["type"] == kind and data["message"]
    assert [e for e, _, _ in outcome.events].count("error") == 1
    assert "done" not in [e for e, _, _ in outcome.events]
    assert outcome.text and FULL.startswith(outcome.text) and outcome.text != FULL
    # Nothing lost: the client holds exactly what the provider sent before the fault.
    stats = offline.wait_for(lambda s: s["open_streams"] == 0, timeout=10)
    sent = stats["recent"][-1]["sent"]  # counts the role chunk, and the bad chunk if any
    bad_chunk = 1 if fault in ("midstream", "malformed") else 0
    assert len([e for e, _, _ in outcome.events if e == "delta"]) == sent - 1 - bad_chunk
    record("stream_fault_to_client_error", outcome.gap_before_last(), fault=fault,
           where="relay", read_timeout=READ_TIMEOUT if fault == "stall" else None)
    if fault == "stall":
        assert data["message"] == f"The provider sent nothing for {READ_TIMEOUT:g} s (read timeout)"
        assert stats["recent"][-1]["outcome"] == "disconnected"  # the relay hung up


def test_raw_text_route_ends_early_on_a_stall_instead_of_hanging(relay: Relay,
                                                                  offline: OfflineProvider
                                                                  ) -> None:
    started = time.perf_counter()
    response = httpx.post(relay.url + "chatbot/llm/chatstream", timeout=30,
                          json={"question": f"{QUESTION} [fault:stall]"})
    record("stall_raw_route_ends", time.perf_counter() - started, where="relay",
           read_timeout=READ_TIMEOUT)
    assert response.status_code == 200
    assert response.text and FULL.startswith(response.text) and response.text != FULL
    offline.wait_for(lambda s: s["disconnects"] == 1 and s["open_streams"] == 0, timeout=10)


# -- the SDK on its own, and the widget view ------------------------------------------------------
def test_sdk_read_timeout_ends_a_stall_and_keeps_the_text(offline: OfflineProvider) -> None:
    client = openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0,
                           timeout=openai.Timeout(10, read=READ_TIMEOUT))
    received: list[str] = []
    stream = client.chat.completions.create(
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": f"{QUESTION} [fault:stall]"}])
    last = time.perf_counter()

    def keep(text: str) -> None:
        nonlocal last
        received.append(text)
        last = time.perf_counter()

    with pytest.raises(openai.APITimeoutError):
        collect(stream, on_text=keep)
    record("stream_fault_to_client_error", time.perf_counter() - last, fault="stall",
           where="sdk", read_timeout=READ_TIMEOUT)
    text = "".join(received)
    assert text and FULL.startswith(text) and text != FULL
    stream.close()
    offline.wait_for(lambda s: s["disconnects"] == 1 and s["open_streams"] == 0, timeout=10)
    client.close()


@pytest.mark.parametrize(("marker", "expected", "partial"), [
    ("[fault:stall]", "connection problem", True),
    ("[fault:malformed]", "JSONDecodeError", True),
    ("[fault:403]", "403 PermissionDeniedError", False),
    ("[fault:500]", "500 InternalServerError", False),
    ("[fault:400]", "400 BadRequestError", False),
], ids=["stall", "malformed", "403", "500", "400"])
def test_widget_view_shows_the_error_and_keeps_the_text(offline: OfflineProvider, marker: str,
                                                        expected: str, partial: bool) -> None:
    client = openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0,
                           timeout=openai.Timeout(10, read=READ_TIMEOUT))
    request = lambda: client.chat.completions.create(  # noqa: E731 - as a lesson writes it
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": f"{QUESTION} {marker}"}])
    with WireMeter() as meter:
        started = time.perf_counter()
        view = StreamView(widgets=True).start(request)
        view.wait(30)
    record("widget_error_shown", time.perf_counter() - started, fault=marker)
    assert view.state == "error" and expected in (view.error or "")
    assert FAKE_KEY not in (view.error or "")
    assert meter.shown_text(view.root) == view.text
    assert "error" in meter.state(meter.find(view.root, "llm-stream-status"))["value"]
    if partial:
        assert view.text and FULL.startswith(view.text) and view.text != FULL
    else:
        assert view.text == ""
    client.close()


def test_widget_view_shows_a_refused_connection_and_a_rate_limit_that_clears(
        offline: OfflineProvider) -> None:
    with socket.socket() as placeholder:  # bound, never listening: connections are refused
        placeholder.bind(("127.0.0.1", 0))
        dead = openai.OpenAI(base_url=f"http://127.0.0.1:{placeholder.getsockname()[1]}/v1",
                             api_key=FAKE_KEY, max_retries=0)
        with WireMeter():
            refused = StreamView(widgets=True).start(lambda: dead.chat.completions.create(
                model="moonshot-v1-8k", stream=True,
                messages=[{"role": "user", "content": QUESTION}]))
            refused.wait(30)
    assert refused.state == "error" and "connection problem" in (refused.error or "")
    assert "refused" in (refused.error or "").lower() and refused.text == ""
    retrying = openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=2)
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(lambda: retrying.chat.completions.create(
            model="moonshot-v1-8k", stream=True,
            messages=[{"role": "user", "content": f"{QUESTION} [fault:429:2]"}]))
        view.wait(30)
    assert view.state == "done" and view.text == FULL  # the SDK's retries, invisible to the user
    assert meter.shown_text(view.root) == FULL
    assert offline.stats()["statuses"] == {"429": 2, "200": 1}
    dead.close()
    retrying.close()
