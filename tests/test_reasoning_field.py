"""The reasoning field is a fact of the provider table, and every reader in helpers/ follows it.

Providers stream a reasoning model's thinking under different delta fields (DeepSeek and Kimi:
``reasoning_content``; vLLM, Ollama, OpenRouter: ``reasoning``). The names live in one place,
``helpers.providers.table.REASONING_FIELDS``, and a family's ``reasoning_field`` says which one
it streams. Two kinds of test here:

- **No other module names a field.** An AST scan of helpers/**/*.py (the table's modules and
  the recorded streams excepted) for each listed name. A name the project does not use for
  anything else (``reasoning_content``) may not appear in code at all: not in a string, an
  attribute or a keyword argument (docstrings and comments are prose and may). ``reasoning``
  is also the relay's own event name, the tool assembler's event kind, an attribute of the
  results and a column of the lessons' table, so for it only the places where a string names
  a *field* are refused: a subscript, ``.get``/``.pop``/``.setdefault``, ``getattr`` and
  friends, a dict key, ``"name" in x``, a literal tuple looped over. The scan is tested on
  snippets, each refused form and each allowed one.
- **Every reader follows a changed table.** With ``"thinking"`` listed (``monkeypatch``), a
  delta with ``thinking`` is reasoning for ``chunk_reasoning`` / ``collect``, the relay's
  ``ChunkReader``, ``describe_wire`` and the tool-call assembler; with only ``"thinking"``
  listed, ``reasoning_content`` is not (no reader keeps a list of its own). With a family's
  ``reasoning_field`` changed, the offline provider streams that name, sends it in a whole
  answer, and asks for it back in a Kimi thinking tool turn; the lesson 6 check names it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Collection
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from helpers.exercises import check_lesson6_ex2
from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.providers import FAMILIES, MODELS, table
from helpers.relay.chunkreader import ChunkReader
from helpers.streams.chunks import chunk_reasoning, collect
from helpers.streams.raw_wire import describe_wire
from helpers.streams.sse import EVENT_NAMES, SSEDecoder
from helpers.streams.toolcalls import ToolCallAssembler

ROOT = Path(__file__).resolve().parents[1]
#: Where the names may appear: the table (its tool-call section quotes Kimi's error message,
#: which names the field, as evidence) and the providers' recorded streams.
TABLE_MODULES = {"helpers/providers/table.py", "helpers/providers/toolquirks.py",
                 "helpers/providers/recordings.py"}
#: Dict keys that are the lessons' column names (comparison_table(columns=...)), not fields.
COLUMN_KEYS = {("helpers/providers/markdown.py", "reasoning")}
NEW = "thinking"  # a name no provider in the table uses
QUESTION = "什么是勾股定理？"
ADD = {"type": "function", "function": {"name": "add", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}


# -- the scan --------------------------------------------------------------------------------
def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _named(node: ast.AST | None, names: set[str]) -> str | None:
    if isinstance(node, ast.Constant) and node.value in names:
        return node.value
    return None


def _literal_items(node: ast.AST) -> list[ast.AST]:
    return list(node.elts) if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []


def field_uses(source: str, names: tuple[str, ...], *, own_words: Collection[str],
               allowed_keys: Collection[str] = ()) -> list[tuple[int, str]]:
    """Return (line, what) for each place ``source`` names one of ``names`` as a field.

    Args:
        names: the field names to look for.
        own_words: names the project also uses for itself (event names): only their uses as
            a field are refused, not every string that says them.
        allowed_keys: names allowed as dict keys here (column names).
    """
    tree = ast.parse(source)
    docs = _docstrings(tree)
    strict = [n for n in names if n not in own_words]
    words = [re.compile(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])") for n in strict]
    every = set(names)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [(line, f"string {node.value[:60]!r}") for w in words if w.search(node.value)]
        elif isinstance(node, ast.Attribute) and node.attr in strict:
            found.append((line, f"attribute .{node.attr}"))
        elif isinstance(node, ast.keyword) and node.arg in strict:
            found.append((line, f"keyword {node.arg}="))
        if isinstance(node, ast.Subscript) and (n := _named(node.slice, every)):
            found.append((line, f"subscript [{n!r}]"))
        elif isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Attribute) and fn.attr in ("get", "pop", "setdefault") \
                    and node.args and (n := _named(node.args[0], every)):
                found.append((line, f".{fn.attr}({n!r})"))
            elif isinstance(fn, ast.Name) and fn.id in ("getattr", "hasattr", "setattr") \
                    and len(node.args) > 1 and (n := _named(node.args[1], every)):
                found.append((line, f"{fn.id}(..., {n!r})"))
        elif isinstance(node, ast.Dict):
            found += [(line, f"dict key {n!r}") for k in node.keys
                      if (n := _named(k, every)) and n not in allowed_keys]
        elif isinstance(node, ast.Compare) and (n := _named(node.left, every)) \
                and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and not _literal_items(node.comparators[0]):
            found.append((line, f"{n!r} in ..."))
        elif isinstance(node, (ast.For, ast.comprehension)):
            found += [(line, f"loop over {n!r}") for item in _literal_items(node.iter)
                      if (n := _named(item, every))]
    return found


def scan(paths: list[Path]) -> list[str]:
    """Return every field use in these modules, as 'path:line: what'.

    A listed name that is also one of the relay's event names ("reasoning") is one of the
    project's own words; the others may not appear in code at all.
    """
    own = set(EVENT_NAMES) & set(table.REASONING_FIELDS)
    out = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        keys = {name for where, name in COLUMN_KEYS if where == rel}
        out += [f"{rel}:{line}: {what}" for line, what in
                field_uses(path.read_text(encoding="utf-8"), table.REASONING_FIELDS,
                           own_words=own, allowed_keys=keys)]
    return out


def helpers_modules() -> list[Path]:
    return [p for p in sorted((ROOT / "helpers").rglob("*.py"))
            if p.relative_to(ROOT).as_posix() not in TABLE_MODULES]


REFUSED = [
    'delta.get("reasoning_content")', 'delta["reasoning"]', 'delta.get("reasoning")',
    'getattr(delta, "reasoning", None)', 'hasattr(delta, "reasoning_content")',
    'deltas = [{"reasoning": p} for p in thoughts]', 'if "reasoning" in delta: pass',
    'for key in ("reasoning_content", "reasoning"): pass', 'm.setdefault("reasoning", "")',
    'x = [d[k] for k in ["reasoning"]]', 'delta.reasoning_content',
    'dict(reasoning_content=p)', 'field = plan.field or "reasoning_content"',
    'e = f"thinking is enabled but reasoning_content is missing at {i}"',
]
ALLOWED = [
    'batch.append(("reasoning", {"content": text}))', 'NAMES = ("delta", "reasoning")',
    'if kind in ("content", "reasoning"): pass', 'result.reasoning += text',
    'compose_reply(messages, reasoning=True)', 'Event("reasoning", text)',
    'def f():\n    """Kimi streams delta.reasoning_content."""',
    'hint = "return (reasoning, answer)"',
]
NAMES = ("reasoning_content", "reasoning")


@pytest.mark.parametrize("snippet", REFUSED)
def test_the_scan_refuses_a_field_named_in_code(snippet):
    assert field_uses(snippet, NAMES, own_words={"reasoning"})


@pytest.mark.parametrize("snippet", ALLOWED)
def test_the_scan_allows_the_projects_own_words(snippet):
    assert field_uses(snippet, NAMES, own_words={"reasoning"}) == []


def test_the_scan_allows_a_column_name_as_a_dict_key_only_where_told():
    columns = 'COLUMNS = {"usage": 1, "reasoning": 2}'
    assert field_uses(columns, NAMES, own_words={"reasoning"}) == [(1, "dict key 'reasoning'")]
    assert field_uses(columns, NAMES, own_words={"reasoning"}, allowed_keys={"reasoning"}) == []


def test_no_module_outside_the_table_names_a_reasoning_field():
    assert scan(helpers_modules()) == []


# -- the table -------------------------------------------------------------------------------
def test_every_listed_name_has_a_source_and_every_family_uses_a_listed_name():
    assert set(table.REASONING_SOURCES) == set(table.REASONING_FIELDS)
    assert all(table.REASONING_SOURCES.values())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.REASONING_CHECKED)
    used = {t.reasoning_field for t in FAMILIES.values()} - {None}
    assert used and used <= set(table.REASONING_FIELDS)


# -- the readers follow a changed table --------------------------------------------------------
def sdk_chunk(delta: dict, finish: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({
        "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def wire(deltas: list[dict]) -> list[str]:
    """Return a stream's SSE data strings: these deltas, then a finish chunk."""
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**chunks[0], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in chunks]


