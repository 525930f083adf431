"""Lesson 6's raw-line inspector: a stream's Server-Sent Event lines as sent, and what was where.

The SDK hides two things a provider comparison needs to see: comment lines (DeepSeek's
``: keep-alive``, which the SSE decoder drops by design) and the exact place ``usage`` sat in
the JSON. So :func:`raw_sse_lines` posts the request with plain ``httpx`` and returns the lines
exactly as they arrived, and :func:`describe_wire` summarises such a list; both are small on
purpose, so lesson 6 can show them side by side for every provider flavour.

Deliberate choices: ``describe_wire`` is a pure function over ``list[str]`` (testable without a
server); it reports usage placement in the words the lessons use, decided by
:func:`helpers.streams.usage.find_usage` (``"choices[0].usage"``, ``"last chunk, top level"``,
``"trailing chunk"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..providers import table
from ..settings import Config
from .usage import find_usage

__all__ = ["WireSummary", "describe_wire", "raw_sse_lines", "usage_location"]


def raw_sse_lines(config: Config, body: Mapping[str, Any], *, timeout: float = 30.0) -> list[str]:
    """POST ``body`` to ``{base_url}/chat/completions`` and return every line of the reply as sent.

    The body is sent as given (add ``"stream": True`` yourself). Blank lines, which separate
    events, are kept, so the list is the wire, line for line.
    """
    url = config.base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {config.api_key}"}
    with httpx.stream("POST", url, json=dict(body), headers=headers, timeout=timeout) as response:
        response.raise_for_status()
        return list(response.iter_lines())


def usage_location(payload: Mapping[str, Any]) -> str | None:
    """Return where this chunk (parsed JSON) carries usage, in the lessons' words, or None."""
    found = find_usage(payload)
    return found[0] if found else None


@dataclass
class WireSummary:
    """What one raw stream contained: counts of each kind of line, and where usage was."""

    comments: list[str] = field(default_factory=list)
    chunks: int = 0
    reasoning_chunks: int = 0
    content_chunks: int = 0
    usage_at: str | None = None  # every place usage appeared, in order, joined with " + "
    done: bool = False


def describe_wire(lines: list[str]) -> WireSummary:
    """Summarise raw SSE lines: comment lines, data chunks, reasoning, usage placement, [DONE].

    A reasoning chunk is one with text in any field the provider table lists
    (``REASONING_FIELDS``).
    """
    summary = WireSummary()
    for line in lines:
        if line.startswith(":"):
            summary.comments.append(line)
            continue
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            summary.done = True
            continue
        payload = json.loads(data)
        summary.chunks += 1
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            summary.reasoning_chunks += table.reasoning_text(delta.get) is not None
            summary.content_chunks += bool(delta.get("content"))
        where = usage_location(payload)
        if where:
            summary.usage_at = f"{summary.usage_at} + {where}" if summary.usage_at else where
    return summary
