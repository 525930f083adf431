"""Tool calls, offline: the request's tools checked, and a deterministic rule for calling them.

The rule (documented so lessons and tests can rely on it):

- A question (the last user message) that names an offered function calls it; two named
  functions give two parallel calls, in the order they are named.
- Numbers fill a call's numeric parameters in order, quoted text (``"..."``, ``'...'``,
  ``“...”``, ``「...」``) its string parameters; an enum parameter takes the enum value the
  question names. Each call reads the part of the question from its name to the next called
  name; if that part has too few numbers, the whole question's numbers are used. A required
  parameter nothing fills is left out (a model can get it wrong too).
- ``$web_search`` (``builtin_function``) is called when the question asks to search
  ("search", "look up", "搜索", "查一下").
- ``tool_choice``: ``"none"`` never calls, ``"auto"`` (default) follows the rule,
  ``"required"`` calls the first offered function when none is named, a named function is
  always called (the whole question fills it). A family whose table entry says
  ``forced_choice_needs_thinking_off`` refuses a forced choice with a 400 while thinking is
  on, as Kimi does (send ``thinking={"type": "disabled"}``).
- After ``role: "tool"`` messages, the model answers from the results, in the question's
  language.

Bad tool definitions, an unknown ``tool_choice`` and a tool message that answers no call are
400s in Moonshot's error shape, with a message that says what is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..providers.table import ToolCallQuirks
from .errors import BadRequest
from .plan import Plan
from .replies import count_prompt_tokens, has_cjk, message_text
from .websearch import Page, pages_for_id, search, search_id, search_tokens

__all__ = ["Call", "ToolTurn", "plan_tool_turn"]

WEB_SEARCH = "$web_search"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r'"([^"]*)"|“([^”]*)”|「([^」]*)」|(?<!\w)\'([^\']*)\'(?!\w)')
_SEARCH_WORDS = ("search", "look up", "搜索", "查一下")


@dataclass
class Call:
    """One tool call the model makes: its id, function name and JSON arguments."""

    id: str
    name: str
    arguments: str
    builtin: bool = False


@dataclass
class ToolTurn:
    """What the model does this turn: calls (with a preamble and thoughts) or an answer."""

    calls: list[Call] = field(default_factory=list)
    preamble: str = ""  # content before the calls (families with content_first)
    thoughts: str = ""  # reasoning before the calls (thinking on)
    text: str = ""  # the answer, when there are no calls
    search_tokens: int = 0  # tokens of $web_search results billed in this prompt


def _check_tools(tools: Any, quirks: ToolCallQuirks) -> dict[str, dict]:
    if not isinstance(tools, list):
        raise BadRequest(f"'tools' must be an array of tool definitions, got "
                         f"{type(tools).__name__}")
    offered: dict[str, dict] = {}
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "builtin_function"):
            raise BadRequest(f"{where}.type must be 'function' or 'builtin_function'")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise BadRequest(f"{where}.function must be an object with a 'name'")
        name = fn.get("name")
        if tool["type"] == "builtin_function":
            if name != WEB_SEARCH:
                raise BadRequest(f"{where}: unknown builtin_function {name!r} (only "
                                 f"'{WEB_SEARCH}')")
            if not quirks.web_search:
                raise BadRequest(f"{where}: this model does not serve '{WEB_SEARCH}'")
        elif not isinstance(name, str) or not _NAME.match(name):
            raise BadRequest(f"{where}.function.name is missing or invalid: it must match "
                             f"{_NAME.pattern}, got {name!r}")
        params = fn.get("parameters")
        if params is not None and (not isinstance(params, dict)
                                   or params.get("type", "object") != "object"):
            raise BadRequest(f"{where}.function.parameters must be a JSON Schema of type "
                             f"'object', got {json.dumps(params)[:80]}")
        if name in offered:
            raise BadRequest(f"{where}: the function name {name!r} is offered twice")
        offered[name] = fn
    return offered


def _check_choice(choice: Any, offered: dict[str, dict]) -> str | None:
    """Return "none", "auto", "required" or the forced function's name."""
    if choice is None:
        return "auto"
    if choice in ("none", "auto", "required"):
        return choice
    fn = choice.get("function") if isinstance(choice, dict) else None
    if not (isinstance(choice, dict) and choice.get("type") == "function"
            and isinstance(fn, dict) and isinstance(fn.get("name"), str)):
        raise BadRequest("tool_choice must be 'none', 'auto', 'required' or "
                         "{'type': 'function', 'function': {'name': ...}}, got "
                         f"{json.dumps(choice)[:80]}")
    if fn["name"] not in offered:
        raise BadRequest(f"tool_choice names {fn['name']!r}, which is not in 'tools'")
    return fn["name"]


