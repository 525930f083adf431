"""The relay's one provider request (``upstream_batches``: the SDK's ``client.post``) sends what
the SDK sends and fails the way the SDK fails: its headers, its exceptions, its retries.

A small scripted upstream (raw asyncio, 127.0.0.1) records every request it gets, with the time
it came, and answers each from a script: a status with a body and headers, a short stream, or
nothing at all (a provider that hangs). The SDK's typed call, ``chat.completions.create``, is
the reference for the headers.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from typing import Any

import openai
import pytest

from helpers.errors import describe_failure
from helpers.relay.upstream import relay_client, upstream_batches
from helpers.settings import Config

MESSAGES = [{"role": "user", "content": "Grüße, 勾股定理?"}]
CHUNK = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
         '[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}')
FIRST = ("data: " + CHUNK % ("a² + b² = c²", "null") + "\n\n").encode()
STREAM = FIRST + ("data: " + CHUNK % ("", '"stop"') + "\n\n" "data: [DONE]\n\n").encode()
TEXT = "a² + b² = c²"
#: Never answer: a provider that takes the request and says nothing.
HANG = (0, {}, b"")


class Upstream:
    """Answer each request with the next step of ``script`` (the last one repeats)."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = script
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.times: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *rest = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (h.partition(":") for h in rest if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.seen.append((line, headers, body))
                self.times.append(time.monotonic())
                status, extra, content = self.script[min(len(self.seen), len(self.script)) - 1]
                if not status:
                    await reader.read()  # until the client gives up and hangs up
                    return
                fields = {"content-type": "text/event-stream" if status == 200
                          else "application/json", "content-length": str(len(content)),
                          **extra}
                out = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in fields.items())]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + content)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def error_of(exc: openai.APIError) -> tuple[str, int | None, Any]:
    return type(exc).__name__, getattr(exc, "status_code", None), exc.body


async def relay_answer(url: str, *, max_retries: int = 2, read_timeout: float = 10
                       ) -> dict[str, Any]:
    """Run one request through the relay's reader: the text, and the SDK's error if any."""
    client = relay_client(Config("openai", url, "m", "sk-request-test"),
                          read_timeout=read_timeout).with_options(max_retries=max_retries)
    result: dict[str, Any] = {"text": "", "error": None, "failure": None}
    try:
        async for batch in upstream_batches(client, "m", MESSAGES):
            result["text"] += "".join(d["content"] for n, d in batch if n == "delta")
    except openai.APIError as exc:
        result["error"] = error_of(exc)
        failure = describe_failure(exc, read_timeout=read_timeout)
        result["failure"] = failure.status, failure.type
    finally:
        await client.close()
    return result


def run(script: list, **options: Any) -> tuple[dict[str, Any], Upstream]:
    async def go() -> tuple[dict[str, Any], Upstream]:
        upstream = Upstream(script)
        async with upstream as url:
            return await relay_answer(url, **options), upstream
    return asyncio.run(go())


def test_the_request_is_compact_json_with_the_sdks_own_headers():
    async def both() -> tuple[list, list]:
        relay, sdk = Upstream([(200, {}, STREAM)]), Upstream([(200, {}, STREAM)])
        async with relay as url:
            assert (await relay_answer(url))["text"] == TEXT
        async with sdk as url:  # the reference: the SDK's typed call, same client settings
            client = relay_client(Config("openai", url, "m", "sk-request-test"),
                                  read_timeout=10)
            stream = await client.chat.completions.create(
                model="m", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True})
            async for _ in stream:
                pass
            await client.close()
        return relay.seen, sdk.seen

    ((line, headers, body),), ((sdk_line, sdk_headers, sdk_body),) = asyncio.run(both())
    assert line == sdk_line == "POST /v1/chat/completions HTTP/1.1"
    sent = json.loads(body)
    assert sent == json.loads(sdk_body) == {"model": "m", "messages": MESSAGES, "stream": True,
                                            "stream_options": {"include_usage": True}}
    assert body == json.dumps(sent, ensure_ascii=False, separators=(",", ":")).encode()
    assert "Grüße, 勾股定理".encode() in body  # UTF-8, not \u escapes
    assert headers["authorization"] == "Bearer sk-request-test"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"AsyncOpenAI/Python {openai.__version__}"
    assert headers["x-stainless-retry-count"] == "0"
    assert headers["x-stainless-read-timeout"] == "10"
    own = {"host", "content-length"}  # two upstreams on two ports; the bodies' key order
    assert {k: v for k, v in headers.items() if k not in own} == \
        {k: v for k, v in sdk_headers.items() if k not in own}


@pytest.mark.parametrize("status, error", [(401, "AuthenticationError"),
                                           (400, "BadRequestError"),
                                           (404, "NotFoundError")])
