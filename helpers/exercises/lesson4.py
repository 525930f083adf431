"""Self-checks for lesson 4's exercises: a relay written from scratch, and the page's splitter.

The relay check serves the learner's own FastAPI app with ``BackgroundServer`` in front of the
checks' private offline provider and reads its SSE lines by hand, as lesson 4 does, so what is
checked is exactly what a browser would receive.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

from ..servers import BackgroundServer
from ..settings import OFFLINE_KEY
from ._common import PYTHAGORAS, PYTHAGORAS_ZH, _pieces, _provider, _report, _require

_WIRE_EVENTS: list[tuple[str, Any]] = [
    ("delta", {"content": "勾股定理"}), ("delta", {"content": ": $$a^2 + b^2 = c^2$$\n\nso"}),
    ("delta", {"content": " 3, 4, 5."}), ("done", {"finish_reason": "stop"})]


def _read_events(url: str, question: str) -> tuple[str, list[tuple[str, Any]]]:
    """POST the question to ``url``/chat; return the content type and the (name, data) events."""
    events: list[tuple[str, Any]] = []
    name = None
    with httpx.stream("POST", url + "/chat", json={"question": question}, timeout=20) as response:
        kind = response.headers.get("content-type", "")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                events.append((name or "message", json.loads(line.partition(":")[2])))
    return kind, events


@_report
def check_lesson4_ex1(make_relay: Any) -> str:
    """Check lesson 4, exercise 1: ``make_relay(aclient, model)`` says how the answer ended."""
    _require(callable(make_relay), "pass the function: check_lesson4_ex1(make_relay)")
    provider = _provider()
    aclient = openai.AsyncOpenAI(base_url=provider.base_url, api_key=OFFLINE_KEY, max_retries=0)
    app = make_relay(aclient, "moonshot-v1-8k")
    _require(app is not None, "make_relay returned None: return the FastAPI app")
    results = []
    with BackgroundServer(app, name="exercise-checks-minimal-relay") as server:
        for question in (PYTHAGORAS, PYTHAGORAS_ZH):
            results.append((question, *_read_events(server.url, question)))
    for question, kind, events in results:
        _require(kind.startswith("text/event-stream"), f"the response's content type is "
                 f"{kind!r}: use media_type=\"text/event-stream\"")
        text = "".join(data.get("content", "") for name, data in events if name == "delta")
        _require(text == "".join(_pieces(question)), "the `delta` events do not add up to the "
                 "answer: one event per piece of content, as in section 1")
        _require(bool(events) and events[-1][0] == "done", "the last event should be `done`")
        _require(events[-1][1] == {"finish_reason": "stop"}, f"`done` carried {events[-1][1]!r}: "
                 "send {\"finish_reason\": ...} from the chunk whose finish_reason is set")
    _require(provider.stats()["completed"] == 2, "the provider did not stream two answers")
    return "two answers streamed, each ending with done and its finish_reason."


def _wire() -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                   for name, data in _WIRE_EVENTS)


@_report
def check_lesson4_ex2(split_events: Any) -> str:
    """Check lesson 4, exercise 2: ``split_events(buffer)`` -> (complete events, the rest)."""
    _require(callable(split_events), "pass the function: check_lesson4_ex2(split_events)")
    wire = _wire()
    for size in (len(wire), 1, 2, 7, 13):
        got: list[tuple[str, Any]] = []
        buffer = ""
        for start in range(0, len(wire), size):
            buffer += wire[start:start + size]
            result = split_events(buffer)
            _require(result is not None, "split_events returned None: return (events, rest)")
            events, buffer = result
            got.extend(tuple(event) for event in events)
        _require(buffer == "", f"after the whole stream, the rest should be empty, got "
                               f"{buffer[:40]!r}...")
        _require(got == _WIRE_EVENTS, f"read in pieces of {size} characters, the events were "
                 f"{got[:3]!r}...: keep what follows the last blank line for the next read")
    return "the same four events however the stream was cut, even inside the blank line."
