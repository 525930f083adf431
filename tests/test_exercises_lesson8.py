"""Lesson 8's self-checks: the solutions pass, the committed starters say "not yet", and the
usual mistakes get a hint that names them."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from helpers.exercises import check_lesson8_ex1, check_lesson8_ex2

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "08_tool_calls.ipynb"


def solution():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("solutions.lesson8")


def verdict(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip()
    assert "\n" not in out, f"a check prints one line, got: {out!r}"
    return out


def test_solutions_pass(capsys):
    check_lesson8_ex1(solution().join_tool_calls)
    assert verdict(capsys).startswith("✅")
    check_lesson8_ex2(solution().safe_run)
    assert verdict(capsys).startswith("✅")


def test_committed_starter_cells_say_not_yet(capsys):
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells
               if c["cell_type"] == "code" and "check_lesson8_ex" in "".join(c["source"])]
    assert len(sources) == 2
    namespace: dict = {}
    for source in sources:
        exec(compile(source, "lesson8-exercise", "exec"), namespace)
        assert verdict(capsys).startswith("not yet: ")


def test_joining_by_id_is_told_which_flavour_breaks_it(capsys):
    def by_id(chunks):  # the classic mistake: Qwen's later pieces say "id": ""
        calls: dict = {}
        last = None
        for chunk in chunks:
            for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                last = piece.id if piece.id is not None else last
                call = calls.setdefault(last, {"id": last, "name": "", "arguments": ""})
                if piece.function is not None:
                    call["name"] += piece.function.name or ""
                    call["arguments"] += piece.function.arguments or ""
        return list(calls.values())
    check_lesson8_ex1(by_id)
    assert verdict(capsys).startswith("not yet: qwen-plus")


def test_a_runner_that_lets_exceptions_through_is_told(capsys):
    def unsafe(name, arguments, functions):
        try:
            return str(functions[name](**json.loads(arguments)))
        except (KeyError, ValueError):
            return "Error: no"
    check_lesson8_ex2(unsafe)
    out = verdict(capsys)
    assert out.startswith("not yet: safe_run raised ZeroDivisionError"), out
