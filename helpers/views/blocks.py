"""Markdown cut into blocks, drawn so that the bytes sent grow linearly with the text.

:func:`split_blocks` cuts streamed Markdown into finished blocks and the open tail;
:class:`MarkdownPane` draws one text that way; :class:`AppendOnlyColumn` holds the blocks.

Deliberate choices ("why this and not the obvious thing"):

- **Bytes grow linearly with the answer.** The obvious view keeps one widget and sets its
  value to the whole text on every token: the front end then receives 1 + 2 + ... + n
  tokens, quadratic in the answer. Here a finished block (a paragraph, a ``$$`` block, a code
  fence) is sent once, as a new ``Output`` widget holding ``text/markdown``, and only the open
  block (the *tail*) is re-sent on a redraw. The tail is bounded: a paragraph longer than
  ``soft_limit`` characters is split at a word or sentence boundary outside math (a forced
  cut at ``hard_limit`` covers pathological input), so every redraw costs at most a bounded
  number of bytes and the total is linear.
- **Finished blocks are chained, not listed.** Appending to a ``VBox`` re-sends its whole
  ``children`` list (quadratic again, 42 bytes per child). Each block therefore goes into the
  last box of a chain: ``box.children = (block, next_box)`` costs the same for block 1 and 1000.
- **Plain ipywidgets, no custom front end.** ``Output`` widgets render ``text/markdown`` with
  JupyterLab's own Markdown and MathJax renderers (same look as a Markdown cell, works
  offline). anywidget could send raw deltas, but would need its own Markdown and LaTeX
  libraries in the browser; the measured cost here (docs/widgets.md) is linear already.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["HARD_LIMIT", "SOFT_LIMIT", "AppendOnlyColumn", "MarkdownPane", "split_blocks"]

#: An open paragraph longer than this (characters) is cut at a safe word boundary.
SOFT_LIMIT = 600
#: An open block longer than this is cut at any whitespace, safe or not.
HARD_LIMIT = 2400

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTENCE_END = "。！？；"


def split_blocks(text: str, *, soft_limit: int = SOFT_LIMIT,
                 hard_limit: int = HARD_LIMIT) -> tuple[list[str], str]:
    """Split Markdown into finished blocks and the open tail; ``"".join`` gives it back.

    A block ends after a blank line outside ``$$`` math and code fences. A tail longer than
    ``soft_limit`` is cut before a word (or after a CJK sentence end) where no inline ``$``
    math is open; longer than ``hard_limit``, at the last whitespace or anywhere.
    """
    blocks: list[str] = []
    start = pos = 0
    fence: str | None = None
    in_math = False
    while (newline := text.find("\n", pos)) >= 0:
        line = text[pos:newline]
        pos = newline + 1
        marker = _FENCE.match(line)
        if marker and (fence is None or marker.group(1).startswith(fence)):
            fence = marker.group(1)[:3] if fence is None else None
        elif fence is None and line.count("$$") % 2:
            in_math = not in_math
        if (not line.strip() and fence is None and not in_math
                and text[start:pos].strip()):
            blocks.append(text[start:pos])
            start = pos
    tail = text[start:]
    while len(tail) > soft_limit:
        cut = _safe_cut(tail, forced=len(tail) > hard_limit)
        if not cut:
            break
        blocks.append(tail[:cut])
        tail = tail[cut:]
    return blocks, tail


def _safe_cut(text: str, *, forced: bool) -> int:
    """Return the last position where the text may be cut (0 if none)."""
    best = last_space = 0
    dollars = 0  # unescaped single $ seen so far, outside $$
    display = fence = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "`" and text.startswith("```", i) and (i == 0 or text[i - 1] == "\n"):
            fence = not fence
            i += 3
            continue
        if ch == "$":
            if text.startswith("$$", i):
                display = not display
                i += 2
                continue
            dollars += 1
        outside = not (display or fence or dollars % 2)
        if i + 1 < n:
            nxt = text[i + 1]
            if ch.isspace():
                last_space = i + 1
                if outside and nxt.isalpha():
                    best = i + 1
            elif ch in _SENTENCE_END and outside and not nxt.isspace():
                best = i + 1
        i += 1
    if best or not forced:
        return best
    return last_space or n


def _markdown(text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {"text/markdown": text}, "metadata": {}}


class AppendOnlyColumn:
    """An append-only column of widgets; each append costs the same, however long it is."""

    def __init__(self, layout: Any) -> None:
        import ipywidgets as w

        self._w = w
        self._layout = layout
        self.root = w.VBox(layout=layout)
        self._hole = self.root
        self.count = 0

    def append(self, widget: Any) -> None:
        """Add a widget at the end: the last box of the chain holds it and a new empty box."""
        nxt = self._w.VBox(layout=self._layout)
        self._hole.children = (widget, nxt)
        self._hole = nxt
        self.count += 1


class MarkdownPane:
    """One growing Markdown text: finished blocks in an append-only column, then the open tail.

    Args:
        layout: the ``ipywidgets.Layout`` its widgets share (one model, sent once).
        soft_limit, hard_limit: bounds of the re-sent open block (see :func:`split_blocks`).
    """

    def __init__(self, layout: Any, *, soft_limit: int = SOFT_LIMIT,
                 hard_limit: int = HARD_LIMIT) -> None:
        import ipywidgets as w

        self._layout = layout
        self._limits = {"soft_limit": soft_limit, "hard_limit": hard_limit}
        self.column = AppendOnlyColumn(layout)
        self.tail = w.Output(layout=layout)
        self.parts = (self.column.root, self.tail)  # the widgets to put in a box
        self.committed = 0
        self.tail_text = ""

    def draw(self, text: str) -> None:
        """Send the blocks finished since the last draw, and the tail if it changed."""
        import ipywidgets as w

        blocks, tail = split_blocks(text[self.committed:], **self._limits)
        for block in blocks:
            self.column.append(w.Output(outputs=(_markdown(block),), layout=self._layout))
            self.committed += len(block)
        if tail != self.tail_text:
            self.tail.outputs = (_markdown(tail),) if tail else ()
            self.tail_text = tail
