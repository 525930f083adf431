/*
 * chat.js: the chat page. POST the question, read the answer as Server-Sent Events.
 *
 * Relative URLs only ("api/chat/stream", not "/api/chat/stream"), so the page works both at
 * http://127.0.0.1:4020/ and behind jupyter-server-proxy at /proxy/4020/.
 * "Accept: text/event-stream" is what makes jupyter-server-proxy pass each event on at once
 * instead of buffering the whole answer.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var form = $("ask"), question = $("question"), send = $("send"), stop = $("stop");
  var answer = $("answer"), reasoning = $("reasoning"), reasoningBox = $("reasoning-box");
  var usage = $("usage"), errorBox = $("error"), status = $("status");
  var history = [];          // earlier turns, sent with each question
  var MAX_HISTORY = 20;      // the relay accepts 40 messages; keep the last 10 turns
  var controller = null;     // aborts the running request (Stop)

  function setState(state) {
    status.textContent = state;
    document.body.setAttribute("data-state", state);
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  async function readError(response) {
    var text = await response.text();
    try {
      var body = JSON.parse(text);
      if (body && body.error) return body.error.message + " (" + body.error.type + ")";
    } catch (ignored) { /* not JSON: show the text */ }
    return text || response.statusText;
  }

  async function ask(q) {
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    answer.textContent = "";
    reasoning.textContent = "";
    reasoningBox.hidden = true;
    usage.textContent = "";
    errorBox.hidden = true;
    setState("waiting");
    var text = "", outcome = null;
    try {
      var response = await fetch("api/chat/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify({ question: q, history: history.slice(-MAX_HISTORY) }),
        signal: controller.signal,
      });
      if (!response.ok) {
        showError("HTTP " + response.status + ": " + (await readError(response)));
        setState("error");
        return;
      }
      setState("streaming");
      var parser = SSE.createParser(function (event) {
        var data = JSON.parse(event.data);
        if (event.type === "delta") {
          if (!text && !reasoningBox.hidden) reasoningBox.open = false;  // answer starts: fold
          text += data.content;
          answer.textContent = text;
        } else if (event.type === "reasoning") {
          if (reasoningBox.hidden) {  // the first reasoning: show the thinking, open
            reasoningBox.hidden = false;
            reasoningBox.open = true;
          }
          reasoning.textContent += data.content;
        } else if (event.type === "usage") {
          usage.textContent = "tokens: " + data.prompt_tokens + " prompt + " +
            data.completion_tokens + " completion = " + data.total_tokens;
        } else if (event.type === "done") {
          outcome = "done";
          if (data.finish_reason !== "stop") showError("finish_reason: " + data.finish_reason);
          setState("done");
        } else if (event.type === "error") {
          outcome = "error";
          showError(data.message + " (" + data.type + ")");
          setState("error");
        }
      });
      var reader = response.body.getReader();
      for (;;) {
        var read = await reader.read();
        if (read.done) break;
        parser.push(read.value);
      }
      parser.finish();
      if (outcome === null) {
        showError("The connection ended before the answer was complete.");
        setState("error");
      } else if (outcome === "done") {
        history.push({ role: "user", content: q }, { role: "assistant", content: text });
      }
    } catch (err) {
      if (err.name === "AbortError") {
        setState("stopped");
      } else {
        showError("Network error: " + err.message);
        setState("error");
      }
    } finally {
      controller = null;
      send.disabled = false;
      stop.disabled = true;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = question.value.trim();
    if (q && !controller) ask(q);
  });
  stop.addEventListener("click", function () {
    if (controller) controller.abort();
  });
  setState("idle");
})();
