"""Self-checks for lesson 2's exercises."""

from __future__ import annotations

from typing import Any

from ..streams.chunks import StreamResult
from ._common import (
    PYTHAGORAS,
    _client,
    _pieces,
    _provider,
    _report,
    _require,
)


@_report
def check_lesson2_ex1(first_words: Any) -> str:
    """Check lesson 2, exercise 1: ``first_words(stream, n)`` returns n pieces and closes."""
    _require(callable(first_words), "pass the function itself: check_lesson2_ex1(first_words)")
    provider, expected = _provider(), _pieces(PYTHAGORAS)[:5]
    held = PYTHAGORAS + " [hold]"  # the last chunk waits: only closing can end this stream
    stream = _client(provider).chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": held}], stream=True)
    try:
        got = first_words(stream, 5)
        _require(got is not None, "first_words returned None: return a list of the pieces")
        _require(list(got) == expected,
                 f"first_words(stream, 5) returned {list(got)!r}, expected {expected!r} "
                 "(skip chunks whose delta has no content)")
        _require(stream.response.is_closed, "the pieces are right, but the stream is still open: "
                                            "close it (stream.close(), or a with block)")
    finally:
        stream.close()
    record = provider.wait_for(lambda s: s["recent"] and s["recent"][-1]["outcome"] != "open")
    outcome = record["recent"][-1]["outcome"]
    _require(outcome == "disconnected", f"the provider recorded {outcome!r}, not a disconnect")
    return f"{expected!r}, and the provider saw the client leave early."


@_report
def check_lesson2_ex2(plain: Any, counted: Any) -> str:
    """Check lesson 2, exercise 2: ``collect`` results without and with ``include_usage``."""
    _require(plain is not None and counted is not None,
             "assign collect(...) of both streams to `plain` and `counted`")
    _require(isinstance(plain, StreamResult) and isinstance(counted, StreamResult),
             "`plain` and `counted` should be what collect(stream) returned")
    _require(plain.text != "", "`plain` has no text: did the stream run?")
    _require(plain.usage is None, "`plain` has usage: ask gpt-4o-mini WITHOUT stream_options")
    _require(counted.usage is not None,
             "`counted` has no usage: add stream_options={'include_usage': True}")
    return (f"without include_usage: no usage; with it: {counted.usage.total_tokens} tokens, "
            "from the trailing chunk.")
