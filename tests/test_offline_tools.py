"""The offline provider calls tools: every family's wire shape, tool_choice, parallel calls,
results -> answer, $web_search, JSON mode, bad inputs -> 400; the official SDK is the client."""

from __future__ import annotations

import json

import openai
import pytest

from helpers.offline import OfflineProvider
from helpers.offline.replies import count_prompt_tokens
from helpers.providers import FAMILIES, MODELS

NUM = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
       "required": ["a", "b"]}
ADD = {"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                        "parameters": NUM}}
MUL = {"type": "function", "function": {"name": "multiply", "parameters": NUM}}
SEARCH = {"type": "builtin_function", "function": {"name": "$web_search"}}
NO_THINKING = {"thinking": {"type": "disabled"}}
#: one model per family
FAMILY_MODEL = {f: min((m for m in MODELS.values() if m.family == f),
                       key=lambda m: bool(m.retired)).id for f in FAMILIES}


def client(provider: OfflineProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key="k", max_retries=0)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def raw_tool_deltas(provider: OfflineProvider, model: str, text: str, **kw) -> tuple[list, list]:
    """Return (every tool_calls entry as sent, finish reasons) of a streamed request."""
    entries, finishes = [], []
    for chunk in client(provider).chat.completions.create(
            model=model, messages=ask(text), tools=[ADD, MUL], stream=True, **kw):
        for choice in chunk.choices:
            entries += [t.model_dump(exclude_unset=True) for t in choice.delta.tool_calls or []]
            finishes.append(choice.finish_reason)
    return entries, finishes


def join_by_index(entries: list[dict]) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for e in entries:
        call = calls.setdefault(e["index"], {"id": "", "name": "", "arguments": ""})
        call["id"] = e.get("id") or call["id"]
        fn = e.get("function") or {}
        call["name"] += fn.get("name") or ""
        call["arguments"] += fn.get("arguments") or ""
    return calls


@pytest.mark.parametrize("family", sorted(FAMILY_MODEL))
def test_each_family_streams_parallel_calls_its_own_way(offline, family):
    quirks = FAMILIES[family].tool_calls
    entries, finishes = raw_tool_deltas(offline, FAMILY_MODEL[family], "add 2 and 3, then "
                                        "multiply 4 and 5", extra_body=NO_THINKING)
    assert finishes[-1] == "tool_calls"
    if not quirks.index:  # a local server: no index, each call whole
        assert all("index" not in e or e["index"] is None for e in entries)
        assert [json.loads(e["function"]["arguments"]) for e in entries] == \
            [{"a": 2, "b": 3}, {"a": 4, "b": 5}]
        return
    calls = join_by_index(entries)
    assert [c["name"] for c in calls.values()] == ["add", "multiply"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [{"a": 2, "b": 3},
                                                                    {"a": 4, "b": 5}]
    assert all(c["id"].startswith(quirks.id_prefix) for c in calls.values())
    later = [e for e in entries if not (e.get("function") or {}).get("name")]
    assert later, "arguments must arrive in pieces"
    assert all(e.get("id") == quirks.later_id for e in later) if quirks.later_id is not None \
        else all("id" not in e for e in later)
    assert any(e.get("function") == {} for e in later) == quirks.empty_function


def test_moonshot_sends_content_before_the_calls_and_functions_ids(offline):
    seen = []
    for chunk in client(offline).chat.completions.create(
            model="moonshot-v1-8k", messages=ask("add 2 and 3"), tools=[ADD], stream=True):
        d = chunk.choices[0].delta
        seen.append("content" if d.content else "tool" if d.tool_calls else "other")
        if d.tool_calls and d.tool_calls[0].id:
            assert d.tool_calls[0].id == "functions.add:0"
    assert seen.index("content") < seen.index("tool")


@pytest.mark.parametrize("family", sorted(FAMILY_MODEL))
def test_non_streamed_calls_and_the_answer_from_results(offline, family):
    c = client(offline)
    messages = ask("What is 2 add 3?")
    first = c.chat.completions.create(model=FAMILY_MODEL[family], messages=messages,
                                      tools=[ADD], extra_body=NO_THINKING)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 2, "b": 3})
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "5"}]
    second = c.chat.completions.create(model=FAMILY_MODEL[family], messages=messages,
                                       tools=[ADD], extra_body=NO_THINKING)
    assert second.choices[0].finish_reason == "stop"
    assert "add → 5" in second.choices[0].message.content
    assert offline.stats()["chat_requests"] == 2


