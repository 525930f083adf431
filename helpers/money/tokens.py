"""The offline provider's token rule: every token number it reports comes from here.

No real tokenizer runs offline (tiktoken cannot download its encodings here, and Kimi's
tokenizer is not public), so the offline provider counts by a documented rule of its own. The
numbers in ``usage``, the ``max_tokens`` cut, the context-window check, ``[tokens:N]`` and the
token-estimate endpoint are all *this rule's*: plausible, deterministic, not Kimi's real counts.

What the rule imitates:

* English-like text: "1 token is about 4 characters, about 3/4 of a word" (OpenAI Help Center,
  "What are tokens and how to count them"). A *word* (letters, digits, ``_``, ``'``, or a LaTeX
  command like ``\\frac``) costs one token per started 5 characters, its leading spaces free,
  as in BPE tokens such as ``" the"``: ``the`` is 1, ``theorem`` 2, ``Pythagorean`` 3. On plain
  English prose that comes to about 4 characters (spaces included) and 3/4 word per token.
* Chinese and Japanese: "1 token is about 1.5-2 Chinese characters" (Moonshot's platform docs,
  main concepts, Token). A run of CJK characters costs one token per 2 characters.
* Any other mark (punctuation, ``$``, ``^``) is one token with its leading spaces; trailing
  whitespace with nothing after it is one token.
* A prompt costs its messages' tokens plus 4 per message, for the chat template's role markers
  (OpenAI's cookbook, "How to count tokens with tiktoken", counts 3-4 per message).
* Reasoning text is counted by the same rule, and is part of ``completion_tokens``.

:func:`split_tokens` gives the tokens as substrings (they join back to the text), so cutting an
answer at ``max_tokens`` is ``"".join(split_tokens(text)[:n])``, and that prefix counts exactly
``n``. A streamed chunk carries a *piece* (:func:`helpers.offline.replies.split_pieces`),
which may be
one token, several (a long word) or part of one (one CJK character of a pair).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["CJK", "PER_MESSAGE", "count_prompt_tokens", "count_tokens", "cut_to_tokens",
           "message_text", "split_tokens"]

#: Character class (without brackets) of the Chinese and Japanese characters the rule pairs up.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
#: Tokens a prompt pays per message, for the role markers around it.
PER_MESSAGE = 4
_CHARS_PER_WORD_TOKEN = 5
_CJK_PER_TOKEN = 2
_UNIT = re.compile(rf"(\s*)(?:([{CJK}]+)|(\\[A-Za-z]+|[A-Za-z0-9_']+)|([^\s]))|(\s+)")


def split_tokens(text: str) -> list[str]:
    """Split text into the offline rule's tokens; joining them gives the text back."""
    tokens: list[str] = []
    for m in _UNIT.finditer(text):
        space, cjk, word, _mark, tail = m.groups()
        if tail is not None:
            tokens.append(tail)
            continue
        run, size = (cjk, _CJK_PER_TOKEN) if cjk else (word, _CHARS_PER_WORD_TOKEN)
        if run is None:
            tokens.append(m.group(0))
            continue
        parts = [run[i:i + size] for i in range(0, len(run), size)]
        tokens.append(space + parts[0])
        tokens.extend(parts[1:])
    return tokens


def count_tokens(text: str, stop: int | None = None) -> int:
    """Count a text's tokens by the offline rule; past ``stop`` (if given), stop counting.

    The count is :func:`split_tokens`'s length, without building the list; with ``stop`` the
    answer is ``stop + 1`` for any longer text (the caller only needs to know "more than").
    """
    count = 0
    for m in _UNIT.finditer(text):
        run = m.group(2) or m.group(3)  # a CJK run costs a token per 2, a word per 5
        count += -(-len(run) // (_CJK_PER_TOKEN if m.group(2) else _CHARS_PER_WORD_TOKEN)) \
            if run else 1
        if stop is not None and count > stop:
            return stop + 1
    return count


def cut_to_tokens(text: str, limit: int | None) -> tuple[str, bool]:
    """Return the text cut to at most ``limit`` tokens, and whether it was cut."""
    if limit is None:
        return text, False
    tokens = split_tokens(text)
    if len(tokens) <= limit:
        return text, False
    return "".join(tokens[:limit]), True


def message_text(message: dict) -> str:
    """Return a message's text, whether content is a string or a list of text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def count_prompt_tokens(messages: Sequence[dict], stop: int | None = None) -> int:
    """Count a prompt's tokens by the offline rule: each message's tokens plus 4.

    With ``stop``, counting ends once the count passes it, and the answer is ``stop + 1``: the
    relay's budget asks only "certainly too much?" of a prompt with files attached.
    """
    total = 0
    for m in messages:
        left = None if stop is None else max(stop - total - PER_MESSAGE, 0)
        total += PER_MESSAGE + count_tokens(message_text(m), left)
        if stop is not None and total > stop:
            return stop + 1
    return total
