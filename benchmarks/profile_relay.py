"""Profile the relay's hot path with py-spy: where its CPU goes, per function and per file.

Starts the fast fake provider and our relay (``python -m helpers.relay``, default settings)
under ``py-spy record``, drives one route at one load level with benchmarks/loadgen.py (every
answer checked), then prints the top functions by own time and by inclusive time, and the
share of each library. Small by default, so it can run on a busy machine:

    .venv/bin/python benchmarks/profile_relay.py --c 10 --requests 300 [--route raw]
        [--chunks 200] [--delay-ms 0] [--out /tmp/relay.collapsed]

The provider and the load generator run niced (py-spy samples wall time, and a relay
preempted by the process its write woke would charge that write's line). py-spy attaches to
the running relay after a warm-up (so start-up is not in the profile); it
needs permission to read another process's memory (ptrace). The collapsed stacks it writes
(``--out``) feed any flame-graph tool.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_relay  # noqa: E402
import fake_provider  # noqa: E402
import loadgen  # noqa: E402

ROUTES = {"sse": "/api/chat/stream", "raw": "/chatbot/llm/chatstream"}
#: file -> library, for the per-library shares
LIBRARIES = [("helpers/", "helpers (ours)"), ("starlette/", "starlette"), ("fastapi/", "fastapi"),
             ("sse_starlette/", "sse-starlette"), ("uvicorn/", "uvicorn"),
             ("openai/", "openai SDK"), ("httpx", "httpx"), ("aiohttp/", "aiohttp"),
             ("anyio/", "anyio"), ("pydantic", "pydantic"), ("asyncio/", "asyncio"),
             ("json/", "json")]


def library(frame: str) -> str:
    """The library a py-spy frame (``function (file:line)``) belongs to."""
    for marker, name in LIBRARIES:
        if marker in frame:
            return name
    return "other"


def summarise(collapsed: Path, top: int) -> str:
    """Own and inclusive time per function, and own time per library, from collapsed stacks.

    Only the event loop's thread counts, and only while Python code runs there.
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    libs: collections.Counter[str] = collections.Counter()
    total = loop_own = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        loop = [i for i, f in enumerate(frames) if f.startswith("Runner.run ")]
        if not loop:  # another thread (the CLI's main thread, thread pools): waiting
            continue
        if loop[0] == len(frames) - 1:  # in the event loop's own C code: I/O, or idle
            loop_own += n
            continue
        total += n
        own[frames[-1]] += n
        libs[library(frames[-1])] += n
        for f in set(frames):
            inclusive[f] += n
    out = [f"{total} samples of the event loop's thread running Python code (shares below); "
           f"{loop_own} more in the loop's own C code (socket I/O, or waiting: py-spy cannot "
           "tell them apart here)"]
    out += ["", "own time by library:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in libs.most_common()]
    out += ["", "own time by function:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive time by function:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> int:
    """Profile one route at one load level; print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=sorted(ROUTES), default="sse")
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("/tmp/relay.collapsed"))
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
        "py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed (it is in the test extras)")
    bench_relay.raise_open_file_limit()
    expected = fake_provider.answer_text(args.chunks)
    kind = args.route
    with bench_relay.process("benchmarks/fake_provider.py", "--chunks", str(args.chunks),
                             "--delay-ms", str(args.delay_ms)) as (up_url, up_pid), \
            bench_relay.process(*bench_relay.relay_cmd(up_url)) as (url, relay_pid):
        # warm up first (imports, pools), then attach: the profile is the serving, not start-up
        asyncio.run(loadgen.run(url, ROUTES[kind], bench_relay.RELAY_BODY, kind, expected,
                                concurrency=1, requests=5, timeout=60))
        spy = subprocess.Popen([py_spy, "record", "--pid", str(relay_pid), "--format", "raw",
                                "--rate", str(args.rate), "--output", str(args.out),
                                ], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(1)  # py-spy attaches
        # py-spy samples wall time: the relay must not be preempted by the processes its
        # writes wake up, or a write's line gets their time. Everyone else runs niced.
        os.setpriority(os.PRIO_PROCESS, up_pid, 19)
        os.nice(19)
        try:
            report = asyncio.run(loadgen.run(url, ROUTES[kind], bench_relay.RELAY_BODY, kind,
                                             expected, concurrency=args.c,
                                             requests=args.requests, timeout=120))
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            _, errors = spy.communicate(timeout=60)
    if not args.out.exists():
        raise SystemExit(f"py-spy wrote no profile: {errors.strip()[-500:]}")
    print(f"{args.route}, c = {args.c}, {args.requests} requests of {args.chunks} chunks: "
          f"p50 total {report.p50('total') * 1000:.1f} ms, errors {report.errors}")
    print(summarise(args.out, args.top))
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
