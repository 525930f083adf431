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
    "StreamResult": "streams.chunks", "collect": "streams.chunks", "acollect": "streams.chunks",
    "chunk_text": "streams.chunks", "chunk_usage": "streams.chunks",
    # servers: the offline provider, the relay, and the runner they share
    "BackgroundServer": "servers", "PortInUseError": "servers",
    "OfflineProvider": "offline", "start_offline": "offline",
    "Relay": "relay", "create_app": "relay", "start_relay": "relay",
    # the notebook view and chat
    "StreamView": "views.show", "show_stream": "views.show", "ChatUI": "views.chat",
    "WireMeter": "views.meter", "SimClock": "views.meter", "at_simulated_speed": "views.meter",
    # providers' wire quirks (the one table) and errors
    "FAMILIES": "providers", "MODELS": "providers", "comparison_table": "providers",
    "traits_for": "providers", "find_usage": "streams.usage",
    "describe_wire": "streams.raw_wire", "raw_sse_lines": "streams.raw_wire",
    "RECORDINGS": "providers.recordings", "ERROR_RECORDINGS": "providers.recordings",
    "offline_lines": "providers.recordings", "wire_shape": "providers.recordings",
    "count_tokens": "money.tokens", "count_prompt_tokens": "money.tokens",
    "FRIENDLY": "errors", "describe_failure": "errors", "error_summary": "errors",
    "friendly_message": "errors", "scrub": "errors",
    # tool calls and structured output while they stream
    "ToolCall": "streams.toolcalls", "ToolCallAssembler": "streams.toolcalls",
    "assemble_tool_calls": "streams.toolcalls", "Tool": "tools.loop", "tool": "tools.loop",
    "WEB_SEARCH": "tools.loop", "run_tools": "tools.loop", "arun_tools": "tools.loop",
    "iter_tool_loop": "tools.loop", "aiter_tool_loop": "tools.loop", "run_call": "tools.loop",
    "calculate": "tools.calculator", "CALCULATOR_SCHEMA": "tools.calculator",
    "PartialJSON": "streams.partial_json", "iter_partial_json": "streams.partial_json",
    "parse_partial": "streams.partial_json",
    # files, tokens and cost (lesson 9)
    "file_message": "attachments", "afile_message": "attachments",
    "estimate_tokens": "attachments",
    "call_cost": "money.cost", "format_cost": "money.cost", "price_of": "providers",
    "Budget": "money.budget", "BudgetExceeded": "money.budget",
    "trim_history": "money.history", "context_window": "money.history",
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

