"""Self-checks for lesson 1's exercises."""

from __future__ import annotations

from typing import Any

from ..settings import Config
from ._common import (
    _report,
    _require,
)


@_report
def check_lesson1_ex1(short: Any) -> str:
    """Check lesson 1, exercise 1: a response cut short by ``max_tokens=10``."""
    _require(short is not None, "`short` is still None: assign the response of your "
                                "create(..., max_tokens=10) call to it")
    _require(hasattr(short, "choices") and hasattr(short, "usage"),
             "`short` should be the response object that create() returned")
    finish = short.choices[0].finish_reason
    _require(finish == "length", f"finish_reason is {finish!r}: pass max_tokens=10 so the "
                                 "answer is cut short")
    tokens = short.usage.completion_tokens if short.usage else None
    _require(tokens == 10, f"usage.completion_tokens is {tokens}, expected 10")
    return ("finish_reason is 'length' and usage.completion_tokens is 10: the model stopped at "
            "max_tokens, not because it was done.")


@_report
def check_lesson1_ex2(intl: Any) -> str:
    """Check lesson 1, exercise 2: the config a ``.env`` for Moonshot's global platform gives."""
    _require(intl is not None, "`intl` is still None: assign the result of load_config(env={...})")
    _require(isinstance(intl, Config), "`intl` should be the Config that load_config() returned")
    _require(intl.provider == "moonshot-global",
             f"the provider is {intl.provider!r}: set LLM_PROVIDER to the global Moonshot preset")
    _require(intl.base_url == "https://api.moonshot.ai/v1",
             f"base_url is {intl.base_url!r}: leave it to the preset (no LLM_BASE_URL)")
    _require(bool(intl.api_key), "no key: put MOONSHOT_API_KEY in the env mapping")
    return ("provider moonshot-global, base_url https://api.moonshot.ai/v1: an .ai key goes "
            "to the .ai platform.")
