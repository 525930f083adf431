"""Self-checks for lesson 8's exercises: tool calls joined by index; a tool runner that never
crashes."""

from __future__ import annotations

import json
from typing import Any

from ._common import _client, _NotYet, _provider, _report, _require

ADD = {"type": "function", "function": {"name": "add", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"]}}}
MUL = {"type": "function", "function": {"name": "multiply",
                                        "parameters": ADD["function"]["parameters"]}}
QUESTION = "add 2 and 3, then multiply 4 and 5"
EXPECTED = [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})]
#: model -> what its stream teaches (the quirk a by-hand join trips on)
FLAVOURS = {
    "moonshot-v1-8k": "Moonshot sends content before the calls",
    "qwen-plus": "Qwen's later pieces carry \"id\": \"\" and an empty \"function\": {}",
    "qwen2.5:0.5b": "a local server sends no index: a new id starts a new call",
}


@_report
def check_lesson8_ex1(join_tool_calls: Any) -> str:
    """Check lesson 8, exercise 1: ``join_tool_calls(chunks)`` for three flavours."""
    _require(callable(join_tool_calls), "pass the function: check_lesson8_ex1(join_tool_calls)")
    client = _client(_provider(), max_retries=0)
    for model, quirk in FLAVOURS.items():
        chunks = list(client.chat.completions.create(
            model=model, stream=True, tools=[ADD, MUL],
            messages=[{"role": "user", "content": QUESTION}]))
        got = join_tool_calls(chunks)
        _require(got is not None, "join_tool_calls returned None: return a list of dicts")
        _require(len(got) == 2, f"{model}: expected 2 calls, got {len(got)} ({quirk})")
        for call, (name, args) in zip(got, EXPECTED, strict=True):
            _require(call.get("name") == name, f"{model}: expected the call {name!r}, got "
                                               f"{call.get('name')!r} ({quirk})")
            try:
                parsed = json.loads(call.get("arguments") or "")
            except ValueError:
                parsed = call.get("arguments")  # not JSON (yet): shown in the hint
            _require(parsed == args, f"{model}: {name} got {parsed}, expected {args} ({quirk})")
            _require(bool(call.get("id")), f"{model}: {name} lost its id ({quirk})")
    return "two calls from Moonshot, Qwen and a local server alike: joined by index."


@_report
def check_lesson8_ex2(safe_run: Any) -> str:
    """Check lesson 8, exercise 2: ``safe_run(name, arguments, functions)`` never raises."""
    _require(callable(safe_run), "pass the function: check_lesson8_ex2(safe_run)")
    functions = {"add": lambda a, b: a + b, "divide": lambda a, b: a / b}
    got = safe_run("add", '{"a": 2, "b": 3}', functions)
    _require(str(got) == "5", f"safe_run('add', '{{\"a\": 2, \"b\": 3}}') should give '5', "
                              f"got {got!r}")
    cases = [("shell", '{"cmd": "rm -rf /"}', "a name that is not allowed"),
             ("add", '{"a": 2,', "arguments that are not valid JSON"),
             ("divide", '{"a": 1, "b": 0}', "a function that raises"),
             ("add", '{"a": 1}', "a missing argument")]
    for name, arguments, what in cases:
        try:
            result = safe_run(name, arguments, functions)
        except Exception as exc:
            raise _NotYet(f"safe_run raised {type(exc).__name__} for {what}: return "
                                 f"an 'Error: ...' text for the model instead") from None
        _require(isinstance(result, str) and result.startswith("Error"),
                 f"for {what}, return a text starting with 'Error' (got {result!r})")
    return "results for good calls, an 'Error: ...' text for the model otherwise, never a crash."
