"""The relay's access token (helpers/relay/access.py): when it is required, how it is accepted,
and that a request without it never reaches the provider (the offline provider's counters).

Its secrecy (pages, responses, logs, notebooks) is tested in tests/test_reliability_secrets.py;
a real JupyterHub classroom in tests/test_classroom_hub.py.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers.offline import OfflineProvider
from helpers.relay import Relay, create_app, start_relay
from helpers.relay import access as access_module
from helpers.relay.access import AccessToken, is_loopback, why_token_required
from helpers.relay.identity import CLIENT_SCOPE_KEY, client_identity
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 10_000
HUB = {"JUPYTERHUB_USER": "ana", "JUPYTERHUB_API_TOKEN": "x" * 32,
       "JUPYTERHUB_SERVICE_PREFIX": "/user/ana/"}
BINDER = {**HUB, "BINDER_LAUNCH_HOST": "https://mybinder.org/",
          "BINDER_REPO_URL": "https://github.com/owner/repo"}


@pytest.fixture
def config(offline: OfflineProvider) -> Config:
    return Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")


@pytest.fixture
def locked(config: Config) -> Iterator[Relay]:
    relay = start_relay(config, require_token=True, read_timeout=10, jupyter=False,
                        name="relay-access-tests")
    yield relay
    relay.stop()


# -- when it is required ---------------------------------------------------------------------
@pytest.mark.parametrize(("host", "env", "required"), [
    ("127.0.0.1", {}, False), ("localhost", {}, False), ("::1", {}, False),
    ("127.0.0.2", {}, False),
    ("0.0.0.0", {}, True), ("::", {}, True), ("192.168.1.20", {}, True), ("", {}, True),
    ("127.0.0.1", HUB, True), ("127.0.0.1", {"JUPYTERHUB_API_TOKEN": "x"}, True),
    ("127.0.0.1", BINDER, False), ("0.0.0.0", BINDER, True),
    ("127.0.0.1", {"JUPYTERHUB_SERVICE_PREFIX": "/user/ana/"}, False),  # a prefix alone: no hub
], ids=lambda v: "laptop" if v == {} else "hub" if v == HUB else "binder" if v == BINDER
    else None)
def test_a_token_is_required_beyond_loopback_and_on_a_hub_and_not_otherwise(
        host: str, env: dict, required: bool) -> None:
    reason = why_token_required(host, env)
    assert (reason is not None) is required, reason
    assert is_loopback(host) is (host in {"127.0.0.1", "localhost", "::1", "127.0.0.2"})


@pytest.mark.parametrize(("env", "require", "expect"), [
    ({}, None, False), ({}, True, True), (HUB, None, True), (BINDER, None, False),
    (BINDER, True, True),
], ids=["laptop", "laptop-asked", "hub", "binder", "binder-asked"])
def test_start_relay_applies_the_rule(config: Config, offline: OfflineProvider,
                                      monkeypatch: pytest.MonkeyPatch, env: dict,
                                      require: bool | None, expect: bool) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with start_relay(config, require_token=require, jupyter=False, name="relay-rule") as relay:
        answer = httpx.post(relay.url + "api/chat/stream", json={"question": "Hi"}, timeout=10)
        assert answer.status_code == (401 if expect else 200), answer.text[:200]
        assert (relay.token is not None) is expect
        assert ("#token=" in relay.page_url) is expect and relay.url.endswith(f":{relay.port}/")
        assert relay.headers == ({"Authorization": f"Bearer {relay.token}"} if expect else {})
        assert ("token required" in repr(relay)) is expect
    assert offline.stats()["requests"] == (0 if expect else 1)


def test_a_token_cannot_be_switched_off_where_others_reach_the_relay(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="beyond this machine's loopback"):
        start_relay(config, host="0.0.0.0", require_token=False, jupyter=False, name="r-off")
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    with pytest.raises(ValueError, match="multi-user host"):
        start_relay(config, require_token=False, jupyter=False, name="r-off")
    with pytest.raises(ValueError, match="must not be empty"):
        start_relay(config, token=" ", jupyter=False, name="r-off")


def test_a_relay_bound_beyond_loopback_requires_its_token(config: Config,
                                                           offline: OfflineProvider) -> None:
    with start_relay(config, host="0.0.0.0", jupyter=False, name="relay-wide") as relay:
        assert relay.token
        url = f"http://127.0.0.1:{relay.port}/api/chat/stream"
        assert httpx.post(url, json={"question": "Hi"}, timeout=10).status_code == 401
        assert offline.stats()["requests"] == 0
        ok = httpx.post(url, json={"question": "Hi"}, headers=relay.headers, timeout=10)
        assert ok.status_code == 200 and "event: done" in ok.text
    assert offline.stats()["requests"] == 1


# -- refused without it, and the provider never called ---------------------------------------
@pytest.mark.parametrize("route", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_without_a_valid_token_401_and_the_provider_is_never_called(
        locked: Relay, offline: OfflineProvider, route: str) -> None:
    token = locked.token
    assert token
    tries: dict[str, dict[str, Any]] = {
        "none": {},
        "wrong": {"headers": {"Authorization": "Bearer " + "x" * len(token)}},
        "prefix": {"headers": {"Authorization": "Bearer " + token[:-1]}},
        "longer": {"headers": {"Authorization": "Bearer " + token + "x"}},
        "empty": {"headers": {"Authorization": "Bearer"}},
        "other scheme": {"headers": {"Authorization": "Basic " + token}},
        "bare": {"headers": {"Authorization": token}},
        "query string": {"params": {"token": token}},  # never accepted from a URL
        "cookie": {"headers": {"Cookie": f"token={token}"}},
        "non-ASCII": {"headers": {"Authorization": "Bearer \u00e9t\u00e9".encode()}},
    }
    with httpx.Client(base_url=locked.url, timeout=10) as client:
        for name, options in tries.items():
            response = client.post(route, json={"question": "Hi"}, **options)
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == 'Bearer realm="relay"'
            error = response.json()["error"]
            assert set(response.json()) == {"error"} and set(error) == {"type", "message"}
            assert error["type"] in {"relay_token_required", "relay_token_invalid"}, name
            assert "Authorization: Bearer <token>" in error["message"]
        assert offline.stats()["requests"] == 0  # nothing reached the provider
        ok = client.post(route, json={"question": "What is 1+1?"}, headers=locked.headers)
        assert ok.status_code == 200 and "2" in ok.text
        lower = client.post(route, json={"question": "Hi"},
                            headers={"authorization": f"bearer {token}"})
        assert lower.status_code == 200  # the scheme is case-insensitive (RFC 7235)
    assert offline.stats()["requests"] == 2


def test_the_page_and_health_check_stay_open_and_the_guards_stay(
        locked: Relay, offline: OfflineProvider) -> None:
    with httpx.Client(base_url=locked.url, timeout=10) as client:
        for path in ["", "healthz", "static/chat.js", "static/access.js"]:
            assert client.get(path).status_code == 200, path
        assert client.get("api/chat/stream").status_code == 401  # other routes: token first
        assert client.post("", json={}).status_code == 401  # only GET is open
        evil = {"Origin": "http://evil.example", **locked.headers}
        assert client.post("api/chat/stream", json={"question": "Hi"},
                           headers=evil).status_code == 403  # the guard, token or not
        rebinding = client.post("api/chat/stream", json={"question": "Hi"},
                                headers={"Host": "attacker.example"})
        assert rebinding.status_code == 403 and "DNS-rebinding" in rebinding.text
    assert offline.stats()["requests"] == 0


def test_an_allowed_origin_gets_cors_for_the_authorization_header(
        config: Config, offline: OfflineProvider) -> None:
    dev = "http://localhost:5173"
    with start_relay(config, require_token=True, allow_origins=[dev], jupyter=False,
                     name="relay-cors-token") as relay:
        preflight = httpx.options(relay.url + "api/chat/stream", timeout=10, headers={
            "Origin": dev, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code == 200  # a preflight carries no token, and needs none
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = httpx.post(relay.url + "api/chat/stream", json={"question": "Hi"},
                             headers={"Origin": dev}, timeout=10)
        assert refused.status_code == 401  # and the page can read why:
        assert refused.headers["access-control-allow-origin"] == dev
        ok = httpx.post(relay.url + "api/chat/stream", json={"question": "Hi"},
                        headers={"Origin": dev, **relay.headers}, timeout=10)
        assert ok.status_code == 200
    assert offline.stats()["requests"] == 1


# -- the comparison, and per-client tokens ---------------------------------------------------
def test_tokens_are_compared_in_constant_time_against_every_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access_module.hmac, "compare_digest", spy)
    guard = AccessToken(lambda *a: None, tokens={"ana": "token-ana", "ben": "token-ben"})
    assert guard.client("token-ana") == (True, "ana")  # the first matches; the second is
    assert len(calls) == 2                               # still compared
    assert guard.client("token-ben") == (True, "ben") and guard.client("nope") == (False, None)
    assert len(calls) == 6
    with pytest.raises(ValueError):
        AccessToken(lambda *a: None, tokens="")
    with pytest.raises(ValueError):
        AccessToken(lambda *a: None, tokens={})


def test_per_client_tokens_name_the_client_and_a_shared_token_names_nobody() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(client_identity(scope))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ask(tokens: Any, presented: str) -> list[int]:
        transport = httpx.ASGITransport(app=AccessToken(app, tokens=tokens))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [(await c.post("/x", headers={"Authorization": f"Bearer {token}"})
                     ).status_code for token in (presented, "t-nobody")]

    for tokens, presented, expected in [({"ana": "t-ana", "ben": "t-ben"}, "t-ben", "token:ben"),
                                        ("t-shared", "t-shared", "addr:127.0.0.1")]:
        assert asyncio.run(ask(tokens, presented)) == [204, 401]
        assert seen.pop() == expected and not seen
    assert CLIENT_SCOPE_KEY == "relay.client"


def test_create_app_takes_per_client_tokens(config: Config, offline: OfflineProvider) -> None:
    async def ask() -> list[int]:
        app = create_app(config, token={"ana": "t-ana", "ben": "t-ben"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [(await c.post("/api/chat/stream", json={"question": "Hi"},
                                  headers={"Authorization": f"Bearer {token}"})).status_code
                    for token in ("t-ana", "t-ben", "t-eve")]

    assert asyncio.run(ask()) == [200, 200, 401]
    assert offline.stats()["requests"] == 2


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_require_token_prints_the_link_and_accepts_only_its_token(
        offline: OfflineProvider, tmp_path: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpers.relay", "--port", str(port), "--require-token",
             "--base-url", offline.base_url, "--api-key", "test-key"],
            stdout=subprocess.PIPE, stderr=sink, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        link = re.search(r"open (http://127\.0\.0\.1:\d+/)#token=([A-Za-z0-9_-]{40,})\n",
                         lines[1])
        assert link, lines
        base, token = link.groups()
        assert httpx.post(base + "api/chat/stream", json={"question": "Hi"},
                          timeout=10).status_code == 401
        ok = httpx.post(base + "api/chat/stream", json={"question": "Hi"}, timeout=10,
                        headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
    assert offline.stats()["requests"] == 1
    assert token not in err.read_text()  # the link is for the terminal, never for a log


# -- the page's fragment flow, in Chromium ---------------------------------------------------
@pytest.mark.browser
def test_the_page_takes_the_token_from_the_fragment_and_keeps_it_for_the_tab(
        browser: Any, locked: Relay, offline: OfflineProvider) -> None:
    context = browser.new_context()
    tab = context.new_page()
    sent: list[tuple[str, str | None]] = []
    tab.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))))
    try:
        tab.goto(locked.page_url)
        tab.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        assert tab.url == locked.url  # the token left the address bar (and the history)
        tab.fill("#question", "What is 1+1?")
        tab.click("#send")
        tab.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
        assert "2" in tab.text_content("#transcript .part-text")
        tab.reload()  # the same tab keeps it
        tab.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        tab.fill("#question", "What is 1+1?")
        tab.click("#send")
        tab.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
        assert offline.stats()["requests"] == 2
        posts = [(url, auth) for url, auth in sent if url.endswith("api/chat/stream")]
        assert posts == [(locked.url + "api/chat/stream", f"Bearer {locked.token}")] * 2
        assert all(locked.token not in url for url, _ in sent)  # never in a URL it fetched
        other = context.new_page()  # another tab, opened without the link: no token
        other.goto(locked.url)
        other.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        other.fill("#question", "Hi")
        other.click("#send")
        other.wait_for_selector('body[data-state="error"]', timeout=WAIT_MS)
        shown = other.text_content("#transcript .error")
        assert "HTTP 401" in shown and "relay_token_required" in shown, shown
        assert offline.stats()["requests"] == 2
    finally:
        context.close()