def test_answer_from_results_is_in_the_question_language(offline):
    c = client(offline)
    first = c.chat.completions.create(model="moonshot-v1-8k", messages=ask("请用 add 计算 2 和 3"),
                                      tools=[ADD])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].message.content == "我来调用 add。"
    second = c.chat.completions.create(model="moonshot-v1-8k", messages=[
        *ask("请用 add 计算 2 和 3"), first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "5"}], tools=[ADD])
    assert second.choices[0].message.content == "工具返回的结果：add → 5。"


@pytest.mark.parametrize("choice, names", [
    ("none", []), ("auto", []), ("required", ["add"]),
    ({"type": "function", "function": {"name": "multiply"}}, ["multiply"]),
])
def test_tool_choice_is_honoured(offline, choice, names):
    r = client(offline).chat.completions.create(
        model="gpt-4o-mini", messages=ask("Combine 6 and 7 for me"), tools=[ADD, MUL],
        tool_choice=choice)
    got = [t.function.name for t in r.choices[0].message.tool_calls or []]
    assert got == names
    if names:  # a forced choice fills the chosen function from the question's numbers
        assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == \
            {"a": 6, "b": 7}


def test_tool_choice_none_wins_over_a_named_function(offline):
    r = client(offline).chat.completions.create(model="gpt-4o-mini", messages=ask("add 1 and 2"),
                                                tools=[ADD], tool_choice="none")
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "add"}}])
def test_kimi_thinking_refuses_a_forced_choice_unless_thinking_is_off(offline, choice):
    c = client(offline)
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model="kimi-k2.6", messages=ask("add 1 and 2"), tools=[ADD],
                                  tool_choice=choice)
    assert "incompatible with thinking enabled" in err.value.body["message"]
    ok = c.chat.completions.create(model="kimi-k2.6", messages=ask("add 1 and 2"), tools=[ADD],
                                   tool_choice=choice, extra_body=NO_THINKING)
    assert ok.choices[0].message.tool_calls[0].function.name == "add"


def test_kimi_thinking_needs_reasoning_kept_in_tool_turns(offline):
    c = client(offline)
    first = c.chat.completions.create(model="kimi-k2.6", messages=ask("add 1 and 2"), tools=[ADD])
    message = first.choices[0].message.model_dump(exclude_none=True)
    assert message["reasoning_content"]
    call = message["tool_calls"][0]
    tool = {"role": "tool", "tool_call_id": call["id"], "content": "3"}
    stripped = {k: v for k, v in message.items() if k != "reasoning_content"}
    with pytest.raises(openai.BadRequestError, match="reasoning_content is missing"):
        c.chat.completions.create(model="kimi-k2.6", messages=[*ask("add 1 and 2"), stripped, tool],
                                  tools=[ADD])
    ok = c.chat.completions.create(model="kimi-k2.6", messages=[*ask("add 1 and 2"), message, tool],
                                   tools=[ADD])
    assert "add → 3" in ok.choices[0].message.content


def test_quoted_text_fills_string_parameters(offline):
    calc = {"type": "function", "function": {"name": "calculate", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string"}}}}}
    r = client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=ask('Please calculate "2*(3+4)"'), tools=[calc])
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == \
        {"expression": "2*(3+4)"}


def test_web_search_flow_with_its_usage(offline):
    c = client(offline)
    messages = ask("Search the web: what is a derivative?")
    first = c.chat.completions.create(model="kimi-k2.6", messages=messages, tools=[SEARCH],
                                      extra_body=NO_THINKING)
    call = first.choices[0].message.tool_calls[0]
    args = json.loads(call.function.arguments)
    assert call.function.name == "$web_search" and args["usage"]["total_tokens"] > 0
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "name": "$web_search",
                  "content": call.function.arguments}]  # sent back unchanged
    second = c.chat.completions.create(model="kimi-k2.6", messages=messages, tools=[SEARCH],
                                       extra_body=NO_THINKING)
    assert "en.wikipedia.org/wiki/Derivative" in second.choices[0].message.content
    plain = c.chat.completions.create(model="kimi-k2.6", messages=[
        *messages[:-1], {**messages[-1], "content": "{}"}], tools=[SEARCH], extra_body=NO_THINKING)
    # the search's tokens are billed in the prompt of the request that sends them back
    sent = count_prompt_tokens([{"content": call.function.arguments}]) - \
        count_prompt_tokens([{"content": "{}"}])
    assert second.usage.prompt_tokens - plain.usage.prompt_tokens == \
        sent + args["usage"]["total_tokens"]
    assert "Wikipedia" not in (plain.choices[0].message.content or "")


