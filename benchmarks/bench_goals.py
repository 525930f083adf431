"""The goals of issue 17, judged from one benchmark run's rows (benchmarks/bench_relay.py).

Each goal is one row of a Markdown table: what it asks, what this run measured, met or not.
A goal whose measurement is missing from the run (a quick or smoke run) says so.
"""

from __future__ import annotations

import math

SSE, NODE = "relay SSE", "node relay"
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


def goals(rows: list[dict], extra: dict) -> list[tuple[str, str, str, bool | None]]:
    """Return (kind, goal, measured, met) for every goal of the issue."""
    out: list[tuple[str, str, str, bool | None]] = []
    for scenario, c, what in NODE_CELLS:
        ours, node = _row(rows, scenario, c, SSE), _row(rows, scenario, c, NODE)
        label = "first content" if what == "first" else "total"
        goal = f"SSE route ahead of the Node relay: {scenario}, c = {c}, {label} p50"
        if ours is None or node is None:
            out.append(("required", goal, "–", None))
            continue
        a, b = ours[f"{what}_p50_ms"], node[f"{what}_p50_ms"]
        out.append(("required", goal, f"{a:.1f} ms vs Node {b:.1f} ms ({a / b:.2f} ×)", a < b))
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
    seconds = extra.get("seconds")
    full = _row(rows, "flat-out", 1000, SSE) is not None
    out.append(("required", "`make bench` in under 6 minutes",
                f"{seconds:.0f} s" if seconds else "–",
                (seconds < 360) if (seconds and full) else None))
    return out


def goals_table(rows: list[dict], extra: dict) -> str:
    """Render :func:`goals` as a Markdown table."""
    lines = ["| | goal | measured | |", "|---|---|---|---|"]
    for kind, goal, measured, ok in goals(rows, extra):
        lines.append(f"| {kind} | {goal} | {measured} | {_mark(ok)} |")
    return "\n".join(lines)
