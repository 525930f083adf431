"""Reliability, family 7: the key cannot leak, and the relay refuses other sites.

Tests run with a recognisable fake key (``conftest.FAKE_KEY``). The offline provider is made
to accept *only* that key, so an answer proves the relay really holds and uses it; then every
place a key could escape is searched for it: committed files and notebooks (outputs and widget
state), the served page and every static file, the relay's responses on every path (success,
each error status, each mid-stream failure, the guards), and the logs, in-process (all loggers
at DEBUG) and from a ``python -m helpers.relay`` subprocess whose environment holds the key
(with the SDK's own debug logging switched on).

Already covered: tests/test_relay.py (a dozen relay paths in-process; a provider that echoes
the key in a 401), tests/test_widgets.py (widget state and view errors), tests/test_notebooks.py
(no ``sk-`` string in a notebook), tests/test_settings.py (the masked key).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import psutil
import pytest
from conftest import FAKE_KEY

from helpers.offline import OfflineProvider
from helpers.relay import Relay, create_app, start_relay
from helpers.servers import BackgroundServer
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "helpers" / "static"
#: The key, and pieces of it long enough to identify it (a masked key shows 2-4 characters).
NEEDLES = [FAKE_KEY, FAKE_KEY[3:], FAKE_KEY[-16:]]


def leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


@pytest.fixture
def keyed(offline: OfflineProvider) -> Iterator[Relay]:
    """A relay holding FAKE_KEY, upstream an offline provider that accepts only FAKE_KEY."""
    offline.api_key = FAKE_KEY
    config = Config("moonshot", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    relay = start_relay(config, read_timeout=0.5, jupyter=False, name="relay-secrets")
    yield relay
    relay.stop()


# -- committed files ----------
def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def test_no_committed_file_outside_the_tests_holds_the_test_key() -> None:
    files = tracked_files()
    assert any(p.suffix == ".ipynb" for p in files)
    holders = [p.relative_to(ROOT).as_posix() for p in files
               if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert "tests/conftest.py" in holders  # the search works...
    assert [h for h in holders if not h.startswith("tests/")] == []  # ...and finds no other


KEY_SHAPES = re.compile(r"\b(?:sk|ak)-[A-Za-z0-9_-]{12,}|Bearer\s+[A-Za-z0-9._~+/-]{12,}"
                        r"|\bapi_key\s*[=:]\s*['\"][A-Za-z0-9_-]{12,}"
                        r"|token=[A-Za-z0-9_-]{12,}")  # a relay's access token in a link


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_notebook_outputs_and_widget_state_hold_no_key(path: Path) -> None:
    notebook = json.loads(path.read_text())
    places: dict[str, str] = {"notebook metadata": json.dumps(notebook.get("metadata", {}))}
    for i, cell in enumerate(notebook["cells"]):
        places[f"cell {i} outputs"] = json.dumps(cell.get("outputs", []))
        places[f"cell {i} metadata"] = json.dumps(cell.get("metadata", {}))
    widget_state = notebook.get("metadata", {}).get("widgets", {})
    found = {where: KEY_SHAPES.findall(text) for where, text in places.items()}
    assert not {w: f for w, f in found.items() if f}
    assert not leaks(json.dumps(notebook))
    assert not leaks(json.dumps(widget_state))


def test_env_is_ignored_by_git_and_the_example_holds_no_key() -> None:
    for name in (".env", "notebooks/.env", "sub/dir/.env"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name
    example = (ROOT / ".env.example").read_text()
    assert not KEY_SHAPES.findall(example)
    assert all(not line.split("=", 1)[1].strip() for line in example.splitlines()
               if re.match(r"^[A-Z_]+_API_KEY=", line))


# -- the page, static files and every relay response ----------
def test_page_and_every_static_file_hold_no_key(keyed: Relay) -> None:
    files = sorted(p.name for p in STATIC.iterdir() if p.is_file())
    assert {"index.html", "sse.js", "chat.js"} <= set(files)
    seen = []
    for path in ["", "healthz", *(f"static/{name}" for name in files)]:
        response = httpx.get(keyed.url + path, timeout=10)
        assert response.status_code == 200, path
        seen.append((path, response.text + json.dumps(dict(response.headers))))
    assert [(p, leaks(t)) for p, t in seen if leaks(t)] == []


PATHS = [
    ("ok", {"question": "What is 1+1?"}, 200),
    ("400", {"question": "hi [fault:400]"}, 400),
    ("401", {"question": "hi [fault:401]"}, 502),
    ("403", {"question": "hi [fault:403]"}, 502),
    ("404", {"question": "hi [fault:404]"}, 502),
    ("429", {"question": "hi [fault:429]"}, 429),
    ("500", {"question": "hi [fault:500]"}, 502),
    ("503", {"question": "hi [fault:503]"}, 503),
    ("midstream", {"question": "hi [fault:midstream]"}, 200),
    ("cut", {"question": "hi [fault:cut]"}, 200),
    ("malformed", {"question": "hi [fault:malformed]"}, 200),
    ("stall", {"question": "hi [fault:stall]"}, 200),
    ("422", {"question": ""}, 422),
    ("422-extra", {"question": "hi", "api_key": "x"}, 422),
]


@pytest.mark.parametrize("route", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_every_relay_response_path_is_free_of_the_key(keyed: Relay, offline: OfflineProvider,
                                                      route: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    with httpx.Client(base_url=keyed.url, timeout=30) as client:
        for name, body, status in PATHS:
            response = client.post(route, json=body)
            expected = 422 if route.startswith("chatbot") and name == "422-extra" else status
            assert response.status_code == expected, (name, response.text[:200])
            bodies.append((name, response.text + json.dumps(dict(response.headers))))
        for method, path, headers in [
                ("GET", "nope", {}), ("GET", route, {}),
                ("POST", route, {"content-type": "text/plain"}),
                ("POST", route, {"origin": "http://evil.example"}),
                ("POST", route, {"host": "evil.example"})]:
            response = client.request(method, path, headers=headers, content=b"{}")
            assert 400 <= response.status_code < 500
            bodies.append((f"{method} {path} {headers}", response.text))
    first = bodies[0][1]  # the key worked: the provider accepts only it
    assert "event: done" in first or first.startswith("$1 + 1 = 2$.")
    assert [(n, leaks(t)) for n, t in bodies if leaks(t)] == []
    assert caplog.records and not leaks(caplog.text)


def test_connection_refused_is_free_of_the_key() -> None:
    with socket.socket() as placeholder:  # bound, never listening: connections are refused
        placeholder.bind(("127.0.0.1", 0))
        dead = placeholder.getsockname()[1]
        config = Config("moonshot", f"http://127.0.0.1:{dead}/v1", "moonshot-v1-8k", FAKE_KEY)
        with start_relay(config, jupyter=False, name="relay-secrets-refused") as relay:
            response = httpx.post(relay.url + "api/chat/stream", json={"question": "hi"},
                                  timeout=30)
    assert response.status_code == 502 and not leaks(response.text)
    assert response.json()["error"]["type"] == "upstream_connection_error"


def echoing_provider(where: str) -> Any:
    """A provider that echoes the caller's key back: in a 400 body, or in a mid-stream error."""
    def handler(request: Any) -> Any:
        key = request.headers["authorization"].split()[-1]
        message = f"Incorrect API key provided: {key}. Header was Bearer {key}"
        if where == "status":
            return httpx2.Response(400, json={"error": {"type": "invalid_request_error",
                                                        "message": message}})

        async def body() -> AsyncIterator[bytes]:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "partial"},
                                  "finish_reason": None}]}
            yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            yield b"data: " + json.dumps({"error": {"type": "auth", "message": message}}
                                         ).encode() + b"\n\n"

        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=body())
    return handler


