"""Lesson 1 solutions: a response cut by max_tokens, and the config for Moonshot's .ai platform."""

from __future__ import annotations

from openai import OpenAI
from openai.types.chat import ChatCompletion

from helpers import Config, load_config


def short_answer(client: OpenAI, model: str) -> ChatCompletion:
    """Exercise 1: ask the lesson's question with ``max_tokens=10``.

    Return the whole response, not its text: the check reads ``choices[0].finish_reason``
    (``"length"``: the model was stopped, it did not finish) and ``usage.completion_tokens``
    (exactly 10, the limit). No ``stream=True``: a stream has no ``choices`` of its own.
    """
    return client.chat.completions.create(
        model=model, max_tokens=10,
        messages=[{"role": "user", "content": "What is the Pythagorean theorem?"}])


def global_config() -> Config:
    """Exercise 2: what a ``.env`` with these two lines gives (the key is invented).

    The key alone is not enough: ``MOONSHOT_API_KEY`` by itself selects ``moonshot``, the
    ``.cn`` platform, where an ``.ai`` key gets a 401. ``LLM_PROVIDER`` picks the preset, and
    the preset brings the right base URL, so no ``LLM_BASE_URL`` is needed.
    """
    return load_config(env={"LLM_PROVIDER": "moonshot-global",
                            "MOONSHOT_API_KEY": "demo-key-0123456789"})