def relay_reasoning(payloads: list[str], *, fast: bool = True) -> str:
    reader, batch = ChunkReader(fast=fast), []
    for payload in [*payloads, "[DONE]"]:
        if not reader.feed(payload, batch):
            break
    return "".join(d["content"] for name, d in batch if name == "reasoning")


def reasoning_read_by_each_reader(deltas: list[dict]) -> dict[str, str]:
    """Return the reasoning each reader finds in a stream of these deltas."""
    payloads = wire(deltas)
    chunks = [sdk_chunk(d) for d in deltas]
    assembler = ToolCallAssembler()
    for payload in payloads:
        assembler.feed(json.loads(payload))
    sdk_assembler = ToolCallAssembler()
    for chunk in chunks:
        sdk_assembler.feed(chunk)
    summary = describe_wire([f"data: {p}" for p in payloads])
    return {
        "chunk_reasoning": "".join(chunk_reasoning(c) for c in chunks),
        "collect": collect(chunks).reasoning,
        "relay, fast": relay_reasoning(payloads),
        "relay, reference": relay_reasoning(payloads, fast=False),
        "describe_wire": "x" * summary.reasoning_chunks,  # one x per reasoning chunk
        "toolcalls, dicts": assembler.reasoning,
        "toolcalls, SDK chunks": sdk_assembler.reasoning,
    }


