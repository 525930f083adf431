"""Render the lesson notebooks, with their outputs, to static HTML (``make docs``).

The committed notebooks already carry the outputs that nbval checks, so by default they are
rendered as they are: what a reader sees is exactly what CI verified. ``--execute`` runs each
one first (offline, in memory; the files are not changed) for a build from scratch.

    python tools/build_docs.py                   # every notebooks/*.ipynb -> site/
    python tools/build_docs.py --out /tmp/site notebooks/06_providers_and_quirks.ipynb
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor, ExecutePreprocessor

ROOT = Path(__file__).resolve().parents[1]


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    """Return the notebook's H1 title (its first markdown line starting with '# ')."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def render(path: Path, out: Path, *, execute: bool = False) -> str:
    """Write ``out/<name>.html`` for one notebook; return its title."""
    nb = nbformat.read(path, as_version=4)
    if execute:
        os.environ["LLM_PROVIDER"] = "offline"
        ExecutePreprocessor(timeout=120).preprocess(nb, {"metadata": {"path": str(path.parent)}})
    # Word-by-word prints are many stream outputs: merge them, or the page shows a word a line.
    nb, _ = CoalesceStreamsPreprocessor().preprocess(nb, {})
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return title_of(nb, path.stem)


def write_index(out: Path, pages: list[tuple[str, str]]) -> None:
    """Write ``out/index.html``: one link per rendered lesson."""
    items = "\n".join(f'  <li><a href="{html.escape(name)}.html">{html.escape(title)}</a></li>'
                      for name, title in pages)
    out.joinpath("index.html").write_text(
        "<!doctype html>\n<meta charset=\"utf-8\">\n"
        "<title>Streaming LLM chat: the lessons</title>\n"
        "<h1>Streaming LLM chat with the openai SDK: the lessons</h1>\n"
        "<p>Rendered with the outputs the offline provider produced (no key, no network).</p>\n"
        f"<ol>\n{items}\n</ol>\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Render the given notebooks (default: all lessons) and an index page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "site")
    parser.add_argument("--execute", action="store_true", help="run each notebook first")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    pages = []
    for path in notebooks:
        pages.append((path.stem, render(path, args.out, execute=args.execute)))
        print(f"{path.name} -> {args.out / (path.stem + '.html')}")
    write_index(args.out, pages)
    print(f"open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
