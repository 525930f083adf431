"""The offline provider: a real OpenAI-compatible HTTP server that speaks Moonshot's wire format.

It lets every lesson and test run with no key and no network, and it is honest about itself:
the openai SDK is its client, so if the SDK can parse it, the wire format is right.

Wire format (Moonshot's, for ``moonshot-*`` and ``kimi-*`` models): the first chunk's delta
carries ``role: "assistant"``; content deltas follow; the final chunk carries
``finish_reason`` and ``usage`` *inside* ``choices[0]``; then ``data: [DONE]``. Other model
families imitate their provider: which family a model belongs to, and how that family places
usage (asked with ``stream_options.include_usage`` or not), sends keep-alives and streams
reasoning, is read from the one table, :mod:`helpers.providers.table`.

Markers in the last user message provoke behaviour on demand (lessons, tests, the browser page):

=====================  ===================================================================
``[fault:401]``        401 (so do a missing or, when ``api_key`` is set, a different key)
``[fault:403]``        403 permission denied
``[fault:404]``        404 (so does an unknown model)
``[fault:400]``        400 input too long (so does a prompt over the model's context)
``[fault:429]``        429 rate limit; ``[fault:429:N]`` fails the first N tries, then answers
``[fault:500]``        500; ``[fault:503]`` 503 engine overloaded
``[fault:midstream]``  some text, then an ``{"error": ...}`` event (the SDK raises APIError)
``[fault:cut]``        some text, then the connection drops without an end
``[fault:stall]``      some text, then silence until the client gives up
``[fault:malformed]``  some text, then a chunk that is not JSON
``[hold]``             the final chunk waits until :meth:`OfflineProvider.release`
``[delay:N]``          N ms between chunks for this request
``[delay-headers:N]``  N ms before the response headers (queueing; time to first token)
``[tokens:N]``         an answer of exactly N tokens (filler words)
``[hostile]``          an answer full of raw HTML and script links (``replies.HOSTILE_REPLY``)
=====================  ===================================================================

"Some text" is :func:`cut_point` pieces of the answer. One idea per module: ``plan`` (the
request read, validated, markers), ``chunks`` (the answer as chunks, per family), ``gate``
(hold/release), ``counters``, ``errors`` (the error shape), ``stream`` (the ASGI response that
notices a client leaving), ``server`` (routes and :class:`OfflineProvider`), ``cli``; tool
calls have their own: ``tools`` (the request's tools checked, and the documented rule that
decides a call), ``toolwire`` (a tool turn on the wire per family; JSON mode), ``websearch``
(Kimi's ``$web_search`` over a few built-in pages); files too: ``files`` (Moonshot's Files API
stored on disk, text extraction, limits) and ``fileroutes`` (its routes, and the token estimate).
"""

from __future__ import annotations

from ..providers.table import (
    OFFLINE_KEY,  # the shared provider accepts only it, as a real one would
)
from .chunks import cut_point
from .cli import main
from .errors import error_body
from .plan import MAX_BODY_BYTES, STREAM_FAULTS
from .server import DEFAULT_DELAY_MS, OfflineProvider, start_offline

__all__ = [
    "DEFAULT_DELAY_MS", "MAX_BODY_BYTES", "OFFLINE_KEY", "STREAM_FAULTS", "OfflineProvider",
    "cut_point", "error_body", "main", "start_offline",
]
