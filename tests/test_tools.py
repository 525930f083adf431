"""Tool-call assembly (every flavour, hand-written broken streams), the tool loop (sync and
async, against the offline provider through the openai SDK), the calculator, JSON mode."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from helpers.offline import OfflineProvider
from helpers.providers import FAMILIES, MODELS
from helpers.streams.partial_json import PartialJSON, iter_partial_json, parse_partial
from helpers.streams.toolcalls import ToolCallAssembler, assemble_tool_calls
from helpers.tools.calculator import CALCULATOR_SCHEMA, CalculatorError, calculate
from helpers.tools.loop import WEB_SEARCH, Tool, arun_tools, run_call, run_tools, tool

FAMILY_MODEL = {f: min((m for m in MODELS.values() if m.family == f),
                       key=lambda m: bool(m.retired)).id for f in FAMILIES}
NO_THINKING = {"thinking": {"type": "disabled"}}


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


CALC = tool(calculate, parameters=CALCULATOR_SCHEMA)


def client(provider: OfflineProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key="k", max_retries=0)


def aclient(provider: OfflineProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.base_url, api_key="k", max_retries=0)


def chunk(*pieces: dict, content: str | None = None, finish: str | None = None) -> dict:
    delta: dict = {"tool_calls": list(pieces)} if pieces else {}
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def summary(chunks: list) -> list[tuple[str, str, dict]]:
    return [(c.id, c.name, json.loads(c.arguments)) for c in assemble_tool_calls(chunks)]


# -- assembly -------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILY_MODEL))
def test_assembler_joins_every_flavour(offline, family):
    stream = client(offline).chat.completions.create(
        model=FAMILY_MODEL[family], stream=True, extra_body=NO_THINKING,
        messages=[{"role": "user", "content": "add 2 and 3, then multiply 4 and 5"}],
        tools=[add.spec(), multiply.spec()])
    got = summary(list(stream))
    assert [(n, a) for _, n, a in got] == [("add", {"a": 2, "b": 3}),
                                           ("multiply", {"a": 4, "b": 5})]
    prefix = FAMILIES[family].tool_calls.id_prefix
    assert all(i.startswith(prefix) for i, _, _ in got) and len({i for i, _, _ in got}) == 2


def test_content_before_the_calls_is_kept(offline):
    assembler = ToolCallAssembler()
    kinds = []
    for c in client(offline).chat.completions.create(
            model="moonshot-v1-8k", stream=True, tools=[add.spec()],
            messages=[{"role": "user", "content": "add 2 and 3"}]):
        kinds += [e.kind for e in assembler.feed(c)]
    assert assembler.content == "Let me call add."
    assert kinds.index("content") < kinds.index("tool_call.start") < \
        kinds.index("tool_call.arguments")
    assert assembler.finish_reason == "tool_calls"


def test_missing_index_gemini_style():
    chunks = [chunk({"id": "c1", "type": "function", "function": {"name": "add",
                                                                "arguments": ""}}),
              chunk({"function": {"arguments": '{"a": 1,'}}),
              chunk({"function": {"arguments": ' "b": 2}'}}, finish="tool_calls")]
    assert summary(chunks) == [("c1", "add", {"a": 1, "b": 2})]


def test_missing_index_whole_calls_ollama_style():
    chunks = [chunk({"id": "c1", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}),
              chunk({"id": "c2", "function": {"name": "add", "arguments": '{"a": 3, "b": 4}'}})]
    assert summary(chunks) == [("c1", "add", {"a": 1, "b": 2}), ("c2", "add", {"a": 3, "b": 4})]


def test_missing_index_and_id_whole_calls_still_split():
    chunks = [chunk({"function": {"name": "add", "arguments": '{"a": 1}'}}),
              chunk({"function": {"name": "multiply", "arguments": '{"a": 2}'}})]
    assert summary(chunks) == [("call_0", "add", {"a": 1}), ("call_1", "multiply", {"a": 2})]


def test_repeated_index_in_one_chunk_vllm_style():
    chunks = [chunk({"index": 0, "id": "functions.add:0", "function": {"name": "add"}},
                    {"index": 0, "function": {"arguments": '{"a"'}}),
              chunk({"index": 0, "function": {"arguments": ": 1}"}},
                    {"index": 0, "function": {"arguments": ""}})]
    assert summary(chunks) == [("functions.add:0", "add", {"a": 1})]


def test_empty_id_and_empty_function_qwen_style():
    chunks = [chunk({"index": 0, "id": "call_q", "type": "function",
                     "function": {"name": "add", "arguments": ""}}),
              chunk({"index": 0, "id": "", "type": "function", "function": {"arguments": "{}"}}),
              chunk({"index": 0, "id": "", "type": "function", "function": {}})]
    assert summary(chunks) == [("call_q", "add", {})]


def test_one_index_reused_for_two_calls_does_not_glue_them():
    chunks = [chunk({"index": 0, "id": "a", "function": {"name": "add", "arguments": "{}"}}),
              chunk({"index": 0, "id": "b", "function": {"name": "add", "arguments": "{}"}})]
    assert [i for i, _, _ in summary(chunks)] == ["a", "b"]


def test_interleaved_parallel_calls_join_by_index():
    chunks = [chunk({"index": 0, "id": "a", "function": {"name": "add", "arguments": '{"a":'}},
                    {"index": 1, "id": "b", "function": {"name": "multiply",
                                                         "arguments": '{"a":'}}),
              chunk({"index": 1, "function": {"arguments": " 2}"}},
                    {"index": 0, "function": {"arguments": " 1}"}})]
    assert summary(chunks) == [("a", "add", {"a": 1}), ("b", "multiply", {"a": 2})]


# -- the tool loop ----------------------------------------------------------------------------

def test_run_tools_end_to_end(offline):
    result = run_tools(client(offline), model="moonshot-v1-8k", tools=[add, multiply],
                       messages=[{"role": "user", "content": "add 2 and 3, then multiply 4 and 5"}])
    assert [(c.name, r) for c, r in result.calls] == [("add", "5"), ("multiply", "20")]
    assert result.text == "Here is what the tools returned: add → 5; multiply → 20."
    assert result.rounds == 2 and not result.stopped
    assert offline.stats()["chat_requests"] == 2
    assert [m["role"] for m in result.messages] == ["user", "assistant", "tool", "tool",
                                                   "assistant"]


def test_arun_tools_end_to_end_with_kimi_thinking(offline):
    async def main():
        return await arun_tools(aclient(offline), model="kimi-k2.6", tools=[add],
                                messages=[{"role": "user", "content": "add 1 and 2"}])
    result = asyncio.run(main())
    assert result.text.endswith("add → 3.") and result.rounds == 2
    assert result.messages[1]["reasoning_content"]  # kept, or Kimi thinking refuses the turn
    assert offline.stats()["statuses"] == {"200": 2}


def test_bad_arguments_become_a_tool_error_not_a_crash(offline):
    result = run_tools(client(offline), model="gpt-4o-mini", tools=[add],
                       messages=[{"role": "user", "content": "add 2"}])  # b is missing
    (call, text), = result.calls
    assert json.loads(call.arguments) == {"a": 2}
    assert text.startswith("Error: invalid arguments for add") and "'b'" in text
    assert "Error" in result.text and result.rounds == 2


def test_a_loop_that_does_not_converge_stops(offline):
    result = run_tools(client(offline), model="gpt-4o-mini", tools=[add], max_rounds=1,
                       messages=[{"role": "user", "content": "add 2 and 3"}])
    assert result.stopped and result.text == "" and result.rounds == 1
    assert offline.stats()["chat_requests"] == 1


def test_only_allowed_tools_run():
    from helpers.streams.toolcalls import ToolCall
    assert run_call(ToolCall(0, "x", "os_system", '{"cmd": "ls"}'), [add]).startswith(
        "Error: unknown tool 'os_system'")
    assert "not valid JSON" in run_call(ToolCall(0, "x", "add", '{"a": 1'), [add])
    assert run_call(ToolCall(0, "x", "add", '{"a": 1, "b": 2}'), [add]) == "3"


def test_a_failing_tool_is_reported_to_the_model():
    boom = Tool("boom", lambda: 1 / 0)
    from helpers.streams.toolcalls import ToolCall
    assert run_call(ToolCall(0, "x", "boom", "{}"), [boom]) == \
        "Error: boom failed: ZeroDivisionError: division by zero"


def test_web_search_loop_sends_the_arguments_back(offline):
    result = run_tools(client(offline), model="kimi-k2.6", tools=[WEB_SEARCH],
                       extra_body=NO_THINKING,
                       messages=[{"role": "user", "content": "Search: what is pi?"}])
    (call, text), = result.calls
    assert text == call.arguments and "search_id" in text
    assert "en.wikipedia.org/wiki/Pi" in result.text


def test_math_assistant_calculator_computes(offline):
    result = run_tools(client(offline), model="moonshot-v1-8k", tools=[CALC],
                       messages=[{"role": "user", "content": 'Please calculate "2*(3+4)^2"'}])
    assert [r for _, r in result.calls] == ["98"]


# -- the calculator ---------------------------------------------------------------------------

@pytest.mark.parametrize("expression, value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("2 ** 10", 1024), ("2^3", 8), ("7 / 2", 3.5),
    ("7 // 2", 3), ("-3 + 1", -2), ("sqrt(16)", 4), ("round(pi, 2)", 3.14), ("0.1 + 0.2", 0.3),
])
def test_calculator(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('ls')", "not allowed"), ("().__class__", "not allowed"),
    ("x + 1", "not allowed"), ("'a' * 3", "not allowed"), ("9 ** 9999", "exponent"),
    ("10 ** 999 * 10 ** 999", "too large"), ("1 / 0", "division by zero"),
    ("1 +", "not an arithmetic"), ("1" * 300, "too long"), ("sqrt(-1)", "sqrt"),
    ("True + 1", "not allowed"),
])
def test_calculator_refuses(expression, message):
    with pytest.raises(CalculatorError, match=message):
        calculate(expression)


# -- JSON mode --------------------------------------------------------------------------------

def test_partial_json_grows_and_ends_complete(offline):
    stream = client(offline).chat.completions.create(
        model="moonshot-v1-8k", stream=True, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "What is a derivative?"}])
    steps = list(iter_partial_json(stream))
    assert len(steps) > 3 and steps[-1]["language"] == "en"
    answers = [s.get("answer", "") for s in steps]
    assert all(b.startswith(a) for a, b in zip(answers, answers[1:], strict=False))


def test_partial_json_parser():
    partial = PartialJSON()
    assert parse_partial("") is None and parse_partial('{"a') == {}
    for piece in ['{"a": "x', 'y", "n": 1', '2}']:
        partial.feed(piece)
    assert partial.value == partial.final() == {"a": "xy", "n": 12}


@pytest.mark.parametrize("model, options, reported", [
    ("moonshot-v1-8k", {}, True), ("gpt-4o-mini", {}, False),
    ("gpt-4o-mini", {"stream_options": {"include_usage": True}}, True)])
def test_run_tools_sums_the_usage_each_round_reports(offline, model, options, reported):
    result = run_tools(client(offline), model=model, tools=[add], **options,
                       messages=[{"role": "user", "content": "add 2 and 3"}])
    assert result.rounds == 2
    if not reported:
        assert result.usage == {}
        return
    one = client(offline).chat.completions.create(
        model=model, tools=[add.spec()], messages=[{"role": "user", "content": "add 2 and 3"}])
    assert result.usage["prompt_tokens"] > one.usage.prompt_tokens  # two requests, summed
    assert result.usage["total_tokens"] == \
        result.usage["prompt_tokens"] + result.usage["completion_tokens"]
