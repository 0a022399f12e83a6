// Spool dashboard behaviour, served as a static file under a CSP without
// 'unsafe-inline'. Two duties, nothing else:
// 1. Auto-refresh: on pages with a #live element and data-refresh > 0, fetch
//    the same URL every few seconds and swap in the new #live element. The
//    server renders (and escapes) that HTML; DOMParser never runs scripts.
// 2. Confirmation for buttons with data-confirm (bulk "all" actions).
(function () {
  "use strict";
  var body = document.body;
  var secs = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var live = document.getElementById("live");
  var toggle = document.getElementById("autorefresh");
  if (live && secs > 0) {
    setInterval(function () {
      if (toggle && !toggle.checked) { return; }
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("live");
          var current = document.getElementById("live");
          if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
        })
        .catch(function () { /* keep the last good view; try again next tick */ });
    }, secs * 1000);
  } else if (toggle) {
    toggle.parentNode.hidden = true;
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
  });
})();
