"""What the offline model says, and the pieces it streams.

The offline provider must be useful in a lesson, so it answers the lessons' questions with real
(short) answers from a small repertoire: the blog's persona is a math teacher's assistant, so
the answers carry LaTeX. A question with Chinese characters is answered in Chinese. Anything
else gets a transparent fallback that says it is the offline model. A question about a file
("worksheet", "file", "document", ...) while a system message holds a file's text is answered by
quoting the line of that text that shares the most words with the question (lesson 9).

Tokens are counted by :mod:`helpers.money.tokens` (the offline provider's own rule). Streaming
sends *pieces*: a word with its leading spaces, one punctuation mark with its leading spaces, or
one CJK character; a piece may be one token, several, or part of one.
``"".join(split_pieces(s)) == s`` always holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..money.tokens import CJK as _CJK
from ..money.tokens import count_prompt_tokens, message_text  # re-exported: older imports

__all__ = ["HOSTILE_REPLY", "Reply", "compose_reply", "count_prompt_tokens", "filler_reply",
           "has_cjk", "message_text", "split_pieces"]

_PIECE = re.compile(rf"\s*(?:[{_CJK}]|\\[A-Za-z]+|[A-Za-z0-9_']+|[^\s])|\s+", re.UNICODE)
_HAS_CJK = re.compile(f"[{_CJK}]")


def split_pieces(text: str) -> list[str]:
    """Split text into the pieces the offline model streams; they join back to the text."""
    return _PIECE.findall(text)


def has_cjk(text: str) -> bool:
    """Return True if the text contains Chinese or Japanese characters."""
    return bool(_HAS_CJK.search(text))


@dataclass(frozen=True)
class _Entry:
    keywords: tuple[str, ...]
    en: str
    zh: str


_REPERTOIRE: tuple[_Entry, ...] = (
    _Entry(  # a page's test answer: a Markdown table and all four math delimiters
        ("cheat sheet", "formula sheet", "公式表", "速查表"),
        "Derivatives to know by heart:\n\n"
        "| function | derivative |\n|---|---|\n"
        "| $x^n$ | $n x^{n-1}$ |\n| $\\sin x$ | $\\cos x$ |\n| $e^x$ | $e^x$ |\n\n"
        "The chain rule, inline: \\((f \\circ g)'(x) = f'(g(x))\\,g'(x)\\), and displayed:\n\n"
        "\\[\\frac{d}{dx} \\sin(x^2) = 2x \\cos(x^2)\\]\n\n"
        "1. Differentiate the outer function.\n2. Multiply by the inner derivative.\n\n"
        "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$",
        "必背的导数：\n\n"
        "| 函数 | 导数 |\n|---|---|\n"
        "| $x^n$ | $n x^{n-1}$ |\n| $\\sin x$ | $\\cos x$ |\n| $e^x$ | $e^x$ |\n\n"
        "链式法则（行内）：\\((f \\circ g)'(x) = f'(g(x))\\,g'(x)\\)，单独成行：\n\n"
        "\\[\\frac{d}{dx} \\sin(x^2) = 2x \\cos(x^2)\\]\n\n"
        "1. 先对外层函数求导。\n2. 再乘以内层函数的导数。\n\n"
        "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$",
    ),
    _Entry(
        ("pythagor", "勾股", "right triangle", "直角三角形"),
        "The Pythagorean theorem says that in a right triangle the square of the hypotenuse "
        "equals the sum of the squares of the other two sides:\n\n"
        "$$a^2 + b^2 = c^2$$\n\n"
        "For example, with legs $a = 3$ and $b = 4$, the hypotenuse is "
        "$c = \\sqrt{9 + 16} = 5$.",
        "勾股定理：在直角三角形中，两条直角边的平方和等于斜边的平方：\n\n"
        "$$a^2 + b^2 = c^2$$\n\n"
        "例如，直角边 $a = 3$、$b = 4$ 时，斜边 $c = \\sqrt{9 + 16} = 5$。",
    ),
    _Entry(
        ("quadratic", "求根公式", "一元二次"),
        "A quadratic equation $ax^2 + bx + c = 0$ with $a \\neq 0$ has the solutions\n\n"
        "$$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$$\n\n"
        "The discriminant $\\Delta = b^2 - 4ac$ tells you how many real roots there are: "
        "two if $\\Delta > 0$, one if $\\Delta = 0$, none if $\\Delta < 0$.",
        "一元二次方程 $ax^2 + bx + c = 0$（$a \\neq 0$）的解为\n\n"
        "$$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$$\n\n"
        "判别式 $\\Delta = b^2 - 4ac$ 决定实根的个数：$\\Delta > 0$ 时有两个，"
        "$\\Delta = 0$ 时有一个，$\\Delta < 0$ 时没有实根。",
    ),
    _Entry(
        ("derivative", "导数", "differentiat", "求导"),
        "The derivative measures how fast a function changes. By the power rule, "
        "$\\frac{d}{dx} x^n = n x^{n-1}$, so the derivative of $x^2$ is $2x$: "
        "at $x = 3$ the curve $y = x^2$ rises with slope $6$.",
        "导数衡量函数变化的快慢。由幂函数求导法则 $\\frac{d}{dx} x^n = n x^{n-1}$，"
        "$x^2$ 的导数是 $2x$：在 $x = 3$ 处，曲线 $y = x^2$ 的斜率为 $6$。",
    ),
    _Entry(
        ("prime", "质数", "素数"),
        "A prime number is a whole number greater than 1 whose only divisors are 1 and "
        "itself. The first primes are 2, 3, 5, 7, 11 and 13; 2 is the only even one.",
        "质数是大于 1、且只能被 1 和它本身整除的整数。最小的几个质数是 2、3、5、7、11、13，"
        "其中 2 是唯一的偶质数。",
    ),
    _Entry(
        ("1+1", "1 + 1", "one plus one"),
        "$1 + 1 = 2$.",
        "$1 + 1 = 2$。",
    ),
    _Entry(
        ("hello", "hi ", "你好", "您好", "who are you", "你是谁"),
        "Hello! I am the offline stand-in for Kimi, a math teacher's assistant that runs on "
        "your own machine. Ask me about the Pythagorean theorem, the quadratic formula, "
        "derivatives or prime numbers.",
        "你好！我是离线版的 Kimi 替身，一个在你自己电脑上运行的数学老师助手。"
        "可以问我勾股定理、求根公式、导数或质数。",
    ),
    _Entry(
        ("stream", "流式"),
        "Streaming sends the answer piece by piece as the model writes it, so the first words "
        "appear after a fraction of a second instead of after the whole answer is finished.",
        "流式输出会在模型生成答案的同时逐段发送，所以第一个字在不到一秒内就能出现，"
        "而不必等整段答案写完。",
    ),
)

#: The answer to a ``[hostile]`` question: raw HTML and links that would run script if a page
#: inserted model output as HTML. A page must show it as text or sanitise it (tests/test_page.py).
HOSTILE_REPLY = (
    "Here is some HTML and a few links, to test the page:\n\n"
    "<script>window.__pwned = 'script'</script>\n"
    "<img src=x onerror=\"window.__pwned = 'img'\">\n"
    "<iframe srcdoc=\"<script>parent.__pwned = 'iframe'</script>\"></iframe>\n"
    "<a href=\"javascript:window.__pwned = 'a'\">a raw link</a>\n"
    "<svg onload=\"window.__pwned = 'svg'\"></svg>\n"
    "<div style=\"position:fixed;inset:0\" onmouseover=\"window.__pwned = 'div'\">cover</div>\n\n"
    "[a Markdown link](javascript:window.__pwned='md') and [another](JaVaScRiPt:alert(1)), "
    "<javascript:alert(2)>, ![a picture](http://example.invalid/pixel.png)\n\n"
    "A formula link: $\\href{javascript:window.__pwned='katex'}{x^2}$\n\n"
    "<form action=\"http://example.invalid/\"><button>Send</button></form>"
)

_RECALL = ("what did i ask", "what did i just ask", "我刚才问", "我上一个问题")
#: A question naming one of these asks about a file whose text is in a system message.
_ABOUT_A_FILE = ("file", "worksheet", "document", "pdf", "attached", "文件", "附件")
_WORD = re.compile(r"[A-Za-z0-9]+|[\u4e00-\u9fff]")
_STOP = frozenset("a an and are as at be by do does for from how i in is it me my of on or the "
                  "this to what which with you".split())


def _from_a_file(messages: Sequence[dict], question: str) -> str | None:
    """Quote the system-message line that shares the most words with a question about a file."""
    if not any(k in question.lower() for k in _ABOUT_A_FILE):
        return None
    asked = {w for w in _WORD.findall(question.lower())
             if w not in _STOP and not any(w in k for k in _ABOUT_A_FILE)}
    lines = [line.strip() for m in messages if m.get("role") == "system"
             for line in message_text(m).splitlines() if line.strip()]
    numbered = re.compile(r"(\d+)[.)]")  # "question 3" points at the line "3. ..." first
    scored = [(len(asked & set(_WORD.findall(line.lower())))
               + (bool(m := numbered.match(line)) and m.group(1) in asked), -i, line)
              for i, line in enumerate(lines)]
    best = max(scored, default=(0, 0, ""))
    return f'The file says: "{best[2]}"' if best[0] else None


@dataclass(frozen=True)
class Reply:
    """The offline model's answer: its text, and reasoning text for reasoning models."""

    text: str
    reasoning: str = ""


