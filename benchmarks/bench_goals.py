"""The goals of issues 17 and 22, judged from a benchmark run's rows (benchmarks/bench_relay.py).

Issue 17's are the SSE route's; issue 22's the page's route (``"resumable": true``, a short
history, the access token, one answer in ten dropped and resumed). Rows may be one run's or
the median of several (``bench_relay.py --median-of``).

Each goal is one row of a Markdown table: what it asks, what this run measured, met or not.
A goal whose measurement is missing from the run (a quick or smoke run) says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

SSE, NODE, PAGE = "relay SSE", "node relay", "relay page route"
#: The cells where the SSE route must be ahead of the blog's Node relay: (scenario, c, which p50).
NODE_CELLS = [("flat-out", 1, "total"), ("flat-out", 10, "total"), ("flat-out", 100, "total"),
              ("paced", 100, "first"), ("paced", 100, "total")]


def _row(rows: list[dict], scenario: str, c: int, target: str) -> dict | None:
    return next((r for r in rows if (r["scenario"], r["c"], r["target"]) == (scenario, c, target)),
                None)


def _mark(ok: bool | None) -> str:
    return "n/a (not in this run)" if ok is None else "**met**" if ok else "**not met**"


def _ratio_goal(rows: list[dict], scenario: str, c: int, target: str, what: str,
                limit: float) -> tuple[str, bool | None]:
    row = _row(rows, scenario, c, target)
    if row is None or math.isnan(row[f"{what}_ratio"]):
        return "–", None
    return (f"{row[f'{what}_ratio']:.2f} × ({row[f'{what}_p50_ms']:.1f} ms)",
            row[f"{what}_ratio"] <= limit)


def _versus(rows: list[dict], kind: str, ours: str, other: str, name: str,
            describe: Callable[[str, str], str],
            met: Callable[[str, str, float, float], bool]) -> list[tuple[str, str, str,
                                                                        bool | None]]:
    """One goal per cell of NODE_CELLS: target ``ours`` against ``other`` (called ``name``)."""
    out: list[tuple[str, str, str, bool | None]] = []
    for scenario, c, what in NODE_CELLS:
        mine, theirs = _row(rows, scenario, c, ours), _row(rows, scenario, c, other)
        label = "first content" if what == "first" else "total"
        goal = f"{describe(scenario, what)}: {scenario}, c = {c}, {label} p50"
        if mine is None or theirs is None:
            out.append((kind, goal, "–", None))
            continue
        a, b = mine[f"{what}_p50_ms"], theirs[f"{what}_p50_ms"]
        out.append((kind, goal, f"{a:.1f} ms vs {name} {b:.1f} ms ({a / b:.2f} ×)",
                    met(scenario, what, a, b)))
    return out


def goals(rows: list[dict], extra: dict) -> list[tuple[str, str, str, bool | None]]:
    """Return (kind, goal, measured, met) for every goal of the issue."""
    out: list[tuple[str, str, str, bool | None]] = []
    out += _versus(rows, "required", SSE, NODE, "Node",
                   lambda scenario, what: "SSE route ahead of the Node relay",
                   lambda scenario, what, a, b: a < b)
    out.append(("required", "flat out, c = 100: SSE total p50 ≤ 1.5 × floor",
                *_ratio_goal(rows, "flat-out", 100, SSE, "total", 1.5)))
    out.append(("aimed", "flat out, c = 1000: SSE total p50 ≤ 2 × floor",
                *_ratio_goal(rows, "flat-out", 1000, SSE, "total", 2.0)))
    out.append(("aimed", "paced, c = 100 arriving at once: SSE first content p50 ≤ 4 × floor",
                *_ratio_goal(rows, "paced", 100, SSE, "first", 4.0)))
    out.append(("aimed", "paced, c = 100 arriving at once: SSE total p50 ≤ 1.05 × floor",
                *_ratio_goal(rows, "paced", 100, SSE, "total", 1.05)))
    row = _row(rows, "flat-out", 100, SSE)
    out.append(("aimed", "relay CPU per chunk ≤ 8 µs (flat out, c = 100, SSE)",
                *((f"{row['cpu_us_per_chunk']:.1f} µs", row["cpu_us_per_chunk"] <= 8)
                  if row else ("–", None))))
    row = next((r for r in rows if r["scenario"] == "admission" and r["target"] == SSE), None)
    out.append(("aimed", "admission ≤ 0.3 ms of relay CPU per request (one-chunk answers)",
                *((f"{row['cpu_ms_per_request']:.2f} ms", row["cpu_ms_per_request"] <= 0.3)
                  if row else ("–", None))))
    held = next((r for r in rows if r["scenario"] == "held" and r["target"] == SSE), None)
    rss = extra.get("peak_rss_mb", {}).get("held")
    if held is None or rss is None or held["c"] < 1000:
        out.append(("aimed", "1000 held streams in ≤ 150 MB peak RSS", "–", None))
    else:
        out.append(("aimed", "1000 held streams in ≤ 150 MB peak RSS",
                    f"{rss:.0f} MB, {held['errors']} errors",
                    rss <= 150 and held["errors"] == 0))
    out += page_goals(rows, extra)
    seconds = extra.get("seconds")
    full = _row(rows, "flat-out", 1000, SSE) is not None
    out.append(("required", "`make bench` in under 6 minutes",
                f"{seconds:.0f} s" if seconds else "–",
                (seconds < 360) if (seconds and full) else None))
    return out


def page_goals(rows: list[dict], extra: dict) -> list[tuple[str, str, str, bool | None]]:
    """Issue 22's goals for the page's route."""
    out: list[tuple[str, str, str, bool | None]] = []
    page_rows = [r for r in rows if r["target"].startswith(PAGE)]
    failed = sum(r["errors"] for r in page_rows)
    out.append(("required", "page's route: 0 failed answers at every level (1 in "
                "10 dropped and resumed, byte-exact)",
                f"{failed} failed of {sum(r['n'] for r in page_rows)}" if page_rows else "–",
                failed == 0 if page_rows else None))
    out += _versus(rows, "required", PAGE, NODE, "Node",
                   lambda scenario, what: "page's route " + (
                       "≤ 1.02 × the Node relay" if (scenario, what) == ("paced", "total")
                       else "ahead of the Node relay"),
                   lambda scenario, what, a, b: a <= 1.02 * b
                   if (scenario, what) == ("paced", "total") else a < b)
    out.append(("required", "flat out, c = 100: page's route total p50 ≤ 1.5 × floor",
                *_ratio_goal(rows, "flat-out", 100, PAGE, "total", 1.5)))
    out.append(("required", "paced, c = 100 arriving at once: page's route total p50 ≤ 1.05 × "
                "floor", *_ratio_goal(rows, "paced", 100, PAGE, "total", 1.05)))
    out += _versus(rows, "aimed", PAGE, SSE, "SSE",
                   lambda scenario, what: "page's route within 15 % of the SSE route",
                   lambda scenario, what, a, b: a <= 1.15 * b)
    held = next((r for r in rows if r["scenario"] == "held" and r["target"] == PAGE), None)
    rss = extra.get("peak_rss_mb_page", {}).get("held")
    goal = "1000 held resumable streams in ≤ 200 MB peak RSS"
    if held is None or rss is None or held["c"] < 1000:
        out.append(("aimed", goal, "–", None))
    else:
        out.append(("aimed", goal, f"{rss:.0f} MB, {held['errors']} errors",
                    rss <= 200 and held["errors"] == 0))
    out.append(("aimed", "flat out, c = 1000: page's route total p50 ≤ 2 × floor",
                *_ratio_goal(rows, "flat-out", 1000, PAGE, "total", 2.0)))
    return out


def median_rows(runs: list[list[dict]]) -> list[dict]:
    """The median of several runs, cell by cell (errors: summed, so none is hidden)."""
    import statistics

    out = []
    for row in runs[0]:
        key = (row["scenario"], row["c"], row["target"])
        same = [r for run in runs for r in run if (r["scenario"], r["c"], r["target"]) == key]
        merged = dict(row)
        for field, value in row.items():
            if field == "errors":
                merged[field] = sum(r[field] for r in same)
            elif isinstance(value, float):
                merged[field] = statistics.median(r[field] for r in same if field in r)
        merged["runs"] = len(same)
        out.append(merged)
    return out


def goals_table(rows: list[dict], extra: dict) -> str:
    """Render :func:`goals` as a Markdown table."""
    lines = ["| | goal | measured | |", "|---|---|---|---|"]
    for kind, goal, measured, ok in goals(rows, extra):
        lines.append(f"| {kind} | {goal} | {measured} | {_mark(ok)} |")
    return "\n".join(lines)
