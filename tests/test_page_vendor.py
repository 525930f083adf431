"""The page's vendored libraries: what package-lock.json pins, with licences, loaded locally."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import need_system_part

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "helpers" / "static" / "vendor"
PAGE = ROOT / "helpers" / "static" / "index.html"


def test_vendored_versions_are_the_pinned_ones_and_carry_their_licences() -> None:
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    listed = dict(re.findall(r"^(\S+) (\S+)$", (VENDOR / "VERSIONS.txt").read_text(), re.M))
    assert listed == pins  # every runtime dependency is vendored, at its pinned version
    for name, version in pins.items():
        assert lock[f"node_modules/{name}"]["version"] == version
        assert (VENDOR / name / "LICENSE").stat().st_size > 500, name
    assert "resolved" not in (ROOT / "package-lock.json").read_text()  # no registry host


def test_the_page_loads_every_script_and_style_from_itself() -> None:
    html = PAGE.read_text()
    urls = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if not u.startswith("#")]
    assert urls and all(u.startswith("static/") for u in urls), urls
    for url in urls:
        assert (PAGE.parent / url.removeprefix("static/")).is_file(), url
    for library in json.loads((ROOT / "package.json").read_text())["dependencies"]:
        assert f"static/vendor/{library}/" in html, library


def test_vendored_files_match_node_modules() -> None:
    """`make vendor` would change nothing (skips without node_modules: run npm ci)."""
    need_system_part((ROOT / "node_modules" / "katex").is_dir(), "node_modules (npm ci)")
    result = subprocess.run([sys.executable, "tools/vendor_static.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
