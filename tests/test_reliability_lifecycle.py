"""Reliability, family 6: servers start, restart and stop without hanging, leaking a thread or
holding their port: a start cell run twice, a port already taken, a stop while streams are
open, and a real kernel restarted while its relay serves.

Already covered: tests/test_relay.py (a relay replaced under its name; the CLI on a taken port;
the CLI stops on SIGTERM), tests/test_offline.py (its CLI likewise), tests/test_servers.py.
"""

from __future__ import annotations

import errno
import os
import queue
import socket
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import wait_until
from reliability_figures import record

from helpers.offline import OfflineProvider, start_offline
from helpers.relay import start_relay
from helpers.servers import PortInUseError, running_servers
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]
HELD = "What is a prime number? [hold]"
SETUP = "import os\nfrom helpers.relay import start_relay\nfrom helpers.settings import Config\n"


def server_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("uvicorn-")}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def config(offline: OfflineProvider) -> Config:
    return Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a start cell run twice -----------------------------------------------------------------------
def test_a_start_cell_run_twice_on_a_fixed_port_replaces_the_relay(config: Config,
                                                                   free_port: int) -> None:
    before = server_threads()
    relays = []
    try:
        for _ in range(3):  # the learner re-runs `relay = start_relay(port=...)` three times
            relays.append(start_relay(config, port=free_port, jupyter=False,
                                      name="relay-cell"))
            assert httpx.get(f"http://127.0.0.1:{free_port}/healthz").json()["ok"] is True
        assert [r.running for r in relays] == [False, False, True]
        assert server_threads() - before == {"uvicorn-relay-cell"}  # one thread, not three
        assert running_servers()["relay-cell"] is relays[-1].server
    finally:
        for r in relays:
            r.stop()
    assert server_threads() == before and "relay-cell" not in running_servers()
    assert port_is_free(free_port) and refuses(free_port)


def test_start_offline_run_twice_reuses_the_running_provider() -> None:
    before = server_threads()
    first = start_offline(delay_ms=0)  # the process's shared provider (load_config's too):
    second = start_offline(delay_ms=5)  # the session teardown stops it (stop_all)
    assert second is first and first.running and first.delay_ms == 5
    assert len(server_threads() - before) <= 1


# -- a port already taken -----------------------------------------------------------------
@pytest.mark.parametrize("what", ["relay", "offline"])
def test_a_taken_port_is_a_clear_error_at_once_and_leaks_nothing(config: Config,
                                                                 what: str) -> None:
    before = server_threads()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen(1)
        port = other_program.getsockname()[1]
        started = time.perf_counter()
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            if what == "relay":
                start_relay(config, port=port, jupyter=False, name="relay-taken")
            else:
                OfflineProvider(port=port, name="offline-taken").start()
        record("taken_port_error", time.perf_counter() - started, where=what)
    assert server_threads() == before
    assert not {"relay-taken", "offline-taken"} & set(running_servers())


# -- a stop while streams are open --------------------------------------------------------
def open_held_stream(url: str, results: queue.Queue) -> threading.Thread:
    """Read a held stream in a thread; put what happened in ``results``."""
    def run() -> None:
        try:
            with httpx.stream("POST", url + "api/chat/stream", json={"question": HELD},
                              timeout=30) as response:
                body = b"".join(response.iter_bytes())
            results.put(("ended", body))
        except httpx.HTTPError as exc:
            results.put(("failed", type(exc).__name__))
    thread = threading.Thread(target=run, name="held-reader", daemon=True)
    thread.start()
    return thread


