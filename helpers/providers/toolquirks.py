"""How each provider family streams tool calls: one section of the provider table."""

from __future__ import annotations

from dataclasses import dataclass

from .prices import CHECKED

__all__ = ["TOOL_CALLS", "ToolCallQuirks"]


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
