"""A real classroom: a JupyterHub on loopback, two students, each running lesson 5's relay.

JupyterHub (PyPI ``jupyterhub``) with its proxy (npm ``configurable-http-proxy``, from the
project's package.json), the dummy authenticator and the simple local spawner: neither needs
root nor new Unix users, so both students' servers run as the same account on one machine and
share one loopback, as on a small classroom server. Each student logs in with Chromium and runs
lesson 5's own cells (setup, start, page) in JupyterLab. Their kernels reach this process's
offline provider (``LLM_PROVIDER=local``, ``LLM_BASE_URL``), so its counters are the evidence:

- ana's page, in her notebook, through ``/user/ana/proxy/<port>/``, answers (token included,
  from the link's fragment; never typed);
- ben, from his own kernel (``127.0.0.1:<port>``) and through his own server's proxy
  (``/user/ben/proxy/<port>/``), gets 401, and the provider's request counter does not move.

Skips with a visible reason without Node, the proxy or jupyterhub; fails under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LAB_DEADLINE_MS, need_system_part, stop_process, wait_until
from jupyter_harness import _free_port, write_notebook

from helpers.offline import OfflineProvider

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON = ROOT / "notebooks" / "05_hardened_relay.ipynb"
PASSWORD = "classroom"


def lesson_cells() -> list[str]:
    """Lesson 5's setup, start and page cells, as the lesson has them."""
    sources = ["".join(c["source"]) for c in json.loads(LESSON.read_text())["cells"]
               if c["cell_type"] == "code"]
    wanted = ("import httpx", "relay = start_relay(config)", "IFrame(relay.page_url")
    cells = [next(s for s in sources if s.startswith(w)) for w in wanted]
    return [*cells, "print('relay port', relay.port)"]


@dataclass
class Hub:
    url: str
    root: Path
    log: Path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, offline_server: OfflineProvider
        ) -> Iterator[Hub]:
    """A JupyterHub on 127.0.0.1 (dummy authenticator, simple local spawner) for this module."""
    need_system_part(shutil.which("node") is not None, "Node.js (for configurable-http-proxy)")
    need_system_part(CHP.exists(), "configurable-http-proxy (npm ci, from package.json)")
    need_system_part(importlib.util.find_spec("jupyterhub") is not None,
                     "jupyterhub (pip install jupyterhub; the project's test extra)")
    root = tmp_path_factory.mktemp("hub")
    port, hub_port, api_port = _free_port(), _free_port(), _free_port()
    singleuser = Path(sys.executable).parent / "jupyterhub-singleuser"
    args = ["--allow-root"] if os.geteuid() == 0 else []  # tests may run as root; students not
    env = {"LLM_PROVIDER": "local", "LLM_BASE_URL": offline_server.base_url,
           "LLM_MODEL": "moonshot-v1-8k", "JUPYTER_PLATFORM_DIRS": "1"}
    (root / "jupyterhub_config.py").write_text(f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(16)!r}
c.ConfigurableHTTPProxy.pid_file = {str(root / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{root / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(root / "cookie_secret")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(root / "{username}")!r}
c.Spawner.cmd = [{str(singleuser)!r}]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.Spawner.environment = {env!r}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.cleanup_servers = True
""")
    log = root / "hub.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f",
                                 str(root / "jupyterhub_config.py")], cwd=root, stdout=sink,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(url + "hub/api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=90, every=0.2)
        yield Hub(url=url, root=root, log=log)
    finally:
        # SIGTERM: the hub stops the students' servers and its proxy (cleanup)
        stop_process(proc, grace=30)


def open_notebook(browser: Any, hub: Hub, user: str, cells: list[str]) -> Any:
    """Log ``user`` in, open a notebook of ``cells`` in their JupyterLab, run every cell."""
    home = hub.root / user
    home.mkdir(exist_ok=True)
    write_notebook(home / "lesson.ipynb", cells)
    context = browser.new_context(viewport={"width": 1280, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(LAB_DEADLINE_MS)
    page.goto(hub.url + "hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/user/**", timeout=120_000)  # the hub spawned the student's server
    page.goto(f"{hub.url}user/{user}/lab/tree/lesson.ipynb")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for()
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    for n in range(1, len(cells) + 1):
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-InputPrompt", has_text=f"[{n}]:").first.wait_for()
    return page


def test_a_students_relay_answers_its_owner_and_refuses_another_student(
        hub: Hub, browser: Any, offline: OfflineProvider) -> None:
    ana = open_notebook(browser, hub, "ana", lesson_cells())
    try:
        printed = ana.locator(".jp-OutputArea-output", has_text="relay port").inner_text()
        port = int(printed.split()[-1])
        assert "token required" in ana.locator(".jp-OutputArea-output",
                                               has_text="<Relay running").inner_text()
        frame_element = ana.locator("iframe").first
        src = frame_element.get_attribute("src") or ""
        assert src.startswith(f"/user/ana/proxy/{port}/#token="), src
        token = src.split("#token=", 1)[1]
        assert token not in ana.locator(".jp-OutputArea-output").all_inner_texts().__str__()
        # The owner: her page, in her notebook, answers through her server's proxy.
        page = frame_element.element_handle().content_frame()
        page.locator('body[data-state="idle"]').wait_for()
        assert page.url == f"{hub.url}user/ana/proxy/{port}/"  # the token left the address
        page.locator("#question").fill("What is 1+1?")
        page.locator("#send").click()
        page.locator('body[data-state="done"]').wait_for()
        assert "2" in page.locator("#transcript .part-text").inner_text()
        assert offline.stats()["requests"] == 1

        # Another student, from his own kernel on the shared loopback, and from his browser
        # through his own server's proxy: 401, and the provider is not called.
        probe = (f"import httpx\nurl = 'http://127.0.0.1:{port}/api/chat/stream'\n"
                 "r = httpx.post(url, json={'question': 'Hi'})\n"
                 "print('ben ->', r.status_code, r.json()['error']['type'])")
        ben = open_notebook(browser, hub, "ben", [probe])
        try:
            ben.get_by_text("ben -> 401 relay_token_required").wait_for()
            via_proxy = ben.evaluate("""async (port) => {
                const r = await fetch(`/user/ben/proxy/${port}/api/chat/stream`, {
                    method: "POST", body: JSON.stringify({question: "Hi"}),
                    headers: {"Content-Type": "application/json",
                              "Accept": "text/event-stream"}});
                return [r.status, (await r.json()).error.type];
            }""", port)
            assert via_proxy == [401, "relay_token_required"]
            guessed = ben.evaluate("""async (port) => {
                const r = await fetch(`/user/ben/proxy/${port}/api/chat/stream`, {
                    method: "POST", body: JSON.stringify({question: "Hi"}),
                    headers: {"Content-Type": "application/json",
                              "Authorization": "Bearer " + "x".repeat(43)}});
                return r.status;
            }""", port)
            assert guessed == 401
            # ana's own proxy path is hers: the hub does not let ben use it at all.
            theirs = ben.request.post(f"{hub.url}user/ana/proxy/{port}/api/chat/stream",
                                      data={"question": "Hi"}, max_redirects=0)
            assert theirs.status in (302, 403), theirs.status
        finally:
            ben.context.close()
        assert offline.stats()["requests"] == 1
        assert offline.stats()["completed"] == 1
    finally:
        ana.context.close()
    assert token not in hub.log.read_text()  # nor in the hub's or its proxy's log
