"""The committed lessons: no key-like string anywhere, and the house layout (STYLE.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
#: Lessons whose exercises have self-checks (helpers/exercises.py).
CHECKED = {1: "01_configure_the_sdk", 2: "02_streaming_chunks", 3: "03_live_widgets",
           4: "04_relay_from_scratch", 5: "05_hardened_relay", 6: "06_providers_and_quirks",
           7: "07_errors_and_resilience", 8: "08_tool_calls"}
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_no_key_like_string_in_a_committed_notebook(path):
    found = KEY_LIKE.findall(path.read_text())
    assert not found, f"{path.name} contains key-like strings: {found[:3]}"


@pytest.mark.parametrize(("lesson", "name"), sorted(CHECKED.items()), ids=list(CHECKED.values()))
def test_lesson_layout(lesson, name):
    nb = cells(name)
    first = "".join(nb[0]["source"])
    assert nb[0]["cell_type"] == "markdown" and first.startswith(f"# Lesson {lesson} · ")
    assert re.search(r"^1\. ", first, re.M), "a numbered roadmap in the first cell"
    assert len(nb) <= 25, f"{len(nb)} cells"
    for cell in nb:
        if cell["cell_type"] == "code":
            assert len(cell["source"]) <= 15, "".join(cell["source"])[:80]
    summary = next(c for c in reversed(nb) if c["cell_type"] == "markdown")
    text = "".join(summary["source"])
    assert "## What you learned" in text and "### Exercises" in text
    checks = [c for c in nb if f"check_lesson{lesson}_ex" in "".join(c["source"])]
    assert 1 <= len(checks) <= 2 and nb[-1] is checks[-1], "the lesson ends with its checks"


def test_lesson7_names_every_status_class_of_the_sdk():
    """Lesson 7 promises every exception: each APIStatusError subclass the SDK exports is named."""
    import openai

    text = "".join("".join(c["source"]) for c in cells("07_errors_and_resilience"))
    classes = {name for name in dir(openai) if isinstance(getattr(openai, name), type)
               and issubclass(getattr(openai, name), openai.APIStatusError)
               and name != "APIStatusError"}
    assert {"ConflictError", "UnprocessableEntityError", "RateLimitError"} <= classes
    missing = sorted(name for name in classes if f"`{name}`" not in text)
    assert not missing, f"lesson 7 does not name {missing}"
