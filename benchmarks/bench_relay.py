"""Relay benchmark: our relay's SSE and raw routes against the floor, a naive relay and Node.

One command (``make bench``) starts everything on 127.0.0.1, each server in its own process:

- the floor: clients call the upstream directly;
- our relay's SSE route (``POST /api/chat/stream``) and raw route (``/chatbot/llm/chatstream``),
  started as ``python -m helpers.relay`` with its default settings (no token, no limits);
- a naive reference relay (FastAPI + AsyncOpenAI + ``delta.content``, benchmarks/naive_relay.py);
- the blog's design in Node (``http`` + openai-node, ``res.write`` per delta,
  benchmarks/node_relay.cjs; openai-node from package.json, ``npm ci``).

Scenarios: flat out (200 chunks, no pause) at c = 1, 10, 100 and 1000 (at 1000 also our relay
with ``--workers 2``); paced (10 ms between chunks) at c = 1, 10 and 100 arriving at once;
admission (one-chunk answers: the relay's CPU per request); held (1000 streams open at once:
the relay's peak RSS). Every answer is checked byte for byte. Figures are ratios of p50 to the
floor measured in the same run, so the machine's speed cancels out; the goals of issue 17 are
judged from them (benchmarks/bench_goals.py) and written to docs/performance.md.

``--quick`` is a small run of every scenario for development on a busy machine (prints, writes
nothing); ``--smoke`` a tiny one for ``make test`` (checks the harness, not speed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_goals  # noqa: E402
import fake_provider  # noqa: E402
import loadgen  # noqa: E402

QUESTION = "Stream me the benchmark answer."
UPSTREAM_BODY = {"model": "moonshot-v1-8k", "stream": True,
                 "messages": [{"role": "user", "content": QUESTION}]}
RELAY_BODY = {"question": QUESTION}
#: What the chat page sends (helpers/static/chat.js): a short history, always resumable; with
#: the access token header, to a relay that requires one.
PAGE_BODY = {"question": QUESTION, "resumable": True,
             "history": [{"role": "user", "content": "What is a prime number?"},
                         {"role": "assistant", "content": "A number with exactly two divisors."}]}
PAGE_TOKEN = "bench-page-token"
#: One page answer in this many drops its connection mid-answer and resumes (loadgen.py).
PAGE_DROP_EVERY = 10
PAGE = "relay page route"
#: where the openai npm package is (package.json's devDependencies; override for a try-out)
NODE_MODULES = Path(os.environ.get("OPENAI_NODE_MODULES", ROOT / "node_modules"))

#: Full run: (name, chunks, delay ms, [(c, requests), ...], targets, rounds). ``rounds`` > 1
#: repeats a level, the targets taking turns, and pools each target's samples (flat out:
#: three turns each, as the floor alone swung from 57 to 85 ms at c = 100 and our relay from
#: 1.65 to 2.47 x at c = 1000 between runs; paced c = 100: 100 clients arriving at once,
#: twice). About 4 minutes on 2 cores; the naive relay's flat-out turns are half of it.
FULL = [
    ("flat-out", 200, 0, [(1, 50), (10, 200), (100, 500)], "all", 3),
    ("flat-out", 200, 0, [(1000, 1000)], "all+workers", 3),
    ("paced", 200, 10, [(1, 2), (10, 10)], "all", 1),
    ("paced", 200, 10, [(100, 100)], "all", 2),
    ("admission", 1, 0, [(10, 1000)], "floor+sse", 1),
    ("held", 40, 50, [(1000, 1000)], "floor+sse", 1),
]
QUICK = [
    ("flat-out", 200, 0, [(1, 10), (10, 30)], "all", 1),
    ("flat-out", 200, 0, [(100, 100)], "all+workers", 1),
    ("paced", 200, 10, [(10, 10), (100, 100)], "all", 1),
    ("admission", 1, 0, [(10, 200)], "floor+sse", 1),
    ("held", 40, 50, [(100, 100)], "floor+sse", 1),
]
SMOKE = [("smoke", 20, 0, [(1, 3), (4, 8)], "all", 1)]


def raise_open_file_limit() -> int:
    """Raise this process's (and its children's) open-file soft limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextmanager
