/* The instance's diagram (bpmn-js navigated viewer, vendored): completed elements green,
 * active elements highlighted. Reads its inputs from the #diagram element's data-*. */
(function () {
  "use strict";

  function parseList(value) {
    try {
      var list = JSON.parse(value || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  function showError(container, message) {
    container.classList.add("diagram-error");
    container.textContent = message;
  }

  function init() {
    var container = document.getElementById("diagram");
    if (!container) { return; }
    var message = container.getAttribute("data-error") || "The diagram could not be shown.";
    if (typeof window.BpmnJS !== "function") {
      showError(container, message);
      return;
    }
    var done = parseList(container.getAttribute("data-done"));
    var active = parseList(container.getAttribute("data-active"));
    var viewer = new window.BpmnJS({ container: container });

    fetch(container.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        done.forEach(function (id) {
          if (registry.get(id) && active.indexOf(id) === -1) { canvas.addMarker(id, "csi-done"); }
        });
        active.forEach(function (id) {
          if (registry.get(id)) { canvas.addMarker(id, "csi-active"); }
        });
        // Other markings by class ({"csi-added": [ids], …}): a draft's diff.
        var marks = {};
        try { marks = JSON.parse(container.getAttribute("data-marks") || "{}") || {}; } catch (e) { marks = {}; }
        Object.keys(marks).forEach(function (marker) {
          parseList(JSON.stringify(marks[marker])).forEach(function (id) {
            if (registry.get(id)) { canvas.addMarker(id, marker); }
          });
        });
        canvas.zoom("fit-viewport", "auto");
        container.setAttribute("data-ready", "true");
      })
      .catch(function (error) {
        if (window.console) { console.error(error); }
        showError(container, message);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
