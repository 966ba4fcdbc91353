// Xenrad operator console: live dashboard over server-sent events, SVG charts, and a
// keyboard shortcut ("/" focuses the search field). No dependencies.
(function () {
  "use strict";
  var COLORS = { fhir: "#0b57b0", hl7: "#7a3db8", mpps: "#a35200", mllp: "#0f7a6c", dicom: "#b0166b" };
  var SVG = "http://www.w3.org/2000/svg";

  document.addEventListener("keydown", function (e) {
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
      var s = document.querySelector("input[type=search]");
      if (s) { e.preventDefault(); s.focus(); }
    }
  });

  function el(name, attrs) {
    var n = document.createElementNS(SVG, name);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    return n;
  }

  function draw(box, chart) {
    if (!box || !chart) return;
    var W = 600, H = 180, P = 28;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", "aria-hidden": "true" });
    var max = 1;
    Object.keys(chart.doors).forEach(function (d) {
      chart.doors[d].accepted.forEach(function (v, i) { max = Math.max(max, v, chart.doors[d].errors[i]); });
    });
    var n = chart.points, x = function (i) { return P + (W - P - 4) * i / Math.max(1, n - 1); };
    var y = function (v) { return H - 16 - (H - 28) * v / max; };
    svg.appendChild(el("line", { x1: P, y1: y(0), x2: W - 4, y2: y(0), stroke: "#7b8794" }));
    var top = el("text", { x: 2, y: y(max) + 4, "font-size": 11, fill: "#4a525c" });
    top.textContent = String(max);
    svg.appendChild(top);
    var zero = el("text", { x: 2, y: y(0) + 4, "font-size": 11, fill: "#4a525c" });
    zero.textContent = "0";
    svg.appendChild(zero);
    Object.keys(chart.doors).forEach(function (d) {
      ["accepted", "errors"].forEach(function (k) {
        var pts = chart.doors[d][k].map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); }).join(" ");
        var a = { points: pts, fill: "none", stroke: COLORS[d] || "#000", "stroke-width": 2 };
        if (k === "errors") a["stroke-dasharray"] = "4 3";
        svg.appendChild(el("polyline", a));
      });
    });
    box.replaceChildren(svg);
  }

  function fmtPct(v) { return v === null || v === undefined ? "–" : v.toFixed(1) + " %"; }
  function fmtBytes(b) {
    if (typeof b !== "number") return "unknown";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(1) + " " + u[i];
  }

  function apply(s) {
    s.doors.forEach(function (d) {
      var card = document.querySelector('.card[data-door="' + d.id + '"]');
      if (!card) return;
      var set = function (k, v) { var n = card.querySelector('[data-k="' + k + '"]'); if (n) n.textContent = v; };
      set("per_minute", d.per_minute);
      set("accepted", d.accepted);
      set("errors", d.errors);
      set("acceptance_pct", fmtPct(d.acceptance_pct));
      set("error_pct", fmtPct(d.error_pct));
      set("open", d.open === null ? "–" : d.open);
    });
    var h = s.health || {};
    var hs = function (k, v) { var n = document.querySelector('[data-h="' + k + '"]'); if (n) n.textContent = v; };
    if (h.store) {
      hs("status", h.status);
      hs("read", h.store.ok ? "ok, " + h.store.read_ms + " ms" : "failing");
      hs("db", fmtBytes(h.store.database_bytes) + ", WAL " + fmtBytes(h.store.wal_bytes));
      hs("disk", fmtBytes(h.disk.free_bytes) + " of " + fmtBytes(h.disk.total_bytes));
      hs("journal", h.journal.lanes + " lanes, " + fmtBytes(h.journal.bytes));
      hs("dropped", h.message_log.dropped);
    }
    var u = document.getElementById("updated");
    if (u) u.textContent = s.time;
    draw(document.getElementById("chart-hour"), s.hour);
    draw(document.getElementById("chart-day"), s.day);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var first = document.getElementById("snapshot");
    if (!first) return;
    try { apply(JSON.parse(first.textContent)); } catch (e) { /* the server-drawn page stays */ }
    if (!window.EventSource) return;
    var es = new EventSource("/events");
    es.addEventListener("snapshot", function (ev) { apply(JSON.parse(ev.data)); document.body.dataset.live = "1"; });
    es.onerror = function () {
      var st = document.getElementById("live-status");
      if (st) st.dataset.state = "reconnecting";
    };
  });
})();