def process(*args: str, cwd: Path = ROOT, env_extra: dict[str, str] | None = None):
    """Start a server that prints its URL on its first line; yield (url, pid)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLM_PROVIDER": "",
           "NODE_PATH": str(NODE_MODULES), **(env_extra or {})}
    command = list(args) if args[0] == "node" else [sys.executable, *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=cwd, env=env)
    try:
        line = proc.stdout.readline().strip()
        found = re.search(r"http://[^\s/]+(?:/v1)?", line)
        url = found.group(0) if found else ""
        if not url:
            raise RuntimeError(f"{args[0]} did not print its URL (got {line!r})")
        yield url.removesuffix("/v1").rstrip("/"), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def family(pid: int) -> list[int]:
    """A process and all its descendants (a relay with workers is several processes)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            pids += [int(p) for p in task.read_text().split()]
        i += 1
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its descendants."""
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (with its descendants, summed), in MB."""
    total = 0
    for p in family(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def machine() -> str:
    """A one-line description of this machine."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"Node {node}, {platform.system()} {platform.release()}")


def measure(url: str, path: str, body: dict, kind: str, expected: str, c: int, n: int,
            timeout: float) -> loadgen.Report:
    """Run one load level against one target, once (turns are pooled by the caller)."""
    page = kind == "page"
    return asyncio.run(loadgen.run(url, path, body, kind, expected, concurrency=c,
                                   requests=n, timeout=timeout,
                                   token=PAGE_TOKEN if page else "bench-key",
                                   drop_every=PAGE_DROP_EVERY if page else 0))


def relay_cmd(base_url: str, *extra: str) -> list[str]:
    """The command line that starts our relay against an upstream (default settings)."""
    return ["-m", "helpers.relay", "--port", "0", "--base-url", f"{base_url}/v1",
            "--api-key", "bench-key", "--model", "moonshot-v1-8k", *extra]


def start_targets(stack: ExitStack, up_url: str, which: str) -> list[tuple]:
    """Start the servers a scenario needs; return its targets (label, url, path, body, kind,
    pid of the process whose CPU to count or None)."""
    targets = [("floor (direct)", up_url, "/v1/chat/completions", UPSTREAM_BODY, "upstream",
                None)]
    relay_url, relay_pid = stack.enter_context(process(*relay_cmd(up_url)))
    targets.append(("relay SSE", relay_url, "/api/chat/stream", RELAY_BODY, "sse", relay_pid))
    token = {"RELAY_TOKEN": PAGE_TOKEN}
    page_url, page_pid = stack.enter_context(process(*relay_cmd(up_url, "--require-token"),
                                                     env_extra=token))
    targets.append((PAGE, page_url, "/api/chat/stream", PAGE_BODY, "page", page_pid))
    if which == "floor+sse":
        return targets
    targets.append(("relay raw", relay_url, "/chatbot/llm/chatstream", RELAY_BODY, "raw",
                    relay_pid))
    naive_url, _ = stack.enter_context(process("benchmarks/naive_relay.py", "--base-url",
                                               f"{up_url}/v1"))
    targets.append(("naive relay", naive_url, "/chatbot/llm/chatstream", RELAY_BODY, "raw",
                    None))
    node_url, node_pid = stack.enter_context(process("node", "benchmarks/node_relay.cjs",
                                                     "--base-url", f"{up_url}/v1"))
    targets.append(("node relay", node_url, "/chatbot/llm/chatstream", RELAY_BODY, "raw",
                    node_pid))
    if which == "all+workers":
        url, pid = stack.enter_context(process(*relay_cmd(up_url, "--workers", "2")))
        targets.append(("relay SSE, 2 workers", url, "/api/chat/stream", RELAY_BODY, "sse",
                        pid))
        url, pid = stack.enter_context(process(
            *relay_cmd(up_url, "--workers", "2", "--require-token"), env_extra=token))
        targets.append((PAGE + ", 2 workers", url, "/api/chat/stream", PAGE_BODY, "page", pid))
    return targets


def scenario(name: str, chunks: int, delay_ms: float, levels: list[tuple[int, int]],
             which: str, rounds: int, timeout: float, rows: list[dict], extra: dict) -> None:
    """Measure every target at each (concurrency, requests) level for one upstream setting."""
    expected = fake_provider.answer_text(chunks)
    with ExitStack() as stack:
        up_url, _ = stack.enter_context(process(
            "benchmarks/fake_provider.py", "--chunks", str(chunks), "--delay-ms", str(delay_ms)))
        targets = start_targets(stack, up_url, which)
        relay_pid = targets[1][5]
        # warm-up, once, at the scenario's concurrency (up to 100): imports, caches, and
        # connection pools as large as the levels need, so that no target pays for its pool
        warm = min(max(c for c, _ in levels), 100)
        for _, url, path, body, kind, _ in targets:
            measure(url, path, body, kind, expected, warm, warm, timeout)
        for c, n in levels:
            # ``rounds`` > 1: the targets take turns, round after round, and each pools its
            # samples; a spell of the machine's noise then falls on every target alike
            reports = {label: loadgen.Report() for label, *_ in targets}
            cpus: dict[str, float] = dict.fromkeys(reports, 0.0)
            for _ in range(rounds):
                for label, url, path, body, kind, pid in targets:
                    cpu_before = cpu_seconds(pid) if pid else 0.0
                    part = measure(url, path, body, kind, expected, c, n, timeout)
                    cpus[label] += cpu_seconds(pid) - cpu_before if pid else 0.0
                    reports[label].samples += part.samples
                    reports[label].wall += part.wall
            floor = reports[targets[0][0]]
            for label, *_, pid in targets:
                report = reports[label]
                row = {"scenario": name, "c": c, "n": n * rounds, "chunks": chunks,
                       "target": label, "errors": report.errors,
                       "first_error": report.first_error(),
                       "total_p50_ms": report.p50("total") * 1000,
                       "first_p50_ms": report.p50("first") * 1000,
                       "total_ratio": report.p50("total") / floor.p50("total"),
                       "first_ratio": report.p50("first") / floor.p50("first")}
                if pid:
                    row["cpu_us_per_chunk"] = cpus[label] / (n * rounds * chunks) * 1e6
                    row["cpu_ms_per_request"] = cpus[label] / (n * rounds) * 1e3
                rows.append(row)
                print(f"{name:9} c={c:<5} {label:21} p50 total {row['total_p50_ms']:8.1f} ms"
                      f" ({row['total_ratio']:5.2f}x)  first {row['first_p50_ms']:7.1f} ms"
                      f" ({row['first_ratio']:5.2f}x)  errors {report.errors}"
                      + (f"  cpu/chunk {row['cpu_us_per_chunk']:.1f} us"
                         f"  cpu/request {row['cpu_ms_per_request']:.2f} ms"
                         if pid else ""), flush=True)
        extra.setdefault("peak_rss_mb", {})[name] = max(
            extra.get("peak_rss_mb", {}).get(name, 0.0), peak_rss_mb(relay_pid))
        extra.setdefault("peak_rss_mb_page", {})[name] = max(
            extra.get("peak_rss_mb_page", {}).get(name, 0.0), peak_rss_mb(targets[2][5]))


def table(rows: list[dict]) -> str:
    """Render the rows as a Markdown table."""
    lines = ["| scenario | c | requests | target | total p50 | × floor | first content p50 "
             "| × floor | errors | CPU / chunk | CPU / request |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = (f"{r['cpu_us_per_chunk']:.1f} µs | {r['cpu_ms_per_request']:.2f} ms"
               if "cpu_us_per_chunk" in r else " | ")
        lines.append(f"| {r['scenario']} | {r['c']} | {r['n']} | {r['target']} | "
                     f"{r['total_p50_ms']:.1f} ms | {r['total_ratio']:.2f} | "
                     f"{r['first_p50_ms']:.1f} ms | {r['first_ratio']:.2f} | {r['errors']} | "
                     f"{cpu} |")
    return "\n".join(lines)


def check_node() -> None:
    """Fail early, with the fix, when Node or openai-node is missing."""
    if shutil.which("node") is None:
        raise SystemExit("node is not installed: the Node baseline needs Node.js 20+")
    if not (NODE_MODULES / "openai").is_dir():
        raise SystemExit("node_modules/openai is missing: run `npm ci` in the project root")


def main() -> int:
    """Run the benchmark; print the tables; write docs/performance.md after a full run."""
    parser = argparse.ArgumentParser(description="Relay benchmark (loopback only, bounded).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="every scenario, small: for development (writes nothing)")
    mode.add_argument("--smoke", action="store_true", help="a tiny run for make test")
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    parser.add_argument("--median-of", type=Path, nargs="+", metavar="JSON",
                        help="run nothing: write the doc from the median of these runs' --json")
    args = parser.parse_args()
    if args.median_of:
        runs = [json.loads(path.read_text()) for path in args.median_of]
        rows = bench_goals.median_rows([run["rows"] for run in runs])
        extra = {key: value for key, value in runs[0].items() if key != "rows"}
        for key in ("peak_rss_mb", "peak_rss_mb_page"):
            extra[key] = {k: max(run.get(key, {}).get(k, 0.0) for run in runs)
                          for k in runs[0].get(key, {})}
        extra["seconds"] = max(run["seconds"] for run in runs)
        extra["median_of"] = len(runs)
        goals = bench_goals.goals_table(rows, extra)
        print(table(rows))
        print()
        print(goals)
        write_doc(rows, extra, goals)
        return 0
    check_node()
    limit = raise_open_file_limit()
    rows: list[dict] = []
    extra: dict = {"open_file_limit": limit}
    started = time.perf_counter()
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    for name, chunks, delay, levels, which, rounds in plan:
        scenario(name, chunks, delay, levels, which, rounds, 30 if args.smoke else 120,
                 rows, extra)
    extra["seconds"] = time.perf_counter() - started
    goals = bench_goals.goals_table(rows, extra)
    print()
    print(table(rows))
    print()
    print(goals)
    print(json.dumps(extra))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, **extra}, indent=2))
    errors = sum(r["errors"] for r in rows)
    if errors:
        print(f"{errors} wrong or failed answers", file=sys.stderr)
        return 1
    if not (args.smoke or args.quick):
        write_doc(rows, extra, goals)
    return 0


def write_doc(rows: list[dict], extra: dict, goals: str) -> None:
    """Replace the generated section of docs/performance.md with this run's figures."""
    doc = ROOT / "docs" / "performance.md"
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    rss = ", ".join(f"{k} {v:.0f} MB" for k, v in extra["peak_rss_mb"].items())
    rss += "; the page's route (resumable): " + ", ".join(
        f"{k} {v:.0f} MB" for k, v in extra["peak_rss_mb_page"].items())
    runs = (f" Each figure is the median of {extra['median_of']} runs (errors summed; peak RSS "
            "and the run's time the largest)." if extra.get("median_of", 1) > 1 else "")
    generated = (f"{begin}\nMeasured {date.today().isoformat()} on {machine()}; "
                 f"open-file limit {extra['open_file_limit']}; the run took "
                 f"{extra['seconds']:.0f} s. Our relay's peak RSS per scenario: {rss}.{runs}\n\n"
                 f"### The goals\n\n{goals}\n\n### Every measurement\n\n"
                 + table(rows) + f"\n{end}")
    text = doc.read_text() if doc.exists() else f"# Relay performance\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    doc.write_text(head + generated + tail)


if __name__ == "__main__":
    raise SystemExit(main())
