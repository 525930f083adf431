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
- Usage placement is described by two fields: where usage goes without asking
  (``usage_unasked``) and where it goes when the client sends
  ``stream_options={"include_usage": true}`` (``usage_when_asked``; ``None``: the option is not
  honoured). The three places are named in the lessons' words (``USAGE_*`` below).
- ``tool_calls``: how each family streams tool calls (:class:`ToolCallQuirks`), kept in its own
  section at the end (``TOOL_CALLS``) and written into ``FAMILIES`` there.
- Prices per model (:class:`Price`, per million tokens, with currency, source and date) are a
  section of their own too (``PRICES``), written into ``MODELS[m].price``. The offline provider
  has no prices: its token counts (``helpers.tokens``) times the real model's price.
- The Markdown tables the lessons print from these records live in
  :mod:`helpers.provider_tables` (re-exported here).
- The evidence for the usage traits: :mod:`helpers.recordings` keeps each provider's published
  example stream; ``tests/test_recordings.py`` checks this table and the offline flavours
  against them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "AUTO_ORDER", "COLUMNS", "FAMILIES", "MODELS", "PRICES", "PROVIDERS", "TOOL_CALLS",
    "USAGE_IN_CHOICE", "USAGE_PLACES", "USAGE_TOP_LEVEL", "USAGE_TRAILING", "Model", "Price",
    "Provider", "ToolCallQuirks", "WireTraits", "comparison_table", "model_traits", "price_of",
    "traits_for",
]

CHECKED = "2026-11-28"  # the day the facts below were last checked against their sources

#: The three places a stream can carry ``usage``, in the words the lessons use.
USAGE_IN_CHOICE = "choices[0].usage"  # inside the only choice of the chunk with finish_reason
USAGE_TOP_LEVEL = "last chunk, top level"  # top-level, on the chunk with finish_reason
USAGE_TRAILING = "trailing chunk"  # an extra chunk with empty choices and top-level usage
USAGE_PLACES = (USAGE_IN_CHOICE, USAGE_TOP_LEVEL, USAGE_TRAILING)


@dataclass(frozen=True)
class ToolCallQuirks:
    """How a family streams tool calls (filled in the "Tool calls" section at the end)."""

    id_prefix: str  # how call ids start: "functions." (Moonshot: functions.add:0) or "call_"
    content_first: bool = False  # content deltas may come before the tool_calls deltas
    later_id: str | None = None  # the id later pieces of a call carry (None: no id key)
    empty_function: bool = False  # a later piece may carry an empty "function": {}
    index: bool = True  # pieces carry tool_calls[i].index (False: omitted)
    whole_call: bool = False  # each call arrives whole in one piece (name and all arguments)
    forced_choice_needs_thinking_off: bool = False  # tool_choice required/named: 400 if thinking
    reasoning_in_tool_turns: bool = False  # assistant tool-call messages must keep reasoning
    web_search: bool = False  # serves the builtin_function $web_search (needs thinking off)
    checked: str = CHECKED
    source: str = ""


@dataclass(frozen=True)
class WireTraits:
    """How one provider family shapes a stream on the wire."""

    family: str
    label: str  # how the lessons name it
    usage_unasked: str | None  # where usage goes with no stream_options (None: nowhere)
    usage_when_asked: str | None  # where it goes with include_usage (None: not honoured)
    keep_alive: bool  # ": keep-alive" SSE comment lines while the request waits
    reasoning_field: str | None  # the delta field that streams the model's reasoning
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
                 "streaming-output-feature-of-kimi-api; helpers/recordings.py); "
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
class Price:
    """What a model costs per million tokens, as its provider's price page said on ``checked``."""

    input: float  # per 1M prompt tokens (a cache miss)
    output: float  # per 1M completion tokens (reasoning included)
    cached_input: float | None = None  # per 1M cached prompt tokens (None: no discount)
    currency: str = "USD"
    checked: str = CHECKED
    source: str = ""


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


# -- Tool calls ----------------------------------------------------------------------------------
# How each family streams tool calls. Kept in its own section; written into FAMILIES below, so
# ``FAMILIES[f].tool_calls`` is the one place readers look.

