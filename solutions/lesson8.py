"""Lesson 8 solutions: tool calls joined by index whatever the flavour; a tool runner that never
crashes."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any


def join_tool_calls(chunks: list) -> list[dict]:
    """Exercise 1: join streamed tool-call pieces into calls ({"id", "name", "arguments"}).

    Join by ``index``, the one field that says which call a piece belongs to, never by
    ``id``: later pieces carry no id (Moonshot, OpenAI) or ``"id": ""`` (Qwen). A local
    server sends whole calls with no index at all: then a piece with a new id starts a new
    call. The first non-empty id and name win, so an empty one later changes nothing.
    """
    calls: list[dict] = []
    by_index: dict[int, dict] = {}
    for chunk in chunks:
        if not chunk.choices:
            continue
        for piece in chunk.choices[0].delta.tool_calls or []:
            index = getattr(piece, "index", None)
            if index is not None and index in by_index:
                call = by_index[index]
            elif index is None and calls and not (piece.id and piece.id != calls[-1]["id"]):
                call = calls[-1]  # no index: a piece without a new id continues the last call
            else:
                call = {"id": "", "name": "", "arguments": ""}
                calls.append(call)
                if index is not None:
                    by_index[index] = call
            call["id"] = call["id"] or piece.id or ""  # Qwen's later pieces say "id": ""
            fn = piece.function
            if fn is not None:  # Qwen sometimes sends an empty "function": {}
                call["name"] = call["name"] or fn.name or ""
                call["arguments"] += fn.arguments or ""
    return calls


def safe_run(name: str, arguments: str, functions: dict[str, Callable[..., Any]]) -> str:
    """Exercise 2: run an allowed function; any problem becomes an 'Error: ...' text.

    The model chose the name and wrote the arguments, so both are untrusted input. The
    allow-list comes first (never look a name up anywhere else); then the JSON, then the
    arguments against the signature (a missing one is a ``TypeError`` before the call), then
    the call itself, whose exception becomes text too. The model reads the error and can try
    again; a raise would end the tool loop.
    """
    if name not in functions:
        return f"Error: unknown tool {name!r}; the tools are {', '.join(sorted(functions))}"
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        return f"Error: the arguments are not valid JSON ({exc})"
    if not isinstance(args, dict):
        return "Error: the arguments must be a JSON object"
    try:
        inspect.signature(functions[name]).bind(**args)
    except TypeError as exc:
        return f"Error: wrong arguments for {name}: {exc}"
    try:
        return str(functions[name](**args))
    except Exception as exc:
        return f"Error: {name} failed: {type(exc).__name__}: {exc}"
