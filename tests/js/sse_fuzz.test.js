// Reliability, family 1 (page side): the page's SSE parser (helpers/static/sse.js) fuzzed.
// Seeded random events, random line endings (LF / CR / CRLF, mixed per line), comments and
// keep-alives, an optional byte-order mark, characters that other splitters treat as line
// breaks (U+2028, U+2029, NEL), multi-byte UTF-8, and random read boundaries down to one
// byte a read. The parser must give back exactly the events that were written.
// Run: node --test tests/js/   (tests/test_sse.py runs this folder under pytest)
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { createParser } = require(path.join(__dirname, "..", "..", "helpers", "static", "sse.js"));

const enc = new TextEncoder();

// A small seeded PRNG (mulberry32): every failure names a reproducible seed.
function rng(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

const TRICKY = ["\n", "\r", "\r\n", "\n\n", "\u2028", "\u2029", "\u0085", "é", "勾", "😀",
  '"', "\\", "data: x", ": ping", "event: done", " ", "\t", "\ufeff", "$$", "", "a", "word "];

function randomText(r) {
  let s = "";
  for (let i = int(r, 0, 12); i > 0; i--) s += pick(r, TRICKY);
  return s;
}

// Events as the relay writes them (JSON on one data line) plus some multi-line data events.
function randomStream(r) {
  const eols = ["\n", "\r", "\r\n"];
  const fixedEol = r() < 0.5 ? pick(r, eols) : null; // one style, or mixed line by line
  // Mixed endings must not write CR then LF as two endings: together they are one (CRLF).
  let last = "";
  const eol = () => {
    let e = fixedEol || pick(r, eols);
    if (last === "\r" && e === "\n") e = "\r\n";
    last = e;
    return e;
  };
  let text = r() < 0.3 ? "\ufeff" : "";
  const expected = [];
  for (let i = int(r, 1, 12); i > 0; i--) {
    if (r() < 0.3) text += ":" + pick(r, [" keep-alive", "", "ping"]) + eol() + (r() < 0.5 ? eol() : "");
    if (r() < 0.8) {
      const type = pick(r, ["delta", "reasoning", "usage", "done", "error"]);
      const data = JSON.stringify({ content: randomText(r) });
      text += "event: " + type + eol() + "data: " + data + eol() + eol();
      expected.push({ type, data, id: "" });
    } else {
      const lines = [];
      for (let j = int(r, 1, 4); j > 0; j--) lines.push(pick(r, ["", "a", " b", "中文", "x:y"]));
      for (const line of lines) text += "data:" + line + eol();
      text += eol();
      expected.push({ type: "message", data: lines.map((l) => l.replace(/^ /, "")).join("\n"), id: "" });
    }
  }
  return { text, expected };
}

function reads(r, bytes) {
  if (r() < 0.3) return Array.from(bytes, (b) => Uint8Array.of(b));
  const out = [];
  for (let i = 0; i < bytes.length;) {
    const n = int(r, 1, 40);
    out.push(bytes.slice(i, i + n));
    i += n;
  }
  return out;
}

function parse(pieces) {
  const events = [];
  const parser = createParser((e) => events.push(e));
  for (const p of pieces) parser.push(p);
  parser.finish();
  return events;
}

test("200 seeded random streams decode exactly, whatever the read boundaries", () => {
  for (let seed = 0; seed < 200; seed++) {
    const r = rng(seed);
    const { text, expected } = randomStream(r);
    const events = parse(reads(r, enc.encode(text)));
    assert.deepEqual(events, expected, `seed ${seed}`);
    for (const e of events) if (e.type !== "message") JSON.parse(e.data); // still valid JSON
  }
});

test("one byte a read, a BOM, U+2028/U+2029 and 4-byte characters in the text", () => {
  const data = JSON.stringify({ content: "a\u2028b\u2029c 😀 勾股 \n\n" });
  const bytes = enc.encode("\ufeffevent: delta\r\ndata: " + data + "\r\n\r\n");
  assert.deepEqual(parse(Array.from(bytes, (b) => Uint8Array.of(b))),
    [{ type: "delta", data, id: "" }]);
  assert.equal(JSON.parse(data).content, "a\u2028b\u2029c 😀 勾股 \n\n");
});

test("a BOM only counts at the very start of the stream", () => {
  const events = parse([enc.encode("data: a\n\n\ufeffdata: b\n\n")]);
  // Mid-stream, U+FEFF is part of the field name, so that line is an unknown field.
  assert.deepEqual(events.map((e) => e.data), ["a"]);
});

test("every CR/LF split point in a CRLF stream gives the same events", () => {
  const text = "event: delta\r\ndata: {\"content\":\"x\"}\r\n\r\n: keep-alive\r\n\r\n" +
    "event: done\r\ndata: {\"finish_reason\":\"stop\"}\r\n\r\n";
  const bytes = enc.encode(text);
  const whole = parse([bytes]);
  assert.equal(whole.length, 2);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j += 5) {
      assert.deepEqual(parse([bytes.slice(0, i), bytes.slice(i, j), bytes.slice(j)]), whole);
    }
  }
});

test("a stream cut before its closing blank line loses only the unfinished event", () => {
  const full = enc.encode("event: delta\ndata: {\"content\":\"kept\"}\n\nevent: delta\ndata: {\"content\":\"lost\"}\n");
  for (let cut = 0; cut <= full.length; cut++) {
    const events = parse([full.slice(0, cut)]);
    const complete = cut >= enc.encode("event: delta\ndata: {\"content\":\"kept\"}\n\n").length;
    assert.deepEqual(events.map((e) => e.data), complete ? ['{"content":"kept"}'] : [], `cut ${cut}`);
  }
});

test("empty data and empty deltas are events; an empty event block is not", () => {
  const events = parse(["data:\n\nevent: delta\ndata: {\"content\":\"\"}\n\n\n\n\n"]);
  assert.deepEqual(events.map((e) => [e.type, e.data]), [["message", ""], ["delta", '{"content":""}']]);
});
