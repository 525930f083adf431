"""Micro-benchmark the relay's incremental SSE decoder: CPU per event, the way reads arrive.

Run: ``.venv/bin/python benchmarks/bench_sse_decoder.py [module:Class]`` (a few seconds). It
decodes 10,000 typical Moonshot chunk events (about 230 bytes each) fed as a network delivers
them: one event per read (a slow model), 8 events per read, and 16 KiB reads cut anywhere
(a fast one), and prints the best of 7 runs in microseconds per event. JSON parsing is left
out: this is the decoder alone. The default decoder is ``helpers.streams.sse:SSEDecoder``; pass
another ``module:Class`` with the same ``feed(bytes)`` to compare.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENTS = 10_000
REPEATS = 7


def chunk_event(i: int) -> bytes:
    """One Moonshot-style chunk as it appears on the wire."""
    chunk = {"id": "chatcmpl-6a1b2c3d4e5f", "object": "chat.completion.chunk",
             "created": 1764300000, "model": "kimi-k2.6",
             "choices": [{"index": 0, "delta": {"content": f"word{i % 97} "},
                          "finish_reason": None}]}
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def reads(per_read: int | None) -> list[bytes]:
    """The events cut into reads: ``per_read`` events each, or 16 KiB anywhere (None)."""
    wire = [chunk_event(i) for i in range(EVENTS)]
    if per_read is not None:
        return [b"".join(wire[i:i + per_read]) for i in range(0, EVENTS, per_read)]
    data = b"".join(wire)
    return [data[i:i + 16384] for i in range(0, len(data), 16384)]


def best(decoder_class: type, pieces: list[bytes]) -> float:
    """Return the best time of REPEATS runs, in µs per event."""
    times = []
    for _ in range(REPEATS):
        decoder = decoder_class()
        start = time.perf_counter()
        count = 0
        for piece in pieces:
            for _ in decoder.feed(piece):
                count += 1
        times.append(time.perf_counter() - start)
        assert count == EVENTS, count
    return min(times) / EVENTS * 1e6


def main(argv: list[str]) -> None:
    """Print µs per event for each way of cutting reads."""
    target = argv[0] if argv else "helpers.streams.sse:SSEDecoder"
    module, _, name = target.partition(":")
    decoder_class = getattr(importlib.import_module(module), name)
    print(f"{target}: µs per event (best of {REPEATS}, {EVENTS} events)")
    for label, per_read in (("1 event per read", 1), ("8 events per read", 8),
                            ("16 KiB reads", None)):
        print(f"  {label:18} {best(decoder_class, reads(per_read)):6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