def _check_messages(messages: list[dict]) -> dict[str, str]:
    """Check that every tool message answers an earlier call; return call id -> name."""
    calls: dict[str, str] = {}
    for i, m in enumerate(messages):
        if m.get("role") == "assistant" and m.get("tool_calls") is not None:
            if not isinstance(m["tool_calls"], list):
                raise BadRequest(f"messages[{i}].tool_calls must be an array")
            for j, c in enumerate(m["tool_calls"]):
                fn = c.get("function") if isinstance(c, dict) else None
                if not (isinstance(c, dict) and isinstance(c.get("id"), str)
                        and isinstance(fn, dict) and isinstance(fn.get("name"), str)):
                    raise BadRequest(f"messages[{i}].tool_calls[{j}] must have an 'id' and a "
                                     f"'function' with a 'name'")
                calls[c["id"]] = fn["name"]
        elif m.get("role") == "tool":
            ident = m.get("tool_call_id")
            if ident not in calls:
                raise BadRequest(f"messages[{i}]: a 'tool' message must answer a tool call, "
                                 f"but tool_call_id {ident!r} matches no tool call of an "
                                 f"earlier assistant message")
    return calls


def _thinking_on(body: dict, plan: Plan) -> bool:
    thinking = body.get("thinking")
    off = isinstance(thinking, dict) and thinking.get("type") == "disabled"
    return plan.traits.reasoning and not off


def _named(question: str, name: str) -> int | None:
    """Return where the question names the function, if it does."""
    words = {name, name.replace("_", " ")}
    spots = [m.start() for w in words
             for m in re.finditer(rf"(?<![\w$]){re.escape(w)}(?!\w)", question, re.I)]
    return min(spots) if spots else None


def _types(schema: dict) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def fill_arguments(schema: dict | None, part: str, question: str) -> dict[str, Any]:
    """Fill a function's parameters from the question by the documented rule."""
    props = (schema or {}).get("properties") or {}
    numbers = _NUMBER.findall(part)
    wanted = sum(1 for p in props.values() if isinstance(p, dict)
                 and _types(p) & {"number", "integer"})
    if len(numbers) < wanted:
        numbers = _NUMBER.findall(question)
    quotes = ["".join(g) for g in _QUOTED.findall(part)] or \
             ["".join(g) for g in _QUOTED.findall(question)]
    args: dict[str, Any] = {}
    for key, prop in props.items():
        kinds = _types(prop) if isinstance(prop, dict) else set()
        if isinstance(prop, dict) and isinstance(prop.get("enum"), list):
            hit = next((v for v in prop["enum"] if str(v).lower() in question.lower()), None)
            if hit is not None:
                args[key] = hit
        elif kinds & {"number", "integer"} and numbers:
            value = float(numbers.pop(0))
            args[key] = int(value) if "integer" in kinds or value.is_integer() else value
        elif "string" in kinds and quotes:
            args[key] = quotes.pop(0)
    return args


def _call_id(quirks: ToolCallQuirks, name: str, n: int, plan: Plan) -> str:
    if quirks.id_prefix == "functions.":
        return f"functions.{name}:{n}"
    return f"{quirks.id_prefix}{plan.body_hash[n % 8 * 4:n % 8 * 4 + 20]}{n}"


def _decide(question: str, offered: dict[str, dict], choice: str) -> list[tuple[str, str]]:
    """Return (name, part of the question) for each call the rule makes."""
    if choice == "none":
        return []
    if choice not in ("auto", "required"):
        return [(choice, question)]
    spots = []
    for name in offered:
        if name == WEB_SEARCH:
            low = question.lower()
            where = [low.find(w) for w in _SEARCH_WORDS if w in low]
            spot = min(where) if where else None
        else:
            spot = _named(question, name)
        if spot is not None:
            spots.append((spot, name))
    spots.sort()
    calls = [(name, question[at:spots[k + 1][0] if k + 1 < len(spots) else None])
             for k, (at, name) in enumerate(spots)]
    if not calls and choice == "required" and offered:
        calls = [(next(iter(offered)), question)]
    return calls


