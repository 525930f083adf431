"""Kimi's built-in ``$web_search``, offline: a handful of built-in pages and a search id.

Moonshot's flow: the tools offer ``{"type": "builtin_function", "function": {"name":
"$web_search"}}``; the model calls it with arguments the client does not read but sends back
unchanged as the tool message; the search itself happens on Moonshot's side, and the tokens of
what it found (``arguments.usage.total_tokens``) are billed in the next request's prompt
(platform.kimi.ai/docs/pricing/tools). Offline, the "search" picks pages from :data:`PAGES` by
keyword, and the search id names them, so the next request can find them again with no state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PAGES", "Page", "pages_for_id", "search", "search_id", "search_tokens"]


@dataclass(frozen=True)
class Page:
    """One page the offline search can find."""

    slug: str
    title: str
    url: str
    keywords: tuple[str, ...]
    en: str
    zh: str


PAGES: dict[str, Page] = {p.slug: p for p in (
    Page("sse", "Server-sent events",
         "https://html.spec.whatwg.org/multipage/server-sent-events.html",
         ("sse", "server-sent", "event stream", "event-stream", "事件流"),
         "Server-sent events push text lines over one long HTTP response; each event ends "
         "with a blank line.",
         "服务器发送事件通过一个长时间的 HTTP 响应推送文本行；每个事件以空行结束。"),
    Page("kimi", "Kimi API tool calls", "https://platform.moonshot.ai/docs/guide/use-web-search",
         ("kimi", "moonshot", "web search", "月之暗面", "联网"),
         "Kimi can call tools; its built-in $web_search runs on Moonshot's side and is billed "
         "per call plus the tokens of what it found.",
         "Kimi 可以调用工具；内置的 $web_search 在 Moonshot 一侧运行，"
         "按次计费，另加搜索内容的 Token。"),
    Page("derivative", "Derivative", "https://en.wikipedia.org/wiki/Derivative",
         ("derivative", "differentiate", "calculus", "导数", "求导"),
         "The derivative of x^n is n x^(n-1); it measures how fast a function changes.",
         "x^n 的导数是 n x^(n-1)；导数衡量函数变化的快慢。"),
    Page("pi", "Pi", "https://en.wikipedia.org/wiki/Pi",
         ("pi", "π", "circle", "圆周率"),
         "Pi is the ratio of a circle's circumference to its diameter, about 3.14159.",
         "圆周率是圆的周长与直径之比，约为 3.14159。"),
)}

_ID = re.compile(r"^offline-search:([a-z0-9,]+)$")


def search(question: str) -> list[Page]:
    """Return the pages whose keywords occur in the question (the first page if none do)."""
    low = question.lower()
    found = [p for p in PAGES.values()
             if any(re.search(rf"(?<![a-z]){re.escape(k)}(?![a-z])", low) for k in p.keywords)]
    return found or [next(iter(PAGES.values()))]


def search_id(pages: list[Page]) -> str:
    """Return the search id that names these pages."""
    return "offline-search:" + ",".join(p.slug for p in pages)


def pages_for_id(ident: object) -> list[Page]:
    """Return the pages a search id names (none for an id this provider did not make)."""
    match = _ID.match(ident) if isinstance(ident, str) else None
    if match is None:
        return []
    return [PAGES[s] for s in match.group(1).split(",") if s in PAGES]


def search_tokens(pages: list[Page], count: Callable[[list[dict]], int]) -> int:
    """Return what the pages' text costs in tokens, by the offline rule ``count``."""
    return sum(count([{"content": p.title + "\n" + p.en}]) for p in pages)
