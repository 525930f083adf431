"""Lesson 1 solutions: a response cut by max_tokens, and the config for Moonshot's .ai platform."""

from __future__ import annotations

from openai import OpenAI
from openai.types.chat import ChatCompletion

from helpers import Config, load_config


def short_answer(client: OpenAI, model: str) -> ChatCompletion:
    """Exercise 1: ask the lesson's question with ``max_tokens=10``."""
    return client.chat.completions.create(
        model=model, max_tokens=10,
        messages=[{"role": "user", "content": "What is the Pythagorean theorem?"}])


def global_config() -> Config:
    """Exercise 2: what a ``.env`` with these two lines gives (the key is invented)."""
    return load_config(env={"LLM_PROVIDER": "moonshot-global",
                            "MOONSHOT_API_KEY": "demo-key-0123456789"})
