"""Reliability, family 4: bad input to the relay and to the offline provider, over real sockets.

Every case gets a 4xx with a message, nothing reaches the provider (for the relay), no file
outside the static folder is served, and the server still answers afterwards.

Already covered (counted in docs/reliability.md, not repeated): tests/test_relay.py
``BAD_BODIES`` (13 bodies), the blog route's validation (3), 415, 413 with and without
Content-Length, 404/405; tests/test_offline.py 12 bad bodies and an unknown route. Here: path
tricks, overlong URLs and headers, broken HTTP, non-UTF-8 and deeply nested bodies sent to the
relay, and more wrong types, roles and sizes, for both servers.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from reliability_figures import record

from helpers.offline import OfflineProvider
from helpers.relay import MAX_HISTORY, MAX_TEXT_CHARS, Relay, start_relay
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
JSON = {"content-type": "application/json"}
#: Bytes that must never come back: our sources, /etc/passwd, a directory listing.
SECRETS_OF_THE_DISK = [b"import ", b"def ", b"root:", b"<title>Index of", b"__pycache__"]


@pytest.fixture(scope="module")
def relay(offline_server: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline_server.base_url, "moonshot-v1-8k", "test-key")
    server = start_relay(config, read_timeout=5, jupyter=False, name="relay-reliability-input")
    yield server
    server.stop()


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send raw bytes (no client normalises the path); return (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # the server may close before it has read everything: read its answer
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    assert match, f"no HTTP status in {data[:200]!r}"
    return int(match.group(1)), body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def still_up(relay: Relay, offline: OfflineProvider) -> None:
    assert httpx.get(relay.url + "healthz", timeout=5).json()["ok"] is True
    assert httpx.get(offline.server.url + "/healthz", timeout=5).json() == {"ok": True}


# -- path tricks, overlong URLs, broken HTTP: both servers ------------------------------------
PATHS = [
    ("dot-dot", "/static/../relay.py"),
    ("encoded-dot-dot", "/static/%2e%2e/relay.py"),
    ("encoded-slash", "/static/%2e%2e%2frelay.py"),
    ("mixed-encoding", "/static/..%2fsettings.py"),
    ("double-dot-dot", "/static/../../../../../../etc/passwd"),
    ("backslash", "/static/..\\relay.py"),
    ("double-slash-root", "//etc/passwd"),
    ("double-slash-static", "/static//etc/passwd"),
    ("encoded-absolute", "/static/%2fetc%2fpasswd"),
    ("encoded-nul", "/static/sse.js%00.txt"),
    ("nul-only", "/%00"),
    ("directory", "/static/"),
    ("api-dot-dot", "/api/chat/../../healthz/../static/../relay.py"),
    ("overlong-10k", "/" + "a" * 10_000),
    ("overlong-100k", "/static/" + "b" * 100_000),
]


@pytest.mark.parametrize("server", ["relay", "offline"])
@pytest.mark.parametrize(("path",), [(p,) for _, p in PATHS], ids=[n for n, _ in PATHS])
def test_path_tricks_get_a_4xx_and_no_file(relay: Relay, offline: OfflineProvider, server: str,
                                           path: str) -> None:
    port = relay.port if server == "relay" else offline.server.port
    status, body = raw_request(port, get(path))
    assert 400 <= status < 500, (status, body[:200])
    if body.startswith(b"{"):
        error = json.loads(body)["error"]
        assert error["type"] and error["message"]
    else:  # refused by the HTTP parser before any app code: uvicorn's plain-text message
        assert body.strip() == b"Invalid HTTP request received.", body[:200]
    assert not any(secret in body for secret in SECRETS_OF_THE_DISK), body[:200]
    still_up(relay, offline)


HUGE_HEADER = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"d" * 2_000_000
               + b"\r\nConnection: close\r\n\r\n")
BROKEN_HTTP = [
    ("overlong-1m-url", get("/" + "c" * 1_000_000)),
    ("not-http", b"GARBAGE\r\n\r\n"),
    ("negative-length", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n"),
    ("nul-in-header", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x00b\r\n\r\n"),
    ("bad-chunk-size", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
]


@pytest.mark.parametrize("server", ["relay", "offline"])
@pytest.mark.parametrize(("request_bytes",), [(r,) for _, r in BROKEN_HTTP],
                         ids=[n for n, _ in BROKEN_HTTP])
def test_broken_http_is_a_400_and_the_server_stays_up(relay: Relay, offline: OfflineProvider,
                                                      server: str, request_bytes: bytes) -> None:
    port = relay.port if server == "relay" else offline.server.port
    status, body = raw_request(port, request_bytes)
    # uvicorn's HTTP parser refuses these: a plain-text 400 (chunked when the bad bytes are
    # found while the app reads the body, as with a bad chunk size).
    assert status == 400 and b"Invalid HTTP request received." in body, body[:200]
    still_up(relay, offline)


def test_a_request_without_host_is_refused_by_the_relay(relay: Relay,
                                                        offline: OfflineProvider) -> None:
    status, body = raw_request(relay.port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status in (400, 403), body[:200]
    assert b"Host" in body or b"Invalid HTTP request" in body
    still_up(relay, offline)


# Regression: with uvicorn's own httptools protocol (briefly, in d58c936) a 64 MB header was
# read and answered 200; h11 refuses heads over 16 KiB, and so does helpers/bounded_http.py.
@pytest.mark.parametrize("server", ["relay", "offline"])
def test_a_huge_request_header_is_refused(relay: Relay, offline: OfflineProvider,
                                          server: str) -> None:
    port = relay.port if server == "relay" else offline.server.port
    status, body = raw_request(port, HUGE_HEADER)
    still_up(relay, offline)
    assert 400 <= status < 500, (status, body[:100])


# -- bodies the relay must refuse ---------------------------------------------------------------
RELAY_BODIES = [
    ("non-utf8", b'{"question": "\xff\xfe"}', JSON, 400),
    ("deep-nesting", b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, 400),
    ("nan", b'{"question": NaN}', JSON, 422),
    ("json-string", b'"What is 1+1?"', JSON, 422),
    ("json-null", b"null", JSON, 422),
    ("question-null", b'{"question": null}', JSON, 422),
    ("question-list", b'{"question": ["What is 1+1?"]}', JSON, 422),
    ("question-bool", b'{"question": true}', JSON, 422),
    ("unknown-role-messages", b'{"messages": [{"role": "tool", "content": "x"}]}', JSON, 422),
    ("wizard-role-history", b'{"question": "hi", "history": [{"role": "wizard", "content": "x"}]}',
     JSON, 422),
    ("history-missing-content", b'{"question": "hi", "history": [{"role": "user"}]}', JSON, 422),
    ("history-extra-field", b'{"question": "hi", "history": [{"role": "user", "content": "x", '
     b'"name": "n"}]}', JSON, 422),
    ("messages-empty", b'{"messages": []}', JSON, 422),
    ("messages-not-list", b'{"messages": {"role": "user", "content": "x"}}', JSON, 422),
    ("messages-content-list", b'{"messages": [{"role": "user", "content": ["x"]}]}', JSON, 422),
    ("messages-blank-last", b'{"messages": [{"role": "user", "content": "  "}]}', JSON, 422),
    ("messages-too-many", json.dumps({"messages": [{"role": "user", "content": "x"}]
                                      * (MAX_HISTORY + 2)}).encode(), JSON, 422),
    ("message-too-long", json.dumps({"messages": [{"role": "user", "content":
                                                   "x" * (MAX_TEXT_CHARS + 1)}]}).encode(),
     JSON, 422),
    ("form-encoded", b"question=hi", {"content-type": "application/x-www-form-urlencoded"}, 415),
    ("no-content-type", b'{"question": "hi"}', {}, 415),
    ("multipart", b'--x\r\nContent-Disposition: form-data; name="question"\r\n\r\nhi\r\n--x--\r\n',
     {"content-type": "multipart/form-data; boundary=x"}, 415),
    ("latin-1-declared", '{"question": "é"}'.encode("latin-1"),
     {"content-type": "application/json; charset=latin-1"}, 400),
]


@pytest.mark.parametrize(("body", "headers", "status"), [b[1:] for b in RELAY_BODIES],
                         ids=[b[0] for b in RELAY_BODIES])
@pytest.mark.parametrize("path", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_relay_refuses_bad_bodies_with_a_4xx_and_asks_nothing_upstream(
        relay: Relay, offline: OfflineProvider, path: str, body: bytes, headers: dict,
        status: int) -> None:
    response = httpx.post(relay.url + path, content=body, headers=headers, timeout=10)
    assert response.status_code == status, response.text[:300]
    assert set(response.json()) == {"error"}
    error = response.json()["error"]
    assert set(error) == {"type", "message"} and len(error["message"]) > 5
    assert offline.stats()["chat_requests"] == 0
    still_up(relay, offline)


# -- bodies the offline provider must refuse ---------------------------------------------------
def chat(**fields: object) -> bytes:
    body: dict[str, object] = {"model": "moonshot-v1-8k",
                               "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return json.dumps(body).encode()


OFFLINE_BODIES = [
    ("temperature-high", chat(temperature=5), 400, "temperature"),
    ("temperature-text", chat(temperature="hot"), 400, "temperature"),
    ("stream-options-text", chat(stream=True, stream_options="yes"), 400, "stream_options"),
    ("messages-object", chat(messages={"role": "user", "content": "hi"}), 400, "messages"),
    ("messages-empty", chat(messages=[]), 400, "messages"),
    ("message-not-object", chat(messages=["hi"]), 400, "messages[0]"),
    ("message-no-role", chat(messages=[{"content": "hi"}]), 400, "role"),
    ("user-content-null", chat(messages=[{"role": "user", "content": None}]), 400, "content"),
    ("model-empty", chat(model=" "), 400, "model"),
    ("max-tokens-bool", chat(max_tokens=True), 400, "max_tokens"),
    ("max-tokens-zero", chat(max_tokens=0), 400, "max_tokens"),
    ("nan", b'{"model": "moonshot-v1-8k", "messages": NaN}', 400, "messages"),
    ("json-null", b"null", 400, "JSON object"),
]


@pytest.mark.parametrize(("body", "status", "needle"), [b[1:] for b in OFFLINE_BODIES],
                         ids=[b[0] for b in OFFLINE_BODIES])
def test_offline_provider_refuses_bad_bodies_with_a_4xx(relay: Relay, offline: OfflineProvider,
                                                        body: bytes, status: int,
                                                        needle: str) -> None:
    response = httpx.post(offline.base_url + "/chat/completions", content=body,
                          headers={**JSON, "Authorization": "Bearer k"}, timeout=10)
    assert response.status_code == status, response.text[:300]
    assert needle in response.json()["error"]["message"]
    assert offline.stats()["streams"] == 0
    still_up(relay, offline)


def test_offline_provider_refuses_a_huge_chunked_body_without_content_length(
        relay: Relay, offline: OfflineProvider) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}]}'

    response = httpx.post(offline.base_url + "/chat/completions", content=body(),
                          headers={**JSON, "Authorization": "Bearer k"}, timeout=10)
    assert response.status_code == 413 and "too large" in response.json()["error"]["message"]
    still_up(relay, offline)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "k", ""],
                         ids=["basic", "bearer-no-key", "other-scheme", "no-scheme", "empty"])
def test_offline_provider_refuses_malformed_authorization(relay: Relay, offline: OfflineProvider,
                                                          header: str) -> None:
    response = httpx.post(offline.base_url + "/chat/completions", content=chat(),
                          headers={**JSON, "Authorization": header}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_authentication_error"
    assert offline.stats()["streams"] == 0


def test_a_burst_of_bad_requests_leaves_both_servers_answering(relay: Relay,
                                                               offline: OfflineProvider) -> None:
    """All the relay's bad bodies, 10 times each, then one good question."""
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            for _, body, headers, status in RELAY_BODIES:
                response = client.post(relay.url + "api/chat/stream", content=body,
                                       headers=headers)
                assert response.status_code == status
        good = client.post(relay.url + "api/chat/stream", json={"question": "What is 1+1?"})
    assert good.status_code == 200 and "event: done" in good.text
    stats = offline.stats()
    assert stats["chat_requests"] == 1 and stats["completed"] == 1
    record("bad_input_burst_requests", 10 * len(RELAY_BODIES), unit="requests")
