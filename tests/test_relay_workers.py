"""``python -m helpers.relay --workers N``: several processes, one budget, a clean shutdown.

The relay runs as a real command (a parent and its uvicorn workers, separate processes) in
front of this process's offline provider, whose counters see every upstream request.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY
from relay_process import RelayProcess
from reliability_figures import record

from helpers.money.tokens import count_prompt_tokens
from helpers.offline import OfflineProvider
from helpers.relay import DEFAULT_SYSTEM_PROMPT, ChatRequest

pytestmark = pytest.mark.timeout(180)
QUESTION = "What is a prime number?"


@pytest.fixture
def relay_process(offline: OfflineProvider) -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(*args: str) -> RelayProcess:
        started.append(RelayProcess("--base-url", offline.base_url, "--api-key", FAKE_KEY,
                                    "--model", "moonshot-v1-8k", *args))
        return started[-1]

    yield start
    for relay in started:
        relay.stop()


def usage_of(body: str) -> dict:
    lines = body.splitlines()
    return json.loads(lines[lines.index("event: usage") + 1][6:])


def test_a_budget_holds_exactly_across_two_worker_processes(
        relay_process: Callable[..., RelayProcess], offline: OfflineProvider,
        tmp_path: Path) -> None:
    # Each answer is cut at max_tokens=5, so it costs its prompt (the offline rule) plus 5.
    cost = count_prompt_tokens(ChatRequest(question=QUESTION).to_messages(
        DEFAULT_SYSTEM_PROMPT)) + 5
    relay = relay_process("--workers", "2", "--max-tokens", "5", "--daily-tokens",
                          str(7 * cost + cost // 2), "--store",
                          f"sqlite:///{tmp_path / 'relay.sqlite3'}")
    assert len(relay.workers()) == 2

    def ask(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:  # a connection of its own: any worker
            return client.post(relay.url + "api/chat/stream", json={"question": QUESTION})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(ok) == 7 and len(refused) == 13
    assert all(usage_of(r.text)["total_tokens"] == cost for r in ok)
    assert {r.json()["error"]["type"] for r in refused} == {"relay_budget_limit"}
    assert offline.stats()["streams"] == 7  # no refused request reached the provider


def test_workers_stop_cleanly_with_streams_open(relay_process: Callable[..., RelayProcess],
                                                offline: OfflineProvider) -> None:
    """SIGTERM with held streams (plain and resumable): exit 0, every upstream request closed,
    the temporary store removed."""
    relay = relay_process("--workers", "2")
    store = Path(relay.banner.split("store sqlite:///", 1)[1].rstrip(")\n"))
    assert store.exists()  # the parent made it for its workers
    held = "What is a prime number? [hold]"
    clients = [httpx.Client(timeout=60) for _ in range(4)]
    responses = [c.send(c.build_request("POST", relay.url + "api/chat/stream", json={
        "question": held, "resumable": i % 2 == 0}), stream=True) for i, c in enumerate(clients)]
    try:
        offline.wait_for(lambda s: s["held"] == 4, timeout=30)
        asked = time.perf_counter()
        assert relay.stop() == 0
        record("workers_sigterm_to_exit", time.perf_counter() - asked, streams=4)
        stats = offline.wait_for(lambda s: s["open_streams"] == 0, timeout=10)
        assert stats["disconnects"] == 4 and stats["completed"] == 0
    finally:
        for response, client in zip(responses, clients, strict=True):
            response.close()
            client.close()
    assert not store.exists()  # and removed it when it stopped


def test_a_taken_port_is_a_clear_error_with_workers(offline: OfflineProvider) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "helpers.relay", "--workers", "2",
                               "--port", str(port), "--base-url", offline.base_url,
                               "--api-key", FAKE_KEY], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2 and "already in use" in done.stderr
