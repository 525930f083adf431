"""Lesson 8 solutions: tool calls joined by index whatever the flavour; a tool runner that never
crashes."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any


def join_tool_calls(chunks: list) -> list[dict]:
    """Exercise 1: join streamed tool-call pieces into calls ({"id", "name", "arguments"})."""
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
    """Exercise 2: run an allowed function; any problem becomes an 'Error: ...' text."""
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
