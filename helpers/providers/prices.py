"""What each model costs: one section of the provider table (written into ``MODELS``)."""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-11-28"  # the day the facts below were last checked against their sources

__all__ = ["PRICES", "Price"]


@dataclass(frozen=True)
class Price:
    """What a model costs per million tokens, as its provider's price page said on ``checked``."""

    input: float  # per 1M prompt tokens (a cache miss)
    output: float  # per 1M completion tokens (reasoning included)
    cached_input: float | None = None  # per 1M cached prompt tokens (None: no discount)
    currency: str = "USD"
    checked: str = CHECKED
    source: str = ""


# -- Prices --------------------------------------------------------------------------------------
# Per million tokens, as each price page (or a page quoting it) said on the date given. Prices
# change: update the numbers, the source and ``checked`` together (lesson 9 shows how).

_KIMI_PRICE_SRC = ("platform.kimi.ai/docs/pricing/chat (global platform, USD; the China platform "
                   "bills CNY); figures as quoted by lava.so/docs/gateway/providers/moonshot")
_K26_PRICE_SRC = ("platform.kimi.com/docs/pricing/chat-k26; $0.95 miss / $0.16 hit / $4.00 out "
                  "as quoted by hivebook.wiki (Kimi K2.6) and Cloudflare Workers AI's "
                  "@cf/moonshotai/kimi-k2.6 page")
_DEEPSEEK_PRICE_SRC = ("api-docs.deepseek.com/quick_start/pricing (DeepSeek-V4-Flash; its peak / "
                       "off-peak rates from 2026-08-16 are not modelled: these are the list "
                       "rates)")
_OPENAI_PRICE_SRC = ("developers.openai.com/api/docs/pricing, as listed in "
                     "github.com/Sraleik/undetermini PRICING.md (2026-05-07) and "
                     "api-evangelist's 2026-11-06 post")
_QWEN_PRICE_SRC = ("alibabacloud.com/help/en/model-studio/models (international, the lowest "
                   "prompt-length tier; longer prompts cost more), as quoted by getmaxim.ai "
                   "(qwen-turbo) and wavespeed.ai (qwen-plus)")

#: model id -> price. Retired ids and the offline provider's own ``offline-tiny`` have none.
PRICES: dict[str, Price] = {
    "moonshot-v1-8k": Price(0.20, 2.00, source=_KIMI_PRICE_SRC),
    "moonshot-v1-32k": Price(1.00, 3.00, source=_KIMI_PRICE_SRC),
    "moonshot-v1-128k": Price(2.00, 5.00, source=_KIMI_PRICE_SRC),
    "kimi-k2.6": Price(0.95, 4.00, cached_input=0.16, source=_K26_PRICE_SRC),
    "qwen-plus": Price(0.40, 1.20, source=_QWEN_PRICE_SRC),
    "qwen-turbo": Price(0.05, 0.20, source=_QWEN_PRICE_SRC),
    "deepseek-v4-flash": Price(0.14, 0.28, cached_input=0.0028, source=_DEEPSEEK_PRICE_SRC),
    "gpt-4o-mini": Price(0.15, 0.60, cached_input=0.075, source=_OPENAI_PRICE_SRC),
    "gpt-4.1-mini": Price(0.40, 1.60, cached_input=0.10, source=_OPENAI_PRICE_SRC),
    "qwen2.5:0.5b": Price(0.0, 0.0, source="your own machine: no per-token price"),
}
