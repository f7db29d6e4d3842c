/* Editable tables of task forms: add and remove rows.
 * Each table field (fieldset[data-table-field]) holds its rows in tbody[data-rows] and a
 * <template data-row-template> whose names contain "__index__"; a new row takes the next
 * unused index, so the server reads rows as name-<index>-<property> in index order. */
(function () {
  "use strict";

  var PLACEHOLDER = /__index__/g;
  var ATTRS = ["name", "id", "for", "aria-describedby"];

  function nextIndex(field) {
    var next = parseInt(field.getAttribute("data-next-index") || "0", 10);
    if (isNaN(next)) { next = 0; }
    field.setAttribute("data-next-index", String(next + 1));
    return next;
  }

  function addRow(field) {
    var template = field.querySelector("template[data-row-template]");
    var rows = field.querySelector("[data-rows]");
    if (!template || !rows) { return; }
    var index = String(nextIndex(field));
    var fragment = template.content.cloneNode(true);
    fragment.querySelectorAll("*").forEach(function (node) {
      ATTRS.forEach(function (attr) {
        var value = node.getAttribute(attr);
        if (value && value.indexOf("__index__") !== -1) {
          node.setAttribute(attr, value.replace(PLACEHOLDER, index));
        }
      });
    });
    var row = fragment.querySelector("tr");
    rows.appendChild(fragment);
    if (row) {
      var first = row.querySelector("input:not([type=hidden]), select, textarea");
      if (first) { first.focus(); }
    }
  }

  function removeRow(button) {
    var row = button.closest("tr[data-row]");
    if (!row) { return; }
    var field = button.closest("[data-table-field]");
    row.parentNode.removeChild(row);
    if (field) {
      var add = field.querySelector("[data-add-row]");
      if (add) { add.focus(); }
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var add = target.closest("[data-add-row]");
    if (add) {
      event.preventDefault();
      var field = add.closest("[data-table-field]");
      if (field) { addRow(field); }
      return;
    }
    var remove = target.closest("[data-remove-row]");
    if (remove) {
      event.preventDefault();
      removeRow(remove);
    }
  });
})();
