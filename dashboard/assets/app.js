// Spool dashboard behaviour, served as a static file under a CSP without
// 'unsafe-inline'. Every page works without it; it adds:
// 1. Auto-refresh: on pages with a #live element and data-refresh > 0, fetch
//    the same URL every few seconds and swap in the new #live element. The
//    server renders (and escapes) that HTML; DOMParser never runs scripts.
// 2. Confirmation for buttons with data-confirm (bulk and destructive actions).
// 3. Select-all: a checkbox with data-select-all ticks every `id` box of its form.
// 4. Times in the viewer's zone: a <time> (UTC text, or a datetime attribute)
//    shows local time with UTC on hover; one with data-rel keeps its relative
//    text and gets both on hover; data-short shows month-day hour:minute.
// 5. Error pages: "Back" (data-back) goes back in history; "Try again"
//    (data-reload) reloads.
(function () {
  "use strict";
  var body = document.body;
  var secs = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var live = document.getElementById("live");
  var toggle = document.getElementById("autorefresh");
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localTimes(root) {
    var times = root.querySelectorAll("time");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      // The server writes UTC: `datetime`, or text like 2025-01-02 03:04:05.123 UTC.
      var m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(\.\d+)?) UTC$/.exec(t.textContent.trim());
      var when = t.getAttribute("datetime") || (m ? m[1] + "T" + m[2] + "Z" : "");
      if (!when || t.hasAttribute("data-local")) { continue; }
      t.setAttribute("data-local", "");
      var d = new Date(when);
      if (isNaN(d.getTime())) { continue; }
      var utc = t.getAttribute("title") || t.textContent;
      var local = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
        (m && m[3] ? "." + ("00" + d.getMilliseconds()).slice(-3) : "");
      var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone || "local");
      if (t.hasAttribute("data-rel")) {
        t.setAttribute("title", local + " " + zone + " (" + utc + ")");
      } else if (t.hasAttribute("data-short")) {
        t.textContent = pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
        t.setAttribute("title", utc);
      } else {
        t.textContent = local + " " + zone;
        t.setAttribute("title", utc);
      }
    }
  }
  localTimes(document);
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
          if (fresh && current) {
            var node = document.importNode(fresh, true);
            localTimes(node);
            current.replaceWith(node);
          }
        })
        .catch(function () { /* keep the last good view; try again next tick */ });
    }, secs * 1000);
  } else if (toggle) {
    toggle.parentNode.hidden = true;
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); return; }
    var back = ev.target.closest ? ev.target.closest("[data-back]") : null;
    if (back && window.history.length > 1) { ev.preventDefault(); window.history.back(); return; }
    var reload = ev.target.closest ? ev.target.closest("[data-reload]") : null;
    if (reload) { ev.preventDefault(); window.location.reload(); }
  });
  document.addEventListener("change", function (ev) {
    var all = ev.target;
    if (!all.hasAttribute || !all.hasAttribute("data-select-all") || !all.form) { return; }
    var boxes = all.form.querySelectorAll("input[type=checkbox][name=id]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
  });
})();
