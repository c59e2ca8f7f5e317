/* The home page's claims table: filters (verdict, section, tag, text) and sorting, offline.
   Filters can be set from the URL, e.g. index.html#verdict=refuted&tag=scaling. */
(function () {
  "use strict";
  function setup() {
    var table = document.querySelector("table.pp-claims");
    var form = document.querySelector(".pp-filters");
    if (!table || !form) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var inputs = form.querySelectorAll("[data-filter]");
    var shown = form.querySelector("output.pp-shown");

    function wanted() {
      var w = {};
      inputs.forEach(function (el) { if (el.value) w[el.getAttribute("data-filter")] = el.value; });
      return w;
    }
    function keeps(row, w) {
      var d = row.dataset;
      if (w.verdict === "disagree" && d.disagree !== "1") return false;
      if (w.verdict && w.verdict !== "disagree" && d.verdict !== w.verdict) return false;
      if (w.section && d.section !== w.section) return false;
      if (w.tag && (" " + d.tags + " ").indexOf(" " + w.tag + " ") < 0) return false;
      if (w.text && (row.textContent + " " + d.id).toLowerCase().indexOf(w.text.toLowerCase()) < 0) return false;
      return true;
    }
    function apply(fromHash) {
      var w = wanted(), n = 0;
      rows.forEach(function (r) { var k = keeps(r, w); r.hidden = !k; if (k) n++; });
      if (shown) shown.textContent = n + " of " + rows.length + " claims shown";
      if (!fromHash) {
        var h = Object.keys(w).map(function (k) { return k + "=" + encodeURIComponent(w[k]); }).join("&");
        history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
      }
    }
    function fromHash() {
      var params = {};
      location.hash.replace(/^#/, "").split("&").forEach(function (p) {
        var kv = p.split("=");
        if (kv.length === 2) params[kv[0]] = decodeURIComponent(kv[1]);
      });
      inputs.forEach(function (el) { el.value = params[el.getAttribute("data-filter")] || ""; });
      apply(true);
    }
    inputs.forEach(function (el) { el.addEventListener("input", function () { apply(false); }); });
    window.addEventListener("hashchange", fromHash);

    var dir = {};
    table.querySelectorAll("th[data-col] button").forEach(function (b) {
      b.addEventListener("click", function () {
        var col = +b.parentNode.getAttribute("data-col");
        dir[col] = -(dir[col] || -1);
        var key = function (r) {
          var c = r.cells[col];
          return c.getAttribute("data-sort") || c.textContent.trim().toLowerCase();
        };
        rows.sort(function (a, c) { return key(a) < key(c) ? -dir[col] : key(a) > key(c) ? dir[col] : 0; });
        rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
        table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
        b.parentNode.setAttribute("aria-sort", dir[col] > 0 ? "ascending" : "descending");
      });
    });
    fromHash();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
