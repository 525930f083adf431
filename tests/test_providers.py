"""The one table of provider behaviour: its readers follow it, and the lessons print it.

A trait changed in ``helpers.providers`` (with ``monkeypatch``) must change the offline
provider's stream, seen through the real openai SDK, and what the relay asks for, together.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from helpers.offline import OfflineProvider, cut_point
from helpers.offline.replies import compose_reply, split_pieces
from helpers.providers import (
    FAMILIES,
    MODELS,
    PROVIDERS,
    USAGE_IN_CHOICE,
    USAGE_PLACES,
    USAGE_TOP_LEVEL,
    USAGE_TRAILING,
    WireTraits,
    comparison_table,
    model_traits,
    traits_for,
)
from helpers.relay import start_relay
from helpers.settings import Config
from helpers.streams.chunks import chunk_usage
from helpers.streams.usage import find_usage

ROOT = Path(__file__).resolve().parents[1]
LESSON5 = ROOT / "notebooks" / "06_providers_and_quirks.ipynb"
#: the call lesson 5 makes; the test below renders it again and compares
LESSON5_COLUMNS = ("usage", "asked", "keep_alive", "reasoning")
LESSON5_CALL = 'comparison_table(columns=("usage", "asked", "keep_alive", "reasoning"))'
QUESTION = [{"role": "user", "content": "What is the Pythagorean theorem?"}]


def usage_places_seen(provider: OfflineProvider, model: str, **options: object) -> list[str]:
    """Stream through the SDK and return every place a chunk carried usage, in order."""
    client = openai.OpenAI(base_url=provider.base_url, api_key="k", max_retries=0)
    found = [find_usage(c) for c in client.chat.completions.create(
        model=model, messages=QUESTION, stream=True, **options)]
    return [f[0] for f in found if f is not None]


def patch_family(monkeypatch: pytest.MonkeyPatch, family: str, **changes: object) -> None:
    monkeypatch.setitem(FAMILIES, family, dataclasses.replace(FAMILIES[family], **changes))


# -- the table itself ------------------------------------------------------------------------
def test_every_reference_in_the_table_resolves():
    assert {m.family for m in MODELS.values()} <= set(FAMILIES)
    assert {p.family for p in PROVIDERS.values()} <= set(FAMILIES)
    assert {p.default_model for p in PROVIDERS.values()} <= set(MODELS)
    fields = {f.name for f in dataclasses.fields(WireTraits)}
    for traits in FAMILIES.values():
        assert set(traits.offline_choice) <= fields, traits.family
        assert {traits.usage_unasked, traits.usage_when_asked} <= {*USAGE_PLACES, None}


def test_no_preset_defaults_to_a_retired_model():
    retired = {p.name: p.default_model for p in PROVIDERS.values()
               if MODELS[p.default_model].retired}
    assert retired == {}


def test_every_fact_is_dated_and_sourced():
    for record in [*FAMILIES.values(), *MODELS.values(), *PROVIDERS.values()]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record.checked), record
        assert record.source.strip(), record


def test_traits_for_follows_the_contract():
    assert traits_for("openai", "deepseek-chat") is FAMILIES["deepseek"]  # a known model wins
    assert traits_for("local", "llama3.2:1b") is FAMILIES["local"]  # else the preset's family
    assert traits_for("qwen-intl", "qwen-max-latest") is FAMILIES["qwen"]
    assert traits_for("offline", "no-such-model") is FAMILIES["moonshot"]  # as the provider does
    assert traits_for("somewhere-else", "x") is FAMILIES["openai"]
    assert traits_for("local", "qwen2.5:0.5b").ask_for_usage  # Ollama honours include_usage
    assert not dataclasses.replace(FAMILIES["openai"], usage_when_asked=None).ask_for_usage


def test_models_reason_when_their_family_does():
    assert MODELS["deepseek-reasoner"].reasoning and MODELS["kimi-k2-thinking"].reasoning
    assert not MODELS["deepseek-chat"].reasoning and not MODELS["gpt-4o-mini"].reasoning


# -- the offline provider follows the table ---------------------------------------------------
@pytest.mark.parametrize("model", ["moonshot-v1-8k", "deepseek-chat", "gpt-4o-mini", "qwen-plus",
                                   "qwen2.5:0.5b", "kimi-k2-thinking", "deepseek-reasoner"])
@pytest.mark.parametrize("asked", [False, True])
def test_offline_usage_placement_is_the_tables(offline, model, asked):
    options = {"stream_options": {"include_usage": True}} if asked else {}
    expected = list(model_traits(model).usage_places(asked))
    assert usage_places_seen(offline, model, **options) == expected


def test_a_changed_usage_trait_changes_the_offline_stream(offline, monkeypatch):
    assert usage_places_seen(offline, "gpt-4o-mini") == []
    patch_family(monkeypatch, "openai", usage_unasked=USAGE_IN_CHOICE)
    assert usage_places_seen(offline, "gpt-4o-mini") == [USAGE_IN_CHOICE]
    patch_family(monkeypatch, "openai", usage_unasked=USAGE_TOP_LEVEL, usage_when_asked=None)
    asked = {"stream_options": {"include_usage": True}}
    assert usage_places_seen(offline, "gpt-4o-mini", **asked) == [USAGE_TOP_LEVEL]
    assert offline.stats()["completed"] == 3


def test_a_changed_reasoning_or_keep_alive_trait_changes_the_offline_wire(offline, monkeypatch):
    patch_family(monkeypatch, "openai", reasoning_field="reasoning_content", keep_alive=True)
    body = {"model": "gpt-4o-mini", "messages": QUESTION, "stream": True}
    with httpx.stream("POST", offline.base_url + "/chat/completions", json=body,
                      headers={"Authorization": "Bearer k"}) as response:
        lines = list(response.iter_lines())
    assert lines[0] == ": keep-alive"
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines
              if line.startswith("data: {")]
    assert any("reasoning_content" in d for d in deltas)


def test_a_changed_context_window_changes_what_the_offline_provider_accepts(offline,
                                                                           monkeypatch):
    client = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    monkeypatch.setitem(MODELS, "gpt-4o-mini",
                        dataclasses.replace(MODELS["gpt-4o-mini"], context_window=4))
    with pytest.raises(openai.BadRequestError, match="token limit: 4"):
        client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)


# -- the relay follows the table ---------------------------------------------------------------
def relay_asked_for_usage(offline: OfflineProvider, model: str) -> bool:
    """Ask a fresh relay one question; return whether its upstream request asked for usage."""
    config = Config("offline", offline.base_url, model, "test-key")
    relay = start_relay(config, read_timeout=5, jupyter=False, name="relay-providers-test")
    try:
        response = httpx.post(relay.url.rstrip("/") + "/api/chat/stream", json={"question": "hi"},
                              headers={"Origin": relay.url.rstrip("/")}, timeout=30)
        assert response.status_code == 200, response.text
        assert "event: done" in response.text
    finally:
        relay.stop()
    record = offline.stats()["recent"][-1]
    assert record["model"] == model and record["outcome"] == "completed"
    return record["include_usage"]


def test_a_changed_usage_trait_changes_what_the_relay_asks_for(offline, monkeypatch):
    assert traits_for("offline", "gpt-4o-mini").ask_for_usage
    assert relay_asked_for_usage(offline, "gpt-4o-mini") is True
    patch_family(monkeypatch, "openai", usage_when_asked=None)
    assert traits_for("offline", "gpt-4o-mini").ask_for_usage is False
    assert relay_asked_for_usage(offline, "gpt-4o-mini") is False


# -- one usage locator -------------------------------------------------------------------------
def test_find_usage_names_each_place_for_json_and_sdk_chunks():
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    cases = {
        USAGE_IN_CHOICE: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                       "usage": usage}]},
        USAGE_TOP_LEVEL: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": usage},
        USAGE_TRAILING: {"choices": [], "usage": usage},
    }
    base = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    for place, payload in cases.items():
        assert find_usage(payload) == (place, usage)
        chunk = ChatCompletionChunk.model_validate({**base, **payload})
        assert find_usage(chunk)[0] == place
        assert chunk_usage(chunk) == CompletionUsage(**usage)
    assert find_usage({"choices": [{"delta": {"content": "x"}}], "usage": None}) is None
    assert find_usage({"choices": []}) is None


def test_cut_point_is_where_stream_faults_cut(offline):
    client = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    question = QUESTION[0]["content"]
    pieces = split_pieces(compose_reply(QUESTION).text)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
                model="moonshot-v1-8k", stream=True,
                messages=[{"role": "user", "content": question + " [fault:midstream]"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert 0 < cut_point(pieces) < len(pieces)
    assert received == pieces[: cut_point(pieces)]
    assert offline.stats()["faults"] == 1


# -- the lessons print the table ---------------------------------------------------------------
def test_the_comparison_table_renders_from_the_table(monkeypatch):
    table = comparison_table(("moonshot", "deepseek", "openai", "qwen"))
    assert "| OpenAI, Qwen (DashScope) | only if you ask" in table  # equal rows merge
    assert "| Moonshot (Kimi) | inside `choices[0].usage` of the last chunk, always |" in table
    patch_family(monkeypatch, "qwen", usage_unasked=USAGE_IN_CHOICE)
    changed = comparison_table(("moonshot", "deepseek", "openai", "qwen"))
    assert "| Moonshot (Kimi), Qwen (DashScope) | inside `choices[0].usage`" in changed


def test_lesson5_shows_the_table_as_rendered_now():
    cells = json.loads(LESSON5.read_text())["cells"]
    shown = [c for c in cells if c["cell_type"] == "code" and LESSON5_CALL in "".join(c["source"])]
    assert len(shown) == 1, f"lesson 5 should call {LESSON5_CALL} in one cell"
    outputs = [o for o in shown[0]["outputs"] if "text/markdown" in o.get("data", {})]
    assert outputs, "lesson 5's table has no Markdown output: re-execute the lesson"
    committed = "".join(outputs[0]["data"]["text/markdown"])
    assert committed == comparison_table(columns=LESSON5_COLUMNS), (
        "lesson 5's committed table differs from helpers.providers: "
        "make outputs NB=notebooks/06_providers_and_quirks.ipynb")


def test_the_comparison_table_marks_the_offline_providers_own_choices(monkeypatch):
    """Simulator choices must not read as facts: such cells carry a mark and a note."""
    table = comparison_table(("deepseek", "openai"), ("keep_alive",))
    assert "| DeepSeek | yes ¹ |" in table and "| OpenAI | no |" in table
    assert table.endswith("says what the real provider does.")
    patch_family(monkeypatch, "deepseek", offline_choice=())
    assert "¹" not in comparison_table(("deepseek", "openai"), ("keep_alive",))
