"""The relay behind a real Jupyter server's jupyter-server-proxy (``/proxy/<port>/``).

This is how a learner on JupyterHub or Binder reaches the relay: through the Jupyter server,
which checks the token and forwards. It must not buffer the stream: jupyter-server-proxy
streams only when the request says ``Accept: text/event-stream``, which the page sends.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from jupyter_harness import jupyter_server

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
WAIT_MS = 15_000




@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Jupyter server (token auth) with jupyter-server-proxy, for this module."""
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        pytest.fail("jupyter-server-proxy is a dependency of this project but is missing")
    root: Path = tmp_path_factory.mktemp("jupyter-root")
    with jupyter_server(root, app="server") as server:
        yield server


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-proxy-tests")
    yield server
    server.stop()


def proxied(jupyter: Any, relay: Relay, path: str = "") -> str:
    return f"{jupyter.url}proxy/{relay.port}/{path}"


def test_health_check_through_the_proxy(jupyter: Any, relay: Relay) -> None:
    response = httpx.get(proxied(jupyter, relay, "healthz"), timeout=30,
                         headers={"Authorization": f"token {jupyter.token}"})
    assert response.status_code == 200
    assert response.json()["provider"] == "offline"
    refused = httpx.get(proxied(jupyter, relay, "healthz"), timeout=30)
    assert refused.status_code in (302, 403)  # no token: Jupyter itself stops it


def test_first_event_arrives_through_the_proxy_before_the_last_is_produced(
        jupyter: Any, relay: Relay, offline: OfflineProvider) -> None:
    question = "What is a prime number? [hold]"
    headers = {"Authorization": f"token {jupyter.token}"}
    with httpx.Client(timeout=30, headers=headers) as client, connect_sse(
            client, "POST", proxied(jupyter, relay, "api/chat/stream"),
            json={"question": question}) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.iter_sse()
        first = next(events)
        assert first.event == "delta" and json.loads(first.data)["content"]
        # The provider has not produced its last chunk yet, and we already hold the first.
        stats = offline.wait_for(lambda s: s["held"] == 1)
        assert stats["completed"] == 0
        offline.release()
        rest = [(event.event, json.loads(event.data)) for event in events]
    deltas = [json.loads(first.data)["content"]] + [d["content"] for e, d in rest
                                                     if e == "delta"]
    assert "".join(deltas) == compose_reply([{"role": "user", "content": question}]).text
    assert [e for e, _ in rest][-2:] == ["usage", "done"]
    assert offline.stats()["completed"] == 1


@pytest.mark.browser
def test_page_works_under_the_proxy_path(jupyter: Any, relay: Relay, browser: Any,
                                         offline: OfflineProvider) -> None:
    """Relative URLs, same-origin POST with the browser's Host and Origin forwarded."""
    context = browser.new_context()
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{proxied(jupyter, relay)}?token={jupyter.token}")
        page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        page.fill("#question", "What is a prime number? [hold]")
        page.click("#send")
        expected = compose_reply([{"role": "user", "content": "What is a prime number?"}]).text
        # Through the proxy, the text is on screen while the provider is still holding.
        page.wait_for_function("t => (chatPage.turns()[0] || {}).text === t",
                               arg=expected, timeout=WAIT_MS)
        assert offline.stats()["held"] == 1
        offline.release()
        page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
        assert " · usage " in page.text_content("#transcript .stats")
        assert problems == []
        assert offline.stats()["completed"] == 1
    finally:
        context.close()


@pytest.fixture(scope="module")
def remote_jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Jupyter server that, like a hub's, answers under a public host name."""
    root: Path = tmp_path_factory.mktemp("remote-root")
    config_dir = tmp_path_factory.mktemp("remote-config")
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"allow_remote_access": True}}))
    with jupyter_server(root, app="server", env={"JUPYTER_CONFIG_DIR": str(config_dir)}) as srv:
        yield srv


@pytest.mark.parametrize("under_hub", [True, False], ids=["binder-env", "no-hub-env"])
def test_binder_style_public_host_is_allowed_only_when_started_under_a_hub(
        remote_jupyter: Any, offline: OfflineProvider, monkeypatch: pytest.MonkeyPatch,
        under_hub: bool) -> None:
    """On Binder the browser's Host is the hub's public name, which the kernel cannot know."""
    if under_hub:
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/")  # this server's base_url
    else:
        monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    for var in ("JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_HOST"):
        monkeypatch.delenv(var, raising=False)
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    with start_relay(config, name="relay-binder-tests") as relay:
        assert relay.page_url == (f"/proxy/{relay.port}/" if under_hub else relay.url)
        public = {"Host": "hub.binder.example", "Authorization": f"token {remote_jupyter.token}"}
        url = f"{remote_jupyter.url}proxy/{relay.port}/healthz"
        through_proxy = httpx.get(url, headers=public, timeout=30)
        direct = httpx.get(relay.url + "healthz", headers={"Host": "hub.binder.example"})
    assert through_proxy.status_code == (200 if under_hub else 403)
    assert direct.status_code == 403  # not forwarded by the proxy: refused either way
    if not under_hub:
        assert "DNS-rebinding" in through_proxy.json()["error"]["message"]
