"""A client nobody here wrote: the openai Node SDK assembles the offline provider's streamed
tool calls (its own ``chat.completions.stream`` helper), flavour by flavour."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import need_system_part

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "js" / "node_sdk_tool_calls.cjs"
#: where the openai npm package is (package.json's devDependencies; override for a try-out)
MODULES = Path(os.environ.get("OPENAI_NODE_MODULES", ROOT / "node_modules"))
EXPECTED = [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})]


def test_node_sdk_assembles_streamed_tool_calls(offline):
    need_system_part(shutil.which("node") is not None, "node")
    need_system_part((MODULES / "openai").is_dir(), "the openai npm package (npm ci)")
    models = ["moonshot-v1-8k", "gpt-4o-mini", "qwen-plus", "deepseek-v4-flash", "qwen2.5:0.5b"]
    run = subprocess.run(["node", str(SCRIPT), offline.base_url, *models], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "NODE_PATH": str(MODULES)})
    assert run.returncode == 0, run.stderr[-2000:]
    got = {r["model"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert list(got) == models
    for model in models[:-1]:
        r = got[model]
        assert r["finish"] == "tool_calls" and r["done"] == ["add", "multiply"], r
        assert [(c["name"], c["arguments"]) for c in r["calls"]] == EXPECTED, r
        assert len({c["id"] for c in r["calls"]}) == 2 and all(c["id"] for c in r["calls"])
    # A local server's calls carry no index: this Node SDK drops them without an error, so
    # its finish_reason says "tool_calls" and there are none (lesson 8, section 6).
    assert got["qwen2.5:0.5b"]["finish"] == "tool_calls" and got["qwen2.5:0.5b"]["calls"] == []
    assert offline.stats()["chat_requests"] == len(models)
    assert offline.stats()["completed"] == len(models)
