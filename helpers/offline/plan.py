"""The request plan: one chat request read, validated, and its markers turned into intentions.

Markers in the last user message (``[fault:...]``, ``[hold]``, ``[delay:N]``,
``[delay-headers:N]``, ``[tokens:N]``, ``[hostile]``) are taken out of the text before the
answer is composed, so the answer is the same with or without them. The wire traits come from
the one table (:func:`helpers.providers.table.model_traits`), looked up per request, so a changed
trait changes the very next stream.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..providers.table import WireTraits, model_traits
from .errors import ERRORS, BadRequest
from .replies import message_text

__all__ = ["MAX_BODY_BYTES", "STREAM_FAULTS", "Plan", "make_plan", "read_json", "status_fault"]

MAX_BODY_BYTES = 1_000_000
MAX_TOKENS_MARKER = 100_000
ROLES = {"system", "user", "assistant", "tool"}
#: faults that happen inside a stream, after some text (the others are HTTP statuses)
STREAM_FAULTS = {"midstream", "cut", "stall", "malformed"}
MARKER = re.compile(r"\[(fault|hold|delay-headers|delay|tokens|hostile)"
                    r"(?::([a-z0-9]+))?(?::(\d+))?\]", re.I)
MAX_HEADERS_DELAY_MS = 60_000


@dataclass
class Plan:
    """What one chat request asks for, validated, with its markers read."""

    model: str
    traits: WireTraits
    messages: list[dict]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    fault: str | None
    fault_arg: int | None
    hold: bool
    delay_s: float
    tokens: int | None
    body_hash: str
    hostile: bool = False
    headers_delay_s: float = 0.0


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required and must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object with 'role' and 'content'")
        if m.get("role") not in ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(ROLES)}, "
                             f"got {m.get('role')!r}")
        content = m.get("content")
        if not isinstance(content, (str, list)) and not (
                content is None and m["role"] == "assistant"):
            raise BadRequest(f"messages[{i}].content must be a string")
    if not isinstance(body.get("stream", False), bool):
        raise BadRequest("'stream' must be true or false")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int)
                                   or isinstance(max_tokens, bool) or max_tokens < 1):
        raise BadRequest("'max_tokens' must be a positive integer")
    if not isinstance(body.get("stream_options") or {}, dict):
        raise BadRequest("'stream_options' must be an object")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, (int, float))
                                    or isinstance(temperature, bool)
                                    or not 0 <= temperature <= 2):
        raise BadRequest("'temperature' must be a number between 0 and 2")


def make_plan(body: Any, delay_ms: float) -> Plan:
    """Validate a request body and read its markers; raise :class:`BadRequest` if it is wrong."""
    _validate(body)
    messages = body["messages"]
    last_user = next((message_text(m) for m in reversed(messages)
                      if m.get("role") == "user"), "")
    fault = fault_arg = tokens = None
    hold = hostile = False
    delay_s, headers_delay_s = delay_ms / 1000, 0.0
    for kind, arg, num in MARKER.findall(last_user):
        kind = kind.lower()
        if kind == "fault":
            fault = arg.lower() if arg else None
            fault_arg = int(num) if num else None
        elif kind == "hold":
            hold = True
        elif kind == "hostile":
            hostile = True
        elif kind == "delay-headers" and arg.isdigit():
            headers_delay_s = min(int(arg), MAX_HEADERS_DELAY_MS) / 1000
        elif kind == "delay" and arg.isdigit():
            delay_s = int(arg) / 1000
        elif kind == "tokens" and arg.isdigit():
            tokens = max(1, min(int(arg), MAX_TOKENS_MARKER))
    cleaned = [dict(m) for m in messages]
    for m in reversed(cleaned):
        if m.get("role") == "user":
            m["content"] = MARKER.sub("", message_text(m)).strip()
            break
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    options = body.get("stream_options") or {}
    return Plan(
        model=body["model"], traits=model_traits(body["model"]), messages=cleaned,
        stream=body.get("stream", False), include_usage=bool(options.get("include_usage")),
        max_tokens=body.get("max_tokens", body.get("max_completion_tokens")),
        fault=fault, fault_arg=fault_arg, hold=hold, delay_s=delay_s, tokens=tokens,
        body_hash=hashlib.sha256(canonical).hexdigest(), hostile=hostile,
        headers_delay_s=headers_delay_s,
    )


def status_fault(plan: Plan) -> int | None:
    """Return the HTTP status a ``[fault:NNN]`` marker asks for, if any."""
    if plan.fault and plan.fault.isdigit() and int(plan.fault) in ERRORS:
        return int(plan.fault)
    return None


async def read_json(request: Request) -> Any:
    """Read a JSON request body: 415 for another type, 413 when too large, 400 when unreadable."""
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        raise BadRequest(f"Content-Type must be application/json, got {content_type or 'none'!r}",
                         status=415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"Request body too large: at most {MAX_BODY_BYTES} bytes", status=413)
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"Request body too large: at most {MAX_BODY_BYTES} bytes",
                             status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest("Request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
