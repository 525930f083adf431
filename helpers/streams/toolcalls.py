"""Assemble streamed tool calls from their pieces, by index, whatever the provider's quirks.

A tool call streams as ``delta.tool_calls[i]`` pieces: ``index``, ``id`` and
``function.name`` usually in the first, ``function.arguments`` as JSON fragments to join.
Providers differ (the table in :mod:`helpers.providers.table` says how), so the rules here are:

- Join by ``index``, never by ``id``: Qwen's later pieces carry ``"id": ""`` (an empty id or
  an empty ``"function": {}`` changes nothing).
- A missing ``index`` (Ollama, Gemini's compatible endpoint): a piece with a new id, or with a
  name once the last call's arguments are complete JSON, opens a new call; anything else
  continues the call opened last.
- One index repeated in a chunk (vLLM with Kimi K2): pieces are merged in order, like any other.
- A new id on an index that already has a different one (a server that sends index 0 for every
  call) opens a new call: two calls never glue into invalid JSON.
- Content and reasoning before, between or after the calls are kept (Moonshot sends content
  first). Reasoning is read from any field the provider table lists (``REASONING_FIELDS``) and
  sent back under the field it came in. A call that never got an id gets ``call_<n>``, so it
  can still be answered.

Chunks may be the SDK's objects or plain dicts; pieces are read from ``model_dump`` with
``exclude_unset``, so a field the server left out is told apart from one it sent as null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..providers import table
from .usage import find_usage

__all__ = ["Event", "ToolCall", "ToolCallAssembler", "assemble_tool_calls"]


@dataclass
class ToolCall:
    """One tool call, as assembled so far."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""

    def parsed(self) -> Any:
        """Return the arguments as JSON (raises ``ValueError`` while they are incomplete)."""
        return json.loads(self.arguments or "{}")

    def as_dict(self) -> dict[str, Any]:
        """Return the call as an assistant message lists it."""
        return {"id": self.id or f"call_{self.index}", "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Event:
    """Something that happened in a stream with tools (what a live view shows).

    ``kind`` is one of "content", "reasoning", "tool_call.start", "tool_call.arguments",
    "tool_call.result" (from the tool loop), "usage" (``data``: one request's usage, from the
    tool loop), "done" and "stopped".
    """

    kind: str
    text: str = ""
    call: ToolCall | None = None
    data: dict[str, Any] | None = None


def _as_dict(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    return dump(exclude_unset=True) if dump is not None else {}


@dataclass
class ToolCallAssembler:
    """Feed it chunks; it joins the tool-call pieces by index and keeps the text."""

    content: str = ""
    reasoning: str = ""
    reasoning_field: str | None = None  # the field the reasoning came in (the table's name)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None  # wherever the provider put it (find_usage)
    calls: list[ToolCall] = field(default_factory=list)
    _slots: dict[int, int] = field(default_factory=dict)  # wire index -> position in calls
    _last: int | None = None

    def feed(self, chunk: Any) -> list[Event]:
        """Take one chunk; return what it added, as events."""
        events: list[Event] = []
        found = find_usage(chunk)
        if found is not None:
            self.usage = found[1] if isinstance(found[1], dict) else _as_dict(found[1])
        for choice in _as_dict(chunk).get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if thought := table.reasoning_text(delta.get):
                self.reasoning_field = self.reasoning_field or thought[0]
                self.reasoning += thought[1]
                events.append(Event("reasoning", thought[1]))
            if isinstance(delta.get("content"), str) and delta["content"]:
                self.content += delta["content"]
                events.append(Event("content", delta["content"]))
            for piece in delta.get("tool_calls") or []:
                events += self._piece(piece if isinstance(piece, dict) else _as_dict(piece))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _open(self, index: int | None) -> ToolCall:
        call = ToolCall(index=len(self.calls))
        self.calls.append(call)
        if index is not None:
            self._slots[index] = call.index
        self._last = call.index
        return call

    @staticmethod
    def _starts_another(last: ToolCall, ident: str, name: Any) -> bool:
        """With no index: a new id, or a name after complete arguments, starts another call."""
        if ident and ident != last.id:
            return True
        if not (name and last.name and last.arguments):
            return False
        try:
            json.loads(last.arguments)
        except ValueError:
            return False
        return True

    def _piece(self, piece: dict) -> list[Event]:
        index = piece.get("index")
        ident = piece.get("id") or ""
        fn = piece.get("function") or {}
        call: ToolCall | None = None
        if index is not None and index in self._slots:
            call = self.calls[self._slots[index]]
            if ident and call.id and ident != call.id:
                call = None  # the same index for another call: open a new one
        elif index is None and self._last is not None and \
                not self._starts_another(self.calls[self._last], ident, fn.get("name")):
            call = self.calls[self._last]
        events = []
        if call is None:
            call = self._open(index)
            events.append(Event("tool_call.start", call=call))
        self._last = call.index
        if ident and not call.id:
            call.id = ident
        name = fn.get("name")
        if isinstance(name, str) and name and name != call.name:
            call.name += name
            if events:
                events[-1].text = call.name
        args = fn.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args)  # a server that sends the arguments as an object
        if args:
            call.arguments += args
            events.append(Event("tool_call.arguments", args, call))
        return events

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Return the calls in the order they started, each with an id."""
        for call in self.calls:
            call.id = call.id or f"call_{call.index}"
        return list(self.calls)

    def message(self, reasoning_field: str | None = None) -> dict[str, Any]:
        """Return the assistant message to send back (reasoning kept: Kimi thinking needs it).

        Args:
            reasoning_field: the field to send the reasoning in (default: the one it came in).
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.calls:
            message["tool_calls"] = [c.as_dict() for c in self.tool_calls]
        name = reasoning_field or self.reasoning_field
        if self.reasoning and name:
            message[name] = self.reasoning
        return message


def assemble_tool_calls(chunks: Iterable[Any]) -> list[ToolCall]:
    """Join the tool calls of a whole stream (chunks as SDK objects or dicts)."""
    assembler = ToolCallAssembler()
    for chunk in chunks:
        assembler.feed(chunk)
    return assembler.tool_calls
