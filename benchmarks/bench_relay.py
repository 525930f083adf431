"""Relay benchmark: our relay's SSE and raw routes against the floor and a naive relay.

One command (``make bench``) starts everything on 127.0.0.1, each server in its own process:

- the floor: clients call the upstream directly;
- our relay's SSE route (``POST /api/chat/stream``) and raw route (``/chatbot/llm/chatstream``);
- a naive reference relay (FastAPI + AsyncOpenAI + ``delta.content``, benchmarks/naive_relay.py).

Scenarios: flat-out (200 chunks, no pause) at c = 1, 10, 100 and 1000, and paced (10 ms between
chunks) at c = 100. Every answer is checked byte for byte. Figures are ratios of p50 to the
floor measured in the same run, so the machine's speed cancels out. Also reported: our relay's
CPU time per chunk (µs; independent of how the cores are shared) and its peak RSS.

``--smoke`` runs a tiny version for ``make test`` (it checks that the harness works, not speed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import fake_provider  # noqa: E402
import loadgen  # noqa: E402

QUESTION = "Stream me the benchmark answer."
UPSTREAM_BODY = {"model": "moonshot-v1-8k", "stream": True,
                 "messages": [{"role": "user", "content": QUESTION}]}
RELAY_BODY = {"question": QUESTION}


def raise_open_file_limit() -> int:
    """Raise this process's (and its children's) open-file soft limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextmanager
def process(*args: str):
    """Start a server process that prints its URL on the first line; yield (url, pid)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLM_PROVIDER": ""}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    """A one-line description of this machine."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def measure(url: str, path: str, body: dict, kind: str, expected: str, c: int, n: int,
            timeout: float) -> loadgen.Report:
    """Run one load scenario against one target."""
    return asyncio.run(loadgen.run(url, path, body, kind, expected, concurrency=c, requests=n,
                                   timeout=timeout))


def relay_cmd(base_url: str) -> list[str]:
    """The command line that starts our relay against an upstream."""
    return ["-m", "helpers.relay", "--port", "0", "--base-url", f"{base_url}/v1",
            "--api-key", "bench-key", "--model", "moonshot-v1-8k"]


def scenario(name: str, chunks: int, delay_ms: float, levels: list[tuple[int, int]],
             timeout: float, rows: list[dict], extra: dict) -> None:
    """Measure every target at each (concurrency, requests) level for one upstream setting."""
    expected = fake_provider.answer_text(chunks)
    with process("benchmarks/fake_provider.py", "--chunks", str(chunks), "--delay-ms",
                 str(delay_ms)) as (up_url, _):
        with process(*relay_cmd(up_url)) as (relay_url, relay_pid), \
                process("benchmarks/naive_relay.py", "--base-url", f"{up_url}/v1") as (
                    naive_url, _):
            targets = [
                ("floor (direct)", up_url, "/v1/chat/completions", UPSTREAM_BODY, "upstream"),
                ("relay SSE", relay_url, "/api/chat/stream", RELAY_BODY, "sse"),
                ("relay raw", relay_url, "/chatbot/llm/chatstream", RELAY_BODY, "raw"),
                ("naive relay", naive_url, "/chatbot/llm/chatstream", RELAY_BODY, "raw"),
            ]
            for c, n in levels:
                # warm-up: connection pools, imports, caches (one request when paced)
                warm = 1 if delay_ms else min(n, 10)
                for _, url, path, body, kind in targets:
                    measure(url, path, body, kind, expected, min(c, warm), warm, timeout)
                floor = None
                for label, url, path, body, kind in targets:
                    cpu_before = cpu_seconds(relay_pid)
                    report = measure(url, path, body, kind, expected, c, n, timeout)
                    cpu = cpu_seconds(relay_pid) - cpu_before
                    if floor is None:
                        floor = report
                    row = {"scenario": name, "c": c, "n": n, "target": label,
                           "errors": report.errors, "first_error": report.first_error(),
                           "total_p50_ms": report.p50("total") * 1000,
                           "first_p50_ms": report.p50("first") * 1000,
                           "total_ratio": report.p50("total") / floor.p50("total"),
                           "first_ratio": report.p50("first") / floor.p50("first")}
                    if label.startswith("relay"):
                        row["relay_cpu_us_per_chunk"] = cpu / (n * chunks) * 1e6
                    rows.append(row)
                    print(f"{name:8} c={c:<5} {label:15} p50 total {row['total_p50_ms']:8.1f} ms"
                          f" ({row['total_ratio']:5.2f}x)  first {row['first_p50_ms']:7.1f} ms"
                          f" ({row['first_ratio']:5.2f}x)  errors {report.errors}"
                          + (f"  cpu/chunk {row['relay_cpu_us_per_chunk']:.1f} us"
                             if "relay_cpu_us_per_chunk" in row else ""), flush=True)
            extra[f"{name}_relay_peak_rss_mb"] = peak_rss_mb(relay_pid)


def table(rows: list[dict]) -> str:
    """Render the rows as a Markdown table."""
    lines = ["| scenario | c | requests | target | total p50 | × floor | first content p50 "
             "| × floor | errors | relay CPU / chunk |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = (f"{r['relay_cpu_us_per_chunk']:.1f} µs" if "relay_cpu_us_per_chunk" in r
               else "")
        lines.append(f"| {r['scenario']} | {r['c']} | {r['n']} | {r['target']} | "
                     f"{r['total_p50_ms']:.1f} ms | {r['total_ratio']:.2f} | "
                     f"{r['first_p50_ms']:.1f} ms | {r['first_ratio']:.2f} | {r['errors']} | "
                     f"{cpu} |")
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark; print the table; write it to docs/performance.md unless --smoke."""
    parser = argparse.ArgumentParser(description="Relay benchmark (loopback only, bounded).")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for make test")
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    args = parser.parse_args()
    limit = raise_open_file_limit()
    rows: list[dict] = []
    extra: dict = {"open_file_limit": limit}
    started = time.perf_counter()
    if args.smoke:
        scenario("smoke", 20, 0, [(1, 3), (4, 8)], 30, rows, extra)
    else:
        scenario("flat-out", 200, 0, [(1, 50), (10, 200), (100, 500), (1000, 1000)], 120,
                 rows, extra)
        scenario("paced", 200, 10, [(1, 3), (10, 10), (100, 200)], 120, rows, extra)
    extra["seconds"] = time.perf_counter() - started
    print()
    print(table(rows))
    print(json.dumps(extra))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, **extra}, indent=2))
    errors = sum(r["errors"] for r in rows)
    if errors:
        print(f"{errors} wrong or failed answers", file=sys.stderr)
        return 1
    if not args.smoke:
        write_doc(rows, extra)
    return 0


def write_doc(rows: list[dict], extra: dict) -> None:
    """Replace the generated section of docs/performance.md with this run's figures."""
    doc = ROOT / "docs" / "performance.md"
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    generated = (f"{begin}\nMeasured {date.today().isoformat()} on {machine()}; "
                 f"open-file limit {extra['open_file_limit']}; the run took "
                 f"{extra['seconds']:.0f} s. Relay peak RSS: "
                 + ", ".join(f"{k.removesuffix('_relay_peak_rss_mb')} {v:.0f} MB"
                             for k, v in extra.items() if k.endswith("_peak_rss_mb"))
                 + ".\n\n" + table(rows) + f"\n{end}")
    text = doc.read_text() if doc.exists() else f"# Relay performance\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    doc.write_text(head + generated + tail)


if __name__ == "__main__":
    raise SystemExit(main())
