"""Lesson 9's self-checks: the solutions pass, the committed starters say "not yet", and the
usual mistakes get a hint that names them."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from helpers.exercises import check_lesson9_ex1, check_lesson9_ex2
from helpers.money.tokens import count_prompt_tokens
from helpers.providers import price_of

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_files_tokens_cost.ipynb"


def solution():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("solutions.lesson9")


def verdict(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip()
    assert "\n" not in out, f"a check prints one line, got: {out!r}"
    return out


def test_solutions_pass(capsys):
    check_lesson9_ex1(solution().conversation_cost)
    assert verdict(capsys).startswith("✅")
    check_lesson9_ex2(solution().fit)
    assert verdict(capsys).startswith("✅")


def test_committed_starter_cells_say_not_yet(capsys):
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells
               if c["cell_type"] == "code" and "check_lesson9_ex" in "".join(c["source"])]
    assert len(sources) == 2
    namespace: dict = {}
    for source in sources:
        exec(compile(source, "lesson9-exercise", "exec"), namespace)
        assert verdict(capsys).startswith("not yet: ")


def test_ignoring_the_cache_is_told(capsys):
    def no_cache(usages, model):
        price = price_of(model)
        return sum(u["prompt_tokens"] * price.input + u["completion_tokens"] * price.output
                   for u in usages) / 1e6

    check_lesson9_ex1(no_cache)
    assert "price.cached_input" in verdict(capsys)


@pytest.mark.parametrize("mistake,hint", [
    ("newest_first", "oldest turns first"),
    ("drops_system", "keep the system message first"),
    ("drop_all", "more than needed"),
    ("loops_forever", "raise ValueError"),
])
def test_trimming_mistakes_are_told(capsys, mistake, hint):
    def fit(messages, window, reserve):
        system, rest = messages[:1], messages[1:]
        if mistake == "drops_system":
            system, rest = [], messages
        if mistake == "drop_all" and count_prompt_tokens(messages) > window - reserve:
            return system + rest[-1:]
        while count_prompt_tokens(system + rest) > window - reserve:
            if len(rest) <= 1:
                return system + rest  # gives up silently instead of raising
            if mistake == "newest_first":
                rest = rest[:-3] + rest[-1:]
            else:
                rest = rest[2:]
        return system + rest

    check_lesson9_ex2(fit)
    assert hint in verdict(capsys)