_MOONSHOT_TOOLS_SRC = (
    "platform.moonshot.cn/docs/guide/use-kimi-api-to-complete-tool-calls, 'about streaming' "
    "(content first, then tool_calls; id and name in the first piece, later pieces only "
    "arguments; index tells calls apart), quoted in itsvse.com/thread-10981-1-1.html; ids "
    "'functions.<name>:<n>': github.com/openai/openai-python/issues/3201 (a Kimi K2 stream), "
    "github.com/thinking-machines-lab/tinker-cookbook/pull/248")
_KIMI_THINKING_TOOLS_SRC = (
    "forced tool_choice with thinking on: 400 \"tool_choice 'specified' (or 'required') is "
    "incompatible with thinking enabled\": github.com/can1357/oh-my-pi/issues/827 and /1077, "
    "github.com/UKGovernmentBEIS/inspect_ai/pull/5152; \"thinking is enabled but "
    "reasoning_content is missing in assistant tool call message\": "
    "github.com/1jehuang/jcode/issues/322; $web_search needs thinking disabled: "
    "platform.moonshot.ai/docs/guide/use-web-search, studynil.com/ai/llm/kimi/guide/"
    "use-web-search.html; search tokens in the call's arguments (usage.total_tokens) and "
    "billed in the next request: platform.kimi.ai/docs/pricing/tools")
_OPENAI_TOOLS_SRC = ("platform.openai.com/docs/guides/function-calling (streaming: id and name "
                     "in the first delta, then argument deltas by index)")
_QWEN_TOOLS_SRC = ("later pieces carry \"id\": \"\" and sometimes an empty \"function\": {}: "
                   "a DashScope (qwen-max) stream quoted in itsvse.com/thread-10981-1-1.html; "
                   "join by index: github.com/spring-ai-alibaba/spring-ai-extensions/pull/295 "
                   "(and /pull/266)")
_DEEPSEEK_TOOLS_SRC = ("api-docs.deepseek.com/guides/function_calling (OpenAI's format; the "
                       "offline provider streams a reasoning family's reasoning first)")
_LOCAL_TOOLS_SRC = ("no index, each call whole in one piece: github.com/ollama/ollama/issues/7881 "
                    "(2024-11-29; the SDK's .stream() helper fails); Gemini's OpenAI-compatible "
                    "endpoint too: github.com/openai/openai-python/issues/2806, "
                    "github.com/AstrBotDevs/AstrBot/pull/6692")

#: family -> how it streams tool calls
TOOL_CALLS: dict[str, ToolCallQuirks] = {
    "moonshot": ToolCallQuirks("functions.", content_first=True, web_search=True,
                               source=_MOONSHOT_TOOLS_SRC),
    "moonshot-thinking": ToolCallQuirks(
        "functions.", content_first=True, forced_choice_needs_thinking_off=True,
        reasoning_in_tool_turns=True, web_search=True,
        source=_MOONSHOT_TOOLS_SRC + "; " + _KIMI_THINKING_TOOLS_SRC),
    "deepseek": ToolCallQuirks("call_", source=_DEEPSEEK_TOOLS_SRC),
    "deepseek-reasoner": ToolCallQuirks("call_", source=_DEEPSEEK_TOOLS_SRC),
    "openai": ToolCallQuirks("call_", source=_OPENAI_TOOLS_SRC),
    "qwen": ToolCallQuirks("call_", later_id="", empty_function=True, source=_QWEN_TOOLS_SRC),
    "local": ToolCallQuirks("call_", index=False, whole_call=True, source=_LOCAL_TOOLS_SRC),
}
for _family, _quirks in TOOL_CALLS.items():
    FAMILIES[_family] = replace(FAMILIES[_family], tool_calls=_quirks)


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
for _model, _price in PRICES.items():
    MODELS[_model] = replace(MODELS[_model], price=_price)


def price_of(model: str) -> Price | None:
    """Return ``model``'s price per million tokens, or None when the table has none."""
    known = MODELS.get(model)
    return known.price if known is not None else None


from .provider_tables import COLUMNS, comparison_table  # noqa: E402  (renders the records above)
