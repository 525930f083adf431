"""The relay's direct request (helpers/relay/direct.py) sends what the SDK sends, and hands
failures to the SDK: the same exception, the same number of attempts.

A small scripted upstream (raw asyncio, 127.0.0.1) records every request it gets and answers
each from a script: a status with a body and headers, or a short stream. Each case runs the
same request through ``upstream_batches`` with the direct path and without it (the SDK's
``client.request``), and the two must agree on the requests the upstream saw, the exception
and its body, and the answer.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import openai
import pytest

from helpers.errors import describe_failure
from helpers.relay.direct import DirectChat, _env_proxy
from helpers.relay.upstream import relay_client, upstream_batches
from helpers.settings import Config

MESSAGES = [{"role": "user", "content": "Grüße, 勾股定理?"}]
CHUNK = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
         '[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}')
STREAM = ("data: " + CHUNK % ("a² + b² = c²", "null") + "\n\n"
          "data: " + CHUNK % ("", '"stop"') + "\n\n"
          "data: [DONE]\n\n").encode()
#: headers each side writes for itself, or that differ by request
_OWN = {"host", "content-length", "x-stainless-retry-count", "x-stainless-async"}


class Upstream:
    """Answer each request with the next step of ``script`` (the last one repeats)."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = script
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *rest = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (h.partition(":") for h in rest if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.seen.append((line, headers, body))
                status, extra, content = self.script[min(len(self.seen), len(self.script)) - 1]
                kind = "text/event-stream" if status == 200 else "application/json"
                out = [f"HTTP/1.1 {status} X", f"content-type: {kind}",
                       f"content-length: {len(content)}",
                       *(f"{k}: {v}" for k, v in extra.items())]
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


async def answer(script: list, *, direct: bool, max_retries: int = 2) -> dict[str, Any]:
    """Run one request through the relay's reader; what came back and what the upstream saw."""
    upstream = Upstream(script)
    async with upstream as url:
        client = relay_client(Config("openai", url, "m", "sk-direct-test"), read_timeout=10)
        client = client.with_options(max_retries=max_retries)
        chat = DirectChat(client, read_timeout=10) if direct else None
        result: dict[str, Any] = {"text": "", "error": None}
        try:
            async for batch in upstream_batches(client, "m", MESSAGES, direct=chat):
                result["text"] += "".join(d["content"] for n, d in batch if n == "delta")
        except openai.APIError as exc:
            result["error"] = (type(exc).__name__, getattr(exc, "status_code", None), exc.body)
        finally:
            if chat is not None:
                await chat.aclose()
            await client.close()
    result["seen"] = upstream.seen
    return result


def run_both(script: list, **options: Any) -> tuple[dict, dict]:
    return (asyncio.run(answer(script, direct=True, **options)),
            asyncio.run(answer(script, direct=False, **options)))


def test_the_direct_request_is_the_sdks_request():
    direct, sdk = run_both([(200, {}, STREAM)])
    assert direct["text"] == sdk["text"] == "a² + b² = c²"
    (line, headers, body), = direct["seen"]
    (sdk_line, sdk_headers, sdk_body), = sdk["seen"]
    assert line == sdk_line == "POST /v1/chat/completions HTTP/1.1"
    assert body == sdk_body  # the same bytes, non-ASCII as UTF-8
    assert json.loads(body)["messages"] == MESSAGES
    assert headers["authorization"] == "Bearer sk-direct-test"
    assert {k: v for k, v in headers.items() if k not in _OWN} == \
        {k: v for k, v in sdk_headers.items() if k not in _OWN}


@pytest.mark.parametrize("status, error", [(401, "AuthenticationError"),
                                           (400, "BadRequestError"),
                                           (404, "NotFoundError")])
def test_an_error_the_sdk_does_not_retry_is_the_sdks_exception_after_one_request(status, error):
    body = json.dumps({"error": {"message": "no", "type": "x"}}).encode()
    direct, sdk = run_both([(status, {}, body)])
    assert direct["error"] == sdk["error"] == (error, status, {"message": "no", "type": "x"})
    assert len(direct["seen"]) == len(sdk["seen"]) == 1


def test_a_compressed_error_body_and_a_final_3xx_are_what_the_sdk_says():
    body = json.dumps({"error": {"message": "no key", "type": "auth"}}).encode()
    direct, sdk = run_both([(401, {"content-encoding": "gzip"}, gzip.compress(body))])
    assert direct["error"] == sdk["error"] == ("AuthenticationError", 401,
                                               {"message": "no key", "type": "auth"})
    direct, sdk = run_both([(300, {}, b"<html>choose</html>")])  # no Location: nothing to follow
    assert direct["error"] == sdk["error"] == ("APIStatusError", 300, "<html>choose</html>")
    assert len(direct["seen"]) == len(sdk["seen"]) == 1


def test_a_status_the_sdk_retries_is_retried_as_often_as_the_sdk_does():
    busy = (429, {"retry-after-ms": "10"}, b'{"error": {"message": "slow down"}}')
    direct, sdk = run_both([busy, busy, (200, {}, STREAM)])
    assert direct["text"] == sdk["text"] == "a² + b² = c²"
    assert len(direct["seen"]) == len(sdk["seen"]) == 3
    direct, sdk = run_both([busy])  # it never gives way: 1 + max_retries attempts
    assert direct["error"] == sdk["error"] == ("RateLimitError", 429, {"message": "slow down"})
    assert len(direct["seen"]) == len(sdk["seen"]) == 3
    direct, sdk = run_both([busy], max_retries=0)
    assert direct["error"] == sdk["error"] and len(direct["seen"]) == len(sdk["seen"]) == 1


def test_no_provider_listening_is_a_connection_error_that_says_so():
    async def refused(direct: bool) -> tuple[str, int, str]:
        client = relay_client(Config("openai", "http://127.0.0.1:9/v1", "m", "k"),
                              read_timeout=5).with_options(max_retries=0)
        chat = DirectChat(client, read_timeout=5) if direct else None
        try:
            async for _ in upstream_batches(client, "m", MESSAGES, direct=chat):
                pass
        except openai.APIError as exc:
            failure = describe_failure(exc)
            return type(exc).__name__, failure.status, failure.type
        finally:
            if chat is not None:
                await chat.aclose()
            await client.close()
        return "no error", 0, ""

    direct, sdk = asyncio.run(refused(True)), asyncio.run(refused(False))
    assert direct[0] == "APIConnectionError"
    # the SDK's aiohttp transport calls it a connect timeout; what the relay says is the same
    assert direct[1:] == sdk[1:] == (502, "upstream_connection_error")


def test_the_proxy_the_environment_names_is_used(monkeypatch):
    chat_url = DirectChat(openai.AsyncOpenAI(base_url="https://api.example.test/v1",
                                             api_key="k"), read_timeout=5).request.url
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _env_proxy(chat_url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert _env_proxy(chat_url) == "http://proxy.test:3128"
    monkeypatch.setenv("NO_PROXY", "example.test")
    assert _env_proxy(chat_url) is None
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "proxy.test:8080")  # as httpx2 reads it: any scheme, http://
    assert _env_proxy(chat_url) == "http://proxy.test:8080"
