// Premise's console: keeps the status ticks of the messages a page shows up to date, from
// server-sent events the server reads from the database. No other script runs on the pages.
"use strict";
(function () {
  const marks = { queued: "◷", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "✗" };
  function follow() {
    const shown = Array.from(document.querySelectorAll("[data-message]"));
    const ids = Array.from(new Set(shown.map((el) => el.dataset.message)));
    const url = document.body.dataset.events;
    if (!url || ids.length === 0 || !window.EventSource) return;
    const source = new EventSource(url + "?ids=" + encodeURIComponent(ids.join(",")));
    source.addEventListener("status", (event) => {
      const { id, status } = JSON.parse(event.data);
      for (const el of shown) {
        if (el.dataset.message !== id) continue;
        for (const tick of el.querySelectorAll(".ticks")) {
          tick.dataset.status = status;
          tick.title = status;
          tick.textContent = marks[status] || status;
        }
        for (const name of el.querySelectorAll(".status-name")) name.textContent = status;
      }
    });
  }
  document.addEventListener("DOMContentLoaded", follow);
})();
