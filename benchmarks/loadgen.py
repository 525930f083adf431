"""A bounded, loopback-only load generator that checks every answer byte for byte.

It speaks HTTP/1.1 over raw asyncio streams (one connection per request, ``Connection:
close``), so the client costs little CPU per chunk and its cost is the same for every target.
For each request it records the time to the first byte of answer text and the total time.
When the whole run is over it de-chunks each body, extracts the text the way a real client of
that route would, and compares it with the expected answer: checking during the run would
stall the loop that is timing the other streams, longer for routes whose text takes more
parsing (JSON chunks, SSE events) than for raw text.

Route kinds:
- ``upstream``: OpenAI/Moonshot chunks (``data: {json}``), text from ``choices[0].delta.content``;
- ``sse``: our relay's named events, text from ``event: delta`` data;
- ``raw``: the blog's contract, the body is the text;
- ``page``: what the chat page sends and reads (helpers/static/chat.js, resume.js): a
  resumable answer, SSE events with ids. With ``drop_every`` = k, every k-th request drops its
  connection mid-answer (after its first delta event) and reconnects with ``GET
  /api/chat/resume`` and ``Last-Event-ID`` = the last whole event's id, as resume.js does; the
  joined answer must be byte-exact and end in ``done``. Its times run from the first request
  to the resumed answer's last byte.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from dataclasses import dataclass, field

#: What the first answer text looks like on each route. Upstream: a non-empty content string
#: (the role chunk's ``"content":""`` is not an answer).
FIRST_MARKERS = {"upstream": re.compile(rb'"content":"[^"]'), "sse": re.compile(rb"event: delta"),
                 "page": re.compile(rb"event: delta"), "raw": None}
RESUME_PATH = "/api/chat/resume"
_ID = re.compile(rb"(?m)^id: (\S+)$")


@dataclass
class Sample:
    """One request's timings and correctness."""

    first: float | None
    total: float
    ok: bool
    error: str = ""
    response: bytes = b""  # the raw response, until checked


@dataclass
class Report:
    """All samples of one scenario, with summary statistics."""

    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0

    @property
    def errors(self) -> int:
        """Number of failed or wrong answers."""
        return sum(not s.ok for s in self.samples)

    def p50(self, what: str = "total") -> float:
        """Median of total or first-content times, over the correct samples."""
        values = [getattr(s, what) for s in self.samples if s.ok and getattr(s, what) is not None]
        return statistics.median(values) if values else float("nan")

    def first_error(self) -> str:
        """The first error message, if any."""
        return next((s.error for s in self.samples if not s.ok), "")


def dechunk(body: bytes) -> bytes:
    """Decode an HTTP/1.1 chunked body."""
    out, i = bytearray(), 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[j + 2 : j + 2 + size]
        i = j + 2 + size + 2


def dechunk_partial(body: bytes) -> bytes:
    """Decode the whole chunks of a chunked body that may be cut anywhere."""
    out, i = bytearray(), 0
    while (j := body.find(b"\r\n", i)) >= 0:
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0 or j + 2 + size + 2 > len(body):
            break
        out += body[j + 2 : j + 2 + size]
        i = j + 2 + size + 2
    return bytes(out)


def cut_point(body: bytes) -> tuple[bytes, bytes] | None:
    """Where a reader that drops now keeps what it has: (the whole events up to and including
    the first delta, the last id among them), or None if no delta event is complete yet."""
    delta = body.find(b"event: delta")
    end = body.find(b"\n\n", delta) if delta >= 0 else -1
    if end < 0:
        return None
    kept = body[: end + 2]
    ids = _ID.findall(kept)
    return (kept, ids[-1]) if ids else None


def extract_text(kind: str, body: bytes) -> str:
    """Return the answer text from a route's body, as a client of that route would read it."""
    if kind == "raw":
        return body.decode("utf-8")
    text = body.decode("utf-8").replace("\r\n", "\n")
    parts: list[str] = []
    for block in text.split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data:
            continue
        payload = "\n".join(data)
        if kind == "upstream":
            if payload == "[DONE]":
                continue
            choices = json.loads(payload).get("choices") or []
            if choices:
                parts.append(choices[0]["delta"].get("content") or "")
        elif event == "delta":
            parts.append(json.loads(payload)["content"])
    return "".join(parts)


