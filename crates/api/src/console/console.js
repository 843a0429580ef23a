// Keyplane console: keeps the tables current by polling /console/api/overview, which sends
// the same cells the server rendered. Text goes in with textContent, never as markup.
(function () {
  "use strict";
  var FAST = 1000, SLOW = 4000, timer = null;
  var live = document.getElementById("live");

  function fill(tableId, table) {
    var body = document.querySelector("#" + tableId + " tbody");
    if (!body) return;
    var rows = document.createDocumentFragment();
    if (table.rows.length === 0) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      tr.className = "empty";
      td.colSpan = Number(body.getAttribute("data-columns")) || 1;
      td.textContent = body.getAttribute("data-empty") || "";
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    table.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = cell.t;
        if (cell.c) td.className = cell.c;
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    // The page's own query carries the audit filters: the refreshed trail stays filtered.
    fetch("/console/api/overview" + window.location.search,
          { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          live.textContent = "(signed out: reload the page)";
          return null;
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (v) {
        if (!v) return;
        fill("instances-table", v.instances);
        fill("key-pairs-table", v.key_pairs);
        fill("agents-table", v.agents);
        fill("audit-table", v.audit);
        document.getElementById("as-of").textContent = v.as_of;
        live.textContent = v.operating > 0
          ? "(live: " + v.operating + " operation(s) in progress)"
          : "(live)";
        document.body.setAttribute("data-live", "1");
        schedule(v.operating > 0 ? FAST : SLOW);
      })
      .catch(function (e) {
        live.textContent = "(cannot reach the server: " + e.message + "; retrying)";
        schedule(SLOW);
      });
  }

  if (live) {
    live.textContent = "(live)";
    poll();
  }
})();
