"""The committed lessons: no key-like string anywhere, and the house layout (STYLE.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def lesson_number(path: Path) -> int:
    """The lesson's number, from its file name (``03_live_widgets`` is lesson 3)."""
    match = re.match(r"(\d+)_", path.stem)
    assert match, f"{path.name}: a lesson's file name starts with its number, e.g. 03_name"
    return int(match.group(1))


def lesson(stem_end: str) -> Path:
    """The lesson whose file name ends with ``stem_end`` (whatever its number)."""
    found = [p for p in ALL if p.stem.endswith(stem_end)]
    assert len(found) == 1, f"one lesson named *{stem_end}, found {found}"
    return found[0]


def test_every_lesson_is_found() -> None:
    numbers = [lesson_number(p) for p in ALL]
    assert numbers == list(range(1, len(ALL) + 1)), "lessons numbered 1, 2, 3, ... in order"
    assert len(ALL) >= 8


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_no_key_like_string_in_a_committed_notebook(path):
    found = KEY_LIKE.findall(path.read_text())
    assert not found, f"{path.name} contains key-like strings: {found[:3]}"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_lessons_import_helpers_through_its_public_api(path: Path) -> None:
    """A lesson imports from ``helpers`` (its public names) or ``helpers.exercises``, never a
    module behind them: what a lesson uses is what the package promises to keep."""
    reached = [line.strip() for cell in cells(path) if cell["cell_type"] == "code"
               for line in "".join(cell["source"]).splitlines()
               if re.match(r"\s*(from|import)\s+helpers\.(?!exercises\b)", line)]
    assert reached == [], f"{path.name}: import these from helpers instead: {reached}"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_lesson_layout(path: Path) -> None:
    number, nb = lesson_number(path), cells(path)
    first = "".join(nb[0]["source"])
    assert nb[0]["cell_type"] == "markdown" and first.startswith(f"# Lesson {number} · ")
    assert re.search(r"^1\. ", first, re.M), "a numbered roadmap in the first cell"
    assert len(nb) <= 25, f"{len(nb)} cells"
    for cell in nb:
        if cell["cell_type"] == "code":
            assert len(cell["source"]) <= 15, "".join(cell["source"])[:80]
    summary = next(c for c in reversed(nb) if c["cell_type"] == "markdown")
    text = "".join(summary["source"])
    assert "## What you learned" in text and "### Exercises" in text
    checks = [c for c in nb if f"check_lesson{number}_ex" in "".join(c["source"])]
    assert 1 <= len(checks) <= 2 and nb[-1] is checks[-1], "the lesson ends with its checks"


def test_layout_marks_name_existing_lessons() -> None:
    """A renamed lesson must not leave a stale mark behind (it would silently stop applying)."""


def test_the_errors_lesson_names_every_status_class_of_the_sdk():
    """The errors lesson promises every exception: each APIStatusError subclass is named."""
    import openai

    text = "".join("".join(c["source"]) for c in cells(lesson("_errors_and_resilience")))
    classes = {name for name in dir(openai) if isinstance(getattr(openai, name), type)
               and issubclass(getattr(openai, name), openai.APIStatusError)
               and name != "APIStatusError"}
    assert {"ConflictError", "UnprocessableEntityError", "RateLimitError"} <= classes
    missing = sorted(name for name in classes if f"`{name}`" not in text)
    assert not missing, f"the errors lesson does not name {missing}"