@pytest.mark.parametrize("where", ["status", "midstream"])
def test_a_provider_echoing_the_key_is_scrubbed_on_every_path(where: str) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_KEY, base_url="http://upstream.test/v1",
                                max_retries=0, http_client=openai.DefaultAsyncHttpxClient(
                                    transport=httpx2.MockTransport(echoing_provider(where))))
    app = create_app(Config("openai", "http://upstream.test/v1", "m", FAKE_KEY), client=client)
    server = BackgroundServer(app, name="relay-secrets-echo").start()
    try:
        texts = [httpx.post(server.url + path, json={"question": "hi"}, timeout=30).text
                 for path in ("/api/chat/stream", "/chatbot/llm/chatstream")]
    finally:
        server.stop()
    assert "Incorrect API key provided" in texts[0]  # the message itself comes through...
    assert [leaks(t) for t in texts] == [[], []]     # ...masked


# -- logs of a relay run from the shell, key in its environment ----------
def test_relay_cli_with_the_key_in_its_environment_never_logs_or_shows_it(
        offline: OfflineProvider) -> None:
    offline.api_key = FAKE_KEY
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_PROVIDER",)}
    env.update(MOONSHOT_API_KEY=FAKE_KEY, PYTHONUNBUFFERED="1", OPENAI_LOG="debug")
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.relay", "--port", "0", "--provider", "moonshot",
         "--base-url", offline.base_url, "--model", "moonshot-v1-8k", "--read-timeout", "0.5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("relay serving at http://127.0.0.1:"), line
        url = line.split()[3]
        assert FAKE_KEY not in " ".join(psutil.Process(proc.pid).cmdline())  # not in `ps`
        texts = []
        for _, body, status in PATHS:
            response = httpx.post(url + "api/chat/stream", json=body, timeout=30)
            assert response.status_code == status
            texts.append(response.text)
        assert "1 + 1 = 2" in "".join(json.loads(ln[5:]).get("content", "")
                                      for ln in texts[0].splitlines() if ln.startswith("data:"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "HTTP Request" in err or "Request options" in err  # the SDK's debug log was on
    assert leaks(out + err) == [] and [leaks(t) for t in texts if leaks(t)] == []


# -- guards over a real socket ----------
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "api/chat/stream"), ("POST", "chatbot/llm/chatstream"), ("GET", ""),
    ("GET", "static/chat.js"), ("GET", "healthz"), ("OPTIONS", "api/chat/stream")])
