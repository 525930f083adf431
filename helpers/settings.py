"""Which provider, which key, which model: resolution, ``Config``, and plain SDK clients.

The presets themselves (``PROVIDERS``, ``AUTO_ORDER``) live in :mod:`helpers.providers.table`, the
one table of provider behaviour; they are re-exported here.

Resolution order for every setting: explicit argument > process environment > ``.env`` >
preset default. ``.env`` is read only when :func:`load_config` is called (never at import),
found with ``find_dotenv(usecwd=True)`` so a notebook finds the ``.env`` of the folder it runs
in, and it never writes into ``os.environ``.

Choosing a provider: ``LLM_PROVIDER`` names one. Without it, the first provider in
``AUTO_ORDER`` (Moonshot first) whose key variable is set wins. With no key anywhere, the
embedded offline provider is started, and :class:`Config` says so plainly.

Clients are plain ``openai.OpenAI`` / ``openai.AsyncOpenAI``, always built with an explicit
``base_url`` and ``api_key``, so the SDK's own ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``
fallbacks can never silently send a lesson somewhere else. A key is only shown masked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import openai
from dotenv import dotenv_values, find_dotenv

from .providers.table import (  # the presets live in the one table
    AUTO_ORDER,
    OFFLINE_KEY,
    PROVIDERS,
    Provider,
)

__all__ = [
    "AUTO_ORDER", "OFFLINE_KEY", "PROVIDERS", "Config", "MissingKeyError", "Provider",
    "load_config", "make_async_client", "make_client", "mask_key",
]


class MissingKeyError(RuntimeError):
    """A provider was chosen but the variable holding its key is not set."""


def mask_key(key: str | None) -> str:
    """Return a key safe to display: its first 3 and last 2 characters at most."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "*" * 6
    return f"{key[:3]}…{key[-2:]}"


@dataclass(frozen=True)
class Config:
    """A resolved choice of provider, endpoint, key and model (the key never shows)."""

    provider: str
    base_url: str
    model: str
    api_key: str = field(repr=False)
    source: str = ""

    @property
    def is_offline(self) -> bool:
        """True when this config talks to the embedded offline provider."""
        return self.provider == "offline"

    def describe(self) -> str:
        """Return a short human description, with the key masked."""
        lines = [f"provider : {self.provider}", f"base_url : {self.base_url}",
                 f"model    : {self.model}", f"api_key  : {mask_key(self.api_key)}"]
        if self.source:
            lines.append(f"why      : {self.source}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return (f"Config(provider={self.provider!r}, base_url={self.base_url!r}, "
                f"model={self.model!r}, api_key={mask_key(self.api_key)!r})")


def _read_env(env_file: str | Path | None) -> dict[str, str]:
    """Merge ``.env`` (lower priority) under the process environment (higher priority)."""
    path = str(env_file) if env_file is not None else find_dotenv(usecwd=True)
    from_file: Mapping[str, str | None] = dotenv_values(path) if path else {}
    merged = {k: v for k, v in from_file.items() if v is not None}
    merged.update(os.environ)
    return merged


def load_config(
    provider: str | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    env_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve provider, base_url, key and model: argument > environment > .env > default.

    Args:
        provider: a name from ``PROVIDERS``; default ``LLM_PROVIDER``, else auto-detect.
        model, base_url, api_key: override the resolved values.
        env_file: an explicit ``.env`` path (default: search upward from the working dir).
        env: use this mapping instead of environment + ``.env`` (for tests).
    """
    values = dict(env) if env is not None else _read_env(env_file)
    name = (provider or values.get("LLM_PROVIDER") or "").strip().lower()
    source = ""
    if name:
        if name not in PROVIDERS:
            raise ValueError(f"Unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}")
        source = "chosen by argument" if provider else f"LLM_PROVIDER={name}"
        if name == "offline":
            source += ": the embedded offline provider, no key and no network needed"
    else:
        found = next((n for n in AUTO_ORDER if values.get(PROVIDERS[n].key_env or "")), None)
        if found:
            name = found
            source = f"{PROVIDERS[found].key_env} is set"
        else:
            name = "offline"
            source = ("no API key found (set one in .env): using the offline provider, "
                      "no network needed")
    preset = PROVIDERS[name]
    chosen_model = model or values.get("LLM_MODEL") or preset.default_model
    if name == "offline":
        from .offline import start_offline

        server = start_offline()
        return Config("offline", base_url or server.base_url, chosen_model,
                      api_key or OFFLINE_KEY, source)
    key = api_key or (values.get(preset.key_env) if preset.key_env else None) or ""
    if not key and preset.key_env is not None:
        raise MissingKeyError(
            f"Provider {name!r} needs an API key: set {preset.key_env} in your .env file "
            f"or environment (see .env.example)."
        )
    url = base_url or values.get("LLM_BASE_URL") or preset.base_url
    return Config(name, url, chosen_model, key or "not-needed", source)


def make_client(config: Config | None = None, **options: object) -> openai.OpenAI:
    """Return a plain ``openai.OpenAI`` client for ``config`` (default: ``load_config()``)."""
    config = config or load_config()
    return openai.OpenAI(base_url=config.base_url, api_key=config.api_key, **options)


def make_async_client(config: Config | None = None, **options: object) -> openai.AsyncOpenAI:
    """Return a plain ``openai.AsyncOpenAI`` client for ``config``."""
    config = config or load_config()
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, **options)
