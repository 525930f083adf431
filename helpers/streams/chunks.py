"""Small functions over a stream of ``ChatCompletionChunk``: text, usage, finish reason, timings.

Providers disagree on where ``usage`` goes (the table in :mod:`helpers.providers.table` says
who puts it where), so :func:`chunk_usage` asks :func:`helpers.streams.usage.find_usage`, which
looks in every
place: ``choices[0].usage`` (Moonshot, an extra field the SDK keeps as a plain dict), top-level
``usage`` on the chunk with ``finish_reason`` (DeepSeek), or a trailing chunk with empty
``choices`` (OpenAI, Qwen, Ollama when asked with ``stream_options``).

Every function accepts any iterable of chunks (a live ``openai.Stream`` or a list), so it can be
tested without a server. The ``a``-prefixed twins take async iterables.

Time to first token and duration count from *before the request*: connecting, queueing and the
response headers are part of the wait a user sees. ``create()`` returns only after the headers
arrived, so a stream handed over already made cannot say when it was asked for. Give
:func:`collect` the request as a zero-argument callable (``lambda: client.chat.completions.
create(...)``), and it reads the clock before calling it; or pass ``started``. Without either,
both timings are ``None`` rather than a number that leaves the wait out.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from ..providers import table
from .usage import find_usage

_Chunks = Iterable[ChatCompletionChunk]
_AsyncChunks = AsyncIterable[ChatCompletionChunk]
#: A stream of chunks, or a zero-argument callable that makes the request and returns one.
ChunkSource = _Chunks | Callable[[], _Chunks]
#: The async twin: an async stream, or a callable returning one (or an awaitable of one).
AsyncChunkSource = _AsyncChunks | Callable[[], _AsyncChunks | Awaitable[_AsyncChunks]]

__all__ = [
    "AsyncChunkSource", "ChunkSource", "StreamResult", "acollect", "chunk_finish_reason",
    "chunk_reasoning", "chunk_text", "chunk_usage", "collect",
]


def chunk_text(chunk: ChatCompletionChunk) -> str:
    """Return the answer text this chunk adds ("" for role-only, usage-only or empty chunks)."""
    if not chunk.choices:
        return ""
    return chunk.choices[0].delta.content or ""


def chunk_reasoning(chunk: ChatCompletionChunk) -> str:
    """Return the reasoning text this chunk adds, if any, in any field the provider table lists.

    The SDK declares no reasoning field, so the value is an extra one: an attribute of the
    delta, kept in ``delta.model_extra`` too. The first listed field with text wins.
    """
    if not chunk.choices:
        return ""
    delta = chunk.choices[0].delta
    extra = delta.model_extra or {}
    found = table.reasoning_text(lambda name: getattr(delta, name, None) or extra.get(name))
    return found[1] if found else ""


def chunk_finish_reason(chunk: ChatCompletionChunk) -> str | None:
    """Return ``finish_reason`` if this chunk ends the answer ("stop", "length", ...)."""
    if not chunk.choices:
        return None
    return chunk.choices[0].finish_reason


def chunk_usage(chunk: ChatCompletionChunk) -> CompletionUsage | None:
    """Return token usage if this chunk carries it, wherever the provider put it."""
    found = find_usage(chunk)
    if found is None:
        return None
    usage = found[1]
    if isinstance(usage, CompletionUsage):
        return usage
    return CompletionUsage.model_validate(usage) if isinstance(usage, dict) else None


@dataclass
class StreamResult:
    """Everything a finished (or stopped) stream told us, with arrival times.

    ``started`` is when the request was sent if ``from_request`` is true, else only when reading
    began (then the timings that count from the request are ``None``); ``arrivals`` count from it.
    """

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: CompletionUsage | None = None
    chunks: int = 0
    started: float = 0.0
    from_request: bool = True
    first_token: float | None = None
    ended: float | None = None
    arrivals: list[float] = field(default_factory=list, repr=False)
    pieces: list[str] = field(default_factory=list, repr=False)

    def add(self, chunk: ChatCompletionChunk, now: float) -> str:
        """Fold one chunk in; return the text (answer or reasoning) it added."""
        self.chunks += 1
        text, thought = chunk_text(chunk), chunk_reasoning(chunk)
        if (text or thought) and self.first_token is None:
            self.first_token = now
        if text or thought:
            self.arrivals.append(now - self.started)
            self.pieces.append(text or thought)
        self.text += text
        self.reasoning += thought
        self._added = text, thought  # for collect's callbacks
        self.finish_reason = chunk_finish_reason(chunk) or self.finish_reason
        self.usage = chunk_usage(chunk) or self.usage
        return text or thought

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from before the request to the first text (None if the request went unseen)."""
        if self.first_token is None or not self.from_request:
            return None
        return self.first_token - self.started

    @property
    def duration(self) -> float | None:
        """Seconds from before the request to the last chunk (None if the request went unseen)."""
        if self.ended is None or not self.from_request:
            return None
        return self.ended - self.started

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens per second after the first token (usage if known, else pieces).

        Pieces are what arrived in chunks; a piece is not a token (see ``usage``), so the
        number is exact only once ``usage`` has come.
        """
        if self.first_token is None or self.ended is None:
            return None
        span = self.ended - self.first_token
        tokens = self.usage.completion_tokens if self.usage else len(self.pieces)
        return tokens / span if span > 0 else None


def _begin(source: object, started: float | None,
           clock: Callable[[], float]) -> tuple[StreamResult, object]:
    """Start the result: read the clock, then make the request if ``source`` is a callable."""
    if started is not None:
        return StreamResult(started=started), source
    now = clock()
    if callable(source):
        return StreamResult(started=now), source()
    return StreamResult(started=now, from_request=False), source


def _tell(result: StreamResult, on_text: Callable[[str], None] | None,
          on_reasoning: Callable[[str], None] | None) -> None:
    """Pass what the last chunk added to the callback for its kind (answer or thinking)."""
    text, thought = result._added
    if thought and on_reasoning is not None:
        on_reasoning(thought)
    if text and on_text is not None:
        on_text(text)


def collect(source: ChunkSource, *, started: float | None = None,
            on_text: Callable[[str], None] | None = None,
            on_reasoning: Callable[[str], None] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> StreamResult:
    """Consume a stream and return its text, usage, finish_reason and timings.

    Args:
        source: the request as a zero-argument callable
            (``lambda: client.chat.completions.create(..., stream=True)``), so the clock starts
            before it is sent; or a stream (or any iterable of chunks) already made.
        started: when the request was sent, if you made it yourself (``clock()`` before
            ``create``); without it a stream already made has no time to first token.
        on_text: called with each piece of the answer's text as it arrives (to print it live).
        on_reasoning: called with each piece of a reasoning model's thinking as it arrives
            (never passed to ``on_text``: the answer and the thinking stay apart).
        clock: the time source, replaceable in tests.
    """
    result, chunks = _begin(source, started, clock)
    try:
        for chunk in chunks:  # type: ignore[attr-defined]
            result.add(chunk, clock())
            _tell(result, on_text, on_reasoning)
    finally:
        result.ended = clock()
    return result


async def acollect(source: AsyncChunkSource, *, started: float | None = None,
                   on_text: Callable[[str], None] | None = None,
                   on_reasoning: Callable[[str], None] | None = None,
                   clock: Callable[[], float] = time.perf_counter) -> StreamResult:
    """Consume an async stream; the async twin of :func:`collect` (a callable may be async)."""
    result, chunks = _begin(source, started, clock)
    if inspect.isawaitable(chunks):
        chunks = await chunks
    try:
        async for chunk in chunks:  # type: ignore[attr-defined]
            result.add(chunk, clock())
            _tell(result, on_text, on_reasoning)
    finally:
        result.ended = clock()
    return result
