"""helpers.money.cost: usage times the table's price; cached tokens wherever a provider has them."""

from __future__ import annotations

import pytest

from helpers.money.cost import Cost, cached_tokens, call_cost, format_cost
from helpers.providers import MODELS, PRICES, Price


def test_every_price_is_a_model_with_a_source_and_a_date():
    for model, price in PRICES.items():
        assert MODELS[model].price is price and price.source and price.checked
        assert not MODELS[model].retired, f"{model}: a retired id needs no price"
    assert MODELS["offline-tiny"].price is None


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 1000, "completion_tokens": 500, "cached_tokens": 400},  # Moonshot
    {"prompt_tokens": 1000, "completion_tokens": 500,
     "prompt_tokens_details": {"cached_tokens": 400}},  # OpenAI, DeepSeek
], ids=["moonshot", "openai"])
def test_cached_tokens_are_billed_at_the_cached_rate(usage):
    assert cached_tokens(usage) == 400
    cost = call_cost(usage, "kimi-k2.6")  # 0.95 in, 0.16 cached, 4.00 out per million
    assert cost == pytest.approx(Cost(600 * 0.95e-6, 400 * 0.16e-6, 500 * 4e-6, "USD"))
    no_cache_rate = call_cost(usage, Price(0.20, 2.00))  # no cached price: the input price
    assert no_cache_rate.total == pytest.approx(1000 * 0.2e-6 + 500 * 2e-6)


def test_an_unknown_price_is_none_not_free():
    usage = {"prompt_tokens": 10, "completion_tokens": 10}
    assert call_cost(usage, "offline-tiny") is None and call_cost(usage, "no-such") is None
    assert format_cost(None) == "cost unknown"
    assert format_cost(0.0001234) == "$0.000123" and format_cost(12.5, "CNY") == "¥12.50"


def test_costs_add_up_in_one_currency_only():
    a, b = Cost(1, 0, 2, "USD"), Cost(0.5, 0, 0, "USD")
    assert (a + b).total == 3.5
    with pytest.raises(ValueError, match="USD and CNY"):
        a + Cost(1, 0, 0, "CNY")


def test_sdk_usage_objects_work_too(offline):
    import openai
    client = openai.OpenAI(base_url=offline.base_url, api_key="k")
    usage = client.chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": "hi"}]).usage
    cost = call_cost(usage, "moonshot-v1-8k")
    assert cost.total == pytest.approx(usage.prompt_tokens * 0.2e-6
                                       + usage.completion_tokens * 2e-6) and cost.total > 0
