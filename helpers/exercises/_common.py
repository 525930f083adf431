"""What every lesson's self-check shares: a private offline provider, a client, the report.

Each ``check_lessonN_exM`` prints one line: ``✅ ...`` when the answer is right, or
``not yet: <hint>`` when it is not (starter code included); when the learner's code raised, the
hint is followed by a short traceback of the learner's own frames (where, in their cell). A
check never raises, so a notebook with an unfinished exercise still runs to the end, and nbval
still passes on the committed one.

Checks that call your function give it a client for a private offline provider (zero delay,
its own counters), whatever provider the lesson itself uses: the expected answers are then
known exactly, a check costs no tokens, and the counters can prove what your code did on the
wire (that it streamed, that it closed the connection).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from ..money.tokens import count_tokens
from ..offline import OfflineProvider
from ..offline.replies import Reply, compose_reply, split_pieces
from ..providers.table import model_traits
from ..settings import OFFLINE_KEY

PYTHAGORAS = "What is the Pythagorean theorem?"
PYTHAGORAS_ZH = "勾股定理是什么？"
_checker: OfflineProvider | None = None


class _NotYet(Exception):
    """An answer that is not right yet; the message is the hint."""


def _provider() -> OfflineProvider:
    """Return the checks' own offline provider (started once, zero delay, counters reset)."""
    global _checker
    if _checker is None or not _checker.running:
        _checker = OfflineProvider(delay_ms=0, name="exercise-checks").start()
    _checker.reset_stats()
    return _checker


def _client(provider: OfflineProvider, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key=OFFLINE_KEY, **options)


def _your_frames(exc: BaseException, limit: int = 3) -> list[str]:
    """Return the last frames of ``exc``'s traceback that are the learner's code, one line each.

    Frames in this package and in installed libraries are left out: what is left is where the
    error happened in the notebook cell (or the learner's own module).
    """
    package = str(Path(__file__).resolve().parents[1])
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith(package) or "site-packages" in name or "/lib/python" in name:
            continue
        where = ("your cell" if name.startswith("<ipython-input") or "ipykernel_" in name
                 else Path(name).name)
        lines.append(f"    {where}, line {frame.lineno}, in {frame.name}: {frame.line or ''}")
    return lines[-limit:]


def _report(check: Callable[..., str]) -> Callable[..., None]:
    """Turn a check that returns a success line (or raises _NotYet) into one that prints."""

    @functools.wraps(check)
    def run(*args: Any) -> None:
        try:
            print("✅ " + check(*args))
        except _NotYet as hint:
            print(f"not yet: {hint}")
        except Exception as exc:  # the learner's code failed: where, in their own code
            print(f"not yet: your code raised {type(exc).__name__}: {exc}")
            for line in _your_frames(exc):
                print(line)

    return run


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise _NotYet(hint)


def _reply(question: str, model: str = "moonshot-v1-8k") -> Reply:
    """Return the offline provider's reply to ``question`` (reasoning if the table says so)."""
    return compose_reply([{"role": "user", "content": question}],
                         reasoning=model_traits(model).reasoning)


def _pieces(question: str, model: str = "moonshot-v1-8k") -> list[str]:
    """Return the answer pieces the offline provider streams for ``question``."""
    return split_pieces(_reply(question, model).text)


def _completion_tokens(question: str, model: str = "moonshot-v1-8k") -> int:
    """Return the completion tokens the offline provider reports for ``question`` (its rule)."""
    reply = _reply(question, model)
    return count_tokens(reply.text) + count_tokens(reply.reasoning)
