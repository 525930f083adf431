"""``python -m helpers.relay`` as a child process for tests: started, waited on, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import stop_process, wait_until


class RelayProcess:
    """``python -m helpers.relay`` as a child process; ``url`` from the line it prints."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "helpers.relay", "--port", "0",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "serving at" not in line:
            self.stop()
            raise AssertionError(f"relay did not start: {line!r} {self.proc.stderr.read()}")
        self.banner = line
        self.url = line.split("serving at ", 1)[1].split()[0]
        wait_until(self.healthy, timeout=60, every=0.1)  # every worker has started its app

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        # uvicorn's workers, not multiprocessing's resource tracker
        return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]

    def stop(self) -> int:
        stop_process(self.proc, grace=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode
