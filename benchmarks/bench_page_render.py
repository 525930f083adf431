"""The chat page's rendering cost per token, in Chromium: naive full re-render vs blocks.

A 5,000-token answer (the offline model's Markdown + LaTeX answers, repeated) is fed to the
page's renderer one token at a time, with a redraw and a layout after every token (the worst
case: the page itself redraws at most once per animation frame). Two ways:

- naive: render the whole text so far (Markdown, KaTeX, DOMPurify) and replace the pane;
  timed at 21 answer lengths (3 times each, the median) and summed over every length by
  linear interpolation: redrawing all 5,000 lengths one by one takes a quarter of an hour;
- blocks: ``ChatRender.createView`` (helpers/static/render.js): finished blocks rendered once,
  only the open tail re-rendered; every token fed and timed.

Prints a table and writes it into docs/page.md between the ``bench:page-render`` markers.
Loopback only, bounded: ``make bench-page`` (a few minutes on 2 cores). Never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.offline import OfflineProvider  # noqa: E402
from helpers.offline.replies import compose_reply, split_pieces  # noqa: E402
from helpers.relay import start_relay  # noqa: E402
from helpers.settings import Config  # noqa: E402

DOC = ROOT / "docs" / "page.md"
MARKERS = ("<!-- bench:page-render -->", "<!-- /bench:page-render -->")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
QUESTIONS = ["a cheat sheet", "What is the Pythagorean theorem?", "What is the quadratic formula?",
             "What is a derivative?", "What is a prime number?"]

BLOCKS = """([tokens, every]) => {
  const pane = document.createElement('div');
  pane.className = 'md';
  document.querySelector('main').appendChild(pane);
  const view = ChatRender.createView(pane);
  const marks = [];
  const start = performance.now();
  for (let i = 0; i < tokens.length; i++) {
    view.append(tokens[i]);
    view.redraw();
    pane.offsetHeight;  // layout, as a frame would
    if ((i + 1) % every === 0) marks.push(performance.now() - start);
  }
  const total = performance.now() - start;
  const katex = pane.querySelectorAll('.katex').length;
  pane.remove();
  return {total, marks, katex};
}"""
NAIVE = """([tokens, sizes, repeats]) => {
  const pane = document.createElement('div');
  pane.className = 'md';
  document.querySelector('main').appendChild(pane);
  const times = sizes.map(k => {
    const text = tokens.slice(0, k).join('');
    const runs = [];
    for (let r = 0; r < repeats; r++) {
      const start = performance.now();
      pane.replaceChildren(ChatRender.render(text));
      pane.offsetHeight;
      runs.push(performance.now() - start);
    }
    return runs.sort((a, b) => a - b)[Math.floor(repeats / 2)];
  });
  const katex = pane.querySelectorAll('.katex').length;
  pane.remove();
  return {times, katex};
}"""


def answer_tokens(n: int) -> list[str]:
    """Return n tokens of Markdown with formulas, tables and lists (the offline answers)."""
    texts = [compose_reply([{"role": "user", "content": q}]).text for q in QUESTIONS]
    pieces: list[str] = []
    while len(pieces) < n:
        for text in texts:
            pieces += split_pieces(text + "\n\n")
    return pieces[:n]


def interpolate(sizes: list[int], times: list[float], n: int) -> list[float]:
    """Return the cost of a full render at every length 1..n, linear between measured ones."""
    costs = []
    for k in range(1, n + 1):
        j = next(i for i, size in enumerate(sizes) if size >= k)
        if sizes[j] == k or j == 0:
            costs.append(times[j])
        else:
            a, b = sizes[j - 1], sizes[j]
            costs.append(times[j - 1] + (times[j] - times[j - 1]) * (k - a) / (b - a))
    return costs


def record(results: dict, mode: str, per_token: float, last: float, katex: int) -> None:
    """Keep one round's figures and print them."""
    row = results.setdefault(mode, {"per_token": [], "last": [], "katex": []})
    row["per_token"].append(per_token)
    row["last"].append(last)
    row["katex"].append(katex)
    print(f"  {mode:6s}: {per_token:.3f} ms/token, last tenth {last:.3f} ms/token", flush=True)


def run(tokens: int, rounds: int) -> dict[str, dict[str, float]]:
    """Measure both ways in Chromium; return ms per token overall and over the last tenth."""
    from playwright.sync_api import sync_playwright

    pieces = answer_tokens(tokens)
    every = max(1, tokens // 10)
    offline = OfflineProvider(delay_ms=0, name="bench-page-offline").start()
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "bench-key")
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with start_relay(config, jupyter=False, name="bench-page-relay") as relay, \
                sync_playwright() as pw:
            args = ["--headless=new", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                args.append("--no-sandbox")
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(relay.url)
            page.wait_for_selector('body[data-state="idle"]')
            sizes = sorted({1, *range(every // 2, tokens + 1, every // 2), tokens})
            for _ in range(rounds):
                out = page.evaluate(BLOCKS, [pieces, every])
                record(results, "blocks", out["total"] / tokens,
                       (out["marks"][-1] - out["marks"][-2]) / every, out["katex"])
                out = page.evaluate(NAIVE, [pieces, sizes, 3])
                costs = interpolate(sizes, out["times"], tokens)
                record(results, "naive", sum(costs) / tokens,
                       sum(costs[-every:]) / every, out["katex"])
            browser.close()
    finally:
        offline.stop()
    return {mode: {k: statistics.median(v) for k, v in row.items()}
            for mode, row in results.items()}


def table(tokens: int, figures: dict[str, dict[str, float]], rounds: int) -> str:
    """Return the Markdown table of the figures."""
    blocks, naive = figures["blocks"], figures["naive"]
    chromium = os.popen(f"{CHROMIUM} --version 2>/dev/null").read().strip() or "chromium"
    lines = [
        f"{tokens:,} tokens, a redraw and a layout after every token (naive: 21 lengths "
        f"timed, summed over all), median of {rounds} round(s); {chromium}, "
        f"{os.cpu_count()} cores, {platform.machine()}.",
        "",
        "| way | ms per token (whole answer) | ms per token (last tenth) | whole answer |",
        "|---|---:|---:|---:|",
        f"| naive: re-render everything | {naive['per_token']:.3f} | {naive['last']:.3f} | "
        f"{naive['per_token'] * tokens / 1000:.1f} s |",
        f"| blocks: only the open tail | {blocks['per_token']:.3f} | {blocks['last']:.3f} | "
        f"{blocks['per_token'] * tokens / 1000:.1f} s |",
        "",
        f"Both end with the same {int(blocks['katex'])} KaTeX formulas on screen. The naive way's "
        f"cost per token grows with the answer (its last tenth costs "
        f"{naive['last'] / max(naive['per_token'], 1e-9):.1f}× its average); the blocks' stays "
        f"flat ({blocks['last'] / max(blocks['per_token'], 1e-9):.1f}×): "
        f"{naive['per_token'] / max(blocks['per_token'], 1e-9):.0f}× less work over the answer.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and update docs/page.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    figures = run(args.tokens, args.rounds)
    text = table(args.tokens, figures, args.rounds)
    print(text)
    if not args.no_write and DOC.exists():
        doc = DOC.read_text()
        pattern = re.compile(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), re.S)
        if pattern.search(doc):
            DOC.write_text(pattern.sub(lambda _: f"{MARKERS[0]}\n{text}\n{MARKERS[1]}", doc))
            print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
