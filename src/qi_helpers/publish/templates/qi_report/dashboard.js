/* Sorting and filtering of the microsystems table. Without this script the page is a plain
   table: the filters stay hidden and the column headers are plain text. No network access. */
(function () {
  "use strict";
  var table = document.getElementById("qi-ms-table");
  var form = document.getElementById("qi-filters");
  if (!table || !form) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = {
    search: document.getElementById("qi-search"),
    kind: document.getElementById("qi-kind"),
    site: document.getElementById("qi-site"),
    role: document.getElementById("qi-role"),
    status: document.getElementById("qi-status")
  };
  var count = document.getElementById("qi-count");
  // Each row's text, read once: with 500 microsystems, reading it on every key press made typing
  // in the search box lag.
  // (cell by cell, so that the text of one cell never runs into the next one's)
  var texts = rows.map(function (row) {
    return Array.prototype.map.call(row.cells, function (cell) { return cell.textContent; })
      .join("\n").toLowerCase();
  });
  function apply() {
    var q = controls.search.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row, i) {
      var ok = (!q || texts[i].indexOf(q) !== -1) &&
        (!controls.kind.value || row.dataset.kind === controls.kind.value) &&
        (!controls.site.value || row.dataset.site === controls.site.value) &&
        (!controls.role.value || row.dataset.role.split(" ").indexOf(controls.role.value) !== -1) &&
        (!controls.status.value || row.dataset.status === controls.status.value);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = "Showing " + shown + " of " + rows.length + " microsystems";
  }
  Object.keys(controls).forEach(function (key) {
    controls[key].addEventListener(key === "search" ? "input" : "change", apply);
  });
  function cellValue(row, index) {
    var cell = row.cells[index];
    return (cell.getAttribute("data-value") || cell.textContent).trim().toLowerCase();
  }
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, index) {
    if (!th.hasAttribute("data-sort")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      // The sort keys are read once per row (not twice per comparison), and the rows go back
      // into the table in one move, so the browser lays the table out once.
      var keyed = rows.map(function (row, i) {
        return {row: row, text: texts[i], key: cellValue(row, index)};
      });
      keyed.sort(function (a, b) {
        var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
        return ascending ? c : -c;
      });
      var moved = document.createDocumentFragment();
      rows = keyed.map(function (k) { moved.appendChild(k.row); return k.row; });
      texts = keyed.map(function (k) { return k.text; });
      body.appendChild(moved);
    });
  });
  // Filtering happens as the reader types; Enter must not submit (and reload) the page. Set
  // here, not as an onsubmit attribute: the page's policy runs no inline handler.
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.hidden = false;
  apply();
}());
