"""Lesson 5 solutions: read the hardened relay's events; tell a whole answer from a cut one."""

from __future__ import annotations

import httpx
from httpx_sse import connect_sse


def relay_answer(url: str, question: str) -> tuple[str, dict | None]:
    """Exercise 1: stream one answer from the relay; return (text, the usage event's data).

    ``connect_sse`` does the framing that lesson 4 did by hand; ``event.json()`` parses the
    data, so ``usage`` is a dict (``event.data`` would be its JSON text). One request to
    ``url``, the relay the caller names: the check counts what its own provider answered.
    """
    text, usage = "", None
    with httpx.Client(base_url=url) as client:
        with connect_sse(client, "POST", "api/chat/stream",
                         json={"question": question}) as source:
            for event in source.iter_sse():
                if event.event == "delta":
                    text += event.json()["content"]
                elif event.event == "usage":
                    usage = event.json()
    return text, usage


def ask_checked(url: str, question: str) -> tuple[str, bool]:
    """Exercise 2: return (the text so far, True only if the relay said `done`).

    The status is 200 in all three of the check's cases, so it says nothing about the end:
    only the last event does. ``finished`` starts False and only ``done`` sets it, so an
    ``error`` event and a connection that closes early both leave it False, and the text
    that arrived before is kept.
    """
    text, finished = "", False
    with httpx.Client(base_url=url) as client:
        with connect_sse(client, "POST", "api/chat/stream",
                         json={"question": question}) as source:
            for event in source.iter_sse():
                if event.event == "delta":
                    text += event.json()["content"]
                elif event.event == "done":
                    finished = True
    # An `error` event, or a connection that ends without `done`, leaves finished False.
    return text, finished
