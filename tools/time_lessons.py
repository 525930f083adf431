"""Measure how long each lesson takes to execute offline, and write the figures to docs/lessons.md.

Each notebook runs in a fresh kernel, in memory (the files are not changed), with
``LLM_PROVIDER=offline``, exactly as ``make outputs`` would run it. Two figures per lesson:
*total* is the wall time from starting the kernel to the last cell's end (what a learner waits
for after Restart and Run All, give or take the browser); *cells* is the time the cells
themselves took, as the kernel reported it. The target is under 10 s per lesson.

    python tools/time_lessons.py                       # all lessons, median of 3 runs
    python tools/time_lessons.py --runs 1 --out /tmp/lessons.md notebooks/05_*.ipynb
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


@dataclass(frozen=True)
class Timing:
    """One lesson's figures, in seconds (medians over the runs)."""

    name: str
    title: str
    code_cells: int
    total: float
    cells: float


def _cell_seconds(nb: nbformat.NotebookNode) -> float:
    total = 0.0
    for cell in nb.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if start and end:
            total += (datetime.fromisoformat(end.rstrip("Z"))
                      - datetime.fromisoformat(start.rstrip("Z"))).total_seconds()
    return total


def run_once(path: Path) -> tuple[float, float]:
    """Execute one notebook in a fresh kernel; return (total, cells) seconds."""
    nb = nbformat.read(path, as_version=4)
    os.environ["LLM_PROVIDER"] = "offline"
    began = time.perf_counter()
    ExecutePreprocessor(timeout=120, record_timing=True).preprocess(
        nb, {"metadata": {"path": str(path.parent)}})
    return time.perf_counter() - began, _cell_seconds(nb)


def measure(path: Path, runs: int) -> Timing:
    """Run a notebook ``runs`` times; return the median figures."""
    results = [run_once(path) for _ in range(runs)]
    nb = nbformat.read(path, as_version=4)
    title = next((line[2:] for c in nb.cells if c.cell_type == "markdown"
                  for line in c.source.splitlines() if line.startswith("# ")), path.stem)
    totals, cells = [r[0] for r in results], [r[1] for r in results]
    return Timing(path.stem, title, sum(c.cell_type == "code" for c in nb.cells),
                  statistics.median(totals), statistics.median(cells))


def to_markdown(timings: list[Timing], *, runs: int, machine: str, when: str) -> str:
    """Return docs/lessons.md: the table, where it was measured, and how to reproduce it."""
    rows = "\n".join(
        f"| `{t.name}` | {t.title} | {t.code_cells} | {t.total:.1f} | {t.cells:.1f} | "
        f"{'yes' if t.total < TARGET_S else '**no**'} |" for t in timings)
    return f"""# Lesson execution times

How long each lesson takes to run from a fresh kernel with the offline provider (Restart and
Run All). The target is under {TARGET_S:.0f} s per lesson, so a class can re-run a lesson at any
moment. *total* includes starting the kernel; *cells* is the time the cells themselves took.
Median of {runs} run(s).

| notebook | lesson | code cells | total (s) | cells (s) | under {TARGET_S:.0f} s |
|---|---|---:|---:|---:|:---:|
{rows}

Measured {when} on {machine}.

To reproduce (this rewrites this file):

```bash
LLM_PROVIDER=offline .venv/bin/python tools/time_lessons.py
```

These are measurements, not tests: nothing fails when a lesson gets slower. Re-run the script
when a lesson changes and look at the last column.
"""


def main(argv: list[str] | None = None) -> int:
    """Time the given notebooks (default: every lesson) and write the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "lessons.md")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    timings = []
    for path in notebooks:
        timing = measure(path, args.runs)
        timings.append(timing)
        print(f"{timing.name:32} total {timing.total:5.1f} s   cells {timing.cells:5.1f} s")
    machine = (f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
               f"{os.cpu_count()} CPUs")
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    args.out.write_text(to_markdown(timings, runs=args.runs, machine=machine, when=when),
                        encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