def test_an_error_the_sdk_does_not_retry_is_the_sdks_exception_after_one_request(status, error):
    body = json.dumps({"error": {"message": "no", "type": "x"}}).encode()
    result, upstream = run([(status, {}, body)])
    assert result["error"] == (error, status, {"message": "no", "type": "x"})
    assert len(upstream.seen) == 1


def test_a_compressed_error_body_is_decoded_once():
    body = json.dumps({"error": {"message": "no key", "type": "auth"}}).encode()
    result, upstream = run([(401, {"content-encoding": "gzip"}, gzip.compress(body))])
    assert result["error"] == ("AuthenticationError", 401, {"message": "no key", "type": "auth"})
    assert len(upstream.seen) == 1


def test_a_final_3xx_is_an_error_with_its_body():
    result, upstream = run([(300, {}, b"<html>choose</html>")])  # no Location: nothing to follow
    assert result["error"] == ("APIStatusError", 300, "<html>choose</html>")
    assert result["failure"][0] == 502
    assert len(upstream.seen) == 1


def test_a_429_is_retried_as_the_sdk_retries_it_and_counted_in_its_header():
    busy = (429, {"retry-after-ms": "10"}, b'{"error": {"message": "slow down"}}')
    result, upstream = run([busy, busy, (200, {}, STREAM)])
    assert result == {"text": TEXT, "error": None, "failure": None}
    assert [h["x-stainless-retry-count"] for _, h, _ in upstream.seen] == ["0", "1", "2"]
    assert len({body for _, _, body in upstream.seen}) == 1  # the same body each time
    result, upstream = run([busy])  # it never gives way: 1 + max_retries attempts
    assert result["error"] == ("RateLimitError", 429, {"message": "slow down"})
    assert result["failure"][0] == 429
    assert len(upstream.seen) == 3
    result, upstream = run([busy], max_retries=0)
    assert result["error"][0] == "RateLimitError" and len(upstream.seen) == 1


def test_a_5xx_is_retried_and_an_upstream_that_says_do_not_retry_is_not():
    down = (503, {"retry-after-ms": "10"}, b'{"error": {"message": "overloaded"}}')
    result, upstream = run([down, (200, {}, STREAM)])
    assert result["text"] == TEXT and len(upstream.seen) == 2
    result, upstream = run([(500, {"retry-after-ms": "10"}, b'{"error": {"message": "x"}}')])
    assert result["error"] == ("InternalServerError", 500, {"message": "x"})
    assert len(upstream.seen) == 3
    result, upstream = run([(429, {"x-should-retry": "false"}, b'{"error": {"message": "no"}}')])
    assert result["error"][0] == "RateLimitError" and len(upstream.seen) == 1


def test_retry_after_is_waited_for():
    busy = (429, {"retry-after": "1"}, b'{"error": {"message": "slow down"}}')
    result, upstream = run([busy, (200, {}, STREAM)], max_retries=1)
    assert result["text"] == TEXT
    first, second = upstream.times
    # without Retry-After the SDK's first back-off is at most 0.5 s; with it, the provider's 1 s
    assert second - first >= 1.0


def test_no_provider_listening_is_a_connection_error_that_says_so():
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = asyncio.run(relay_answer(f"http://127.0.0.1:{port}/v1", max_retries=0))
    # the SDK's aiohttp transport calls it a connect timeout; helpers.errors tells them apart
    assert result["error"][0] == "APITimeoutError"
    assert result["failure"] == (502, "upstream_connection_error")


def test_a_provider_that_never_answers_is_a_timeout_after_the_sdks_retries():
    result, upstream = run([HANG], max_retries=1, read_timeout=0.5)
    assert result["error"][0] == "APITimeoutError"
    assert result["failure"] == (504, "upstream_timeout")
    assert len(upstream.seen) == 2  # one retry, as the SDK retries a timeout


def test_a_stream_that_stalls_after_its_first_text_is_a_timeout_with_the_text_kept():
    stalled = (200, {"content-length": str(len(STREAM) + 1000)}, FIRST)
    result, upstream = run([stalled], read_timeout=0.5)
    assert result["text"] == TEXT
    assert result["error"][0] == "APITimeoutError"
    assert result["failure"] == (504, "upstream_timeout")
    assert len(upstream.seen) == 1  # a stream once begun is not sent again


def test_the_proxy_the_environment_names_is_used(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def through_proxy() -> tuple[dict[str, Any], Upstream]:
        proxy = Upstream([(200, {}, STREAM)])
        async with proxy as url:
            monkeypatch.setenv("HTTP_PROXY", url.removesuffix("/v1"))
            return await relay_answer("http://api.example.test/v1"), proxy

    result, proxy = asyncio.run(through_proxy())
    assert result["text"] == TEXT
    (line, headers, _), = proxy.seen
    assert line == "POST http://api.example.test/v1/chat/completions HTTP/1.1"
    assert headers["host"] == "api.example.test"
