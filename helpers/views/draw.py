"""What a :class:`~helpers.views.view.StreamView` looks like: its widgets and one redraw.

:class:`ViewWidgets` holds the widget tree of one view (the answer, a Thinking pane for
reasoning models, a status line and a Stop button) and brings it up to date in :meth:`draw`;
:func:`status_line` says the state in one line. When to redraw is the view's business.

Deliberate choices:

- **Reasoning models get two panes.** ``deepseek-reasoner`` or ``kimi-k2-thinking`` stream
  their thinking (``delta.reasoning_content``) before the answer. Mixed into one text, the
  answer would be hard to find, so the thinking goes into its own pane above the answer: a
  dimmed, collapsible "Thinking" accordion, created only when reasoning text arrives (other
  models cost not one byte more), folded away once the answer starts. Both panes are drawn
  the same way (:class:`~helpers.views.blocks.MarkdownPane`: finished blocks once, the open
  tail re-sent), so the bytes stay linear in both, and one redraw updates both.
- **The status line changes at most ``STATUS_RATE`` times per second** (and on every change of
  state): a number changing faster cannot be read anyway, and each change costs a message.
- **CSS classes name the parts** (``llm-stream-status``, ``llm-stream-stop``,
  ``llm-stream-thinking-box``, ...): the browser tests and the meter find them by class.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from ..streams.chunks import StreamResult
from .blocks import HARD_LIMIT, SOFT_LIMIT, MarkdownPane
from .toolparts import ToolBox, ToolEntry

__all__ = ["STATUS_RATE", "ViewWidgets", "status_line"]

#: Status-line updates per second, at most (a number changing faster cannot be read anyway).
STATUS_RATE = 4.0

_THINKING_STYLE = "<style>.llm-stream-thinking{opacity:.6;font-size:92%}</style>"
_COLORS = {"error": "#b3261e", "stopped": "#8a6d00"}


def status_line(state: str, result: StreamResult, *, now: float | None = None,
                error: str | None = None, cost: str | None = None) -> str:
    """Return the one-line status: state, tokens, time to first token, speed, usage, cost.

    ``cost`` is the call's cost as :func:`helpers.money.labels.cost_label` words it (None: unknown,
    and then nothing is shown: an unknown cost must not look free).
    """
    tokens = len(result.pieces)
    if result.usage is not None and state == "done":
        tokens = result.usage.completion_tokens
    parts = [state]
    if state == "waiting":
        return "waiting for the first token…"
    if state == "error" and error:
        parts.append(error)
        parts.append(f"{tokens} tokens received" if tokens else "nothing received")
        return " · ".join(parts)
    parts.append(f"{tokens} tokens")
    if result.time_to_first_token is not None:
        parts.append(f"first token after {result.time_to_first_token:.2f} s")
    speed = result.tokens_per_second
    if speed is None and now is not None and result.first_token is not None:
        span = now - result.first_token
        speed = tokens / span if span > 0 else None
    if speed is not None:
        parts.append(f"{speed:.1f} tokens/s")
    if state == "done" and result.usage is not None:
        usage = result.usage
        parts.append(f"usage {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                     f"completion = {usage.total_tokens}")
        if cost:
            parts.append(cost)
    return " · ".join(parts)


def _status_html(state: str, line: str) -> str:
    color = _COLORS.get(state, "#555")
    return f'<span style="color:{color};font-size:90%">{html.escape(line)}</span>'


class ViewWidgets:
    """The widgets of one live view: a Thinking pane (when needed), the answer, status, Stop.

    Args:
        on_stop: called when the Stop button is clicked.
        status: the first status line (plain text).
        soft_limit, hard_limit: bounds of each pane's re-sent open block.
    """

    def __init__(self, *, on_stop: Callable[[], None], status: str,
                 soft_limit: int = SOFT_LIMIT, hard_limit: int = HARD_LIMIT) -> None:
        import ipywidgets as w

        self._limits = {"soft_limit": soft_limit, "hard_limit": hard_limit}
        self._layout = w.Layout()
        self.answer = MarkdownPane(self._layout, **self._limits)
        self.status = w.HTML(value=_status_html("ready", status))
        self.status.add_class("llm-stream-status")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning",
                                    tooltip="Stop the answer and close the connection")
        self.stop_button.add_class("llm-stream-stop")
        self.stop_button.on_click(lambda _button: on_stop())
        self.body = body = w.VBox(self.answer.parts)
        body.add_class("llm-stream-body")
        self.root = w.VBox([body, w.HBox([self.stop_button, self.status])])
        self.root.add_class("llm-stream-view")
        self.thinking: Any = None  # the Thinking accordion, made when reasoning arrives
        self.thinking_pane: MarkdownPane | None = None
        self._folded = False  # the Thinking pane was folded when the answer started
        self._status_text = ""
        self._last_status = float("-inf")
        self._drawn_state = "ready"
        self._after: list[ToolBox | MarkdownPane | None] = []  # each call, the text after it

    def draw(self, text: str, reasoning: str, state: str, *, now: float,
             status: Callable[[], str], final: bool = False,
             segments: list[str | ToolEntry] | None = None) -> None:
        """Bring the widgets up to date; ``status()`` gives the status line if it is due.

        ``segments``: the answer cut at a tool loop's calls (text, call, text, ...); without
        it the answer is one text.
        """
        if reasoning:
            if self.thinking_pane is None:
                self._add_thinking_pane(open_=not text)
            elif text and not self._folded:  # the answer starts: fold the thinking, once
                self.thinking.selected_index = None
                self._folded = True
            self.thinking_pane.draw(reasoning)  # type: ignore[union-attr]
        if segments is None:
            self.answer.draw(text)
        else:
            self._draw_segments(segments)
        if final or state != self._drawn_state or now - self._last_status >= 1 / STATUS_RATE:
            line = _status_html(state, status())
            if line != self._status_text:
                self.status.value = line
                self._status_text = line
                self._last_status = now
        if final:  # nothing left to stop: the status line gets the whole row
            self.stop_button.disabled = True
            self.stop_button.layout.display = "none"
        self._drawn_state = state

    def _add_thinking_pane(self, *, open_: bool) -> None:
        import ipywidgets as w

        self.thinking_pane = pane = MarkdownPane(self._layout, **self._limits)
        inner = w.VBox([w.HTML(value=_THINKING_STYLE), *pane.parts])
        inner.add_class("llm-stream-thinking")
        self.thinking = w.Accordion(children=(inner,),
                                    titles=("Thinking",), selected_index=0 if open_ else None)
        self.thinking.add_class("llm-stream-thinking-box")
        self._folded = not open_
        self._relayout()

    def _draw_segments(self, segments: list[str | ToolEntry]) -> None:
        """Draw the text before the first call, then each call and the text after it."""
        first, *rest = segments
        self.answer.draw(first)  # type: ignore[arg-type]
        self._after += [None] * (len(rest) - len(self._after))
        for i, part in enumerate(rest):
            drawn = self._after[i]
            if drawn is None:  # a new call, or the first text after one: new widgets
                if isinstance(part, str) and not part:
                    continue  # no text after this call (yet): no widgets
                drawn = ToolBox(part) if isinstance(part, ToolEntry) else \
                    MarkdownPane(self._layout, **self._limits)
                self._after[i] = drawn
                self._relayout()
            if isinstance(drawn, ToolBox):
                drawn.draw()
            else:
                drawn.draw(part)  # type: ignore[arg-type]

    def _relayout(self) -> None:
        """Set the body's children: thinking (if any), the answer, each call and its text."""
        parts = [self.thinking] if self.thinking is not None else []
        parts += self.answer.parts
        for part in self._after:
            if part is not None:
                parts += [part.root] if isinstance(part, ToolBox) else part.parts
        self.body.children = tuple(parts)