def _answer(messages: list[dict], names: dict[str, str], zh: bool) -> tuple[str, list[Page]]:
    """Compose the answer from the tool results after the last user message."""
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    results = [(names[m["tool_call_id"]], message_text(m)) for m in messages[last_user:]
               if m.get("role") == "tool"]
    pages: list[Page] = []
    parts = []
    for name, result in results:
        if name == WEB_SEARCH:
            try:
                found = pages_for_id(json.loads(result).get("search_result", {}).get("search_id"))
            except (ValueError, AttributeError):
                found = []
            pages += found
            parts += [f"{p.title} ({p.url}): {(p.zh if zh else p.en).rstrip('。.')}"
                      for p in found]
        else:
            parts.append(f"{name} → {result[:200]}")
    if not parts:
        return ("工具没有返回结果。" if zh else "The tools returned nothing I can use."), pages
    head = "工具返回的结果：" if zh else "Here is what the tools returned: "
    if pages:
        head = "根据搜索结果：" if zh else "According to the search results: "
    return head + ("；" if zh else "; ").join(parts) + ("。" if zh else "."), pages


def plan_tool_turn(body: dict, plan: Plan) -> ToolTurn | None:
    """Check the request's tools; return the tool turn, or None for a plain answer.

    Raises :class:`BadRequest` for bad tools, an unknown tool_choice, a tool message that
    answers no call, or a quirk of the model's family (Kimi thinking and a forced choice).
    """
    quirks = plan.traits.tool_calls or ToolCallQuirks("call_")
    has_tools = "tools" in body and body["tools"] is not None
    if not has_tools and body.get("tool_choice") is not None:
        raise BadRequest("tool_choice is only allowed when 'tools' are given")
    offered = _check_tools(body["tools"], quirks) if has_tools else {}
    choice = _check_choice(body.get("tool_choice"), offered)
    names = _check_messages(plan.messages)
    thinking = _thinking_on(body, plan)
    if thinking and quirks.forced_choice_needs_thinking_off and choice not in ("none", "auto"):
        said = "required" if choice == "required" else "specified"
        raise BadRequest(f"tool_choice '{said}' is incompatible with thinking enabled")
    if thinking and WEB_SEARCH in offered:
        raise BadRequest(f"'{WEB_SEARCH}' needs thinking disabled: send "
                         f"thinking={{\"type\": \"disabled\"}}")
    field = plan.traits.reasoning_field
    if thinking and quirks.reasoning_in_tool_turns and field:
        for i, m in enumerate(plan.messages):
            if m.get("role") == "assistant" and m.get("tool_calls") and not m.get(field):
                raise BadRequest(f"thinking is enabled but {field} is missing in "
                                 f"assistant tool call message at index {i}")
    question = next((message_text(m) for m in reversed(plan.messages)
                     if m.get("role") == "user"), "")
    zh = has_cjk(question)
    if plan.messages[-1].get("role") == "tool":
        text, pages = _answer(plan.messages, names, zh)
        return ToolTurn(text=text, search_tokens=search_tokens(pages, count_prompt_tokens))
    decided = _decide(question, offered, choice or "auto")
    if not decided:
        return None
    done = len(names)  # calls made earlier in the conversation: ids stay unique
    calls = []
    for n, (name, part) in enumerate(decided):
        if name == WEB_SEARCH:
            found = search(question)
            args = {"search_result": {"search_id": search_id(found)},
                    "usage": {"total_tokens": search_tokens(found, count_prompt_tokens)}}
        else:
            args = fill_arguments(offered[name].get("parameters"), part, question)
        calls.append(Call(_call_id(quirks, name, done + n, plan), name,
                          json.dumps(args, ensure_ascii=False), builtin=name == WEB_SEARCH))
    listed = "、".join(c.name for c in calls) if zh else " and ".join(c.name for c in calls)
    preamble = ""
    if quirks.content_first:
        preamble = f"我来调用 {listed}。" if zh else f"Let me call {listed}."
    thoughts = ""
    if thinking:
        thoughts = (f"问题提到了 {listed}，我先调用工具。" if zh
                    else f"The question names {listed}, so I call the tool first.")
    return ToolTurn(calls=calls, preamble=preamble, thoughts=thoughts)
