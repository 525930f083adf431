"""helpers.money.budget: a request that could go over is refused before it is sent."""

from __future__ import annotations

import openai
import pytest

from helpers.money.budget import Budget, BudgetExceeded
from helpers.money.tokens import count_prompt_tokens

ASK = [{"role": "user", "content": "What is the Pythagorean theorem?"}]


def test_a_token_budget_refuses_the_request_that_would_go_over():
    budget = Budget("moonshot-v1-8k", max_tokens=100)
    budget.check(60, 40)  # exactly at the limit: allowed
    budget.charge({"prompt_tokens": 60, "completion_tokens": 30})
    assert budget.spent_tokens == 90
    budget.check(10)
    with pytest.raises(BudgetExceeded, match="90 of 100 spent.*up to 11") as info:
        budget.check(10, 1)
    assert info.value.kind == "tokens"


def test_a_money_budget_counts_the_worst_case_answer():
    budget = Budget("moonshot-v1-8k", max_cost=0.001)  # $0.20 in, $2.00 out per million
    budget.check(1000, 400)  # 0.0002 + 0.0008 = 0.001
    with pytest.raises(BudgetExceeded, match=r"may cost \$0.001002") as info:
        budget.check(1010, 400)
    assert info.value.kind == "money"
    with pytest.raises(BudgetExceeded, match="no price for 'offline-tiny'"):
        Budget("offline-tiny", max_cost=1).check(1)


def test_a_conversation_stops_at_its_budget(offline):
    client = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    budget = Budget("moonshot-v1-8k", max_tokens=400)
    sent = 0
    with pytest.raises(BudgetExceeded):
        for _ in range(20):
            budget.check_messages(ASK, max_tokens=60)
            reply = client.chat.completions.create(model="moonshot-v1-8k", messages=ASK,
                                                   max_tokens=60)
            budget.charge(reply.usage)
            sent += 1
    assert offline.stats()["requests"] == sent >= 2  # the refused request was never sent
    assert budget.spent_tokens <= 400
    assert budget.spent_tokens + count_prompt_tokens(ASK) + 60 > 400
