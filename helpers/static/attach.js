/* The page's file attachment: upload to the relay, which hands the file to the provider's
 * Files API (the key stays on the server); the chosen files' ids go with every question.
 * Attach.body() is what chat.js adds to its request body: {files: [ids]} or nothing.
 * Errors (too large, wrong type, empty) show next to the button; nothing else is lost. */
var Attach = (function () {
  "use strict";
  var files = [];   // [{id, filename}]
  var input = document.getElementById("attach");
  var list = document.getElementById("attached");

  function show(text, failed) {
    list.textContent = text;
    list.classList.toggle("error", Boolean(failed));
  }

  function names() {
    return files.map(function (f) { return f.filename; }).join(", ");
  }

  async function upload(file) {
    var form = new FormData();
    form.append("file", file, file.name);
    show("uploading " + file.name + "…");
    var response = await fetch("api/files", {
      method: "POST", body: form,
      headers: window.RelayAccess ? RelayAccess.headers({}) : {} });   // access.js: the token
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      var message = (data.error && data.error.message) || ("HTTP " + response.status);
      show("not attached: " + message, true);
      return;
    }
    files.push({ id: data.id, filename: data.filename });
    show("attached: " + names());
  }

  if (input) {
    input.addEventListener("change", function () {
      var chosen = input.files && input.files[0];
      input.value = "";
      if (chosen) upload(chosen).catch(function (err) { show("not attached: " + err, true); });
    });
  }

  return {
    body: function () { return files.length ? { files: files.map(function (f) { return f.id; }) } : {}; },
    files: function () { return files.slice(); },
  };
})();
