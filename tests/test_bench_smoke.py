"""The relay benchmark's harness works (a tiny run): every answer byte-exact, no errors.

Speed is never asserted here (the machines are noisy): `make bench` measures it and writes
docs/performance.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_system_part

ROOT = Path(__file__).resolve().parents[1]
MODULES = Path(os.environ.get("OPENAI_NODE_MODULES", ROOT / "node_modules"))


@pytest.mark.slow
def test_bench_smoke_runs_every_target_with_correct_answers(tmp_path):
    need_system_part(shutil.which("node") is not None, "node (the Node baseline)")
    need_system_part((MODULES / "openai").is_dir(), "the openai npm package (npm ci)")
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_relay.py", "--smoke", "--json",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert {r["target"] for r in rows} == {"floor (direct)", "relay SSE", "relay page route",
                                           "relay raw", "naive relay", "node relay"}
    assert sum(r["n"] for r in rows) == 6 * (3 + 8)
    assert all(r["errors"] == 0 for r in rows), [r["first_error"] for r in rows]
