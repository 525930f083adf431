"""SSE framing on its own: the Python encoder, and the page's JavaScript parser (under node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import need_system_part
from httpx_sse import EventSource

from helpers.streams.sse import encode_comment, encode_event

ROOT = Path(__file__).resolve().parents[1]


def decode(raw: bytes) -> list[tuple[str, str]]:
    """Parse with httpx-sse (an independent implementation), through its public EventSource."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    return [(event.event, event.data) for event in EventSource(response).iter_sse()]


def test_named_event_with_compact_json_data_line() -> None:
    assert encode_event("usage", {"total_tokens": 3}) == (
        b'event: usage\ndata: {"total_tokens":3}\n\n')


@pytest.mark.parametrize("content", ["line one\nline two", "a\r\nb\rc", "\n\n", "data: x\n\n"],
                         ids=["LF", "CR-CRLF", "blank-lines", "looks-like-a-field"])
def test_newlines_in_text_stay_inside_one_data_line(content: str) -> None:
    raw = encode_event("delta", {"content": content})
    assert raw.count(b"\n") == 3  # event line, data line, blank line
    assert decode(raw) == [("delta", json.dumps({"content": content}, ensure_ascii=False,
                                                 separators=(",", ":")))]
    assert json.loads(decode(raw)[0][1]) == {"content": content}


def test_unicode_is_sent_as_utf8_not_escaped() -> None:
    raw = encode_event("delta", {"content": "勾股定理"})
    assert "勾股定理".encode() in raw
    assert b"\\u" not in raw


def test_event_names_cannot_inject_lines() -> None:
    with pytest.raises(ValueError, match="simple word"):
        encode_event("delta\ndata: injected", {})
    with pytest.raises(ValueError):
        encode_event("", {})


def test_data_must_be_json_serialisable_without_nan() -> None:
    with pytest.raises(ValueError):
        encode_event("usage", {"x": float("nan")})


def test_comment_is_ignored_by_a_parser() -> None:
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    assert decode(encode_comment("keep-alive") + encode_event("done", {"finish_reason": "stop"})
                  ) == [("done", '{"finish_reason":"stop"}')]


def test_page_parser_node_suite() -> None:
    """The page's parser (helpers/static/sse.js), tested in node (tests/js/sse.test.js)."""
    node = shutil.which("node")
    need_system_part(bool(node), "node (for the page's JavaScript tests)")
    result = subprocess.run([str(node), "--test", str(ROOT / "tests" / "js")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout


def test_fast_delta_path_gives_the_same_bytes_as_the_general_encoder() -> None:
    """encode_event builds {"content": str} directly; it must match the general path."""
    import json as _json
    import random

    from sse_starlette import ServerSentEvent

    from helpers.streams.sse import encode_event as encode

    def general(event: str, data: dict) -> bytes:
        payload = _json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return ServerSentEvent(payload, event=event, sep="\n").encode()

    alphabet = ["a", "\n", "\r", "\u2028", "\u2029", "数", "🙂", '"', "\\", "\x00", "\t", " ",
                "é", "\ufeff", "\n\n", "data: x"]
    rng = random.Random(7)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for text in texts:
        for event in ("delta", "reasoning"):
            assert encode(event, {"content": text}) == general(event, {"content": text})
    # every other event of the relay (built directly too) and any other name (sse-starlette)
    for i, text in enumerate(texts[:500]):
        for event, data in [("usage", {"prompt_tokens": i, "completion_tokens": 2, "cost": {
                                "usd": i / 7, "label": text}}),
                            ("done", {"finish_reason": text}),
                            ("error", {"type": text, "message": text, "status": None}),
                            ("delta", {"content": text, "extra": [text, i]}),
                            ("tool_call", {"part": i, "name": text})]:
            assert encode(event, data) == general(event, data)
