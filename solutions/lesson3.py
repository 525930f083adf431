"""Lesson 3 solutions: stop a live view after n tokens, and a chat with a short memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers import ChatUI, StreamView


def stop_after(request: Callable[[], Any], n: int) -> StreamView:
    """Exercise 1: start a view in the background, stop it after ``n`` tokens, return it.

    The order matters. ``start`` reads in a background thread, so this function keeps
    control; ``consume`` would read the whole answer first. ``wait(tokens=n)`` before
    ``stop`` makes sure n tokens arrived. ``stop`` closes the connection (the provider records
    a disconnect before the end). The last ``wait`` lets the view reach the state "stopped"
    before the view is returned.
    """
    view = StreamView(widgets=True).start(request)  # reads in a background thread
    view.wait(tokens=n)  # at least n tokens have arrived (or the answer ended sooner)
    view.stop()  # closes the connection: the provider stops writing
    view.wait()  # the view has drawn its last state ("stopped")
    return view


class ShortMemoryChat(ChatUI):
    """Exercise 2: a chat that sends only the last two messages of its history."""

    def messages_for(self, question: str) -> list[dict[str, str]]:
        """Return the system prompt, the last question and answer, and the new question.

        ``history[-2:]`` is the last question with its answer, so "What did I just ask?" still
        has its answer. The new question must come last, or the model has nothing to answer.
        Fewer messages means fewer prompt tokens: the check compares the provider's count.
        """
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *self.history[-2:], {"role": "user", "content": question}]
