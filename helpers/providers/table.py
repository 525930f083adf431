"""The one table of provider behaviour: presets, wire traits per family, models.

Everything that depends on how a provider streams reads this module: the offline provider's
flavours, the relay (whether to ask for usage), the exercises, and the comparison tables the
lessons print (:func:`comparison_table`). Change a trait here and all of them change together.

Deliberate choices:

- Records are frozen dataclasses held in plain dicts (``PROVIDERS``, ``FAMILIES``, ``MODELS``),
  and every reader looks them up at call time, so a test can ``monkeypatch.setitem`` one entry.
- Each record says when it was checked and where the fact comes from (``checked``, ``source``).
  ``offline_choice`` names the fields that are only the offline provider's own decision (not a
  documented fact about the real provider), so the lessons can say so.
- The reasoning field: a reasoning model's thinking streams as text in a delta field whose name
  differs by provider (``REASONING_FIELDS``, each with its source in ``REASONING_SOURCES``).
  Readers accept every listed name (:func:`reasoning_text`), so a server the table does not
  know is still read; a family's ``reasoning_field`` names the one it sends, which the offline
  provider streams. No other module names a field (``tests/test_reasoning_field.py``); readers
  read ``REASONING_FIELDS`` when called (the relay: once per stream), so a test can
  ``monkeypatch.setattr`` it.
- Usage placement is described by two fields: where usage goes without asking
  (``usage_unasked``) and where it goes when the client sends
  ``stream_options={"include_usage": true}`` (``usage_when_asked``; ``None``: the option is not
  honoured). The three places are named in the lessons' words (``USAGE_*`` below).
- ``tool_calls``: how each family streams tool calls (:class:`ToolCallQuirks`), kept in its own
  section at the end (``TOOL_CALLS``) and written into ``FAMILIES`` there.
- Prices per model (:class:`Price`, per million tokens, with currency, source and date) are a
  section of their own too (``PRICES``), written into ``MODELS[m].price``. The offline provider
  has no prices: its token counts (``helpers.money.tokens``) times the real model's price.
- Two sections live in modules of their own, each a leaf this one reads: how families stream
  tool calls (:mod:`.toolquirks`) and prices (:mod:`.prices`). The Markdown tables the lessons
  print from these records are :mod:`helpers.providers.markdown`.
- The evidence for the usage traits: :mod:`.recordings` keeps each provider's published
  example stream; ``tests/test_recordings.py`` checks this table and the offline flavours
  against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .prices import CHECKED, PRICES, Price
from .toolquirks import TOOL_CALLS, ToolCallQuirks

__all__ = [
    "AUTO_ORDER", "CHECKED", "FAMILIES", "MODELS", "OFFLINE_KEY", "PRICES", "PROVIDERS",
    "REASONING_CHECKED", "REASONING_FIELDS", "REASONING_SOURCES", "TOOL_CALLS",
    "USAGE_IN_CHOICE", "USAGE_PLACES", "USAGE_TOP_LEVEL", "USAGE_TRAILING", "Model", "Price",
    "Provider", "ToolCallQuirks", "WireTraits", "model_traits", "price_of",
    "reasoning_text", "traits_for",
]


#: The three places a stream can carry ``usage``, in the words the lessons use.
USAGE_IN_CHOICE = "choices[0].usage"  # inside the only choice of the chunk with finish_reason
USAGE_TOP_LEVEL = "last chunk, top level"  # top-level, on the chunk with finish_reason
USAGE_TRAILING = "trailing chunk"  # an extra chunk with empty choices and top-level usage
USAGE_PLACES = (USAGE_IN_CHOICE, USAGE_TOP_LEVEL, USAGE_TRAILING)

#: The delta fields providers stream a reasoning model's thinking under, as text. A chunk with
#: any of them is reasoning; when a chunk carries more than one (a server that sends the new
#: name and the old with the same text), the first listed wins, so nothing is counted twice.
REASONING_FIELDS: tuple[str, ...] = ("reasoning_content", "reasoning")
REASONING_CHECKED = "2026-12-04"
#: field -> who streams it, and where that is written down (checked on REASONING_CHECKED)
REASONING_SOURCES: dict[str, str] = {
    "reasoning_content": (
        "DeepSeek: api-docs.deepseek.com/guides/thinking_mode_api_example_streaming "
        "(delta.reasoning_content); Moonshot's Kimi thinking models: platform.moonshot.ai "
        "docs (kimi-k2-thinking); vLLM up to v0.10: docs.vllm.ai/en/v0.10.0/features/"
        "reasoning_outputs.html (kept as an alias in v0.11.2: docs.vllm.ai/en/v0.11.2/"
        "features/reasoning_outputs/)"),
    "reasoning": (
        "vLLM: docs/features/reasoning_outputs.md on github.com/vllm-project/vllm main "
        "(docs.vllm.ai/en/latest): delta.reasoning, \"`reasoning` used to be called "
        "`reasoning_content`. To migrate, directly replace `reasoning_content` with "
        "`reasoning`\"; renamed in github.com/vllm-project/vllm/pull/27752 (2025-11-08); "
        "Ollama: github.com/ollama/ollama openai/openai.go (ChunkChoice.Delta.Reasoning, json "
        "'reasoning', the model's thinking; docs.ollama.com/api/openai-compatibility names "
        "only the request fields); OpenRouter: openrouter.ai/docs/guides/best-practices/"
        "reasoning-tokens (delta.reasoning; reasoning_details beside it is a list of typed "
        "objects, not text, so it is not listed here)"),
}


def reasoning_text(get: Callable[[str], Any],
                   fields: Sequence[str] | None = None) -> tuple[str, str] | None:
    """Return ``(field, text)`` for the first listed reasoning field with text, or None.

    Args:
        get: reads one field of a delta (``delta.get`` for parsed JSON).
        fields: the names to try (default: ``REASONING_FIELDS``, read now).
    """
    for name in REASONING_FIELDS if fields is None else fields:
        value = get(name)
        if isinstance(value, str) and value:
            return name, value
    return None


@dataclass(frozen=True)
class WireTraits:
    """How one provider family shapes a stream on the wire."""

    family: str
    label: str  # how the lessons name it
    usage_unasked: str | None  # where usage goes with no stream_options (None: nowhere)
    usage_when_asked: str | None  # where it goes with include_usage (None: not honoured)
    keep_alive: bool  # ": keep-alive" SSE comment lines while the request waits
    reasoning_field: str | None  # the one of REASONING_FIELDS it streams reasoning in (None: none)
    tool_calls: ToolCallQuirks | None = None  # tool-call quirks (a slot, see ToolCallQuirks)
    checked: str = CHECKED
    source: str = ""
    offline_choice: tuple[str, ...] = ()  # fields that are the offline provider's own choice

    @property
    def ask_for_usage(self) -> bool:
        """True when a client should send ``stream_options.include_usage`` (it is honoured)."""
        return self.usage_when_asked is not None

    @property
    def reasoning(self) -> bool:
        """True when this family streams reasoning before the answer."""
        return self.reasoning_field is not None

    def usage_places(self, asked: bool) -> tuple[str, ...]:
        """Return every place usage appears in one stream, in wire order."""
        places = {self.usage_unasked, self.usage_when_asked if asked else None}
        return tuple(p for p in USAGE_PLACES if p in places)


_MOONSHOT_SRC = ("Moonshot's streaming guide shows both (platform.kimi.ai/docs/guide/utilize-the-"
                 "streaming-output-feature-of-kimi-api; helpers/providers/recordings.py); "
                 "usage in choices[0]: github.com/higress-group/higress/pull/1568, "
                 "github.com/northes/go-moonshot/issues/17; with include_usage a trailing "
                 "duplicate: github.com/rmusser01/tldw_chatbook/pull/1627, "
                 "github.com/vercel/ai/pull/12337")
_DEEPSEEK_SRC = ("api-docs.deepseek.com/api/create-chat-completion (usage rides on the last chunk, "
                 "the one with finish_reason, asked or not; no usage-only chunk), quoted in "
                 "github.com/moona3k/macparakeet/pull/1087; seen live in "
                 "github.com/deepseek-ai/DeepSeek-V2/issues/29; api-docs.deepseek.com rate-limit "
                 "page (': keep-alive' comments while a streamed request waits); reasoning "
                 "model guide (reasoning_content)")
_OPENAI_SRC = "platform.openai.com/docs/api-reference/chat/create (stream_options.include_usage)"
_QWEN_SRC = ("help.aliyun.com, DashScope OpenAI-compatible mode (usage only with "
             "stream_options.include_usage, in a last chunk with empty choices), quoted in "
             "github.com/moona3k/macparakeet/pull/1087; github.com/openclaw/openclaw/pull/43184")
_OLLAMA_SRC = ("github.com/ollama/ollama/releases/tag/v0.5.2 (stream_options.include_usage); "
               "github.com/ollama/ollama/issues/4448")

#: family -> wire traits. Reasoning variants are families of their own.
FAMILIES: dict[str, WireTraits] = {t.family: t for t in (
    WireTraits("moonshot", "Moonshot (Kimi)", USAGE_IN_CHOICE, USAGE_TRAILING,
               keep_alive=False, reasoning_field=None, source=_MOONSHOT_SRC),
    WireTraits("moonshot-thinking", "Kimi thinking models", USAGE_IN_CHOICE, USAGE_TRAILING,
               keep_alive=False, reasoning_field="reasoning_content",
               source=_MOONSHOT_SRC + "; platform.moonshot.ai docs (kimi-k2-thinking)"),
    WireTraits("deepseek", "DeepSeek", USAGE_TOP_LEVEL, USAGE_TOP_LEVEL,
               keep_alive=True, reasoning_field=None, source=_DEEPSEEK_SRC,
               # DeepSeek's keep-alives come only while a busy server makes you wait; the
               # offline provider sends one before every stream so lessons can show it.
               offline_choice=("keep_alive",)),
    WireTraits("deepseek-reasoner", "DeepSeek, thinking", USAGE_TOP_LEVEL, USAGE_TOP_LEVEL,
               keep_alive=True, reasoning_field="reasoning_content", source=_DEEPSEEK_SRC,
               offline_choice=("keep_alive",)),
    WireTraits("openai", "OpenAI", None, USAGE_TRAILING,
               keep_alive=False, reasoning_field=None, source=_OPENAI_SRC),
    WireTraits("qwen", "Qwen (DashScope)", None, USAGE_TRAILING,
               keep_alive=False, reasoning_field=None, source=_QWEN_SRC),
    WireTraits("local", "Ollama (local)", None, USAGE_TRAILING,
               keep_alive=False, reasoning_field=None, source=_OLLAMA_SRC),
)}


@dataclass(frozen=True)
class Model:
    """One model id: its family, context window, price, and whether the id is still served."""

    id: str
    family: str
    context_window: int  # tokens, prompt + answer
    checked: str = CHECKED
    source: str = ""
    retired: str = ""  # empty while served; else a note (when, and what replaces it)
    price: Price | None = None  # filled in the "Prices" section at the end (None: unknown)

    @property
    def reasoning(self) -> bool:
        """True when this model streams reasoning (its family says so)."""
        return FAMILIES[self.family].reasoning


_KIMI_RETIRED = ("discontinued by Moonshot on 2026-05-25, replaced by kimi-k2.6 "
                 "(github.com/aallan/vera-bench/issues/68 quotes Moonshot's notice; "
                 "promptfoo.dev/docs/providers/moonshot); the offline provider still serves it")

_DEEPSEEK_RETIRED = ("discontinued by DeepSeek on 2026-07-24, replaced by deepseek-v4-flash "
                     "(api-docs.deepseek.com/updates, 2026-04-24 notice; "
                     "github.com/mozilla-ai/any-llm/issues/1172); the offline provider still "
                     "serves it")

#: model id -> model. The offline provider serves exactly these, in this order.
MODELS: dict[str, Model] = {m.id: m for m in (
    Model("moonshot-v1-8k", "moonshot", 8192, source="promptfoo.dev/docs/providers/moonshot"),
    Model("moonshot-v1-32k", "moonshot", 32768, source="promptfoo.dev/docs/providers/moonshot"),
    Model("moonshot-v1-128k", "moonshot", 131072,
          source="promptfoo.dev/docs/providers/moonshot"),
    Model("kimi-k2.6", "moonshot-thinking", 262144,
          source="promptfoo.dev/docs/providers/moonshot (a thinking model, 256k context)"),
    Model("kimi-k2-turbo-preview", "moonshot", 262144, source="platform.moonshot.ai docs: models",
          retired=_KIMI_RETIRED),
    Model("kimi-k2-thinking", "moonshot-thinking", 262144,
          source="platform.moonshot.ai docs: models", retired=_KIMI_RETIRED),
    Model("qwen-plus", "qwen", 131072, source="help.aliyun.com: Qwen models"),
    Model("qwen-turbo", "qwen", 131072, source="help.aliyun.com: Qwen models"),
    Model("deepseek-v4-flash", "deepseek-reasoner", 1048576,
          source="openrouter.ai/deepseek/deepseek-v4-flash (1M context); thinking mode on by "
                 "default (huggingface.co/deepseek-ai/DeepSeek-V4-Flash); the request "
                 "parameter that turns it off is not modelled offline"),
    Model("deepseek-chat", "deepseek", 131072, source="api-docs.deepseek.com: models & pricing",
          retired=_DEEPSEEK_RETIRED),
    Model("deepseek-reasoner", "deepseek-reasoner", 131072,
          source="api-docs.deepseek.com: models & pricing", retired=_DEEPSEEK_RETIRED),
    Model("gpt-4o-mini", "openai", 128000, source="platform.openai.com/docs/models"),
    Model("gpt-4.1-mini", "openai", 1047576, source="platform.openai.com/docs/models"),
    Model("qwen2.5:0.5b", "local", 32768, source="ollama.com/library/qwen2.5"),
    Model("offline-tiny", "moonshot", 64, source="the offline provider's own (tests)"),
)}


@dataclass(frozen=True)
class Provider:
    """One OpenAI-compatible provider: where it lives and which variable holds its key."""

    name: str
    base_url: str
    key_env: str | None
    default_model: str
    notes: str = ""
    family: str = "openai"  # wire traits for models not in MODELS
    checked: str = CHECKED
    source: str = ""


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("moonshot", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY", "kimi-k2.6",
             "Kimi, China platform (platform.moonshot.cn).", "moonshot",
             source="platform.moonshot.cn docs; default model: see MODELS['kimi-k2.6']"),
    Provider("moonshot-global", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "kimi-k2.6",
             "Kimi, global platform (platform.moonshot.ai). Keys do not cross regions.",
             "moonshot", source="platform.moonshot.ai docs; default model: see "
                                "MODELS['kimi-k2.6']"),
    Provider("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY",
             "qwen-plus", "Alibaba DashScope compatible mode, China (Beijing) region.", "qwen",
             source="help.aliyun.com: OpenAI-compatible DashScope"),
    Provider("qwen-intl", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
             "DASHSCOPE_API_KEY", "qwen-plus",
             "DashScope compatible mode, international (Singapore) region.", "qwen",
             source="alibabacloud.com help: OpenAI-compatible DashScope"),
    Provider("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek-v4-flash",
             "DeepSeek's own platform.", "deepseek",
             source="api-docs.deepseek.com; default model: see MODELS['deepseek-v4-flash']"),
    Provider("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini",
             "The API the others imitate.", "openai", source="platform.openai.com/docs"),
    Provider("local", "http://localhost:11434/v1", None, "qwen2.5:0.5b",
             "Any OpenAI-compatible server on your machine (Ollama, llama.cpp, vLLM). "
             "No key needed; set LLM_BASE_URL and LLM_MODEL to match it.", "local",
             source="github.com/ollama/ollama docs/openai.md"),
    Provider("offline", "", None, "moonshot-v1-8k",
             "The embedded offline provider: Moonshot's wire format, no key, no network.",
             "moonshot", source="helpers/offline (this package)"),
)}

#: The key of the process's shared offline provider (the one ``load_config()`` starts). Like a
#: real provider, it accepts only its own key, so a wrong key gets a 401 offline too.
OFFLINE_KEY = "offline-demo-key"

#: Providers tried, in order, when LLM_PROVIDER is not set: the first with a key wins.
AUTO_ORDER: tuple[str, ...] = ("moonshot", "qwen", "deepseek", "openai")


def model_traits(model: str) -> WireTraits:
    """Return the wire traits the offline provider uses for ``model`` (Moonshot's if unknown)."""
    known = MODELS.get(model)
    return FAMILIES[known.family if known is not None else "moonshot"]


def traits_for(provider: str, model: str) -> WireTraits:
    """Return the wire traits of ``model`` served by ``provider``.

    A model in ``MODELS`` has its family's traits; otherwise the provider preset's family
    decides (``offline``: by model, as the offline provider does; an unknown provider: OpenAI's).
    """
    known = MODELS.get(model)
    if known is not None or provider == "offline":
        return model_traits(model)
    preset = PROVIDERS.get(provider)
    return FAMILIES[preset.family if preset is not None else "openai"]


for _family, _quirks in TOOL_CALLS.items():
    FAMILIES[_family] = replace(FAMILIES[_family], tool_calls=_quirks)

for _model, _price in PRICES.items():
    MODELS[_model] = replace(MODELS[_model], price=_price)


def price_of(model: str) -> Price | None:
    """Return ``model``'s price per million tokens, or None when the table has none."""
    known = MODELS.get(model)
    return known.price if known is not None else None
