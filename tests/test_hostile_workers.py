"""Issue 23, finding 12: ``--workers`` gives its workers the key and the access token without
the environment (they were in ``/proc/<pid>/environ``, inherited by any child), also when a
worker dies and is restarted; the relay still answers with both.

The relay runs as a real command in front of this process's offline provider, which accepts
only FAKE_KEY: an answer proves the worker holds the key.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY, wait_until
from relay_process import RelayProcess

from helpers.offline import OfflineProvider

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[tuple[RelayProcess, str]]:
    offline.api_key = FAKE_KEY  # any other key is the provider's 401
    started = RelayProcess("--workers", "2", "--require-token", "--base-url", offline.base_url,
                           "--api-key", FAKE_KEY, "--model", "moonshot-v1-8k")
    try:
        line = started.proc.stdout.readline()  # printed on the terminal only
        assert "#token=" in line, line
        yield started, line.split("#token=", 1)[1].split()[0]
    finally:
        started.stop()


def children(relay: RelayProcess) -> list[int]:
    """Every process the relay started (its workers and multiprocessing's tracker)."""
    pid = relay.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def exposed(pid: int, *secrets: str) -> list[str]:
    """Where in /proc/<pid> (environ, cmdline) any of ``secrets`` can be read."""
    return [f"{pid}/{part}" for part in ("environ", "cmdline")
            if any(s.encode() in Path(f"/proc/{pid}/{part}").read_bytes() for s in secrets)]


def answers(relay: RelayProcess, token: str, count: int = 4) -> list[int]:
    statuses = []
    for _ in range(count):  # a connection each: the kernel spreads them over the workers
        with httpx.Client(timeout=60) as client:
            statuses.append(client.post(relay.url + "api/chat/stream", json={
                "question": "What is a prime number?"},
                headers={"Authorization": f"Bearer {token}"}).status_code)
    return statuses


def test_no_worker_has_the_key_or_the_token_in_its_environment(relay, offline) -> None:
    process, token = relay
    workers = process.workers()
    assert len(workers) == 2 and len(children(process)) >= 2
    assert [where for pid in children(process) for where in exposed(pid, FAKE_KEY, token)] == []
    assert answers(process, token) == [200] * 4
    assert offline.stats()["streams"] == 4  # the provider took the key every time
    assert answers(process, "not-the-token", 1) == [401]


def test_a_restarted_worker_still_gets_its_secrets_without_the_environment(relay, offline
                                                                        ) -> None:
    process, token = relay
    first = process.workers()
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: len(set(process.workers()) - set(first)) == 1
               and len(process.workers()) == 2, timeout=60, every=0.1)
    wait_until(process.healthy, timeout=60, every=0.1)
    (new,) = set(process.workers()) - set(first)
    assert exposed(new, FAKE_KEY, token) == []
    assert answers(process, token, 6) == [200] * 6
    assert offline.stats()["streams"] == 6
