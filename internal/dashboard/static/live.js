// Refreshes the overview's table in place: fetches the server-rendered
// fragment every data-refresh milliseconds. Without this script the page
// refreshes itself (a meta refresh inside <noscript>).
"use strict";
(function () {
  var box = document.getElementById("ov");
  var every = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (!box || !(every >= 100)) {
    return;
  }
  var busy = false;
  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch("/fragment/overview", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.text();
      })
      .then(function (html) {
        // The fragment is this server's own template output, escaped there.
        box.innerHTML = html;
        box.removeAttribute("data-stale");
      })
      .catch(function () {
        box.setAttribute("data-stale", "true");
      })
      .then(function () {
        busy = false;
      });
  }
  setInterval(tick, every);
})();
