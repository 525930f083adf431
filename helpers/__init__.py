"""Helpers for the streaming lessons: provider settings, the offline provider, stream utilities.

Import what a lesson needs by name (``from helpers import load_config``). Nothing here starts a
server or reads ``.env`` at import, and the names are loaded lazily: ``import helpers`` imports
no submodule, so ``python -m helpers.offline`` and ``python -m helpers.relay`` run cleanly and
a lesson pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module (in this package) that defines it
_EXPORTS: dict[str, str] = {
    # settings: which provider, key and model
    "PROVIDERS": "settings", "Config": "settings", "MissingKeyError": "settings",
    "load_config": "settings", "make_client": "settings", "make_async_client": "settings",
    "mask_key": "settings",
    # streaming: small functions over a chunk stream
    "StreamResult": "streaming", "collect": "streaming", "acollect": "streaming",
    "chunk_text": "streaming", "chunk_usage": "streaming", "iter_text": "streaming",
    # servers: the offline provider, the relay, and the runner they share
    "BackgroundServer": "servers", "PortInUseError": "servers",
    "OfflineProvider": "offline", "start_offline": "offline",
    "Relay": "relay", "create_app": "relay", "start_relay": "relay",
    # the notebook view and chat
    "StreamView": "widgets", "show_stream": "widgets", "ChatUI": "chat_ui",
    "WireMeter": "widget_meter", "SimClock": "widget_meter", "at_simulated_speed": "widget_meter",
    # providers' wire quirks (the one table) and errors
    "FAMILIES": "providers", "MODELS": "providers", "comparison_table": "providers",
    "traits_for": "providers", "find_usage": "usage",
    "describe_wire": "raw_wire", "raw_sse_lines": "raw_wire",
    "RECORDINGS": "recordings", "ERROR_RECORDINGS": "recordings", "offline_lines": "recordings",
    "wire_shape": "recordings", "count_tokens": "tokens", "count_prompt_tokens": "tokens",
    "FRIENDLY": "errors", "describe_failure": "errors", "error_summary": "errors",
    "friendly_message": "errors", "scrub": "errors",
    # tool calls and structured output while they stream
    "ToolCall": "toolcalls", "ToolCallAssembler": "toolcalls",
    "assemble_tool_calls": "toolcalls", "Tool": "tools", "tool": "tools",
    "WEB_SEARCH": "tools", "run_tools": "tools", "arun_tools": "tools",
    "iter_tool_loop": "tools", "aiter_tool_loop": "tools", "run_call": "tools",
    "calculate": "calculator", "CALCULATOR_SCHEMA": "calculator",
    "PartialJSON": "structured", "iter_partial_json": "structured",
    "aiter_partial_json": "structured", "parse_partial": "structured",
    # files, tokens and cost (lesson 9)
    "file_message": "files", "afile_message": "files", "estimate_tokens": "files",
    "call_cost": "cost", "format_cost": "cost", "price_of": "providers",
    "Budget": "budget", "BudgetExceeded": "budget",
    "trim_history": "history", "context_window": "history",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

