"""The project's files agree with each other: pyproject, environment.yml, .gitignore, README."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0].strip().lower() for s in specs}


def test_environment_yml_and_pyproject_agree_on_the_package_set():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert names(conda) - {"python", "pip"} == names(project["dependencies"])
    assert "-e ." in pip_section
    assert env["channels"] == ["conda-forge"]
    assert any(d.startswith("python=3.") for d in conda), "Python must be pinned"


def test_required_packages_are_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {"jupyterlab", "openai", "ipywidgets", "python-dotenv", "nbval"}
    assert required <= names(project["dependencies"])


def test_dotenv_is_ignored_and_the_example_is_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be ignored by git"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env.example"], cwd=ROOT,
                             capture_output=True)
    assert tracked.returncode == 0, ".env.example must be committed"


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make lab" in text and "make test" in text


def test_cli_modules_run_without_runpy_warnings():
    """Regression: an eager helpers/__init__ made `python -m helpers.X` warn on stderr."""
    import sys
    for module in ("helpers.offline", "helpers.relay"):
        out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", module,
                              "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0 and "usage:" in out.stdout, out.stderr
        assert out.stderr == ""


def test_public_names_all_resolve():
    import helpers
    missing = [name for name in helpers.__all__ if getattr(helpers, name, None) is None]
    assert missing == []
