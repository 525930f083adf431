"""One rule, two implementations: the page's block splitter (render.js) cuts like the notebook's.

The notebook view (``helpers.views.show.split_blocks``) and the chat page (``splitBlocks`` in
helpers/static/render.js) both render finished Markdown blocks once and re-render only the open
tail. Given the same text they must cut at the same places; node runs the JavaScript.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

from conftest import need_system_part

from helpers.views.show import split_blocks

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
const { splitBlocks } = require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map(([text, soft, hard]) => {
  const r = splitBlocks(text, soft, hard); return [r.blocks, r.tail]; })));
"""
ALPHABET = ["a", "word", " ", "\n", "\n\n", "$", "$$", "```", "~~~", "\\", "。", "中", "|",
            "x^2", "  ", "\t", "é", "！"]


def test_page_and_notebook_split_markdown_alike() -> None:
    node = shutil.which("node")
    need_system_part(bool(node), "node (for the page's JavaScript tests)")
    rng = random.Random(12)
    cases = []
    for _ in range(400):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 300)))
        soft = rng.choice([20, 60, 600])
        cases.append([text, soft, soft * 4])
    cases.append([compose_sample(), 600, 2400])
    result = subprocess.run([str(node), "-e", SCRIPT, str(ROOT / "helpers/static/render.js")],
                            input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    from_js = json.loads(result.stdout)
    assert len(from_js) == len(cases)
    cut_somewhere = 0
    for (text, soft, hard), (blocks, tail) in zip(cases, from_js, strict=True):
        expected = split_blocks(text, soft_limit=soft, hard_limit=hard)
        assert [blocks, tail] == [list(expected[0]), expected[1]], text
        cut_somewhere += bool(blocks)
    assert cut_somewhere > 100  # the comparison is not only of texts that were never cut


def compose_sample() -> str:
    from helpers.offline.replies import compose_reply
    return compose_reply([{"role": "user", "content": "a cheat sheet"}]).text * 3
