"""The live stream view: one answer, rendered as Markdown with LaTeX while it arrives.

A :class:`StreamView` shows a streamed chat answer in the notebook as it is written, with a
status line (tokens so far, time to first token, tokens per second, usage at the end) and a
Stop button that closes the upstream connection. :func:`show_stream` displays one and starts it.

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
- **At most ``rate`` redraws per second.** Tokens can arrive far faster than a browser needs to
  repaint. In the background a painter thread redraws at most every ``1/rate`` seconds, and
  only when something changed; :meth:`StreamView.consume` (in the caller's thread) redraws on
  the first token after each interval. The last redraw always shows the complete text.
- **A background thread, not the cell.** A cell blocked in a ``for chunk in stream`` loop keeps
  the kernel from handling the Stop click. :meth:`StreamView.start` consumes in a daemon
  thread, so the cell returns and the kernel stays free. Threads only *set widget values*
  (comm messages, routed by comm id, so it does not matter which cell is current on
  ipykernel 7); they never ``print`` or ``display`` (that output would land in whichever cell
  runs now). Widgets are created and displayed from the caller's thread.
- **Stop really stops.** It sets a flag and shuts the response's socket down (httpx exposes
  it as the ``network_stream`` response extension), so the provider sees the disconnect at
  once, even while it is silent; then the stream is closed. Tokens are money.
- **Headless and plain Python.** nbval does not render widgets and drops output from threads.
  :func:`show_stream` therefore waits for the answer and prints it once, from the cell itself,
  when no Jupyter front end started this kernel (``JPY_SESSION_NAME`` is set by Jupyter
  Server for the kernels of notebooks it opens). Outside a kernel the view is plain text,
  printed as it arrives.
- **Reasoning models get two panes.** ``deepseek-reasoner`` or ``kimi-k2-thinking`` stream
  their thinking (``delta.reasoning_content``) before the answer. Mixed into one text, the
  answer would be hard to find, so the thinking goes into its own pane above the answer: a
  dimmed, collapsible "Thinking" accordion, created only when reasoning text arrives (other
  models cost not one byte more), folded away once the answer starts. Both panes are drawn
  the same way (finished blocks once, the open tail re-sent), so the bytes stay linear in
  both, and one redraw updates both. Headless, the report labels them ``Thinking:`` and
  ``Answer:``. ``view.text`` is the answer only (what a chat sends back as history).
- **No secrets in the view.** The view never sees the client or its key: it gets a function
  that makes the request. Error messages are scrubbed of anything shaped like a key.
"""

from __future__ import annotations

import html
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import openai

from .streaming import StreamResult

__all__ = [
    "HARD_LIMIT", "RATE", "SOFT_LIMIT", "STATUS_RATE", "AppendOnlyColumn", "StreamView",
    "describe_error", "has_live_frontend", "in_kernel", "show_stream", "split_blocks",
    "status_line",
]

#: Redraws per second, at most.
RATE = 30.0
#: An open paragraph longer than this (characters) is cut at a safe word boundary.
SOFT_LIMIT = 600
#: An open block longer than this is cut at any whitespace, safe or not.
HARD_LIMIT = 2400
#: Status-line updates per second, at most (a number changing faster cannot be read anyway).
STATUS_RATE = 4.0

Request = Callable[[], Iterable[Any]] | Iterable[Any]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTENCE_END = "。！？；"
_KEYLIKE = re.compile(r"\b((?:sk|ak|key)-[A-Za-z0-9]{0,3})[A-Za-z0-9_\-]{8,}")
_HINTS = {
    401: " (check the API key in your .env)",
    403: " (this key may not use this model)",
    404: " (check the model name and base_url)",
    429: " (the SDK already retried; wait a little, then try again)",
}


# -- pure functions -------------------------------------------------------------------------
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


def describe_error(exc: BaseException) -> str:
    """Return a short, readable, key-free description of a provider or connection error."""
    if isinstance(exc, openai.APIStatusError):
        text = f"{exc.status_code} {type(exc).__name__}: {_body_message(exc.body) or exc.message}"
        text += _HINTS.get(exc.status_code, "")
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__  # the SDK's text is just "Connection error."
        text = f"connection problem: {cause or exc}"
    elif isinstance(exc, openai.APIError):
        text = f"{type(exc).__name__}: {_body_message(exc.body) or exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _KEYLIKE.sub(r"\1…", text)


