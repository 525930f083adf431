"""The relay: a small web server that keeps the API key and streams answers to a browser.

The browser never talks to the provider. It POSTs a question to the relay; the relay asks the
provider with the official ``openai`` SDK (the key stays in this process) and forwards the
answer as Server-Sent Events:

- ``POST /api/chat/stream``: ``{"question", "history"}`` or ``{"messages"}`` in,
  ``text/event-stream`` out: ``delta``/``reasoning``/``usage`` events, then ``done`` or ``error``;
- ``POST /chatbot/llm/chatstream``: ``{"question"}`` in, the bare answer text out (the blog's);
- ``GET /`` the chat page (helpers/static/), ``GET /healthz`` a liveness check.

One idea per module: :mod:`.app` (routes), :mod:`.models` (request and error bodies),
:mod:`.guards` (Host, Origin, body size, JupyterHub), :mod:`.upstream` (reading the
provider), :mod:`.runner` (background thread, CLI). The wire contract and the deliberate
choices are in docs/architecture.md.
"""

from __future__ import annotations

from .app import DEFAULT_READ_TIMEOUT, DEFAULT_SYSTEM_PROMPT, STATIC_DIR, create_app
from .bodies import (
    MAX_HISTORY,
    MAX_TEXT_CHARS,
    BlogRequest,
    ChatMessage,
    ChatRequest,
    HistoryMessage,
    error_response,
)
from .guards import MAX_BODY_BYTES, Guards, jupyter_allowances
from .runner import DEFAULT_PORT, Relay, main, start_relay
from .upstream import Batch, IncompleteStream, relay_client, upstream_batches

__all__ = [
    "DEFAULT_PORT", "DEFAULT_READ_TIMEOUT", "DEFAULT_SYSTEM_PROMPT", "MAX_BODY_BYTES",
    "MAX_HISTORY", "MAX_TEXT_CHARS", "STATIC_DIR", "Batch", "BlogRequest", "ChatMessage",
    "ChatRequest", "Guards", "HistoryMessage", "IncompleteStream", "Relay", "create_app",
    "error_response", "jupyter_allowances", "main", "relay_client", "start_relay",
    "upstream_batches",
]