def compose_reply(messages: Sequence[dict], *, reasoning: bool = False) -> Reply:
    """Answer the last user message, deterministically, in its language."""
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    question = users[-1] if users else ""
    zh = has_cjk(question)
    lowered = " " + question.lower() + " "
    text: str | None = None
    if any(k in lowered for k in _RECALL):
        if len(users) >= 2:
            text = (f"你上一个问题是：“{users[-2]}”" if zh
                    else f'Your previous question was: "{users[-2]}"')
        else:
            text = "这是你的第一个问题。" if zh else "This is your first question."
    if text is None:
        text = _from_a_file(messages, question)
    if text is None:
        for entry in _REPERTOIRE:
            if any(k in lowered for k in entry.keywords):
                text = entry.zh if zh else entry.en
                break
    if text is None:
        shown = question.strip()[:80] or "(empty)"
        text = (
            f"（离线模型）我只是离线替身，无法真正回答“{shown}”。在 .env 中填入 API key "
            "即可连接真实模型。你可以先问我勾股定理、求根公式、导数或质数。"
            if zh
            else f'(offline model) I am the offline stand-in, so I cannot really answer '
            f'"{shown}". Put an API key in .env to talk to a real model. Meanwhile, ask me '
            "about the Pythagorean theorem, the quadratic formula, derivatives or primes."
        )
    thought = ""
    if reasoning:
        thought = (
            "学生在问一个数学问题。我先回忆相关定义，再给出公式和一个小例子。"
            if zh
            else "The learner asks a math question. I will recall the definition first, "
            "then give the formula and one small worked example."
        )
    return Reply(text=text, reasoning=thought)


def filler_reply(n_pieces: int) -> str:
    """Return a deterministic text of exactly ``n_pieces`` pieces, each one token."""
    words = ("beta", "zeta", "eta", "iota", "rho", "tau", "phi", "chi")  # <= 4 letters: 1 token
    parts = [("" if i == 0 else " ") + words[i % len(words)] for i in range(n_pieces)]
    return "".join(parts)
