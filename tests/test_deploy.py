"""docs/deploy.md's configurations, each started as written (ports, paths and hosts local).

The commands and nginx snippets are read from the page (``<!-- deploy:NAME -->`` before a
fenced block), so the page cannot drift from what runs. Each relay talks to this process's
offline provider; its counters prove the answers went through.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY, need_system_part
from redis_server import redis_server
from relay_process import RelayProcess
from test_reliability_nginx import NGINX, Nginx

from helpers.offline import OfflineProvider

pytestmark = pytest.mark.timeout(180)
DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
QUESTION = "What is a prime number?"


def block(name: str) -> str:
    """The fenced block after ``<!-- deploy:name -->`` in docs/deploy.md."""
    found = re.search(rf"<!-- deploy:{name} -->\n```\w*\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/deploy.md has no deploy:{name} block"
    return found.group(1)


def command(name: str, tmp: Path, offline: OfflineProvider,
            store: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The page's command as argv for this machine: loopback, a free port, local store."""
    words = shlex.split(block(name).replace("\\\n", " "))
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    words = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    assert words[:3] == ["python", "-m", "helpers.relay"], words
    args, replace = words[3:], {"--host": "127.0.0.1", "--port": "0",
                                "--trust-proxy": "127.0.0.1"}
    for i, word in enumerate(args[:-1]):
        if word in replace:
            args[i + 1] = replace[word]
        elif word == "--store":
            args[i + 1] = store or f"sqlite:///{tmp / 'relay.sqlite3'}"
    env.setdefault("RELAY_TOKEN", "test-deploy-token")
    return [*args, "--base-url", offline.base_url, "--api-key", FAKE_KEY,
            "--model", "moonshot-v1-8k"], env


def site(tmp: Path, upstream_block: str) -> str:
    """docs/deploy.md's nginx server, listening on loopback, in front of ``upstream_block``."""
    text = block("nginx").replace("{", "{{").replace("}", "}}")
    text = re.sub(r"upstream relay \{\{.*?\}\}", upstream_block.replace("{", "{{").replace(
        "}", "}}"), text)
    return text.replace("listen 80;", "listen 127.0.0.1:{port};")


def answer(url: str, token: str) -> str:
    response = httpx.post(url + "api/chat/stream", json={"question": QUESTION}, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture
def started() -> Iterator[list]:
    running: list = []
    yield running
    for thing in reversed(running):
        thing.stop()


def test_one_relay_for_a_class(offline: OfflineProvider, tmp_path: Path,
                               started: list) -> None:
    args, env = command("class", tmp_path, offline)
    relay = RelayProcess(*args, env=env)
    started.append(relay)
    assert answer(relay.url, env["RELAY_TOKEN"]).endswith('{"finish_reason":"stop"}\n\n')
    refused = httpx.post(relay.url + "api/chat/stream", json={"question": QUESTION}, timeout=30)
    assert refused.status_code == 401  # bound for a room: the token is required
    assert offline.stats()["streams"] == 1


def test_several_workers_behind_nginx(offline: OfflineProvider, tmp_path: Path,
                                      started: list) -> None:
    need_system_part(NGINX is not None, "nginx (apt-get install nginx)")
    args, env = command("workers", tmp_path, offline)
    relay = RelayProcess(*args, env=env)
    started.append(relay)
    assert len(relay.workers()) == 2
    port = int(relay.url.rstrip("/").rsplit(":", 1)[1])
    (tmp_path / "nginx").mkdir()
    proxy = Nginx(tmp_path / "nginx", port, site=site(
        tmp_path, f"upstream relay {{ server 127.0.0.1:{port}; }}"))
    started.append(proxy)
    for _ in range(3):
        assert "event: done" in answer(proxy.url, env["RELAY_TOKEN"])
    assert offline.stats()["streams"] == 3


def test_several_machines_with_redis_and_a_balancer(offline: OfflineProvider, tmp_path: Path,
                                                    started: list) -> None:
    need_system_part(NGINX is not None, "nginx (apt-get install nginx)")
    with redis_server(tmp_path) as url:
        args, env = command("redis", tmp_path, offline, store=url)
        relays = [RelayProcess(*args, env=env) for _ in range(2)]
        started.extend(relays)
        ports = [int(r.url.rstrip("/").rsplit(":", 1)[1]) for r in relays]
        balancer = block("balancer").strip()
        assert balancer.count("server ") == 2
        servers = " ".join(f"server 127.0.0.1:{p};" for p in ports)
        (tmp_path / "nginx").mkdir()
        proxy = Nginx(tmp_path / "nginx", ports, site=site(
            tmp_path, f"upstream relay {{ {servers} }}"))
        started.append(proxy)
        for _ in range(4):
            assert "event: done" in answer(proxy.url, env["RELAY_TOKEN"])
    assert offline.stats()["streams"] == 4
