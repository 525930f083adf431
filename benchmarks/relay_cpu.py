"""The relay's CPU per request and per chunk, the two figures that compare request paths.

Starts the fast fake provider and our relay (``python -m helpers.relay``, default settings, run
from ``--tree``: this checkout, or another one to compare with) and drives the SSE route with
benchmarks/loadgen.py (every answer checked), counting the relay's user + system CPU time
around each run:

- **admission:** one-chunk answers at c = 10, CPU per request (what validation, the provider
  request and the response's set-up cost);
- **per chunk:** 200-chunk answers flat out at c = 100, CPU per chunk (admission included,
  spread over the chunks, as ``make bench`` counts it).

Each run starts fresh processes; the result is the median of ``--runs`` runs:

    .venv/bin/python benchmarks/relay_cpu.py [--runs 3] [--tree /path/to/checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_relay  # noqa: E402
import fake_provider  # noqa: E402
import loadgen  # noqa: E402

ROUTE = "/api/chat/stream"


def relay_cpu(tree: Path, chunks: int, c: int, requests: int) -> float:
    """The relay's CPU seconds for ``requests`` answers of ``chunks`` chunks, ``c`` at a time."""
    expected = fake_provider.answer_text(chunks)
    with bench_relay.process("benchmarks/fake_provider.py", "--chunks", str(chunks),
                             "--delay-ms", "0") as (up_url, _), \
            bench_relay.process(*bench_relay.relay_cmd(up_url), cwd=tree) as (url, pid):
        warm = asyncio.run(loadgen.run(url, ROUTE, bench_relay.RELAY_BODY, "sse", expected,
                                       concurrency=c, requests=max(c, 50), timeout=120))
        before = bench_relay.cpu_seconds(pid)
        report = asyncio.run(loadgen.run(url, ROUTE, bench_relay.RELAY_BODY, "sse", expected,
                                         concurrency=c, requests=requests, timeout=120))
        used = bench_relay.cpu_seconds(pid) - before
    if warm.errors or report.errors:
        raise SystemExit(f"wrong answers: {report.first_error() or warm.first_error()}")
    return used


def main() -> int:
    """Measure admission and CPU per chunk ``--runs`` times; print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=bench_relay.ROOT,
                        help="the checkout whose helpers.relay to run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--admission-requests", type=int, default=2000)
    parser.add_argument("--stream-requests", type=int, default=300)
    args = parser.parse_args()
    bench_relay.raise_open_file_limit()
    admission, per_chunk = [], []
    for i in range(args.runs):
        admission.append(relay_cpu(args.tree, 1, 10, args.admission_requests)
                         / args.admission_requests * 1e3)
        per_chunk.append(relay_cpu(args.tree, 200, 100, args.stream_requests)
                         / (args.stream_requests * 200) * 1e6)
        print(f"run {i + 1}: admission {admission[-1]:.3f} ms per request, "
              f"{per_chunk[-1]:.2f} µs per chunk", flush=True)
    print(f"median of {args.runs}: admission {statistics.median(admission):.3f} ms per request, "
          f"{statistics.median(per_chunk):.2f} µs per chunk ({args.tree})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