def test_web_search_needs_thinking_off(offline):
    with pytest.raises(openai.BadRequestError, match="thinking disabled"):
        client(offline).chat.completions.create(model="kimi-k2.6", messages=ask("search pi"),
                                                tools=[SEARCH])


def test_stream_helper_gives_parsed_arguments_for_a_strict_tool(offline):
    params = {**NUM, "additionalProperties": False}
    strict = {"type": "function",
              "function": {**ADD["function"], "strict": True, "parameters": params}}
    done = []
    with client(offline).chat.completions.stream(
            model="gpt-4o-mini", messages=ask("add 2 and 3"), tools=[strict]) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.done":
                done.append(event)
        final = stream.get_final_completion()
    assert [(e.name, e.parsed_arguments) for e in done] == [("add", {"a": 2, "b": 3})]
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments == {"a": 2, "b": 3}


def test_stream_helper_breaks_on_a_local_server_without_index(offline):
    with pytest.raises(TypeError), client(offline).chat.completions.stream(
            model="qwen2.5:0.5b", messages=ask("add 2 and 3"), tools=[ADD]) as stream:
        for _ in stream:
            pass


def test_json_mode_streams_a_json_object(offline):
    stream = client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=ask("What is a derivative?"), stream=True,
        response_format={"type": "json_object"})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    obj = json.loads(text)
    assert obj["language"] == "en" and obj["answer"]


@pytest.mark.parametrize("kw, message", [
    ({"tools": {"name": "add"}}, "'tools' must be an array"),
    ({"tools": [{"type": "function", "function": {"parameters": NUM}}]}, "function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
     "parameters must be a JSON Schema of type 'object'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]},
     "parameters must be a JSON Schema"),
    ({"tools": [ADD], "tool_choice": "always"}, "tool_choice must be"),
    ({"tools": [ADD], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "not in 'tools'"),
    ({"tool_choice": "auto"}, "only allowed when 'tools'"),
    ({"tools": [ADD, ADD]}, "offered twice"),
    ({"tools": [{"type": "builtin_function", "function": {"name": "$shell"}}]},
     "unknown builtin_function"),
    ({"response_format": {"type": "yaml"}}, "response_format must be"),
])
def test_bad_tool_requests_get_moonshots_400(offline, kw, message):
    with pytest.raises(openai.BadRequestError) as err:
        client(offline).chat.completions.create(model="moonshot-v1-8k", messages=ask("add 1 and 2"),
                                                **kw)
    assert err.value.body["type"] == "invalid_request_error"
    assert message in err.value.body["message"]
    assert client(offline).models.list().data  # the server stays up


def test_a_tool_message_without_a_matching_call_is_400(offline):
    with pytest.raises(openai.BadRequestError, match="matches no tool call"):
        client(offline).chat.completions.create(model="moonshot-v1-8k", messages=[
            *ask("add 1 and 2"), {"role": "tool", "tool_call_id": "call_x", "content": "3"}],
            tools=[ADD])
    assert offline.stats()["statuses"] == {"400": 1}


def test_stream_helper_gives_a_parsed_message_for_a_class(offline):
    import pydantic

    class Dated(pydantic.BaseModel):
        answer: str
        year: int

    messages = ask("Since when is the Pythagorean theorem known? 1800 BC")
    with client(offline).chat.completions.stream(model="gpt-4o-mini", messages=messages,
                                                 response_format=Dated) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    parsed = final.choices[0].message.parsed
    assert isinstance(parsed, Dated) and parsed.year == 1800 and "Pythagorean" in parsed.answer
    assert "content.delta" in kinds


@pytest.mark.parametrize("asked", [False, True], ids=["unasked", "include_usage"])
@pytest.mark.parametrize("family", sorted(FAMILY_MODEL))
def test_a_tool_turn_places_usage_as_its_family_does(offline, family, asked):
    from helpers.streams.usage import find_usage

    options = {"stream_options": {"include_usage": True}} if asked else {}
    places = [found[0] for chunk in client(offline).chat.completions.create(
        model=FAMILY_MODEL[family], messages=ask("add 2 and 3"), tools=[ADD], stream=True,
        extra_body=NO_THINKING, **options) if (found := find_usage(chunk)) is not None]
    assert tuple(places) == FAMILIES[family].usage_places(asked=asked)
