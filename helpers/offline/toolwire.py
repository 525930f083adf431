"""A tool turn on the wire, per family (from the table's ``tool_calls`` quirks), and JSON mode.

Streamed: the role chunk, reasoning (thinking on), a content preamble (``content_first``), then
each call: a first piece with ``index``, ``id``, ``type`` and ``function.name``, then argument
fragments. Qwen's later pieces carry ``"id": ""`` and end with an empty ``"function": {}``; a
local server sends each call whole, with no ``index``. The finish chunk says ``tool_calls``
and places usage as the family does. Token rule for calls: one fragment is one token, plus one
for the name. Markers for faults are not honoured in a tool turn; ``[hold]`` is.

JSON mode (``response_format``): ``json_object`` answers ``{"answer": ..., "language": ...}``;
``json_schema`` fills the schema's properties (the answer text for the first string, numbers
from the question for numeric ones). The JSON streams as content pieces like any answer.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from ..money.tokens import count_prompt_tokens, count_tokens, cut_to_tokens
from ..providers.table import ToolCallQuirks
from .calls import Call, ToolTurn, fill_arguments
from .chunks import Answer, delta_events, make_answer
from .counters import Counters
from .errors import BadRequest
from .gate import HoldGate
from .plan import Plan
from .replies import has_cjk, message_text, split_pieces
from .stream import ChunkStream

__all__ = ["json_mode_answer", "tool_response"]

_FRAGMENT = re.compile(r'\{"|":|\s*"|\s*[\w.+\-]+|\\.|\s*\S|\s+')


def fragments(arguments: str) -> list[str]:
    """Split a call's JSON arguments into the fragments that stream; they join back to it."""
    return _FRAGMENT.findall(arguments)


def _pieces(call: Call, i: int, q: ToolCallQuirks) -> list[dict]:
    """Return the tool_calls entries that carry one call, in wire order."""
    if q.whole_call:
        return [{"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments}}]
    first = {"index": i, "id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": ""}}
    later: list[dict] = []
    for frag in fragments(call.arguments):
        piece: dict[str, Any] = {"index": i, "function": {"arguments": frag}}
        if q.later_id is not None:
            piece = {"index": i, "id": q.later_id, "type": "function", **piece}
        later.append(piece)
    if q.empty_function:
        later.append({"index": i, "id": q.later_id or "", "type": "function", "function": {}})
    return [first, *later]


def _usage(plan: Plan, body: dict, turn: ToolTurn, completion: int) -> dict[str, Any]:
    prompt = count_prompt_tokens(plan.messages) + turn.search_tokens
    if body.get("tools"):
        prompt += count_prompt_tokens([{"content": json.dumps(body["tools"])}])
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    if turn.thoughts:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": count_tokens(turn.thoughts)}
    return usage


def _deltas(plan: Plan, turn: ToolTurn) -> tuple[list[dict], int]:
    """Return the deltas after the role chunk, and the completion tokens they cost."""
    q = plan.traits.tool_calls or ToolCallQuirks("call_")
    field = plan.traits.reasoning_field  # thoughts only when the family streams reasoning
    deltas: list[dict] = [{field: p} for p in split_pieces(turn.thoughts)]
    deltas += [{"content": p} for p in split_pieces(turn.preamble or turn.text)]
    tokens = count_tokens(turn.thoughts) + count_tokens(turn.preamble or turn.text)
    for i, call in enumerate(turn.calls):
        deltas += [{"tool_calls": [p]} for p in _pieces(call, i, q)]
        tokens += 1 + count_tokens(call.arguments)  # 1 for the call's name and id
    return deltas, tokens


def _message(plan: Plan, turn: ToolTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.preamble or turn.text or None}
    if turn.thoughts and plan.traits.reasoning_field:
        message[plan.traits.reasoning_field] = turn.thoughts
    if turn.calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function":
                                  {"name": c.name, "arguments": c.arguments}}
                                 for c in turn.calls]
    return message


def tool_response(plan: Plan, body: dict, turn: ToolTurn, ident: str, gate: HoldGate,
                  counters: Counters) -> Response:
    """Return the response for a tool turn: a chat.completion, or a stream of chunks."""
    deltas, tokens = _deltas(plan, turn)
    usage = _usage(plan, body, turn, tokens)
    finish = "tool_calls" if turn.calls else "stop"
    if not plan.stream:
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": int(time.time()),
            "model": plan.model, "usage": usage,
            "choices": [{"index": 0, "message": _message(plan, turn), "finish_reason": finish}],
        })
    events = delta_events(plan, ident, deltas, finish, usage, gate, counters)
    return ChunkStream(counters, events, planned=len(deltas) + 2, plan=plan, usage=usage)


def _schema_object(schema: dict, text: str, question: str) -> dict[str, Any]:
    filled = fill_arguments(schema, question, question)
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    text_used = False
    for key, prop in props.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "string" and not text_used:
            out[key], text_used = text, True
        elif key in filled:
            out[key] = filled[key]
        elif kind in ("number", "integer"):
            out[key] = 0
        elif kind == "boolean":
            out[key] = True
        elif kind == "array":
            out[key] = []
        else:
            out[key] = "" if kind == "string" else None
    return out


def json_mode_answer(body: dict, plan: Plan, answer: Answer) -> Answer:
    """Return the answer as JSON when ``response_format`` asks for it (else unchanged)."""
    fmt = body.get("response_format")
    if fmt is None:
        return answer
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return answer
    question = next((message_text(m) for m in reversed(plan.messages)
                     if m.get("role") == "user"), "")
    text = "".join(answer.pieces)
    if kind == "json_object":
        obj: dict[str, Any] = {"answer": text, "language": "zh" if has_cjk(question) else "en"}
    elif kind == "json_schema" and isinstance(fmt.get("json_schema"), dict) \
            and isinstance(fmt["json_schema"].get("schema"), dict):
        obj = _schema_object(fmt["json_schema"]["schema"], text, question)
    else:
        raise BadRequest("response_format must be {'type': 'text'}, {'type': 'json_object'} or "
                         "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}")
    text, cut = cut_to_tokens(json.dumps(obj, ensure_ascii=False), plan.max_tokens)
    return make_answer(text, "".join(answer.thoughts), "length" if cut else answer.finish,
                       answer.usage["prompt_tokens"])