THOUGHTS = [{"role": "assistant", "content": ""}, {NEW: "hm "}, {NEW: "so"}, {"content": "A"}]


def test_every_reader_reads_a_newly_listed_field(monkeypatch):
    assert set(reasoning_read_by_each_reader(THOUGHTS).values()) == {""}  # not listed yet
    monkeypatch.setattr(table, "REASONING_FIELDS", (*table.REASONING_FIELDS, NEW))
    got = reasoning_read_by_each_reader(THOUGHTS)
    assert got == {**dict.fromkeys(got, "hm so"), "describe_wire": "xx"}


@pytest.mark.parametrize("old", ["reasoning_content", "reasoning"])
def test_no_reader_reads_a_field_the_table_no_longer_lists(monkeypatch, old):
    deltas = [{old: "hm "}, {"content": "A"}]
    assert set(reasoning_read_by_each_reader(deltas).values()) == {"hm ", "x"}
    monkeypatch.setattr(table, "REASONING_FIELDS", (NEW,))
    assert set(reasoning_read_by_each_reader(deltas).values()) == {""}


def test_a_chunk_with_both_names_counts_its_reasoning_once():
    # a server that sends the new name and the old one with the same text (vLLM's alias)
    deltas = [{"reasoning_content": "hm ", "reasoning": "hm "}, {"content": "A"}]
    got = reasoning_read_by_each_reader(deltas)
    assert got == {**dict.fromkeys(got, "hm "), "describe_wire": "x"}


def test_the_relay_reads_the_names_once_per_stream(monkeypatch):
    before = ChunkReader()
    monkeypatch.setattr(table, "REASONING_FIELDS", (NEW,))
    batch: list = []
    for payload in wire([{NEW: "hm"}]):
        before.feed(payload, batch)
    assert [name for name, _ in batch] == []  # a stream in flight keeps its names
    assert relay_reasoning(wire([{NEW: "hm"}])) == "hm"  # the next stream reads the table


