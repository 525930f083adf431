/*
 * usage.js: the teacher's usage view (usage.html; the relay's side is helpers/relay/usage.py).
 *
 * It reads usage.json with the token of the link it was opened with ("usage#token=...",
 * taken and kept by access.js, as the chat page does) and draws one row per student. Every
 * value is set as text, never as HTML: a name comes from the teacher's file, but a page that
 * shows data builds no markup from it. A student's token gets 403 and the page says so.
 */
var UsageView = (function () {
  "use strict";
  var REFRESH_MS = 15000;
  var COLUMNS = ["requests", "prompt_tokens", "completion_tokens", "total_tokens"];

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function money(amount, currency) {
    if (!amount) return "0";
    var shown = amount < 0.01 ? amount.toPrecision(2) : amount.toFixed(2);
    return currency ? shown + " " + currency : shown;
  }

  function refusals(byKind) {
    var kinds = Object.keys(byKind || {});
    if (!kinds.length) return "";
    return kinds.map(function (kind) {
      return kind.replace(/^relay_/, "").replace(/_limit$/, "") + " " + byKind[kind];
    }).join(", ");
  }

  function when(iso) {
    if (!iso) return "not yet";
    var at = new Date(iso);
    return isNaN(at) ? iso : at.toLocaleTimeString();
  }

  function row(student, currency) {
    var tr = document.createElement("tr");
    tr.dataset.name = student.name;
    if (!student.requests && !student.refused) tr.className = "idle";
    else if (student.refused) tr.className = "refused";
    cell(tr, student.on_roster ? student.name : student.name + " (not on the roster now)");
    COLUMNS.forEach(function (key) { cell(tr, String(student[key]), "num"); });
    cell(tr, money(student.cost, currency), "num");
    cell(tr, refusals(student.refusals), "refusals");
    cell(tr, when(student.last_activity));
    return tr;
  }

  function draw(data) {
    var rows = document.getElementById("rows");
    rows.replaceChildren.apply(rows, data.students.map(function (s) {
      return row(s, data.currency);
    }));
    var totals = document.getElementById("totals");
    totals.replaceChildren();
    cell(totals, "All");
    COLUMNS.forEach(function (key) { cell(totals, String(data.totals[key]), "num"); });
    cell(totals, money(data.totals.cost, data.currency), "num");
    cell(totals, data.totals.refused ? String(data.totals.refused) : "", "refusals");
    cell(totals, "");
    var active = data.students.filter(function (s) { return s.requests > 0; }).length;
    document.getElementById("summary").textContent = data.day + " (" + data.timezone + "), " +
      data.model + (data.offline ? ", offline model: offline counts × real price" : "") + ": " +
      active + " of " + data.students.length + " asked something. Updated " +
      new Date().toLocaleTimeString() + ".";
    document.getElementById("usage").hidden = false;
    document.getElementById("problem").hidden = true;
    document.body.dataset.state = "ready";
  }

  function fail(message) {
    var problem = document.getElementById("problem");
    problem.textContent = message;
    problem.hidden = false;
    document.body.dataset.state = "error";
  }

  function load() {
    return fetch("usage.json", {headers: RelayAccess.headers({Accept: "application/json"}),
                                cache: "no-store"})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.ok) return draw(body);
          var error = body.error || {};
          fail("HTTP " + response.status + " " + (error.type || "") + ": " +
               (error.message || "the relay did not answer with its usage") +
               (RelayAccess.has() ? "" : " Open this page with the teacher's link (…/usage#token=…)."));
        });
      })
      .catch(function (error) { fail("The relay cannot be reached: " + error.message); });
  }

  document.getElementById("refresh").addEventListener("click", load);
  load();
  setInterval(load, REFRESH_MS);
  return {load: load};
})();
