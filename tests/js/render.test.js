// The page's block splitter (helpers/static/render.js): finished blocks and the open tail.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const path = require("node:path");
const { splitBlocks, safeCut } = require(path.join(__dirname, "../../helpers/static/render.js"));

test("a blank line ends a block; the rest is the open tail", () => {
  assert.deepStrictEqual(splitBlocks("one\n\ntwo"), { blocks: ["one\n\n"], tail: "two" });
  assert.deepStrictEqual(splitBlocks("one\ntwo"), { blocks: [], tail: "one\ntwo" });
});

test("no block ends inside $$ math or a code fence", () => {
  const math = "$$\na\n\nb\n$$\n\nafter";
  assert.deepStrictEqual(splitBlocks(math), { blocks: ["$$\na\n\nb\n$$\n\n"], tail: "after" });
  const code = "```\nx\n\ny\n```\n\nz";
  assert.deepStrictEqual(splitBlocks(code), { blocks: ["```\nx\n\ny\n```\n\n"], tail: "z" });
});

test("a long paragraph is cut before a word, never inside inline math", () => {
  const words = "word ".repeat(200) + "$a + b + c + d + e$";
  const { blocks, tail } = splitBlocks(words, 100, 400);
  assert.deepStrictEqual(blocks, ["word ".repeat(199)]);  // cut before a word: tail short
  assert.strictEqual(tail, "word $a + b + c + d + e$");
  const growing = splitBlocks("word ".repeat(200) + "$a + b", 100, 400);
  assert.strictEqual(growing.tail, "word $a + b");  // math still open: not cut inside
});

test("a Chinese sentence end is a place to cut", () => {
  assert.strictEqual(safeCut("勾股定理。斜边", false), 5);
});

test("joining the blocks and the tail gives the text back", () => {
  const alphabet = ["a", " ", "\n", "\n\n", "$", "$$", "```", "\\", "。", "中", "|"];
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let n = 0; n < 500; n++) {
    let text = "";
    for (let i = 0; i < 200; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    const { blocks, tail } = splitBlocks(text, 30, 90);
    assert.strictEqual(blocks.join("") + tail, text);
  }
});