def _body_message(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return None


def status_line(state: str, result: StreamResult, *, now: float | None = None,
                error: str | None = None) -> str:
    """Return the one-line status: state, tokens, time to first token, speed, usage."""
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
    return " · ".join(parts)


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, where widgets can reach a front end."""
    shell = sys.modules.get("IPython") and _get_ipython()
    return bool(shell is not None and getattr(shell, "kernel", None) is not None)


def _get_ipython() -> Any:
    from IPython import get_ipython

    return get_ipython()


def has_live_frontend() -> bool:
    """True if a Jupyter server started this kernel for an open notebook (not nbval/nbconvert)."""
    return in_kernel() and bool(os.environ.get("JPY_SESSION_NAME"))


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
        nxt = self._w.VBox(layout=self._layout)
        self._hole.children = (widget, nxt)
        self._hole = nxt
        self.count += 1


class _MarkdownPane:
    """Finished blocks in an append-only column, then the open tail: linear bytes."""

    def __init__(self, view: StreamView) -> None:
        import ipywidgets as w

        self._view = view
        self.column = AppendOnlyColumn(view._layout)
        self.tail = w.Output(layout=view._layout)
        self.parts = (self.column.root, self.tail)  # the widgets to put in a box
        self.committed = 0
        self.tail_text = ""

    def draw(self, text: str) -> None:
        """Send the blocks finished since the last draw, and the tail if it changed."""
        import ipywidgets as w

        view = self._view
        blocks, tail = split_blocks(text[self.committed:], soft_limit=view.soft_limit,
                                    hard_limit=view.hard_limit)
        for block in blocks:
            self.column.append(w.Output(outputs=(_markdown(block),), layout=view._layout))
            self.committed += len(block)
        if tail != self.tail_text:
            self.tail.outputs = (_markdown(tail),) if tail else ()
            self.tail_text = tail


_THINKING_STYLE = "<style>.llm-stream-thinking{opacity:.6;font-size:92%}</style>"


# -- the view -------------------------------------------------------------------------------
class StreamView:
    """A live view of one streamed answer: Markdown + LaTeX, status line, Stop button.

    Args:
        rate: redraws per second, at most.
        soft_limit, hard_limit: bounds of the re-sent open block (see :func:`split_blocks`).
        widgets: force widgets (True) or plain text (False); default: widgets in a kernel.
        clock: the time source (a simulated clock makes measurements reproducible).
        out: where plain-text mode prints (default ``sys.stdout``).
        on_done: called with the view once the answer is complete (any thread).
    """

    def __init__(self, *, rate: float = RATE, soft_limit: int = SOFT_LIMIT,
                 hard_limit: int = HARD_LIMIT, widgets: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter, out: TextIO | None = None,
                 on_done: Callable[[StreamView], None] | None = None) -> None:
        self.rate = rate
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.widgets = in_kernel() if widgets is None else widgets
        self.clock = clock
        self.out = out
        self.on_done = on_done
        self.result = StreamResult()
        self.state = "ready"
        self.error: str | None = None
        self.redraws = 0
        self.redraw_times: list[float] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._done = threading.Event()
        self._stream: Any = None
        self._started = False
        self._version = 0
        self._drawn: tuple[int, str] | None = None
        self._drawn_state = "ready"
        self._last_draw = float("-inf")
        self._thinking: Any = None  # the Thinking accordion, made when reasoning arrives
        self._thinking_pane: _MarkdownPane | None = None
        self._folded = False  # the Thinking pane was folded when the answer started
        self._printed_reasoning = 0  # plain-text mode: reasoning characters printed so far
        self._labelled_answer = False
        self._status_text = ""
        self._last_status = float("-inf")
        self._threads: list[threading.Thread] = []
        if self.widgets:
            self._build()

    def _build(self) -> None:
        import ipywidgets as w

        self._layout = w.Layout()
        self._answer = _MarkdownPane(self)
        self._status = w.HTML(value=self._status_html("ready"))
        self._status.add_class("llm-stream-status")
        self._stop_button = w.Button(description="Stop", icon="stop", button_style="warning",
                                     tooltip="Stop the answer and close the connection")
        self._stop_button.add_class("llm-stream-stop")
        self._stop_button.on_click(lambda _button: self.stop())
        self._body = body = w.VBox(self._answer.parts)
        body.add_class("llm-stream-body")
        self.root = w.VBox([body, w.HBox([self._stop_button, self._status])])
        self.root.add_class("llm-stream-view")

    # -- public API ---------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self.result.text

    @property
    def reasoning(self) -> str:
        """The reasoning text received so far ("" for models that do not stream it)."""
        return self.result.reasoning

    @property
    def done(self) -> bool:
        """True once the answer is complete, stopped or failed, and the view shows it."""
        return self._done.is_set()

    def start(self, request: Request) -> StreamView:
        """Consume the stream in a background thread and return at once (plain text: inline).

        Args:
            request: a function that makes the request and returns the stream (so the view
                can time it and show its errors), or an already-open stream.
        """
        if not self.widgets:
            self.consume(request)
            return self
        self._claim()
        consumer = threading.Thread(target=self._consume_in_background, args=(request,),
                                    name="stream-view-consumer", daemon=True)
        painter = threading.Thread(target=self._paint_loop, name="stream-view-painter",
                                   daemon=True)
        self._threads = [consumer, painter]
        consumer.start()
        painter.start()
        return self

    def consume(self, request: Request) -> StreamResult:
        """Consume the stream in this thread, redrawing at most ``rate`` times per second."""
        self._claim()
        try:
            self._run(request, self._inline_tick)
        finally:
            self._finish()
        return self.result

    def stop(self) -> None:
        """Stop the answer: close the upstream connection now; the view says "stopped"."""
        self._stop.set()
        with self._cond:
            stream = self._stream
            self._cond.notify_all()
        if stream is not None:
            _shutdown(stream)

    def wait(self, timeout: float | None = None, *, tokens: int | None = None) -> StreamResult:
        """Wait until the answer is complete (or has ``tokens`` pieces); return the result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if tokens is not None:
            with self._cond:
                while len(self.result.pieces) < tokens and not self._finished.is_set():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"fewer than {tokens} tokens after {timeout} s")
                    self._cond.wait(0.05 if left is None else min(left, 0.05))
            return self.result
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            if not self._done.wait(left):
                raise TimeoutError(f"the answer was not complete after {timeout} s")
        except KeyboardInterrupt:  # interrupting a waiting cell stops the answer too
            self.stop()
            raise
        return self.result

    def status(self) -> str:
        """Return the current status line (plain text)."""
        return status_line(self.state, self.result, now=self.clock(), error=self.error)

    def report(self) -> str:
        """Return the answer text and its status line, for printing once at the end.

        With reasoning, the thinking comes first, both labelled:
        ``Thinking:\n<reasoning>\n\nAnswer:\n<answer>\n── <status>``.
        """
        if not self.reasoning:
            return f"{self.text}\n── {self.status()}"
        return f"Thinking:\n{self.reasoning}\n\nAnswer:\n{self.text}\n── {self.status()}"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        if not self.widgets:
            return {"text/plain": self.report()}
        bundle = self.root._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "StreamView (live in Jupyter; the text is printed below when done)"
        return bundle

    def __repr__(self) -> str:
        return f"<StreamView {self.state}, {len(self.result.pieces)} tokens>"

    # -- consuming ----------------------------------------------------------------------
    def _claim(self) -> None:
        if self._started:
            raise RuntimeError("A StreamView shows one answer; make a new view for the next.")
        self._started = True

    def _consume_in_background(self, request: Request) -> None:
        try:
            self._run(request, lambda added: None)
        finally:
            self._finished.set()

    def _run(self, request: Request, tick: Callable[[str], None]) -> None:
        clock = self.clock
        completed = False
        self.result = StreamResult(started=clock())
        self._set_state("waiting")
        stream: Any = None
        try:
            stream = request() if callable(request) else request
            with self._cond:
                self._stream = stream
            if self._stop.is_set():
                _shutdown(stream)
            else:
                self._set_state("streaming")
                for chunk in stream:
                    with self._cond:
                        added = self.result.add(chunk, clock())
                        self._version += 1
                        self._cond.notify_all()
                    if added:
                        tick(added)
                    if self._stop.is_set():
                        break
                else:
                    completed = True
        except KeyboardInterrupt:  # Ctrl-C in plain Python, or the kernel's interrupt button
            self._stop.set()
        except Exception as exc:  # a thread must not raise: the view shows it instead
            if not self._stop.is_set():
                self.error = describe_error(exc)
        finally:
            self.result.ended = clock()
            _close(stream)
            with self._cond:
                if self.error:
                    state = "error"
                elif completed:
                    state = "done"
                else:
                    state = "stopped" if self._stop.is_set() else "done"
                self.state = state
                self._stream = None
                self._version += 1
                self._cond.notify_all()

    def _set_state(self, state: str) -> None:
        with self._cond:
            self.state = state
            self._version += 1

    def _inline_tick(self, added: str) -> None:
        if not self.widgets:
            out = self.out or sys.stdout
            thought = len(self.result.reasoning) > self._printed_reasoning
            if thought and not self._printed_reasoning:
                print("Thinking:", file=out)
            elif not thought and self._printed_reasoning and not self._labelled_answer:
                print("\n\nAnswer:", file=out)  # the first piece after the thinking
                self._labelled_answer = True
            self._printed_reasoning = len(self.result.reasoning)
            print(added, end="", flush=True, file=out)
            return
        now = self.clock()
        if now - self._last_draw >= 1.0 / self.rate:
            self._redraw()

    def _finish(self) -> None:
        self._finished.set()
        try:
            if self.widgets:
                self._redraw(final=True)
            else:
                gap = "\n" if self.text and not self.text.endswith("\n") else ""
                print(f"{gap}── {self.status()}", file=self.out or sys.stdout, flush=True)
            if self.on_done is not None:
                self.on_done(self)
        finally:
            self._done.set()

    # -- drawing ------------------------------------------------------------------------
    def _paint_loop(self) -> None:
        interval = 1.0 / self.rate
        try:
            while not self._finished.wait(interval):
                with self._cond:
                    changed = self._drawn != (self._version, self.state)
                if changed and self.clock() - self._last_draw >= interval:  # never early
                    self._redraw()
        except Exception as exc:  # never print from a thread; show it in the view instead
            self.error = self.error or f"view failed: {describe_error(exc)}"
        finally:
            try:
                self._finish()
            except Exception:  # a traceback from a thread would land in whichever cell runs
                pass

    def _redraw(self, final: bool = False) -> None:
        now = self.clock()  # when this redraw starts: the rate limit counts from here
        with self._cond:
            text, state, version = self.result.text, self.state, self._version
            reasoning = self.result.reasoning
        if reasoning:
            if self._thinking_pane is None:
                self._add_thinking_pane(open_=not text)
            elif text and not self._folded:  # the answer starts: fold the thinking, once
                self._thinking.selected_index = None
                self._folded = True
            self._thinking_pane.draw(reasoning)
        self._answer.draw(text)
        if final or state != self._drawn_state or now - self._last_status >= 1 / STATUS_RATE:
            status = self._status_html(state)
            if status != self._status_text:
                self._status.value = status
                self._status_text = status
                self._last_status = now
        if final:  # nothing left to stop: the status line gets the whole row
            self._stop_button.disabled = True
            self._stop_button.layout.display = "none"
        self._drawn = (version, state)
        self._drawn_state = state
        self._last_draw = now
        self.redraws += 1
        self.redraw_times.append(now)

    def _add_thinking_pane(self, *, open_: bool) -> None:
        import ipywidgets as w

        self._thinking_pane = pane = _MarkdownPane(self)
        inner = w.VBox([w.HTML(value=_THINKING_STYLE), *pane.parts])
        inner.add_class("llm-stream-thinking")
        self._thinking = w.Accordion(children=(inner,),
                                     titles=("Thinking",), selected_index=0 if open_ else None)
        self._thinking.add_class("llm-stream-thinking-box")
        self._folded = not open_
        self._body.children = (self._thinking, *self._answer.parts)

    def _status_html(self, state: str) -> str:
        line = html.escape(status_line(state, self.result, now=self.clock(), error=self.error))
        color = {"error": "#b3261e", "stopped": "#8a6d00"}.get(state, "#555")
        return f'<span style="color:{color};font-size:90%">{line}</span>'


