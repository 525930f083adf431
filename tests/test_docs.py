"""`make docs` renders the lessons with their outputs; the timing script writes a readable table."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from test_architecture_trace import defined, section

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_build_docs_renders_a_lesson_with_its_outputs_and_an_index(tmp_path):
    lesson = ROOT / "notebooks" / "06_providers_and_quirks.ipynb"
    assert tool("build_docs").main(["--out", str(tmp_path), str(lesson)]) == 0
    page = (tmp_path / "06_providers_and_quirks.html").read_text(encoding="utf-8")
    assert "Lesson 6 · Providers and their quirks" in page
    assert "choices[0].usage + trailing chunk" in page  # an output, not just the source
    assert "勾股定理" in page
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    link = '<a href="06_providers_and_quirks.html">Lesson 6 · Providers and their quirks</a>'
    assert link in index


def test_timing_table_marks_lessons_over_the_target():
    timing = tool("time_lessons")
    table = timing.to_markdown(
        [timing.Timing("05_x", "Lesson 5 · X", 13, 3.14, 2.0),
         timing.Timing("06_y", "Lesson 6 · Y", 12, 12.5, 9.0)],
        runs=3, machine="a test machine", when="2026-01-01")
    assert "| `05_x` | Lesson 5 · X | 13 | 3.1 | 2.0 | yes |" in table
    assert "| `06_y` | Lesson 6 · Y | 12 | 12.5 | 9.0 | **no** |" in table
    assert "tools/time_lessons.py" in table and "Median of 3 run(s)" in table


def _module_rows() -> dict[str, str]:
    """The module map's rows in docs/architecture.md: a path under helpers/ -> its main names."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {}
    for line in section(doc, "## Modules (`helpers/`)").splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[-1]
    return rows


def _helpers_modules() -> set[str]:
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "helpers"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    modules = set()
    for name in tracked:
        path = Path(name).relative_to("helpers")
        if path.suffix != ".py" or path.name in {"__init__.py", "__main__.py"}:
            continue
        if not (ROOT / name).exists():  # deleted in the work tree, not yet in the index
            continue
        stem = "lessonN" if re.fullmatch(r"lesson\d+", path.stem) else path.stem
        modules.add(path.with_name(stem + ".py").as_posix())
    return modules


def test_architecture_names_every_module_of_helpers():
    """docs/architecture.md's module map has one row per module of helpers/ (a package's
    lessons as one `lessonN` row), no row for a module that is gone, and every helpers/ path
    the doc names exists."""
    rows = _module_rows()
    modules = _helpers_modules()
    assert sorted(modules - set(rows)) == [], "modules missing from the map"
    assert sorted(set(rows) - modules) == [], "rows for modules that do not exist"
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for named in set(re.findall(r"helpers/[\w/.-]+\.(?:py|js)\b", doc)):
        assert (ROOT / named).exists(), f"docs/architecture.md names {named}, which is gone"


def test_architecture_main_names_are_defined_in_their_module():
    """Each module's main names in the map (`name` or `Class.method`) are defined there."""
    missing = []
    for path, names in _module_rows().items():
        if path.endswith("lessonN.py"):
            continue  # `check_lessonN_exM` stands for every lesson's checks
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", names):
            if not defined(f"helpers/{path}", name):
                missing.append(f"helpers/{path}:{name}")
    assert missing == []


def test_readme_provider_table_matches_the_providers_table():
    """README's presets (name, key variable, base URL, default model) are helpers.providers'."""
    from helpers.providers import PROVIDERS

    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| [^|]+ \| `([\w-]+)` \| ([^|]+) \| ([^|]+) \| `([^`]+)` \|$", text,
                      re.MULTILINE)
    assert {name for name, *_ in rows} == set(PROVIDERS)
    for name, key, url, model in rows:
        preset = PROVIDERS[name]
        assert key.strip() == (f"`{preset.key_env}`" if preset.key_env else "none"), name
        if preset.base_url:
            assert url.strip() == f"`{preset.base_url}`", name
        assert model == preset.default_model, name