def test_stopping_the_relay_with_open_streams_closes_them_and_frees_the_port(
        config: Config, offline: OfflineProvider) -> None:
    before = server_threads()
    relay = start_relay(config, jupyter=False, name="relay-stop-open")
    port, results = relay.port, queue.Queue()
    readers = [open_held_stream(relay.url, results) for _ in range(5)]
    offline.wait_for(lambda s: s["held"] == 5, timeout=10)
    started = time.perf_counter()
    relay.stop()
    record("stop_relay_with_5_open_streams", time.perf_counter() - started)
    for reader in readers:
        reader.join(10)
        assert not reader.is_alive()
    outcomes = [results.get_nowait() for _ in readers]
    # Every reader got an end (a truncated body or a dropped connection), none hangs, and
    # none got a "done": the answers were not complete.
    assert all(kind in ("ended", "failed") for kind, _ in outcomes)
    assert not any(kind == "ended" and b"event: done" in body for kind, body in outcomes)
    stats = offline.wait_for(lambda s: s["disconnects"] == 5 and s["open_streams"] == 0,
                             timeout=10)
    assert stats["completed"] == 0  # the provider was told: upstream requests closed
    assert server_threads() == before
    assert port_is_free(port) and refuses(port)
    relay.stop()  # stopping twice is harmless


def test_stopping_the_offline_provider_with_open_streams_ends_them() -> None:
    before = server_threads()
    provider = OfflineProvider(delay_ms=0, name="offline-stop-open").start()
    port = provider.server.port
    client = openai.OpenAI(base_url=provider.base_url, api_key="k", max_retries=0, timeout=30)
    # Two streams held at the gate, one far too slow to end within the grace period.
    questions = [HELD, HELD, "What is a prime number? [tokens:5000][delay:50]"]
    streams = [client.chat.completions.create(model="moonshot-v1-8k", stream=True,
                                              messages=[{"role": "user", "content": q}])
               for q in questions]
    for s in streams:
        next(iter(s))
    provider.wait_for(lambda s: s["held"] == 2 and s["open_streams"] == 3, timeout=10)
    started = time.perf_counter()
    provider.stop()  # releases held streams, then cuts what is left after its grace period
    record("stop_offline_with_3_open_streams", time.perf_counter() - started)
    ends = []
    for s in streams:
        try:
            ends.append([c.choices[0].finish_reason for c in s if c.choices][-1])
        except openai.APIError as exc:
            ends.append(type(exc).__name__)
    assert ends == ["stop", "stop", "APIConnectionError"]  # released, released, cut
    stats = provider.stats()
    assert (stats["completed"], stats["disconnects"], stats["open_streams"]) == (2, 1, 0)
    assert server_threads() == before and port_is_free(port)
    client.close()


# -- a kernel restart ------------------------------------------------------------------------------
@pytest.mark.slow
def test_kernel_restart_frees_the_relay_port_and_closes_its_streams(
        offline: OfflineProvider) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "TEST_OFFLINE_URL": offline.base_url}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    outputs: list[dict] = []
    port = 0
    try:
        reply = kc.execute_interactive(
            SETUP + "relay = start_relay(Config('offline', os.environ['TEST_OFFLINE_URL'], "
            "'moonshot-v1-8k', 'k'), jupyter=False)\nprint('PORT', relay.port)",
            timeout=60, output_hook=lambda msg: outputs.append(msg))
        assert reply["content"]["status"] == "ok"
        text = "".join(m["content"].get("text", "") for m in outputs)
        port = int(text.split("PORT")[1].split()[0])
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["ok"] is True
        results: queue.Queue = queue.Queue()
        reader = open_held_stream(f"http://127.0.0.1:{port}/", results)
        offline.wait_for(lambda s: s["held"] == 1, timeout=10)
        started = time.perf_counter()
        km.restart_kernel(now=True)
        freed = wait_until(lambda: port_is_free(port) and refuses(port), timeout=30)
        record("kernel_restart_to_port_free", freed - started)
        seen = wait_until(lambda: offline.stats()["disconnects"] == 1, timeout=30)
        record("kernel_restart_to_provider_disconnect", seen - started)
        reader.join(10)
        assert not reader.is_alive() and not results.empty()
        # The restarted kernel can start a relay on the same port again.
        kc.wait_for_ready(timeout=60)
        outputs.clear()
        again = kc.execute_interactive(
            SETUP + f"relay = start_relay(Config('offline', os.environ['TEST_OFFLINE_URL'], "
            f"'moonshot-v1-8k', 'k'), port={port}, jupyter=False)\nprint('PORT', relay.port)",
            timeout=60, output_hook=lambda msg: outputs.append(msg))
        assert again["content"]["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["ok"] is True
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    wait_until(lambda: port_is_free(port), timeout=30)

