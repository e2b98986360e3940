// CaseBridge console: refresh a region of the page from the server, every few seconds.
// <div data-refresh="/console/…/live" data-every="10"> gets its content replaced by what
// that address answers (the same markup the page was made with). Nothing else runs here:
// no inline script anywhere, so the console's Content-Security-Policy allows this file only.
(function () {
  "use strict";

  function refresh(region) {
    var every = Math.max(2, parseInt(region.getAttribute("data-every"), 10) || 10) * 1000;
    var busy = false;

    function tick() {
      // Do not pull the page from under someone using it with the keyboard.
      if (busy || document.hidden || region.contains(document.activeElement)) {
        return;
      }
      busy = true;
      fetch(region.getAttribute("data-refresh"), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        cache: "no-store"
      }).then(function (response) {
        if (response.redirected) {
          window.location.reload();  // the session ended: the login page
          return null;
        }
        if (response.ok && region.hasAttribute("data-reload-when-back")) {
          window.location.reload();  // back after an outage: the whole page again
          return null;
        }
        return response.text();
      }).then(function (html) {
        if (html !== null) {
          region.innerHTML = html;
        }
      }).catch(function () {
        var note = region.querySelector(".updated");
        if (note) {
          note.textContent = "The gateway does not answer; trying again.";
          note.classList.add("stale");
        }
      }).then(function () {
        busy = false;
      });
    }

    window.setInterval(tick, every);
  }

  document.querySelectorAll("[data-refresh]").forEach(refresh);
}());
