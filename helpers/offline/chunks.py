"""Chunk building: the answer as SSE chunks, shaped by the model family's wire traits.

Moonshot's shape is the base: the first delta carries ``role: "assistant"``, content deltas
follow, the final chunk carries ``finish_reason``. What differs by family is read from the one
table (:mod:`helpers.providers.table`) through the plan's ``traits``: where usage goes, asked or not
(``usage_places``), the ``: keep-alive`` comment, and the reasoning field that streams before
the answer. Stream faults cut the answer at :func:`cut_point`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from ..money.tokens import count_prompt_tokens, count_tokens, cut_to_tokens
from ..providers.table import USAGE_IN_CHOICE, USAGE_TOP_LEVEL, USAGE_TRAILING
from .counters import Counters
from .errors import DeliberateCut, error_body
from .gate import HoldGate
from .plan import STREAM_FAULTS, Plan
from .replies import HOSTILE_REPLY, compose_reply, filler_reply, split_pieces

__all__ = ["Answer", "compose_answer", "cut_point", "delta_events", "make_answer",
           "stream_events"]


def cut_point(pieces: Sequence[str]) -> int:
    """Return how many answer pieces a stream fault lets through before it strikes."""
    return max(1, len(pieces) // 3)


@dataclass
class Answer:
    """The answer to one plan: its streamed pieces, reasoning pieces, finish reason and usage."""

    pieces: list[str]
    thoughts: list[str]
    finish: str
    usage: dict[str, Any]


def compose_answer(plan: Plan, prompt_tokens: int | None = None) -> Answer:
    """Compose the answer (cut at ``max_tokens`` tokens) and count its usage."""
    if prompt_tokens is None:
        prompt_tokens = count_prompt_tokens(plan.messages)
    reply = compose_reply(plan.messages, reasoning=plan.traits.reasoning)
    text = filler_reply(plan.tokens) if plan.tokens is not None else reply.text
    if plan.hostile:
        text = HOSTILE_REPLY
    text, cut = cut_to_tokens(text, plan.max_tokens)
    return make_answer(text, reply.reasoning, "length" if cut else "stop", prompt_tokens)


def make_answer(text: str, reasoning: str, finish: str, prompt_tokens: int) -> Answer:
    """Return the answer as streamed pieces, with usage counted by :mod:`helpers.money.tokens`."""
    thinking = count_tokens(reasoning)
    completion = count_tokens(text) + thinking
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                             "total_tokens": prompt_tokens + completion}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return Answer(split_pieces(text), split_pieces(reasoning), finish, usage)


def _sse(payload: dict, ascii_only: bool = False) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=ascii_only,
                                  separators=(",", ":")).encode() + b"\n\n"


async def stream_events(plan: Plan, ident: str, answer: Answer, gate: HoldGate,
                        counters: Counters) -> AsyncIterator[tuple[str, bytes]]:
    """Yield an answer's (kind, bytes) wire events: its reasoning, its text, a fault if asked.

    The reasoning streams in the family's ``reasoning_field``; a family without one has no
    reasoning to stream (:func:`compose_answer` composes none).
    """
    field = plan.traits.reasoning_field
    deltas = [{field: p} for p in answer.thoughts] + [{"content": p} for p in answer.pieces]
    cut_at = None
    if plan.fault in STREAM_FAULTS:
        cut_at = len(answer.thoughts) + cut_point(answer.pieces)
    async for event in delta_events(plan, ident, deltas, answer.finish, answer.usage, gate,
                                    counters, cut_at=cut_at):
        yield event


async def delta_events(plan: Plan, ident: str, deltas: Sequence[dict], finish: str,
                       usage: dict[str, Any], gate: HoldGate, counters: Counters, *,
                       cut_at: int | None = None) -> AsyncIterator[tuple[str, bytes]]:
    """Yield (kind, bytes) wire events for these deltas; kind is "chunk", "comment" or "done".

    The one framing of a streamed answer (text, reasoning or tool-call pieces): the role chunk,
    a chunk per delta, then the finish chunk with usage where the family puts it. ``cut_at``:
    the plan's stream fault strikes before that delta.
    """
    created = int(time.time())
    traits = plan.traits
    places = traits.usage_places(asked=plan.include_usage)

    def chunk(delta: dict, finish_reason: str | None = None, top: dict | None = None,
              **extra: Any) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        choice.update(extra)
        return _sse({"id": ident, "object": "chat.completion.chunk", "created": created,
                     "model": plan.model, "choices": [choice], **(top or {})})

    async def pause() -> None:
        # Always yield, even with no delay: writing to a socket does not, so a zero-delay
        # stream would otherwise never let the event loop notice a client that left.
        await asyncio.sleep(plan.delay_s)

    if traits.keep_alive:
        yield "comment", b": keep-alive\n\n"
    yield "chunk", chunk({"role": "assistant", "content": ""})
    for i, delta in enumerate(deltas):
        if i == cut_at:
            async for event in _fault_events(plan.fault, counters):
                yield event
            return
        await pause()
        yield "chunk", chunk(delta)
    if plan.hold or gate.closed:
        await gate.wait(plan.hold)
    await pause()
    extra = {"usage": usage} if USAGE_IN_CHOICE in places else {}
    top = {"usage": usage} if USAGE_TOP_LEVEL in places else None
    yield "chunk", chunk({}, finish, top, **extra)
    if USAGE_TRAILING in places:
        yield "chunk", _sse({"id": ident, "object": "chat.completion.chunk", "created": created,
                             "model": plan.model, "choices": [], "usage": usage},
                            ascii_only=True)
    yield "done", b"data: [DONE]\n\n"


async def _fault_events(fault: str | None, counters: Counters) -> AsyncIterator[tuple[str, bytes]]:
    counters.add("faults")
    if fault == "midstream":
        body = error_body(500, "The stream failed midway (simulated)", "server_error")
        yield "chunk", b"data: " + json.dumps(body).encode() + b"\n\n"
    elif fault == "malformed":
        yield "chunk", b'data: {"id": "broken", "choices": [\n\n'
    elif fault == "stall":
        await anyio.sleep_forever()
    elif fault == "cut":
        raise DeliberateCut()
