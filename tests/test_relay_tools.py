"""The relay's server-side tool loop: its own events in the wire contract, only the tools it
was given, a calculator that really computes; against the offline provider."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
from httpx_sse import EventSource

from helpers.relay import start_relay
from helpers.relay.toolstream import MATH_TOOLS, tool_batches
from helpers.settings import Config

CALCULATE = [{"role": "user", "content": 'Please calculate "2*(3+4)^2"'}]


def events(offline, messages, tools=MATH_TOOLS, **kw) -> list[tuple[str, dict]]:
    async def main():
        client = openai.AsyncOpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
        return [event async for batch in tool_batches(client, "moonshot-v1-8k", messages,
                                                       tools, **kw) for event in batch]
    return asyncio.run(main())


def test_a_tool_turn_is_told_with_its_own_events_in_order(offline):
    got = events(offline, CALCULATE)
    names = [n for n, _ in got]
    first_call, result = names.index("tool_call"), names.index("tool_result")
    assert names[:first_call] == ["delta"] * first_call  # Moonshot: text before the call
    assert set(names[first_call + 1:result]) == {"tool_arguments"}
    arguments = "".join(d["content"] for n, d in got if n == "tool_arguments")
    assert got[first_call][1] == {"part": 0, "name": "calculate"}
    assert got[result][1] == {"part": 0, "name": "calculate", "arguments": arguments,
                              "result": "98"}
    answer = "".join(d["content"] for n, d in got[result:] if n == "delta")
    assert answer == "Here is what the tools returned: calculate → 98."
    assert names[-2:] == ["usage", "done"] and got[-1][1] == {"finish_reason": "stop"}
    assert got[-2][1]["total_tokens"] == got[-2][1]["prompt_tokens"] + \
        got[-2][1]["completion_tokens"]
    assert offline.stats()["chat_requests"] == 2


def test_the_calculator_never_evaluates_code(offline):
    got = events(offline, [{"role": "user", "content": 'calculate "__import__(\'os\')"'}])
    (result,) = [d for n, d in got if n == "tool_result"]
    assert result["result"].startswith("Error: calculate failed: CalculatorError")


def test_a_loop_that_does_not_converge_is_told(offline):
    got = events(offline, CALCULATE, max_rounds=1)
    stopped = {"message": "the model still asked for tools after 1 request: stopped"}
    assert ("tool_stopped", stopped) in got
    assert got[-1] == ("done", {"finish_reason": "tool_calls"})
    assert offline.stats()["chat_requests"] == 1


def test_no_tools_named_means_a_plain_answer(offline):
    got = events(offline, [{"role": "user", "content": "What is the Pythagorean theorem?"}])
    assert {n for n, _ in got} == {"delta", "usage", "done"}


def sse(text: str) -> list[tuple[str, dict]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=text.encode())
    return [(e.event, json.loads(e.data)) for e in EventSource(response).iter_sse()]


def test_the_relay_runs_its_tools_and_tells_the_page(offline):
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    relay = start_relay(config, jupyter=False, name="relay-tool-tests", tools=MATH_TOOLS)
    try:
        url = relay.url.rstrip("/") + "/api/chat/stream"
        got = sse(httpx.post(url, json={"question": CALCULATE[0]["content"]}, timeout=30).text)
        names = [n for n, _ in got]
        assert names.index("tool_call") < names.index("tool_result") < len(names) - 3
        assert [d["result"] for n, d in got if n == "tool_result"] == ["98"]
        assert got[-1] == ("done", {"finish_reason": "stop"})
        # the browser cannot name a tool: the request shape has no place for one
        refused = httpx.post(url, json={"question": "hi", "tools": [{"type": "function"}]},
                             timeout=30)
        assert refused.status_code == 422 and "tools" in refused.json()["error"]["message"]
    finally:
        relay.stop()
    assert offline.stats()["chat_requests"] == 2
