"""The project's files agree with each other: pyproject, environment.yml, .gitignore, README."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0].strip().lower() for s in specs}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def locked() -> dict[str, str]:
    """requirements.lock as {normalized name: version}."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_environment_yml_installs_the_package_with_the_lock_as_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert env["channels"] == ["conda-forge"]
    python = next(d for d in conda if d.startswith("python="))
    assert SpecifierSet(project()["requires-python"]).contains(python.split("=")[1] + ".0")
    # conda writes the pip lines to a requirements file beside environment.yml, so the
    # relative path of the lock resolves from this folder.
    assert pip_section == ["-c requirements.lock", "-e ."]


def test_the_lock_pins_every_declared_dependency_within_its_range():
    pins = locked()
    declared = project()["dependencies"] + [
        spec for extra in project()["optional-dependencies"].values() for spec in extra]
    for spec in map(Requirement, declared):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{spec.name} is declared but not in requirements.lock"
        assert spec.specifier.contains(pins[name], prereleases=True), (spec, pins[name])


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """Top-level third-party module names imported by a file: (at module level, anywhere)."""
    tree = ast.parse(path.read_text())
    top_level, anywhere = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = {node.module.split(".")[0]}
        else:
            continue
        found -= set(sys.stdlib_module_names) | {"helpers", "__future__"}
        anywhere |= found
        if node in tree.body:
            top_level |= found
    return top_level, anywhere


def test_every_module_helpers_imports_is_declared():
    """A module imported at the top of a helpers/ file is a dependency; one imported inside a
    function (an optional part, such as redis) is at least in an extra."""
    distributions = packages_distributions()
    runtime = {canonicalize_name(Requirement(s).name) for s in project()["dependencies"]}
    extras = {canonicalize_name(Requirement(s).name)
              for extra in project()["optional-dependencies"].values() for s in extra}
    missing = []
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        top_level, anywhere = imports_of(path)
        for module in sorted(anywhere):
            owners = {canonicalize_name(d) for d in distributions.get(module, [module])}
            allowed = runtime if module in top_level else runtime | extras
            if not owners & allowed:
                missing.append(f"{path.relative_to(ROOT)}: {module}")
    assert missing == []


def test_required_packages_are_dependencies():
    required = {"jupyterlab", "openai", "ipywidgets", "python-dotenv", "nbval"}
    assert required <= names(project()["dependencies"])


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


def test_package_data_ships_every_file_of_the_page():
    """The page's files, vendored libraries and fonts included, are in an installed package."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["helpers"]
    shipped = {path for pattern in patterns for path in (ROOT / "helpers").glob(pattern)
               if path.is_file()}
    tracked = subprocess.run(["git", "ls-files", "helpers/static"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.split()
    assert len(tracked) > 20  # the page, KaTeX's fonts, the other libraries and their licences
    assert sorted(str(ROOT / t) for t in tracked if ROOT / t not in shipped) == []