def _shutdown(stream: Any) -> None:
    """Shut the stream's socket down at once (wakes a blocked read); best effort."""
    response = getattr(stream, "response", None)
    network = getattr(response, "extensions", {}).get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


_BY_CELL: dict[str, StreamView] = {}


def _cell_id() -> str | None:
    """The id of the notebook cell running now (JupyterLab sends it), if known."""
    try:
        parent = _get_ipython().get_parent()
    except Exception:
        return None
    cell = (parent or {}).get("metadata", {}).get("cellId")
    return cell if isinstance(cell, str) else None


def show_stream(request: Request, *, wait: bool | None = None, **options: Any) -> StreamView:
    """Display a :class:`StreamView`, start it, and return it (assign it: ``view = ...``).

    Args:
        request: a function that makes the streaming request (``lambda: client.chat
            .completions.create(..., stream=True)``), or an open stream.
        wait: block until the answer is complete, then print it once. Default: only when no
            Jupyter front end is attached (nbval, nbconvert), so outputs can be checked.
        options: passed to :class:`StreamView`.
    """
    view = StreamView(**options)
    if not view.widgets:
        view.consume(request)
        return view
    from IPython.display import display

    cell = _cell_id()
    previous = _BY_CELL.get(cell) if cell else None
    if previous is not None and not previous.done:
        previous.stop()  # re-running a cell must not leave its old answer running (and billed)
    if cell:
        _BY_CELL[cell] = view
    display(view)
    view.start(request)
    if wait if wait is not None else not has_live_frontend():
        view.wait()
        print(view.report())
    return view
