"""The live stream view: one answer, rendered as Markdown with LaTeX while it arrives.

A :class:`StreamView` shows a streamed chat answer in the notebook as it is written, with a
status line (tokens, time to first token, tokens per second, usage and cost at the end) and
a Stop button that closes the upstream connection. This module is how it consumes the stream
and when it redraws; how it looks is :mod:`helpers.views.draw`, how the bytes stay linear
:mod:`helpers.views.blocks`.

Deliberate choices ("why this and not the obvious thing"):

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
- **Plain text outside a kernel**, printed as it arrives; with reasoning, labelled
  ``Thinking:`` and ``Answer:``. ``view.text`` is the answer only (what a chat sends back as
  history).
- **No secrets in the view.** The view never sees the client or its key: it gets a function
  that makes the request. Errors are shown as :func:`helpers.errors.describe_error` words them
  (scrubbed of anything shaped like a key).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import describe_error
from ..money.cost import Cost, call_cost
from ..money.labels import cost_label, priced_by
from ..streams.chunks import ChunkSource, StreamResult
from ..streams.toolcalls import Event
from .blocks import HARD_LIMIT, SOFT_LIMIT
from .draw import ViewWidgets, status_line
from .env import in_kernel
from .toolparts import ToolTrack, tool_report

__all__ = ["RATE", "StreamView"]

#: Redraws per second, at most.
RATE = 30.0


class StreamView:
    """A live view of one streamed answer: Markdown + LaTeX, status line, Stop button.

    Args:
        rate: redraws per second, at most.
        soft_limit, hard_limit: bounds of the re-sent open block (see
            :func:`helpers.views.blocks.split_blocks`).
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
        self._last_draw = float("-inf")
        self._printed_reasoning = 0  # plain-text mode: reasoning characters printed so far
        self._labelled_answer = False
        self._tools = ToolTrack()  # the calls of a tool loop (none for a plain chunk stream)
        self.model: str | None = None  # the model the request named (for its price)
        self.offline = False  # True when the offline provider counted the tokens
        if self.widgets:
            self._parts = ViewWidgets(on_stop=self.stop, status=self._status_now("ready"),
                                      soft_limit=soft_limit, hard_limit=hard_limit)
            self.root = self._parts.root

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

    def start(self, request: ChunkSource) -> StreamView:
        """Consume the stream in a background thread and return at once (plain text: inline).

        Args:
            request: a function that makes the request and returns the stream (so the view
                can time it and show its errors), or an already-open stream; or a tool
                loop's events (:func:`helpers.tools.loop.iter_tool_loop`).
        """
        if not self.widgets:
            self.consume(request)
            return self
        self._claim()
        consumer = threading.Thread(target=self._consume_in_background, args=(request,),
                                    name="stream-view-consumer", daemon=True)
        painter = threading.Thread(target=self._paint_loop, name="stream-view-painter",
                                   daemon=True)
        consumer.start()
        painter.start()
        return self

    def consume(self, request: ChunkSource) -> StreamResult:
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

    @property
    def cost(self) -> Cost | None:
        """What the answer cost at its model's price (None: no usage, or no price known)."""
        return call_cost(self.result.usage, self.model) if self.model else None

    def status(self) -> str:
        """Return the current status line (plain text)."""
        return self._status_now(self.state)

    def report(self) -> str:
        """Return the answer text and its status line, for printing once at the end.

        With reasoning, the thinking comes first, both labelled:
        ``Thinking:\n<reasoning>\n\nAnswer:\n<answer>\n── <status>``.
        """
        text = tool_report(self._tools.segments(self.text)) if self._tools.entries else self.text
        if not self.reasoning:
            return f"{text}\n── {self.status()}"
        return f"Thinking:\n{self.reasoning}\n\nAnswer:\n{text}\n── {self.status()}"

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

    def _consume_in_background(self, request: ChunkSource) -> None:
        try:
            self._run(request, lambda added: None)
        finally:
            self._finished.set()

    def _run(self, request: ChunkSource, tick: Callable[[str], None]) -> None:
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
                for chunk in stream:  # chunks, or a tool loop's events (iter_tool_loop)
                    with self._cond:
                        added = (self._tools.apply(chunk, self.result, clock())
                                 if isinstance(chunk, Event) else self.result.add(chunk, clock()))
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
            self.model, self.offline = priced_by(getattr(stream, "response", None))
            _close(stream)
            self.error = self.error or self._tools.stopped  # a tool loop that did not converge
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
            segments = self._tools.segments(text) if self._tools.entries else None
        self._parts.draw(text, reasoning, state, now=now, final=final, segments=segments,
                         status=lambda: self._status_now(state))
        self._drawn = (version, state)
        self._last_draw = now
        self.redraws += 1
        self.redraw_times.append(now)

    def _status_now(self, state: str) -> str:
        return status_line(state, self.result, now=self.clock(), error=self.error,
                           cost=cost_label(self.cost, offline=self.offline))


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
