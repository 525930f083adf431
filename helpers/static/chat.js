/*
 * chat.js: the chat page. A conversation of turns; each answer is read as Server-Sent Events.
 *
 * Relative URLs only ("api/chat/stream", not "/api/chat/stream"), so the page works both at
 * http://127.0.0.1:4020/ and behind jupyter-server-proxy at /proxy/4020/.
 * "Accept: text/event-stream" is what makes jupyter-server-proxy pass each event on at once
 * instead of buffering the whole answer.
 * Requests go with RelayAccess.headers(...) (access.js): the relay's token, when it needs one.
 * Answers are resumable: a dropped connection continues where it was (resume.js).
 *
 * Deliberate choices:
 *  - A turn is a question and an answer made of parts (thinking, text, tool calls the relay
 *    ran; later files), each in its own element, so a new kind of part adds an element.
 *  - Only answers that finished ("done") go back as history; a stopped or failed answer stays
 *    on screen, marked, and its partial text is not sent as if the model had said it all.
 *  - Redraws follow the screen: events only append text, a redraw per animation frame renders
 *    (render.js keeps that linear in the answer); the status line changes at most 4 times a
 *    second. The answer region is aria-busy while it streams, so a screen reader announces the
 *    answer once, when it is complete, not on every token.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var form = $("ask"), question = $("question"), send = $("send"), stop = $("stop");
  var transcript = $("transcript"), status = $("status"), template = $("turn-template");
  var MAX_HISTORY = 20;       // messages: the relay accepts 40; keep the last 10 turns
  var MAX_CHARS = 20000;      // the relay's limit per message
  var STATUS_EVERY_MS = 250;
  var turns = [];             // {question, pieces, reasoning, outcome, el, ...}
  var controller = null;      // aborts the running request (Stop)

  function setState(state, announcement) {
    document.body.setAttribute("data-state", state);
    status.textContent = announcement || state;
  }

  function history(before) {
    var messages = [];
    turns.slice(0, before).forEach(function (turn) {
      if (turn.outcome !== "done") return;
      messages.push({ role: "user", content: turn.question.slice(0, MAX_CHARS) },
                    { role: "assistant", content: turn.text().slice(0, MAX_CHARS) });
    });
    return messages.slice(-MAX_HISTORY);
  }

  function newTurn(q) {
    var el = template.content.firstElementChild.cloneNode(true);
    var find = function (cls) { return el.querySelector("." + cls); };
    var turn = {
      question: q, pieces: [], outcome: null, tokens: 0, usage: null, tools: [],
      afterTool: false,
      started: performance.now(), firstToken: null, ended: null, el: el,
      parts: find("parts"), thinking: find("thinking"), errorBox: find("error"),
      stats: find("stats"), copy: find("copy"), retry: find("retry"),
      text: function () { return this.pieces.join(""); },
    };
    find("question-text").textContent = q;
    turn.answer = ChatRender.createView(find("part-text"));
    turn.thought = ChatRender.createView(find("thinking-text"));
    var n = turns.length + 1;
    turn.copy.setAttribute("aria-label", "Copy answer " + n);
    turn.retry.setAttribute("aria-label", "Retry answer " + n);
    turn.copy.addEventListener("click", function () { copyAnswer(turn); });
    turn.retry.addEventListener("click", retryLast);
    transcript.appendChild(el);
    window.scrollTo(0, document.scrollingElement.scrollHeight);  // the new turn in view
    turns.push(turn);
    return turn;
  }

  function statsLine(turn, state) {
    var parts = [state];
    var tokens = turn.usage && turn.ended ? turn.usage.completion_tokens : turn.tokens;
    parts.push(tokens + " tokens");
    if (turn.firstToken !== null) {
      parts.push("first token after " + ((turn.firstToken - turn.started) / 1000).toFixed(2) + " s");
      var span = ((turn.ended || performance.now()) - turn.firstToken) / 1000;
      if (span >= 0.1) parts.push((tokens / span).toFixed(1) + " tokens/s");  // not a burst
    }
    if (turn.usage) {
      parts.push("usage " + turn.usage.prompt_tokens + " prompt + " +
                 turn.usage.completion_tokens + " completion = " + turn.usage.total_tokens);
      // The relay prices it (helpers/money/cost.py); no price known, no figure (not "$0").
      if (turn.usage.cost) parts.push(turn.usage.cost.text);
    }
    return parts.join(" · ");
  }

  function showError(turn, text) {
    turn.errorBox.textContent = text;
    turn.errorBox.hidden = false;
  }

  async function readError(response) {
    var text = await response.text();
    try {
      var body = JSON.parse(text);
      if (body && body.error) return body.error.message + " (" + body.error.type + ")";
    } catch (ignored) { /* not JSON: show the text */ }
    return text || response.statusText;
  }

  function follows() {   // is the reader at the bottom? then keep the new text in view
    var page = document.scrollingElement;
    return page.scrollHeight - page.scrollTop - page.clientHeight < 120;
  }

  function scheduler(turn) {
    var frame = null, lastStats = 0;
    function draw() {
      frame = null;
      var follow = follows();
      turn.thought.redraw();
      turn.answer.redraw();
      var now = performance.now();
      if (now - lastStats >= STATUS_EVERY_MS) {
        lastStats = now;
        turn.stats.textContent = statsLine(turn, "streaming");
      }
      if (follow) window.scrollTo(0, document.scrollingElement.scrollHeight);
    }
    return {
      soon: function () { if (frame === null) frame = requestAnimationFrame(draw); },
      now: function () { if (frame !== null) cancelAnimationFrame(frame); draw(); },
    };
  }

  // A tool call the relay ran is a part of its own (name, arguments, result), between the
  // text before it and the text after it. Only textContent: nothing in it is ever HTML.
  function toolPart(turn, n) {
    if (!turn.tools[n]) {
      var el = document.createElement("div"), head = document.createElement("div");
      el.className = "part part-tool";
      el.setAttribute("role", "group");
      var tool = { el: el, name: document.createElement("strong"),
                   args: document.createElement("code"), result: document.createElement("output") };
      tool.name.className = "tool-name";
      tool.args.className = "tool-args";
      tool.result.className = "tool-result";
      head.append("Tool ", tool.name, " ", tool.args);
      el.append(head, tool.result);
      turn.answer.redraw();       // the text so far stays above the call
      turn.parts.appendChild(el);
      turn.afterTool = true;      // text after the call gets a part of its own
      turn.tools[n] = tool;
    }
    return turn.tools[n];
  }

  function onToolEvent(turn, event, data) {
    var tool = toolPart(turn, data.part);
    if (event.type === "tool_call") {
      tool.name.textContent = data.name;
      tool.el.setAttribute("aria-label", "Tool call: " + data.name);
    } else if (event.type === "tool_arguments") {
      tool.args.textContent += data.content;
    } else {
      tool.args.textContent = data.arguments;
      tool.result.textContent = "→ " + data.result;
      tool.el.setAttribute("data-state", "done");
    }
  }

  function onEvent(turn, redraw, event) {
    var data = JSON.parse(event.data);
    if (event.type === "tool_call" || event.type === "tool_arguments" ||
        event.type === "tool_result") {
      onToolEvent(turn, event, data);
    } else if (event.type === "tool_stopped") {
      showError(turn, data.message);
    } else if (event.type === "delta" || event.type === "reasoning") {
      if (turn.firstToken === null) turn.firstToken = performance.now();
      turn.tokens++;
      if (event.type === "delta") {
        if (turn.afterTool) {
          var text = document.createElement("div");
          text.className = "part part-text md";
          turn.parts.appendChild(text);
          turn.answer = ChatRender.createView(text);
          turn.afterTool = false;
        }
        if (!turn.pieces.length && !turn.thinking.hidden) turn.thinking.open = false;  // fold
        turn.pieces.push(data.content);
        turn.answer.append(data.content);
      } else {
        if (turn.thinking.hidden) { turn.thinking.hidden = false; turn.thinking.open = true; }
        turn.thought.append(data.content);
      }
      redraw.soon();
    } else if (event.type === "usage") {
      turn.usage = data;
    } else if (event.type === "done") {
      turn.outcome = "done";
      if (data.finish_reason !== "stop") {
        showError(turn, "The answer was cut short (finish_reason: " + data.finish_reason + ").");
      }
    } else if (event.type === "error") {
      turn.outcome = "error";
      showError(turn, data.message + " (" + data.type + ")");
    }
  }

  async function ask(q, turn) {
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    turns.forEach(function (t) { t.retry.hidden = true; });
    setState("waiting", "Waiting for the answer…");
    turn.stats.textContent = "waiting for the first token…";
    var redraw = scheduler(turn), state;
    try {
      // No signal on the fetch itself: Stop before the answer begins must still reach the
      // relay, which learns nothing from a request the browser dropped (resume.js).
      var response = await ChatResume.untilAborted(fetch("api/chat/stream", {
        method: "POST",
        headers: RelayAccess.headers({ "Content-Type": "application/json",
                                       "Accept": "text/event-stream" }),
        body: JSON.stringify(Object.assign({ question: q, history: history(turns.indexOf(turn)),
                                             resumable: true },   // survives a drop: resume.js
                                           Attach.body())),   // attached files (attach.js)
      }), controller.signal);
      if (!response.ok) {
        turn.outcome = "error";
        showError(turn, "HTTP " + response.status + ": " + (await readError(response)));
      } else {
        setState("streaming", "Answering…");
        await ChatResume.read(response, function (event) { onEvent(turn, redraw, event); },
                              controller.signal, function () {
                                setState("streaming", "Connection lost; resuming…"); });
        if (turn.outcome === null) {
          turn.outcome = "error";
          showError(turn, "The connection ended before the answer was complete.");
        }
      }
    } catch (err) {
      if (err.name === "AbortError") {
        turn.outcome = "stopped";
      } else {
        turn.outcome = "error";
        showError(turn, "Network error: " + err.message);
      }
    } finally {
      turn.ended = performance.now();
      redraw.now();
      state = turn.outcome;
      turn.stats.textContent = statsLine(turn, state);
      turn.parts.setAttribute("aria-busy", "false");
      turn.el.setAttribute("data-outcome", state);
      turn.retry.hidden = turn !== turns[turns.length - 1];
      controller = null;
      send.disabled = false;
      stop.disabled = true;
      if (turns.indexOf(turn) < 0) setState("idle", "Conversation cleared.");
      else setState(state, state === "done" ? "Answer complete." : state === "stopped"
        ? "Stopped; the text so far is kept." : "Error: " + turn.errorBox.textContent);
    }
  }

  function submit(q) {
    if (!q || controller) return;
    question.value = "";
    question.focus();
    ask(q, newTurn(q));
  }

  function retryLast() {
    var last = turns[turns.length - 1];
    if (!last || controller) return;
    turns.pop();
    last.el.remove();
    question.focus();
    ask(last.question, newTurn(last.question));
  }

  function copyAnswer(turn) {
    var text = turn.text();
    var done = function () { turn.copy.textContent = "Copied"; setTimeout(function () {
      turn.copy.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text, done); });
    } else {
      fallbackCopy(text, done);
    }
  }

  function fallbackCopy(text, done) {   // plain http on another host: no Clipboard API
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try { if (document.execCommand("copy")) done(); } finally { area.remove(); }
  }

  function clear() {
    if (controller) controller.abort();
    turns = [];
    transcript.replaceChildren();
    setState("idle", "Conversation cleared.");
    question.focus();
  }

  function setLarge(on) {
    document.documentElement.classList.toggle("large", on);
    $("large").setAttribute("aria-pressed", String(on));
    try { localStorage.setItem("chat.large", on ? "1" : ""); } catch (ignored) { /* private */ }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit(question.value.trim());
  });
  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();   // Enter sends; Shift+Enter (or an IME's Enter) is a new line
      submit(question.value.trim());
    } else if (event.key === "Escape" && controller) {
      controller.abort();
    }
  });
  stop.addEventListener("click", function () {
    if (controller) controller.abort();
    question.focus();
  });
  $("clear").addEventListener("click", clear);
  $("large").addEventListener("click", function () {
    setLarge(!document.documentElement.classList.contains("large"));
  });
  try { setLarge(localStorage.getItem("chat.large") === "1"); } catch (ignored) { /* private */ }
  window.chatPage = {   // for tests and the curious: the conversation as data
    turns: function () {
      return turns.map(function (t) {
        return { question: t.question, text: t.text(), outcome: t.outcome };
      });
    },
  };
  setState("idle", "Ready.");
})();
