"""Start a real Jupyter server (JupyterLab) on 127.0.0.1 with token auth, for browser tests.

The fixture ``open_in_lab`` (tests/conftest.py) puts it together for the JupyterLab tests: a
notebook of code cells, the server, and a Chromium page with the notebook open and its
kernel idle.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
from conftest import stop_process

#: The first cell of a test notebook: a client for the offline provider whose URL the test
#: process passes in ``TEST_OFFLINE_URL``, and ``ask(question, model)``, a request function.
CLIENT_CELL = (
    "import os, openai\nfrom helpers import show_stream\n"
    "client = openai.OpenAI(base_url=os.environ['TEST_OFFLINE_URL'], api_key='lab-test',\n"
    "                       max_retries=0)\n"
    "def ask(question, model='moonshot-v1-8k'):\n"
    "    return lambda: client.chat.completions.create(\n"
    "        model=model, stream=True, messages=[{'role': 'user', 'content': question}])")


def words(text: str) -> str:
    """The text with all runs of whitespace as one space (a browser lays text out its way)."""
    return " ".join(text.split())


def write_notebook(path: Path, cells: list[str]) -> None:
    """Write a notebook of these code cells, for the Python 3 kernel."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


@dataclass
class JupyterServer:
    """A running Jupyter server: its base URL and token."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def lab_url(self, path: str = "") -> str:
        """URL of JupyterLab (optionally a file under root), token included."""
        target = f"lab/tree/{path}" if path else "lab"
        return f"{self.url}{target}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_server(root: Path, *, app: str = "lab", timeout: float = 60.0,
                   env: dict[str, str] | None = None) -> Iterator[JupyterServer]:
    """Run ``jupyter lab`` (or ``server``) on a free loopback port until the block ends."""
    token = secrets.token_hex(16)
    port = _free_port()
    log = root / f".jupyter-{port}.log"
    cmd = [sys.executable, "-m", "jupyterlab" if app == "lab" else "jupyter_server",
           "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
           "--ServerApp.disable_check_xsrf=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # only because tests may run as root; learners are not
    child_env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", **(env or {})}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, cwd=root, stdout=sink, stderr=subprocess.STDOUT,
                                env=child_env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter exited early:\n{log.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{url}api/status", params={"token": token}, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter not up in {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield JupyterServer(url=url, token=token, root=root, process=proc, log=log)
    finally:
        stop_process(proc)
