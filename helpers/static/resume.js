/*
 * resume.js: an answer survives a dropped connection (helpers/relay/resume.py).
 *
 * The page asks for a resumable answer ("resumable": true); every event then carries an SSE
 * id, "<answer>.<n>". When the connection drops mid-answer (Wi-Fi, a proxy restart), the
 * page reconnects with GET api/chat/resume and "Last-Event-ID: <the last id it has>", and the
 * relay (any worker) sends the events after it: nothing lost, nothing repeated, and the
 * provider was asked once. An event cut in half was never handed over by the parser, so it
 * simply comes again, whole.
 *
 * Deliberate choices:
 *  - Reconnect for as long as the relay keeps the answer (its grace period, 30 s by default),
 *    backing off from 0.25 s to 2 s; a 404 means it expired: say so, do not retry.
 *  - Stop means stop: the Stop button and closing the tab (pagehide) tell the relay with a
 *    POST to api/chat/stop/<answer>, so only a real network drop gets the grace period.
 *    It is a fetch with keepalive rather than navigator.sendBeacon, because it must carry
 *    the access token's Authorization header (access.js) and a beacon cannot.
 */
var ChatResume = (function () {
  "use strict";
  var RESUME_FOR_MS = 30000;
  var current = null;        // the answer being read: its id, to stop it

  function answerOf(eventId) { return eventId.slice(0, eventId.lastIndexOf(".")); }
  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }

  async function errorText(response) {
    try { var body = await response.json(); return body.error.message; } catch (ignored) {
      return "HTTP " + response.status;
    }
  }

  async function reconnect(lastId, signal, onReconnect) {
    var deadline = Date.now() + RESUME_FOR_MS, wait = 250;
    for (;;) {
      if (onReconnect) onReconnect();
      try {
        var response = await fetch("api/chat/resume", {
          headers: RelayAccess.headers({ "Last-Event-ID": lastId,
                                         "Accept": "text/event-stream" }),
          cache: "no-store", signal: signal,
        });
        if (response.ok) return response;
        if (response.status === 404 || response.status === 400) {
          var expired = new Error(await errorText(response));
          expired.name = "ResumeError";
          throw expired;
        }
      } catch (err) {
        if (err.name === "AbortError" || err.name === "ResumeError") throw err;
      }
      if (Date.now() > deadline) throw new Error("the connection dropped and did not come back");
      await sleep(wait);
      wait = Math.min(wait * 2, 2000);
    }
  }

  /* Read an answer's events from response, resuming after drops; onEvent gets each event. */
  async function read(response, onEvent, signal, onReconnect) {
    var lastId = "", ended = false, reader = null;
    function stopped() { return new DOMException("Stopped", "AbortError"); }
    if (signal) {
      if (signal.aborted) { stopAnswer(response.headers.get("X-Relay-Answer")); throw stopped(); }
      // Stop, Escape, Clear: stop upstream, and stop reading (the fetch has no signal)
      signal.addEventListener("abort", function () {
        stop();
        if (reader) reader.cancel().catch(function () {});
      }, { once: true });
    }
    for (;;) {
      // Known before any event: Stop works while the provider has sent nothing yet.
      current = response.headers.get("X-Relay-Answer") || current;
      var parser = SSE.createParser(function (event) {
        if (event.id) { lastId = event.id; current = answerOf(lastId); }
        if (event.type === "done" || event.type === "error") ended = true;
        onEvent(event);
      });
      try {
        reader = response.body.getReader();
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done || (signal && signal.aborted)) break;
          parser.push(chunk.value);
        }
        if (signal && signal.aborted) throw stopped();
        parser.finish();
      } catch (err) {
        if (err.name === "AbortError" || !lastId) throw err;
      }
      if (ended || !lastId) { current = null; return; }
      response = await reconnect(lastId, signal, onReconnect);
    }
  }

  /* Tell the relay to stop an answer (Stop, or the tab going away). */
  function stopAnswer(answer) {
    if (!answer) return;
    fetch("api/chat/stop/" + encodeURIComponent(answer), {
      method: "POST", keepalive: true, headers: RelayAccess.headers({}),
    }).catch(function () { /* the page is going away, or the answer already ended */ });
  }

  /* Stop the answer being read now. */
  function stop() {
    var answer = current;
    current = null;
    stopAnswer(answer);
  }

  /* The response of pending (a fetch made without a signal), or an AbortError as soon as
   * signal aborts. The relay answers only once the provider has sent its first piece, so Stop
   * can come first: the response that arrives after it is stopped on the relay (its id is in
   * the X-Relay-Answer header) and its body cancelled, instead of running its grace period. */
  function untilAborted(pending, signal) {
    return new Promise(function (resolve, reject) {
      function onAbort() {
        reject(new DOMException("Stopped before the answer began", "AbortError"));
        pending.then(function (response) {
          stopAnswer(response.headers.get("X-Relay-Answer"));
          if (response.body) response.body.cancel().catch(function () {});
        }, function () { /* the request failed anyway */ });
      }
      if (signal.aborted) { onAbort(); return; }
      signal.addEventListener("abort", onAbort, { once: true });
      pending.then(function (response) {
        signal.removeEventListener("abort", onAbort);
        resolve(response);
      }, reject);
    });
  }

  window.addEventListener("pagehide", stop);
  return { read: read, stop: stop, untilAborted: untilAborted };
})();