def test_the_assembler_sends_reasoning_back_in_the_field_it_came_in(monkeypatch):
    monkeypatch.setattr(table, "REASONING_FIELDS", (*table.REASONING_FIELDS, NEW))
    for name in table.REASONING_FIELDS:
        assembler = ToolCallAssembler()
        for payload in wire([{name: "hm"}, {"tool_calls": [{"index": 0, "id": "c1", "function":
                                                           {"name": "add", "arguments": "{}"}}]}]):
            assembler.feed(json.loads(payload))
        message = assembler.message()
        assert message[name] == "hm" and set(message) - {name} == {"role", "content",
                                                                     "tool_calls"}
        assert assembler.message(reasoning_field="other")["other"] == "hm"


# -- the offline provider streams a family's field --------------------------------------------
def use_new_field(monkeypatch: pytest.MonkeyPatch, family: str) -> None:
    """List NEW and make it ``family``'s reasoning field."""
    monkeypatch.setattr(table, "REASONING_FIELDS", (*table.REASONING_FIELDS, NEW))
    monkeypatch.setitem(FAMILIES, family,
                        dataclasses.replace(FAMILIES[family], reasoning_field=NEW))


def raw_deltas(offline: OfflineProvider, model: str) -> list[dict]:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    raw = httpx.post(offline.base_url + "/chat/completions", json=body,
                     headers={"Authorization": "Bearer k"}, timeout=30).content
    chunks = [json.loads(data) for _, data in SSEDecoder().feed(raw + b"\n\n")
              if data != "[DONE]"]
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_the_offline_provider_streams_the_familys_field(offline, monkeypatch):
    model = "deepseek-reasoner"
    assert any("reasoning_content" in d for d in raw_deltas(offline, model))
    use_new_field(monkeypatch, MODELS[model].family)
    deltas = raw_deltas(offline, model)
    names = {key for d in deltas for key in d} - {"role", "content"}
    assert names == {NEW}
    reply = compose_reply([{"role": "user", "content": QUESTION}], reasoning=True)
    assert "".join(d.get(NEW, "") for d in deltas) == reply.reasoning
    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    result = collect(c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], stream=True))
    assert (result.reasoning, result.text) == (reply.reasoning, reply.text)
    whole = c.chat.completions.create(model=model,
                                      messages=[{"role": "user", "content": QUESTION}])
    assert whole.choices[0].message.model_extra == {NEW: reply.reasoning}


def test_a_kimi_thinking_tool_turn_sends_and_wants_the_familys_field(offline, monkeypatch):
    model = "kimi-k2.6"
    use_new_field(monkeypatch, MODELS[model].family)
    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    ask = [{"role": "user", "content": "add 1 and 2"}]
    assembler = ToolCallAssembler()
    for chunk in c.chat.completions.create(model=model, messages=ask, tools=[ADD], stream=True):
        assembler.feed(chunk)
    message = assembler.message()
    assert message[NEW] == assembler.reasoning != "" and "reasoning_content" not in message
    tool = {"role": "tool", "tool_call_id": assembler.tool_calls[0].id, "content": "3"}
    answer = c.chat.completions.create(model=model, messages=[*ask, message, tool], tools=[ADD])
    assert "3" in answer.choices[0].message.content
    with pytest.raises(openai.BadRequestError):  # the reasoning under another name is refused
        renamed = {("reasoning_content" if k == NEW else k): v for k, v in message.items()}
        c.chat.completions.create(model=model, messages=[*ask, renamed, tool], tools=[ADD])


def test_the_lesson6_check_names_the_tables_field(monkeypatch, capsys):
    def answer_only(stream):
        return "", collect(stream).text

    check_lesson6_ex2(answer_only)
    assert capsys.readouterr().out.strip() == (
        "not yet: deepseek-reasoner: the reasoning differs (join delta.reasoning_content, an "
        "extra field: delta.model_extra['reasoning_content'])")
    use_new_field(monkeypatch, "deepseek-reasoner")
    check_lesson6_ex2(answer_only)
    assert f"join delta.{NEW}, an extra field: delta.model_extra['{NEW}']" in \
        capsys.readouterr().out
