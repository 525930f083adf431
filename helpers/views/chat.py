"""A small chat in the notebook: input box, Send, history across turns, Clear.

Each turn is a question and a :class:`~helpers.views.view.StreamView`, so answers stream live,
have a Stop button and show errors in place. The conversation (``history``) is plain
``{"role", "content"}`` dicts, exactly what the SDK takes, so the model sees every previous
turn; that is the whole trick of a chat.

Deliberate choices:

- The sync ``openai.OpenAI`` client by default: each answer is consumed in its own
  background thread (see helpers/views/view.py), so the kernel stays free for clicks.
- One question at a time: Send is disabled while an answer streams, and :meth:`ChatUI.ask`
  first waits for the previous answer, because the next request must include it.
- A stopped or failed answer keeps the text it got (as the assistant's turn); a turn that
  got no text at all is dropped from the history, so the next request stays well formed.
- The turns go into an append-only column, so a long chat does not re-send the whole log.
- Each answer's status line shows its cost; a line under the log shows the conversation's
  total (:attr:`ChatUI.cost`), which grows faster than the chat: every request pays again for
  the whole history. No price known, no figure (an unknown cost must not look free).
"""

from __future__ import annotations

import html
from typing import Any

from ..money.cost import Cost
from ..money.labels import cost_label
from .blocks import AppendOnlyColumn
from .env import has_live_frontend, in_kernel
from .view import StreamView

__all__ = ["ChatUI"]


class ChatUI:
    """A chat widget over any OpenAI-compatible client.

    Args:
        client: an ``openai.OpenAI`` client (from :func:`helpers.make_client`).
        model: the model name.
        system: an optional system prompt (the persona).
        widgets: force widgets (True) or plain text (False); default: widgets in a kernel.
        view_options: passed to each :class:`~helpers.views.view.StreamView`.
    """

    def __init__(self, client: Any, model: str, *, system: str | None = None,
                 widgets: bool | None = None, **view_options: Any) -> None:
        self.client = client
        self.model = model
        self.system = system
        self.widgets = in_kernel() if widgets is None else widgets
        self.view_options = view_options
        self.history: list[dict[str, str]] = []
        self.views: list[StreamView] = []
        self._current: StreamView | None = None
        if self.widgets:
            self._build()

    def _build(self) -> None:
        import ipywidgets as w

        self._layout = w.Layout()
        self._column = AppendOnlyColumn(self._layout)
        self._log = w.VBox([self._column.root])
        self._log.add_class("llm-chat-log")
        self.input = w.Textarea(placeholder="Ask a math question…", rows=2,
                                layout=w.Layout(width="100%"))
        self.input.add_class("llm-chat-input")
        self.send_button = w.Button(description="Send", icon="paper-plane",
                                    button_style="primary")
        self.send_button.add_class("llm-chat-send")
        self.clear_button = w.Button(description="Clear", icon="trash")
        self.clear_button.add_class("llm-chat-clear")
        self.send_button.on_click(lambda _b: self._send_from_box())
        self.clear_button.on_click(lambda _b: self.clear())
        self.total = w.HTML(value="")
        self.total.add_class("llm-chat-total")
        self.root = w.VBox([self._log, self.total, self.input,
                            w.HBox([self.send_button, self.clear_button])])
        self.root.add_class("llm-chat")

    def messages_for(self, question: str) -> list[dict[str, str]]:
        """Return the messages the next request sends: system, history, the question."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *self.history, {"role": "user", "content": question}]

    def ask(self, question: str, *, wait: bool | None = None) -> StreamView | None:
        """Send a question (like typing it and pressing Send); return its view.

        Args:
            question: the user's message.
            wait: block until the answer is complete and print it once; default only when
                no Jupyter front end is attached (nbval, nbconvert), or in plain Python.
        """
        question = question.strip()
        if not question:
            return None
        self.wait()
        messages = self.messages_for(question)
        self.history.append({"role": "user", "content": question})
        view = StreamView(widgets=self.widgets, on_done=self._finished, **self.view_options)
        self.views.append(view)
        self._current = view
        if self.widgets:
            import ipywidgets as w

            self.send_button.disabled = True
            you = w.HTML(f"<b>You:</b> {html.escape(question)}")
            you.add_class("llm-chat-question")
            turn = w.VBox([you, view.root], layout=self._layout)
            self._column.append(turn)
        else:
            print(f"You: {question}\nAssistant: ", end="", flush=True, file=view.out)
        view.start(lambda: self.client.chat.completions.create(
            model=self.model, messages=messages, stream=True))
        if self.widgets and (wait if wait is not None else not has_live_frontend()):
            view.wait()
            print(view.report())
        return view

    @property
    def cost(self) -> Cost | None:
        """What the conversation's answers cost so far (None: no price known for any)."""
        costs = [c for c in (view.cost for view in self.views) if c is not None]
        return sum(costs[1:], costs[0]) if costs else None

    def total_line(self) -> str:
        """Return the conversation's total line ("" until an answer has a known cost)."""
        label = cost_label(self.cost, offline=any(view.offline for view in self.views))
        answers = len(self.views)
        return f"conversation so far: {answers} answer{'s' * (answers != 1)} · {label}" \
            if label else ""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the answer in progress, if any."""
        if self._current is not None:
            self._current.wait(timeout)

    def stop(self) -> None:
        """Stop the answer in progress, if any."""
        if self._current is not None:
            self._current.stop()

    def clear(self) -> None:
        """Forget the conversation and empty the log."""
        self.stop()
        self.wait(10)
        self.history.clear()
        self.views.clear()
        self._current = None
        if self.widgets:
            self._column = AppendOnlyColumn(self._layout)
            self._log.children = (self._column.root,)
            self.send_button.disabled = False
            self.total.value = ""

    def _send_from_box(self) -> None:
        question = self.input.value
        if question.strip() and (self._current is None or self._current.done):
            self.input.value = ""
            self.ask(question, wait=False)

    def _finished(self, view: StreamView) -> None:
        if view.text:
            self.history.append({"role": "assistant", "content": view.text})
        elif self.history and self.history[-1]["role"] == "user":
            self.history.pop()  # nothing came back: forget the question too
        if self.widgets:
            self.total.value = html.escape(self.total_line())
            self.send_button.disabled = False

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        if not self.widgets:
            return {"text/plain": repr(self)}
        bundle = self.root._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "ChatUI (live in Jupyter: type a question and press Send)"
        return bundle

    def __repr__(self) -> str:
        return f"<ChatUI {self.model}, {len(self.history)} messages>"