@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},
    {"origin": "null"},                                   # sandboxed iframe, file:// page
    {"origin": "http://127.0.0.1.evil.example"},
    {"host": "evil.example"},                              # DNS rebinding: 127.0.0.1 by name
    {"host": "localtest.me:4020"},
    {"host": "127.0.0.1.nip.io", "origin": "http://127.0.0.1.nip.io"},
], ids=["foreign-origin", "null-origin", "lookalike-origin", "rebinding-host",
        "rebinding-host-port", "rebinding-both"])
def test_foreign_origins_and_rebinding_hosts_get_403(keyed: Relay, offline: OfflineProvider,
                                                     method: str, path: str,
                                                     headers: dict) -> None:
    extra = {"access-control-request-method": "POST"} if method == "OPTIONS" else {}
    response = httpx.request(method, keyed.url + path, headers={**headers, **extra},
                             json={"question": "What is 1+1?"} if method == "POST" else None,
                             timeout=10)
    assert response.status_code == 403
    error = response.json()["error"]
    guard = "DNS-rebinding guard" if "host" in headers else "cross-site guard"  # Host first
    assert error["type"] == "forbidden" and guard in error["message"], error
    assert "access-control-allow-origin" not in response.headers
    assert offline.stats()["chat_requests"] == 0
    assert not leaks(response.text)


# -- the relay's access token (helpers/relay/access.py) ----------
RELAY_TOKEN = "rt-DO-NOT-LEAK-" + "7" * 32


