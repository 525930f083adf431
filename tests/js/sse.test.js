// Node tests for helpers/static/sse.js, the page's SSE parser.
// Run: node --test tests/js/   (tests/test_sse.py runs them under pytest)
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { createParser } = require(path.join(__dirname, "..", "..", "helpers", "static", "sse.js"));

const enc = new TextEncoder();

// Feed the pieces one by one (strings, or byte arrays), return the events and comments seen.
function parse(pieces) {
  const events = [];
  const comments = [];
  const parser = createParser((e) => events.push(e), { onComment: (c) => comments.push(c) });
  for (const piece of pieces) parser.push(piece);
  parser.finish();
  return { events, comments };
}

// Every way of cutting the bytes in two must give the same events.
function everySplit(text) {
  const bytes = enc.encode(text);
  const results = [];
  for (let i = 0; i <= bytes.length; i++) {
    results.push(parse([bytes.slice(0, i), bytes.slice(i)]).events);
  }
  return results;
}

test("one named event with JSON data", () => {
  const { events } = parse(['event: delta\ndata: {"content":"hi"}\n\n']);
  assert.deepEqual(events, [{ type: "delta", data: '{"content":"hi"}', id: "" }]);
});

for (const [name, eol] of [["LF", "\n"], ["CR", "\r"], ["CRLF", "\r\n"]]) {
  test(`${name} line endings`, () => {
    const text = `event: delta${eol}data: a${eol}${eol}event: done${eol}data: b${eol}${eol}`;
    const { events } = parse([text]);
    assert.deepEqual(events.map((e) => [e.type, e.data]), [["delta", "a"], ["done", "b"]]);
  });
}

test("CR at the end of one read and LF at the start of the next are one line ending", () => {
  // If the LF were a second line ending, it would be an empty line: the event would be
  // dispatched before its data line.
  const { events } = parse(["event: delta\r", "\ndata: x\r", "\n\r", "\n"]);
  assert.deepEqual(events, [{ type: "delta", data: "x", id: "" }]);
});

test("CR then LF in separate reads still ends an event exactly once", () => {
  const { events } = parse(["data: one\r\n\r", "\n", "data: two\r\n\r\n"]);
  assert.deepEqual(events.map((e) => e.data), ["one", "two"]);
});

test("a lone CR followed by a new line's text is a line ending", () => {
  const { events } = parse(["data: a\r", "data: b\r\r"]);
  assert.deepEqual(events.map((e) => e.data), ["a\nb"]);
});

test("a UTF-8 character split across reads is decoded whole", () => {
  const text = 'event: delta\ndata: {"content":"勾股定理 ✓"}\n\n';
  for (const events of everySplit(text)) {
    assert.deepEqual(events, [{ type: "delta", data: '{"content":"勾股定理 ✓"}', id: "" }]);
  }
});

test("one byte per read", () => {
  const bytes = enc.encode("event: delta\r\ndata: 中文\r\n\r\nevent: done\rdata: ok\r\r");
  const pieces = Array.from(bytes, (b) => Uint8Array.of(b));
  const { events } = parse(pieces);
  assert.deepEqual(events.map((e) => [e.type, e.data]), [["delta", "中文"], ["done", "ok"]]);
});

test("several data lines join with a newline", () => {
  const { events } = parse(["data: first\ndata:second\ndata\ndata:  indented\n\n"]);
  assert.equal(events[0].data, "first\nsecond\n\n indented");
  assert.equal(events[0].type, "message");
});

test("comments are reported, not dispatched", () => {
  const { events, comments } = parse([": keep-alive\n\n:ping\ndata: x\n\n"]);
  assert.deepEqual(comments, ["keep-alive", "ping"]);
  assert.deepEqual(events.map((e) => e.data), ["x"]);
});

test("an event without data is dropped and its name does not leak into the next", () => {
  const { events } = parse(["event: usage\n\ndata: plain\n\n"]);
  assert.deepEqual(events, [{ type: "message", data: "plain", id: "" }]);
});

test("id persists, retry and unknown fields are ignored", () => {
  const { events } = parse(["id: 7\nretry: 100\nfoo: bar\ndata: a\n\ndata: b\n\n"]);
  assert.deepEqual(events.map((e) => [e.id, e.data]), [["7", "a"], ["7", "b"]]);
});

test("an unfinished event at the end of the stream is discarded", () => {
  const { events } = parse(["data: complete\n\ndata: cut off"]);
  assert.deepEqual(events.map((e) => e.data), ["complete"]);
});

test("a byte-order mark at the start is ignored", () => {
  const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode("data: x\n\n")]);
  assert.deepEqual(parse([bytes]).events.map((e) => e.data), ["x"]);
});
