/*
 * sse.js: a small, incremental Server-Sent Events parser for fetch() streams.
 *
 * EventSource can only GET, so a page that POSTs a question reads the answer with
 * fetch() + response.body.getReader() and parses the events itself. Two things make that
 * harder than splitting on "\n\n":
 *
 *  - a network read can end anywhere: inside a line, inside a "\r\n" pair, even inside
 *    one UTF-8 character (Chinese text is 3 bytes a character). So bytes go through one
 *    TextDecoder with {stream: true}, and a CR at the end of one read remembers that an
 *    LF at the start of the next one belongs to it;
 *  - the spec allows LF, CR and CRLF line endings, several data: lines per event (joined
 *    with "\n"), comments (":" lines, e.g. keep-alives) and fields we ignore.
 *
 * It follows the WHATWG "event stream interpretation" rules, minus reconnection.
 * Works as a classic <script> (window.SSE) and in Node (require) for the tests.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.SSE = api;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /**
   * Create a parser. onEvent({type, data, id}) is called once per complete event;
   * options.onComment(text) once per comment line.
   * push(chunk) takes a Uint8Array (or a string); finish() ends the stream.
   */
  function createParser(onEvent, options) {
    var onComment = (options && options.onComment) || null;
    var decoder = new TextDecoder("utf-8");
    var pending = "";        // text after the last line ending
    var afterCR = false;     // the previous text ended with CR: a leading LF pairs with it
    var dataLines = [];
    var eventType = "";
    var lastEventId = "";

    function dispatch() {
      if (dataLines.length === 0) {   // no data: the spec drops the event
        eventType = "";
        return;
      }
      var event = { type: eventType || "message", data: dataLines.join("\n"), id: lastEventId };
      dataLines = [];
      eventType = "";
      onEvent(event);
    }

    function processLine(line) {
      if (line === "") {
        dispatch();
        return;
      }
      if (line.charAt(0) === ":") {
        if (onComment) onComment(line.slice(1).replace(/^ /, ""));
        return;
      }
      var colon = line.indexOf(":");
      var field = colon === -1 ? line : line.slice(0, colon);
      var value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") eventType = value;
      else if (field === "data") dataLines.push(value);
      else if (field === "id" && value.indexOf("\u0000") === -1) lastEventId = value;
      // "retry" and unknown fields are ignored: this parser does not reconnect.
    }

    function feed(text) {
      if (text === "") return;
      if (afterCR && text.charAt(0) === "\n") text = text.slice(1);
      afterCR = false;
      var buffer = pending + text;
      var start = 0;
      for (var i = 0; i < buffer.length; i++) {
        var c = buffer.charAt(i);
        if (c !== "\r" && c !== "\n") continue;
        processLine(buffer.slice(start, i));
        if (c === "\r") {
          if (i + 1 === buffer.length) afterCR = true;
          else if (buffer.charAt(i + 1) === "\n") i++;
        }
        start = i + 1;
      }
      pending = buffer.slice(start);
    }

    return {
      push: function (chunk) {
        feed(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
      },
      finish: function () {
        feed(decoder.decode());
        // An event without its closing blank line is incomplete: the spec discards it.
        pending = "";
        dataLines = [];
        eventType = "";
      },
    };
  }

  return { createParser: createParser };
});
