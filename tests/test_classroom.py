"""Binder configuration and the classroom page: what repo2docker reads, and the README badge."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_binder_reads_the_top_level_files():
    # A binder/ or .binder/ folder would make repo2docker ignore environment.yml and postBuild.
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    assert "-e ." in (ROOT / "environment.yml").read_text()
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text


def test_readme_badge_launches_an_existing_lesson_and_links_the_classroom_page():
    readme = (ROOT / "README.md").read_text()
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)]*urlpath=lab/tree/([^)\s]+)\)", readme)
    assert badge, "README needs a Binder launch badge"
    assert (ROOT / badge.group(1)).is_file(), f"the badge opens {badge.group(1)}, which is missing"
    assert "](docs/classroom.md)" in readme and (ROOT / "docs" / "classroom.md").is_file()


@pytest.mark.slow
def test_post_build_succeeds_and_streams_from_the_offline_provider():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(ROOT / "postBuild")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "postBuild: offline provider OK: $1 + 1 = 2$." in done.stdout
