"""Tool calls in the live view: where each call started in the answer, and how it is drawn.

Give :func:`helpers.views.show.show_stream` a tool loop (``lambda: iter_tool_loop(client, ...)``,
which yields :class:`~helpers.streams.toolcalls.Event` objects) instead of a chunk stream, and the
view shows each call as a part of its own, between the text before it and the text after it:
the tool's name, its arguments as they grow, then its result. :class:`ToolTrack` folds the
events into the view's :class:`~helpers.streams.chunks.StreamResult` and remembers the calls;
:class:`ToolBox` is one call's widgets; :func:`tool_report` is the plain-text form.

Deliberate choices:

- **A call is anchored where it started in the text** (an offset into the answer), so the
  text before it, the call and the text after it are drawn in the order they came, whatever
  the provider streams first (Moonshot sends a sentence, then the calls).
- **Three small ``Output`` widgets per call**: the name (sent once), the arguments (re-sent
  while they grow, at the view's redraw rate; arguments are short) and the result (sent
  once). ``text/plain`` for arguments and result: the front end shows them monospaced, as
  they are, with no Markdown to misread a ``*`` in an expression.
- **A view with no tool call sends exactly the bytes it did before**: nothing here creates a
  widget until a call starts.
- **CSS classes name the parts** (``llm-stream-tool``, ``llm-stream-tool-name``,
  ``llm-stream-tool-arguments``, ``llm-stream-tool-result``), as in the page (chat.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openai.types import CompletionUsage

from ..streams.chunks import StreamResult
from ..streams.toolcalls import Event, ToolCall

__all__ = ["ToolBox", "ToolEntry", "ToolTrack", "tool_report"]

_BOX_STYLE = {"border": "1px solid #d0d7de", "padding": "2px 8px", "margin": "4px 0"}


@dataclass
class ToolEntry:
    """One call as the view knows it: where it started in the text, and its result."""

    call: ToolCall
    at: int  # offset in the answer text where the call started
    result: str | None = None


def _plain(text: str) -> tuple[dict[str, Any], ...]:
    if not text:
        return ()
    return ({"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}},)


def _markdown(text: str) -> tuple[dict[str, Any], ...]:
    return ({"output_type": "display_data", "data": {"text/markdown": text}, "metadata": {}},)


class ToolTrack:
    """Fold tool-loop events into a :class:`StreamResult`; remember each call and result."""

    def __init__(self) -> None:
        self.entries: list[ToolEntry] = []
        self.stopped: str | None = None  # the loop's "stopped" text (max_rounds reached)
        self._line_open = False  # plain text: the last thing printed did not end a line

    def apply(self, event: Event, result: StreamResult, now: float) -> str:
        """Take one event; return the text a plain-text view prints for it ("" for none)."""
        printed = self._fold(event, result, now)
        if printed:
            self._line_open = not printed.endswith("\n")
        return printed

    def _fold(self, event: Event, result: StreamResult, now: float) -> str:
        kind, text, call = event.kind, event.text, event.call
        if kind in ("content", "reasoning", "tool_call.arguments") and text:
            if result.first_token is None:
                result.first_token = now
            result.arrivals.append(now - result.started)
            result.pieces.append(text)
        if kind == "content":
            result.text += text
            return text
        if kind == "reasoning":
            result.reasoning += text
            return text
        if kind == "tool_call.start" and call is not None:
            self.entries.append(ToolEntry(call, len(result.text)))
            return self._new_line() + f"🔧 {call.name} "
        if kind == "tool_call.arguments":
            return text
        if kind == "tool_call.result" and call is not None:
            entry = next((e for e in self.entries if e.call is call), None)
            if entry is not None:
                entry.result = text
            return self._new_line() + f"→ {call.name}: {text}\n"
        if kind == "usage" and event.data:
            result.usage = _add_usage(result.usage, event.data)
        elif kind == "done":
            result.finish_reason = "stop"
        elif kind == "stopped":
            self.stopped = text
        return ""

    def _new_line(self) -> str:
        return "\n" if self._line_open else ""

    def segments(self, text: str) -> list[str | ToolEntry]:
        """Return the answer cut at the calls: text, call, text, ..., text (texts may be "")."""
        parts: list[str | ToolEntry] = []
        start = 0
        for entry in self.entries:
            parts += [text[start:entry.at], entry]
            start = entry.at
        parts.append(text[start:])
        return parts


def _add_usage(total: CompletionUsage | None, data: dict[str, Any]) -> CompletionUsage:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    before = total.model_dump() if total is not None else {}
    return CompletionUsage(**{k: int(before.get(k) or 0) + int(data.get(k) or 0) for k in keys})


def tool_report(segments: list[str | ToolEntry]) -> str:
    """Return the answer with each call on its own lines: ``🔧 name args`` then ``→ result``."""
    out = ""
    for part in segments:
        if isinstance(part, str):
            out += part
            continue
        gap = "\n" if out and not out.endswith("\n") else ""
        result = "(no result)" if part.result is None else part.result
        out += f"{gap}🔧 {part.call.name} {part.call.arguments}\n→ {result}\n"
    return out


class ToolBox:
    """One call's widgets: its name, its arguments as they grow, then its result."""

    def __init__(self, entry: ToolEntry) -> None:
        import ipywidgets as w

        self.entry = entry
        self.name = w.Output(outputs=_markdown(f"🔧 **{entry.call.name or 'tool'}**"))
        self.name.add_class("llm-stream-tool-name")
        self.arguments = w.Output()
        self.arguments.add_class("llm-stream-tool-arguments")
        self.result = w.Output()
        self.result.add_class("llm-stream-tool-result")
        self.root = w.VBox([self.name, self.arguments, self.result],
                           layout=w.Layout(**_BOX_STYLE))
        self.root.add_class("llm-stream-tool")
        self._drawn: tuple[str, str, str | None] = (entry.call.name, "", None)

    def draw(self) -> None:
        """Send what changed since the last draw: the arguments so far, the result once."""
        call, result = self.entry.call, self.entry.result
        if call.name != self._drawn[0]:  # a name that came in pieces
            self.name.outputs = _markdown(f"🔧 **{call.name}**")
        if call.arguments != self._drawn[1]:
            self.arguments.outputs = _plain(call.arguments)
        if result is not None and result != self._drawn[2]:
            self.result.outputs = _plain(f"→ {result}")
        self._drawn = (call.name, call.arguments, result)
