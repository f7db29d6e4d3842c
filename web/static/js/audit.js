/* Audit page: step through an instance's replay. The slider (plus previous/next, the
 * arrow keys and the timeline) fetches GET .../steps/<k>, redraws the diagram markers
 * (completed, active, path taken, this step's element) and swaps in the server-rendered
 * panels. Without JavaScript the links still work: each carries ?step=<k>. */
(function () {
  "use strict";

  var MARKERS = ["csi-done", "csi-active", "csi-path", "csi-step"];

  function parseList(value) {
    try {
      var list = JSON.parse(value || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  function toSet(list) {
    var set = {};
    (list || []).forEach(function (id) { set[id] = true; });
    return set;
  }

  function init() {
    var root = document.getElementById("steps");
    var slider = document.getElementById("step-slider");
    if (!root || !slider) { return; }
    var container = document.getElementById("audit-diagram");
    var stepNo = document.getElementById("step-no");
    var caption = document.getElementById("step-caption");
    var panels = {
      event: document.getElementById("step-event"),
      changes: document.getElementById("step-changes"),
      data: document.getElementById("step-data")
    };
    var panelRow = root.querySelector(".step-panels");
    var timeline = document.getElementById("timeline");
    var prev = root.querySelector(".step-prev");
    var next = root.querySelector(".step-next");
    var baseUrl = root.getAttribute("data-steps-url");
    var total = parseInt(slider.max, 10);
    var current = parseInt(slider.value, 10);
    var state = {
      completed_elements: parseList(container.getAttribute("data-done")),
      active_elements: parseList(container.getAttribute("data-active")),
      taken_flows: parseList(container.getAttribute("data-flows")),
      bpmn_id: container.getAttribute("data-current") || null,
      seq: current
    };
    var viewer = null;
    var ready = false;
    var marked = [];
    var controller = null;
    var timer = null;

    // -- diagram ------------------------------------------------------------------------

    function mark(shown, seq) {
      if (!ready) { return; }
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      marked.forEach(function (entry) { canvas.removeMarker(entry[0], entry[1]); });
      marked = [];
      function add(id, marker) {
        if (registry.get(id)) {
          canvas.addMarker(id, marker);
          marked.push([id, marker]);
        }
      }
      if (shown) {
        var done = toSet(shown.completed_elements);
        var active = toSet(shown.active_elements);
        Object.keys(done).forEach(function (id) { if (!active[id]) { add(id, "csi-done"); } });
        Object.keys(active).forEach(function (id) { add(id, "csi-active"); });
        // The path taken: the sequence flows the replay went along ("source>target"),
        // not every flow between two completed elements (a loop back not taken).
        var taken = toSet(shown.taken_flows);
        registry.filter(function (el) { return el.type === "bpmn:SequenceFlow"; })
          .forEach(function (flow) {
            var bo = flow.businessObject;
            if (bo.sourceRef && bo.targetRef && taken[bo.sourceRef.id + ">" + bo.targetRef.id]) {
              add(flow.id, "csi-path");
            }
          });
        if (shown.bpmn_id) { add(shown.bpmn_id, "csi-step"); }
      }
      container.setAttribute("data-step", String(seq));
    }

    function loadDiagram() {
      var message = container.getAttribute("data-error") || "The diagram could not be shown.";
      if (typeof window.BpmnJS !== "function") {
        container.classList.add("diagram-error");
        container.textContent = message;
        return;
      }
      viewer = new window.BpmnJS({ container: container });
      importVersion(container.getAttribute("data-definition") || "");
    }

    // Each step is drawn on the diagram version the instance ran on then (a migrated
    // instance changes version at its instance_migrated step).
    var shownVersion = null;
    function importVersion(definition) {
      var message = container.getAttribute("data-error") || "The diagram could not be shown.";
      shownVersion = definition;
      ready = false;
      marked = [];  // the markers go with the old drawing
      var url = container.getAttribute("data-url") + (definition ? "?definition=" + definition : "");
      fetch(url, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (xml) { return viewer.importXML(xml); })
        .then(function () {
          ready = true;
          viewer.get("canvas").zoom("fit-viewport", "auto");
          mark(state, current);
          container.setAttribute("data-ready", "true");
        })
        .catch(function (error) {
          if (window.console) { console.error(error); }
          container.classList.add("diagram-error");
          container.textContent = message;
        });
    }

    // -- controls -----------------------------------------------------------------------

    function setLink(link, k) {
      if (!link) { return; }
      link.setAttribute("data-step", String(k));
      link.setAttribute("href", "?step=" + k + "#steps");
    }

    function showPosition(k) {
      slider.value = String(k);
      stepNo.textContent = String(k);
      setLink(prev, Math.max(1, k - 1));
      setLink(next, Math.min(total, k + 1));
      prev.classList.toggle("is-disabled", k <= 1);
      next.classList.toggle("is-disabled", k >= total);
      prev.setAttribute("aria-disabled", k <= 1 ? "true" : "false");
      next.setAttribute("aria-disabled", k >= total ? "true" : "false");
      var items = timeline ? timeline.querySelectorAll("a[data-step]") : [];
      Array.prototype.forEach.call(items, function (item) {
        if (parseInt(item.getAttribute("data-step"), 10) === k) {
          item.setAttribute("aria-current", "step");
          var top = item.offsetTop; // the list is the offset parent (position: relative)
          if (top < timeline.scrollTop || top + item.offsetHeight > timeline.scrollTop + timeline.clientHeight) {
            timeline.scrollTop = Math.max(0, top - timeline.clientHeight / 2);
          }
        } else {
          item.removeAttribute("aria-current");
        }
      });
      if (window.history && window.history.replaceState) {
        var url = new URL(window.location.href);
        url.searchParams.set("step", String(k));
        url.searchParams.delete("verify");
        window.history.replaceState(null, "", url.pathname + url.search + url.hash);
      }
    }

    // Tables of before/after values need the full width: stack the event above them.
    function fitPanels() {
      if (panelRow) {
        panelRow.classList.toggle("is-stacked", !!panels.changes.querySelector(".change-wide"));
      }
    }

    function render(body, k) {
      caption.innerHTML = body.html.caption;
      panels.event.innerHTML = body.html.event;
      panels.changes.innerHTML = body.html.changes;
      panels.data.innerHTML = body.html.data;
      panels.data.setAttribute("data-step", String(k));
      fitPanels();
      state = body.state ? body.state : null;
      var version = state && state.definition_id ? String(state.definition_id) : "";
      if (viewer && version && version !== shownVersion) {
        importVersion(version);  // marks the step once the other version is drawn
      } else {
        mark(state, k);
      }
      root.setAttribute("data-step", String(k));
      root.removeAttribute("aria-busy");
    }

    function fail(k) {
      caption.textContent = root.getAttribute("data-error") || "The step could not be loaded.";
      caption.classList.add("step-error");
      root.removeAttribute("aria-busy");
      if (window.console) { console.error("step " + k + " failed"); }
    }

    function load(k) {
      if (controller) { controller.abort(); }
      controller = typeof AbortController === "function" ? new AbortController() : null;
      var signal = controller ? controller.signal : undefined;
      root.setAttribute("aria-busy", "true");
      caption.classList.remove("step-error");
      fetch(baseUrl + k, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: signal
      })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (body) { if (k === current) { render(body, k); } })
        .catch(function (error) {
          if (error && error.name === "AbortError") { return; }
          if (k === current) { fail(k); }
        });
    }

    function go(k) {
      k = Math.max(1, Math.min(total, k));
      if (isNaN(k) || k === current) { return; }
      current = k;
      showPosition(k);
      // Dragging the slider sends many input events: fetch once it rests a moment.
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () { timer = null; load(k); }, 60);
    }

    slider.addEventListener("input", function () { go(parseInt(slider.value, 10)); });
    slider.addEventListener("change", function () { go(parseInt(slider.value, 10)); });

    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[data-step]") : null;
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
      event.preventDefault();
      go(parseInt(link.getAttribute("data-step"), 10));
      if (!root.contains(link)) { root.scrollIntoView({ behavior: "smooth", block: "start" }); }
    });

    // Arrow keys step anywhere on the page except in fields (the slider handles its own).
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
      var target = event.target;
      var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
      if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) { return; }
      if (event.key === "ArrowLeft") {
        event.preventDefault();
        go(current - 1);
      } else if (event.key === "ArrowRight") {
        event.preventDefault();
        go(current + 1);
      }
    });

    showPosition(current);
    fitPanels();
    root.setAttribute("data-step", String(current));
    loadDiagram();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