async def one(host: str, port: int, path: str, body: bytes, kind: str, expected: str,
              timeout: float, token: str = "bench-key", drop: bool = False) -> Sample:
    """Send one request; time it; check its answer (``drop``: cut it, resume it)."""
    marker = FIRST_MARKERS[kind]
    start = time.perf_counter()
    first: float | None = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     b"Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (path.encode(), host.encode(), port, token.encode(), len(body), body))
        buf = bytearray()
        head_end = -1
        async with asyncio.timeout(timeout):
            while data := await reader.read(65536):
                buf += data
                if head_end < 0:
                    head_end = buf.find(b"\r\n\r\n")
                if drop and head_end >= 0 and (cut := cut_point(
                        dechunk_partial(bytes(buf[head_end + 4 :])))) is not None:
                    writer.close()  # the page's connection drops mid-answer
                    if first is None:
                        first = time.perf_counter() - start
                    rest = await resumed(host, port, cut[1], token)
                    return Sample(first, time.perf_counter() - start, True,
                                  response=b"HTTP/1.1 200 OK\r\n\r\n" + cut[0] + rest)
                if first is None and head_end >= 0:
                    # the first body bytes that carry answer text
                    start_scan = max(head_end + 4, len(buf) - len(data) - 16)
                    if (marker is None and len(buf) > head_end + 8) or (
                            marker is not None and marker.search(buf, start_scan)):
                        first = time.perf_counter() - start
                if buf.endswith(b"\r\n0\r\n\r\n"):
                    break  # end of a chunked body: do not wait for the server to close
        total = time.perf_counter() - start
        writer.close()
        return Sample(first, total, True, response=bytes(buf))  # checked after the run
    except Exception as exc:  # a benchmark reports failures, it does not stop on them
        return Sample(first, time.perf_counter() - start, False, f"{type(exc).__name__}: {exc}")


async def resumed(host: str, port: int, last_id: bytes, token: str) -> bytes:
    """``GET /api/chat/resume`` with ``Last-Event-ID``, as resume.js reconnects: its body."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                 b"Authorization: Bearer %s\r\nLast-Event-ID: %s\r\nConnection: close\r\n\r\n"
                 % (RESUME_PATH.encode(), host.encode(), port, token.encode(), last_id))
    buf = bytearray()
    while data := await reader.read(65536):
        buf += data
        if buf.endswith(b"\r\n0\r\n\r\n"):
            break
    writer.close()
    head_end = buf.find(b"\r\n\r\n")
    status = bytes(buf[:head_end]).split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"resume: HTTP {status.decode()}: {bytes(buf[head_end:200])!r}")
    return dechunk(bytes(buf[head_end + 4 :]))


def check(sample: Sample, kind: str, expected: str) -> None:
    """Check a sample's answer byte for byte (after the run: parsing 200 JSON chunks on the
    load generator's loop would delay the other streams it is timing); forget the bytes."""
    data, sample.response = sample.response, b""
    if not sample.ok:
        return
    try:
        head_end = data.find(b"\r\n\r\n")
        head, raw = data[:head_end], data[head_end + 4 :]
        status = head.split(b" ", 2)[1]
        if status != b"200":
            sample.ok, sample.error = False, f"HTTP {status.decode()}: {raw[:200]!r}"
            return
        if b"transfer-encoding: chunked" in head.lower():
            raw = dechunk(raw)
        text = extract_text(kind, raw)
        if text != expected:
            sample.ok, sample.error = False, f"text differs ({len(text)} vs {len(expected)})"
        elif kind == "page" and b"\nevent: done\n" not in raw.rstrip(b"\n").rpartition(
                b"\n\n")[2] + b"\n":
            sample.ok, sample.error = False, f"no done at the end: {raw[-120:]!r}"
    except Exception as exc:
        sample.ok, sample.error = False, f"{type(exc).__name__}: {exc}"


async def run(url: str, path: str, body: dict, kind: str, expected: str, *, concurrency: int,
              requests: int, timeout: float = 60.0, token: str = "bench-key",
              drop_every: int = 0) -> Report:
    """Run ``requests`` requests, ``concurrency`` at a time, against ``url + path``; with
    ``drop_every`` = k, requests k/2, k/2 + k, ... drop mid-answer and resume."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    payload = json.dumps(body).encode()
    sem = asyncio.Semaphore(concurrency)
    report = Report()

    async def limited(i: int) -> None:
        drop = drop_every > 0 and i % drop_every == drop_every // 2
        async with sem:
            report.samples.append(await one(host, int(port), path, payload, kind, expected,
                                            timeout, token, drop))

    start = time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(requests)))
    report.wall = time.perf_counter() - start
    for sample in report.samples:
        check(sample, kind, expected)
    return report
