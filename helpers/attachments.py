"""Files in a conversation, the Moonshot way, and token estimates before sending.

Moonshot's Files API extracts a file's text on the server (``client.files.create(file=...,
purpose="file-extract")``); ``client.files.content(id).text`` gives it back, and the text goes
into the conversation as a ``system`` message. Several files are joined into one message,
each under its file name, so the model can tell them apart and cite them.

``POST /v1/tokenizers/estimate-token-count`` is Moonshot's own (not part of OpenAI's API), so
the SDK has no method for it: :func:`estimate_tokens` calls it with ``client.post``. A provider
without it answers 404; the estimate then falls back to
:func:`helpers.money.tokens.count_prompt_tokens`
(the offline rule: near, not exact) and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import openai

from .money.tokens import count_prompt_tokens

__all__ = ["ESTIMATE_PATH", "Estimate", "TooMuchText", "afile_message", "estimate_tokens",
           "file_message", "join_files"]

ESTIMATE_PATH = "/tokenizers/estimate-token-count"


def join_files(files: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Return one system message holding every ``(filename, text)``, each under its name."""
    if not files:
        raise ValueError("no files to join")
    parts = [f"Content of the file {name}:\n{text.strip()}" for name, text in files]
    return {"role": "system", "content": "\n\n".join(parts)}


class TooMuchText(ValueError):
    """The files hold more text than the caller allows (``max_chars``)."""


def _add(files: list[tuple[str, str]], name: str, text: str, max_chars: int | None) -> None:
    files.append((name, text))
    size = sum(len(t) for _, t in files)
    if max_chars is not None and size > max_chars:
        raise TooMuchText(f"The attached files hold more than {max_chars} characters of text "
                          f"({size} with {name!r}); attach fewer or shorter files")


def file_message(client: openai.OpenAI, file_ids: Sequence[str],
                 max_chars: int | None = None) -> dict[str, str]:
    """Return the system message with the extracted text of uploaded files.

    With ``max_chars``, raise :class:`TooMuchText` as soon as the texts fetched so far are
    longer (the rest are not fetched).
    """
    files: list[tuple[str, str]] = []
    for file_id in file_ids:
        _add(files, client.files.retrieve(file_id).filename, client.files.content(file_id).text,
             max_chars)
    return join_files(files)


async def afile_message(client: openai.AsyncOpenAI, file_ids: Sequence[str],
                        max_chars: int | None = None) -> dict[str, str]:
    """Async twin of :func:`file_message`."""
    files: list[tuple[str, str]] = []
    for file_id in file_ids:
        info = await client.files.retrieve(file_id)
        _add(files, info.filename, (await client.files.content(file_id)).text, max_chars)
    return join_files(files)


class Estimate(int):
    """A token count that says where it comes from (``.exact``: the provider counted it)."""

    exact: bool

    def __new__(cls, value: int, exact: bool) -> Estimate:
        self = super().__new__(cls, value)
        self.exact = exact
        return self


def estimate_tokens(client: openai.OpenAI, model: str, messages: Sequence[dict[str, Any]]
                    ) -> Estimate:
    """Return the prompt tokens of a request before sending it (the provider's count if it has
    the endpoint, else the offline rule's)."""
    try:
        answer: Any = client.post(ESTIMATE_PATH, cast_to=object,  # object: the parsed JSON
                                  body={"model": model, "messages": list(messages)})
    except openai.NotFoundError:
        return Estimate(count_prompt_tokens(messages), exact=False)
    return Estimate(int(answer["data"]["total_tokens"]), exact=True)
