"""The relay's wire shapes: the request bodies it accepts and the error body it answers with.

Deliberate choices: bodies are strict (unknown fields and wrong types are a 422, not
silently coerced) and bounded (text length, history length), so a bad request fails fast
with a message that names the field. The error body is always ``{"error": {"type",
"message"}}``, from the guards, the validators and the upstream mapping alike.

**The relay's system prompt is its teacher's**: a ``messages`` body that brings its own
system message is refused (:class:`SystemPromptRefused`, a 400), not allowed to replace it
(it did: any page could make the assistant whatever it liked), unless the relay is told to
allow it (``to_messages(allow_system=True)``; ``create_app(allow_system_prompt=True)``). Not
silently dropped: whoever wrote the body learns why it was not taken. A relay without a
system prompt has nothing to protect and takes a body's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MAX_HISTORY", "MAX_TEXT_CHARS", "BlogRequest", "ChatMessage", "ChatRequest",
           "HistoryMessage", "SystemPromptRefused", "error_response"]

MAX_TEXT_CHARS = 20_000
MAX_HISTORY = 40


class SystemPromptRefused(ValueError):
    """A body's own system message, where the relay keeps its teacher's system prompt."""

    status, kind = 400, "system_prompt_not_allowed"

    def response(self) -> JSONResponse:
        """The 400 in the relay's error shape."""
        return error_response(self.status, self.kind, str(self))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryMessage(_Strict):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ChatMessage(_Strict):
    """One message in the OpenAI ``messages`` form."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ChatRequest(_Strict):
    """``{"question", "history"}`` or ``{"messages"}``."""

    question: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    history: list[HistoryMessage] = Field(default_factory=list, max_length=MAX_HISTORY)
    messages: list[ChatMessage] | None = Field(None, max_length=MAX_HISTORY + 1)
    #: at most this many answer tokens (a relay may set a ceiling: helpers/relay/limits.py)
    max_tokens: int | None = Field(None, ge=1)
    #: events get ids and survive a dropped connection (helpers/relay/resume.py)
    resumable: bool = False
    #: ids of files this client uploaded to the relay (helpers/relay/uploads.py), read first
    files: list[str] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _one_form(self) -> ChatRequest:
        if self.messages is not None:
            if self.question is not None or self.history:
                raise ValueError("send either 'question' (with 'history') or 'messages', "
                                 "not both")
            if not self.messages or self.messages[-1].role != "user":
                raise ValueError("'messages' must end with a user message")
            if not self.messages[-1].content.strip():
                raise ValueError("the last user message is empty")
        elif self.question is None:
            raise ValueError("'question' is required")
        elif not self.question.strip():
            raise ValueError("'question' is empty")
        return self

    def to_messages(self, system_prompt: str | None, *,
                    allow_system: bool = False) -> list[dict[str, str]]:
        """Return the messages to send upstream, with the relay's system prompt first.

        A ``messages`` body with its own system message raises :class:`SystemPromptRefused`
        when the relay has a system prompt, unless ``allow_system``: then the body's own
        replaces it.
        """
        if self.messages is not None:
            turns = [m.model_dump() for m in self.messages]
        else:
            turns = [m.model_dump() for m in self.history]
            turns.append({"role": "user", "content": self.question or ""})
        own = any(t["role"] == "system" for t in turns)
        if system_prompt and own and not allow_system:
            raise SystemPromptRefused(
                "This relay's system prompt is set by whoever runs it: send user and "
                "assistant messages only (a relay started with --allow-system-prompt, or "
                "create_app(allow_system_prompt=True), takes a body's own system message)")
        if system_prompt and not own:
            turns.insert(0, {"role": "system", "content": system_prompt})
        return turns


class BlogRequest(_Strict):
    """The blog's body: ``{"question"}``."""

    question: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _not_blank(self) -> BlogRequest:
        if not self.question.strip():
            raise ValueError("'question' is empty")
        return self


def error_response(status: int, kind: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Return the relay's error body, ``{"error": {"type", "message"}}``, with ``status``."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status,
                        headers=dict(headers or {}))
