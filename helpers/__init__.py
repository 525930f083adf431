"""Helpers for the streaming lessons: provider settings, the offline provider, stream utilities.

Import what a lesson needs by name; nothing here starts a server or reads ``.env`` at import.
"""

from .chat_ui import ChatUI
from .errors import error_summary, friendly_message
from .offline import OfflineProvider, start_offline
from .relay import Relay, create_app, start_relay
from .servers import BackgroundServer, PortInUseError
from .settings import (
    PROVIDERS,
    Config,
    MissingKeyError,
    load_config,
    make_async_client,
    make_client,
    mask_key,
)
from .streaming import StreamResult, acollect, chunk_text, chunk_usage, collect, iter_text
from .widget_meter import SimClock, WireMeter, paced
from .widgets import StreamView, show_stream
from .wire import describe_wire, raw_sse_lines

__all__ = [
    "PROVIDERS", "BackgroundServer", "Config", "MissingKeyError", "OfflineProvider",
    "PortInUseError", "StreamResult", "acollect", "chunk_text", "chunk_usage", "collect",
    "iter_text", "load_config", "make_async_client", "make_client", "mask_key", "start_offline",
    "ChatUI", "SimClock", "StreamView", "WireMeter", "paced", "show_stream",
    "describe_wire", "error_summary", "friendly_message", "raw_sse_lines",
    "Relay", "create_app", "start_relay",
]