def test_the_relay_token_is_in_no_page_response_or_log(offline: OfflineProvider,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.DEBUG)
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    seen: list[tuple[str, str]] = []
    with start_relay(config, token=RELAY_TOKEN, read_timeout=0.5, jupyter=False,
                     name="relay-secrets-token") as relay, httpx.Client(
                         base_url=relay.url, timeout=30) as client:
        assert RELAY_TOKEN not in repr(relay) + str(relay) + relay.url
        statics = [f"static/{p.name}" for p in STATIC.iterdir() if p.is_file()]
        for path in ["", "healthz", *statics]:
            response = client.get(path)
            assert response.status_code == 200, path
            seen.append((path, response.text + json.dumps(dict(response.headers))))
        tries = [({}, 401), ({"Authorization": "Bearer " + RELAY_TOKEN[:-1]}, 401),
                 ({"Authorization": "Bearer " + RELAY_TOKEN + "x"}, 401),
                 ({"Authorization": "Basic " + RELAY_TOKEN}, 401),
                 ({**relay.headers, "Origin": "http://evil.example"}, 403)]
        tries += [(relay.headers, status) for _, _, status in PATHS]
        bodies = [{"question": "Hi"}] * 5 + [body for _, body, _ in PATHS]
        for (headers, status), body in zip(tries, bodies, strict=True):
            response = client.post("api/chat/stream", json=body, headers=headers)
            assert response.status_code == status, (headers.keys(), body)
            seen.append((f"{body} {status}", response.text + json.dumps(dict(response.headers))))
            if len(seen) == len(statics) + 2 + 5:  # the refusals never reached the provider
                assert offline.stats()["requests"] == 0
    assert offline.stats()["requests"] >= len(PATHS) - 2  # the rest did (422s excepted)
    assert [where for where, text in seen if RELAY_TOKEN in text] == []
    assert caplog.records and RELAY_TOKEN not in caplog.text
    assert "refused POST /api/chat/stream" in caplog.text  # the refusals were logged, unnamed


def test_relay_cli_prints_its_link_on_the_terminal_and_logs_no_token(
        offline: OfflineProvider) -> None:
    env = {**os.environ, "RELAY_TOKEN": RELAY_TOKEN, "PYTHONUNBUFFERED": "1",
           "OPENAI_LOG": "debug"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.relay", "--port", "0", "--base-url", offline.base_url,
         "--api-key", "test-key"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[3]
        assert f"open {url}#token={RELAY_TOKEN}" in proc.stdout.readline()  # the terminal
        assert RELAY_TOKEN not in " ".join(psutil.Process(proc.pid).cmdline())  # not in ps
        for headers in ({}, {"Authorization": f"Bearer {RELAY_TOKEN}"}):
            httpx.post(url + "api/chat/stream", json={"question": "Hi"}, headers=headers,
                       timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert offline.stats()["requests"] == 1
    assert "HTTP Request" in err or "Request options" in err  # the SDK's debug log was on
    assert RELAY_TOKEN not in err


# -- bound to loopback by default ----------
def test_every_server_binds_127_0_0_1_by_default() -> None:
    import inspect

    defaults = {
        "start_relay": inspect.signature(start_relay).parameters["host"].default,
        "OfflineProvider": inspect.signature(OfflineProvider).parameters["host"].default,
        "BackgroundServer": inspect.signature(BackgroundServer).parameters["host"].default,
    }
    assert set(defaults.values()) == {"127.0.0.1"}, defaults  # the CLIs: the next test


@pytest.mark.parametrize("cli", ["helpers.relay", "helpers.offline"])
def test_clis_listen_on_loopback_only(cli: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLM_PROVIDER": "offline"}
    proc = subprocess.Popen([sys.executable, "-m", cli, "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "serving at http://127.0.0.1:" in proc.stdout.readline()
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
