/*
 * access.js: the relay's access token, for a relay that requires one (helpers/relay/access.py).
 *
 * The link the relay prints (or a notebook shows) ends with "#token=...". A browser never
 * sends the fragment to a server, so the token reaches no access log; this script takes it
 * from the address once, keeps it in sessionStorage (this tab only, gone when the tab closes)
 * and removes it from the address bar, so a projected screen, a bookmark or the history does
 * not show it. Every request to the relay then carries "Authorization: Bearer <token>".
 * The storage key includes the page's path: behind JupyterHub many relays share one origin.
 */
var RelayAccess = (function () {
  "use strict";
  var KEY = "relay.token:" + location.pathname;
  var memory = null;   // when sessionStorage is unavailable (a sandboxed frame)

  function read() {
    try { return sessionStorage.getItem(KEY) || memory; } catch (ignored) { return memory; }
  }

  (function takeFromFragment() {
    var match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!match) return;
    memory = decodeURIComponent(match[1]);
    try { sessionStorage.setItem(KEY, memory); } catch (ignored) { /* memory keeps it */ }
    history.replaceState(null, "", location.pathname + location.search);
  })();

  return {
    /** The headers given, plus Authorization when this tab holds a token. */
    headers: function (headers) {
      var out = {}, token = read();
      Object.keys(headers || {}).forEach(function (name) { out[name] = headers[name]; });
      if (token) out.Authorization = "Bearer " + token;
      return out;
    },
    /** True when this tab holds a token for this page. */
    has: function () { return Boolean(read()); },
  };
})();
