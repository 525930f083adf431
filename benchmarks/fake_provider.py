"""A fake provider for relay benchmarks: Moonshot-format SSE from pre-encoded bytes, fast.

Why not the offline provider? It builds every chunk with json.dumps inside Starlette, which
costs more CPU per chunk than the relays we want to measure; on 2 shared cores that would hide
the relay's own cost. This server does as little as possible per chunk (one ``transport.write``
of bytes prepared at start-up), so the floor, "the client calls the upstream directly", is
close to the wire. Paced (``--delay-ms``), each stream's events go out on a fixed schedule,
one every ``delay`` from the request, as a model generating at a steady rate would send them.

The answer mixes ASCII, CJK, an emoji, a quote, a backslash and a newline, so that a relay that
gets escaping or UTF-8 boundaries wrong fails the byte-for-byte check.

Run: ``python benchmarks/fake_provider.py --port 0 --chunks 200 --delay-ms 0`` (prints its URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket

PIECES = ["数学", " is", " fun", " 🙂", ' "quoted"', " back\\slash", "\n", " é", "。", " x²"]


def answer_pieces(n: int) -> list[str]:
    """Return the n pieces of the benchmark answer (deterministic)."""
    return [PIECES[i % len(PIECES)] for i in range(n)]


def answer_text(n: int) -> str:
    """Return the full benchmark answer of n pieces."""
    return "".join(answer_pieces(n))


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def encode_stream(n: int, model: str = "moonshot-v1-8k") -> list[bytes]:
    """Return the HTTP chunked-encoded SSE events of a Moonshot-format stream of n pieces."""
    def event(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
        choice: dict = {"index": 0, "delta": delta, "finish_reason": finish}
        if usage:
            choice["usage"] = usage
        body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [choice]}
        return b"data: " + json.dumps(body, ensure_ascii=False,
                                      separators=(",", ":")).encode() + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": p}) for p in answer_pieces(n)]
    usage = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": n + 10}
    events.append(event({}, "stop", usage))
    events.append(b"data: [DONE]\n\n")
    return [_chunked(e) for e in events] + [b"0\r\n\r\n"]


HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
MODELS = (b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 67\r\n\r\n'
          b'{"object":"list","data":[{"id":"moonshot-v1-8k","object":"model"}]}')


class _Conn(asyncio.Protocol):
    def __init__(self, events: list[bytes], delay: float) -> None:
        self.events, self.delay = events, delay
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.busy:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if len(self.buf) < end + 4 + length:
            return
        del self.buf[: end + 4 + length]
        self.close_after = b"connection: close" in head
        if head.startswith(b"get /v1/models"):
            self.transport.write(MODELS)
            self._next()
            return
        self.busy = True
        if self.delay:
            asyncio.ensure_future(self._paced())
        else:
            self.transport.write(HEAD)
            for e in self.events:
                self.transport.write(e)
            self._done()

    def _done(self) -> None:
        self.busy = False
        if self.close_after:
            self.transport.close()
        else:
            self._next()

    async def _paced(self) -> None:
        # Event i goes out at start + i * delay, on a fixed schedule: sleeping ``delay`` after
        # each write drifts by the loop's timer rounding (epoll waits whole milliseconds), and
        # the drift depended on how the streams' timers happened to line up, so a target that
        # spread its requests out got a slower provider (up to 0.4 ms a chunk, +80 ms a stream).
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.transport.write(HEAD)
        for i, e in enumerate(self.events, 1):
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(e)
            await asyncio.sleep(max(0.0, start + i * self.delay - loop.time()))
        if self.transport is not None:
            self._done()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(sock: socket.socket, chunks: int, delay_ms: float) -> None:
    """Serve on a bound socket until cancelled."""
    events = encode_stream(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Conn(events, delay_ms / 1000), sock=sock,
                                      backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """Run the fast upstream from the shell; print its base URL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)  # listen before announcing the URL, or an early client is refused
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    asyncio.run(serve(sock, args.chunks, args.delay_ms))


if __name__ == "__main__":
    main()
