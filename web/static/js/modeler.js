/* The modeler page: loads a process's deployed version (or a draft) into the vendored
 * bpmn-js modeler (window.CsiModeler), lints on every change (in the browser with
 * bpmnlint, and on the server, which is the gate), and saves and submits drafts through
 * the JSON API. Everything it needs arrives in the #modeler-setup JSON block (the CSP
 * allows no inline script). window.csiModeler exposes the modeler and the forms. */
(function () {
  "use strict";

  var setupNode = document.getElementById("modeler-setup");
  if (!setupNode) { return; }
  var setup = JSON.parse(setupNode.textContent);
  var strings = setup.strings || {};
  var LINT_DELAY = 600;

  function t(key, values) {
    var text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    return text.replace(/\{([^}]+)\}/g, function (match, name) {
      return values && name in values ? String(values[name]) : match;
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  var root = document.getElementById("modeler");
  var message = document.getElementById("modeler-message");
  var saveButton = document.getElementById("save-draft");
  var submitButton = document.getElementById("submit-draft");
  var saveStatus = document.getElementById("save-status");
  var reviewLink = document.getElementById("review-link");
  var draftLabel = document.getElementById("draft-label");

  function showMessage(text, kind) {
    if (!text) { message.hidden = true; message.textContent = ""; return; }
    message.hidden = false;
    message.textContent = text;
    message.className = "alert alert-" + (kind || "error");
    message.setAttribute("role", kind === "success" ? "status" : "alert");
  }

  if (typeof window.CsiModeler !== "object") {
    showMessage(t("The diagram could not be loaded: {reason}", { reason: "modeler.js" }));
    return;
  }

  // ---- state ---------------------------------------------------------------------------------

  var state = {
    draftId: setup.draftId,
    draftAuthor: setup.draftAuthor,
    draftStatus: setup.draftStatus,
    forms: {},
    baselineXml: null,
    baselineForms: {},
    serverFindings: [],
    clientIssues: {},
    dirty: false,
    lintRuns: 0,
    lintTimer: null,
    lintSequence: 0,
    formTask: null
  };
  var context = {
    roles: [],
    services: [],
    variables: {},
    formOf: function (taskId) { return state.forms[taskId] || null; }
  };

  var modeler = window.CsiModeler.create({
    container: document.getElementById("canvas"),
    propertiesParent: document.getElementById("properties-panel"),
    context: context,
    strings: strings
  });
  var canvas = modeler.get("canvas");
  var registry = modeler.get("elementRegistry");
  var overlays = modeler.get("overlays");
  var eventBus = modeler.get("eventBus");
  var selection = modeler.get("selection");

  window.csiModeler = {
    modeler: modeler,
    get forms() { return state.forms; },
    state: state,
    lintNow: function () { return lint(); },
    save: function () { return save(); }
  };

  // ---- the API -------------------------------------------------------------------------------

  function api(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": setup.csrfToken }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { ok: response.ok, status: response.status, body: data || {} };
      });
    });
  }

  function reasonOf(result) {
    return (result.body && result.body.message) || ("HTTP " + result.status);
  }

  function currentXml() {
    return modeler.saveXML({ format: true }).then(function (result) { return result.xml; });
  }

  // ---- findings: markers on the canvas and the list -----------------------------------------

  var marked = [];

  function clearServerMarks() {
    marked.forEach(function (mark) { if (registry.get(mark[0])) { canvas.removeMarker(mark[0], mark[1]); } });
    marked = [];
    overlays.remove({ type: "csi-lint" });
  }

  // The shape a finding is shown on: the element's own, or for a process (in a
  // collaboration, where a process has no shape) its participant's.
  function shapeOf(id) {
    var element = registry.get(id);
    if (element) { return element.type === "label" ? null : element; }
    return registry.filter(function (e) {
      var ref = e.type === "bpmn:Participant" && e.businessObject.processRef;
      return Boolean(ref) && ref.id === id;
    })[0] || null;
  }

  function showServerFindings(findings) {
    state.serverFindings = findings || [];
    clearServerMarks();
    var byElement = {};
    state.serverFindings.forEach(function (finding) {
      (byElement[finding.element] = byElement[finding.element] || []).push(finding);
    });
    Object.keys(byElement).forEach(function (key) {
      var element = shapeOf(key);
      if (!element) { return; }
      var id = element.id;
      var list = byElement[key];
      var error = list.some(function (f) { return (f.severity || "error") === "error"; });
      var marker = error ? "csi-lint-error" : "csi-lint-warning";
      canvas.addMarker(id, marker);
      marked.push([id, marker]);
      var badge = el("span", {
        "class": "csi-lint-badge " + marker,
        "data-element": id,
        "title": list.map(function (f) { return f.rule + ": " + f.message; }).join("\n"),
        "text": String(list.length)
      });
      badge.addEventListener("click", function () { selectElement(id); });
      overlays.add(id, "csi-lint", { position: { top: -10, left: -10 }, html: badge });
    });
    renderFindings();
  }

  function elementName(id) {
    var element = registry.get(id);
    var name = element && element.businessObject && element.businessObject.name;
    return name ? name + " (" + id + ")" : id;
  }

  function selectElement(id) {
    var element = shapeOf(id);
    if (!element) { return; }
    selection.select(element);
    if (canvas.scrollToElement) { canvas.scrollToElement(element); }
  }

  function renderFindings() {
    var list = document.getElementById("findings-list");
    var rows = state.serverFindings.map(function (f) {
      return { source: "server", element: f.element, rule: f.rule, message: f.message, severity: f.severity || "error" };
    });
    Object.keys(state.clientIssues).forEach(function (id) {
      state.clientIssues[id].forEach(function (issue) {
        rows.push({
          source: "browser", element: id, rule: issue.rule, message: issue.message,
          severity: issue.category === "error" ? "error" : "warning"
        });
      });
    });
    rows.sort(function (a, b) {
      return (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) ||
        (a.source === b.source ? 0 : a.source === "server" ? -1 : 1);
    });
    list.textContent = "";
    rows.forEach(function (row) {
      var item = el("li", {
        "class": "finding finding-" + row.severity,
        "data-rule": row.rule,
        "data-element": row.element,
        "data-source": row.source
      });
      var button = el("button", { type: "button", "class": "finding-target" }, [
        el("span", { "class": "finding-severity", text: t(row.severity) }),
        el("code", { "class": "finding-rule", text: row.rule }),
        el("span", { "class": "finding-element", text: elementName(row.element) }),
        el("span", { "class": "finding-source muted small", text: t(row.source) })
      ]);
      button.addEventListener("click", function () { selectElement(row.element); });
      item.appendChild(button);
      item.appendChild(el("div", { "class": "finding-message", text: row.message }));
      list.appendChild(item);
    });
    if (!rows.length) { list.appendChild(el("li", { "class": "finding-none muted", text: t("No findings.") })); }
    var errors = rows.filter(function (r) { return r.severity === "error"; }).length;
    document.getElementById("findings-count").textContent = String(rows.length);
    document.getElementById("findings-count").className = "badge" + (errors ? " badge-overdue" : "");
    document.getElementById("lint-status").textContent =
      t("{count} errors, {warnings} warnings", { count: errors, warnings: rows.length - errors });
  }

  eventBus.on("linting.completed", function (event) {
    state.clientIssues = event.issues || {};
    renderFindings();
  });

  // ---- the server's lint, debounced ----------------------------------------------------------

  function lint() {
    var sequence = ++state.lintSequence;
    document.getElementById("lint-status").textContent = t("Checking…");
    return currentXml().then(function (xml) {
      return api("POST", setup.urls.lint, { bpmn: xml, forms: state.forms });
    }).then(function (result) {
      if (sequence !== state.lintSequence) { return; }  // a newer check is on its way
      if (!result.ok) {
        showServerFindings([]);
        document.getElementById("lint-status").textContent = t("The check failed: {reason}", { reason: reasonOf(result) });
      } else {
        context.variables = result.body.variables || {};
        eventBus.fire("csi.context.changed");
        showServerFindings(result.body.lint || []);
      }
      state.lintRuns += 1;
      root.setAttribute("data-lint-runs", String(state.lintRuns));
    });
  }

  function scheduleLint() {
    clearTimeout(state.lintTimer);
    state.lintTimer = setTimeout(lint, LINT_DELAY);
  }

  function changed() {
    state.dirty = true;
    saveStatus.textContent = t("Unsaved changes");
    scheduleLint();
    if (activeTab === "changes") { showChanges(); }
  }

  // ---- tabs ----------------------------------------------------------------------------------

  var activeTab = "properties";
  var tabs = ["properties", "form", "findings", "xml", "changes"];

  function openTab(name) {
    if (activeTab === "changes" && name !== "changes") { clearChangeMarks(); }
    activeTab = name;
    tabs.forEach(function (tab) {
      document.getElementById("tab-" + tab).setAttribute("aria-selected", tab === name ? "true" : "false");
      document.getElementById("pane-" + tab).hidden = tab !== name;
    });
    if (name === "xml") { refreshXml(); }
    if (name === "changes") { showChanges(); }
  }

  tabs.forEach(function (tab) {
    document.getElementById("tab-" + tab).addEventListener("click", function () { openTab(tab); });
  });

  // ---- forms ---------------------------------------------------------------------------------

  var formEditor = null;
  var formHint = document.getElementById("form-hint");
  var formContainer = document.getElementById("form-editor");

  if (window.CsiFormEditor && typeof window.CsiFormEditor.mount === "function") {
    formEditor = window.CsiFormEditor.mount(formContainer, {
      locale: setup.locale,
      previewUrl: setup.urls.formPreview,
      csrfToken: setup.csrfToken,
      onChange: function (form) {
        if (!state.formTask) { return; }
        if (form) { state.forms[state.formTask] = form; } else { delete state.forms[state.formTask]; }
        changed();
      }
    });
  } else {
    formContainer.appendChild(el("p", { "class": "form-editor-unavailable muted", text: t("form editor unavailable") }));
  }

  function showFormOf(element) {
    var isUserTask = element && element.type === "bpmn:UserTask";
    state.formTask = isUserTask ? element.id : null;
    formHint.hidden = isUserTask;
    if (!formEditor) { return; }
    formContainer.hidden = !isUserTask;
    if (isUserTask) {
      formEditor.setForm(state.forms[element.id] || null, element.id, element.businessObject.name || element.id);
    }
  }

  eventBus.on("selection.changed", function (event) {
    var chosen = event.newSelection.length === 1 ? event.newSelection[0] : null;
    showFormOf(chosen);
  });

  // The CSI group's "form" entry leads here.
  eventBus.on("csi.form.open", function (event) {
    showFormOf(event.element);
    openTab("form");
  });

  // A user task's form is keyed by the task's id: it follows a renamed id.
  eventBus.on("element.updateId", function (event) {
    var old = event.element.id;
    if (state.forms[old] && !state.forms[event.newId]) {
      state.forms[event.newId] = state.forms[old];
      delete state.forms[old];
      if (state.formTask === old) { state.formTask = event.newId; }
    }
  });

  // ---- the raw XML ---------------------------------------------------------------------------

  var xmlText = document.getElementById("xml-text");

  function refreshXml() {
    return currentXml().then(function (xml) { xmlText.value = xml; });
  }

  document.getElementById("xml-refresh").addEventListener("click", refreshXml);
  document.getElementById("xml-apply").addEventListener("click", function () {
    modeler.importXML(xmlText.value).then(function () {
      fitBesidePalette();
      showMessage(t("XML imported."), "success");
      changed();
    }).catch(function (error) {
      showMessage(t("The XML could not be imported: {reason}", { reason: error.message }));
    });
  });

  // ---- changes against the deployed version -------------------------------------------------

  var changeMarks = [];

  function clearChangeMarks() {
    changeMarks.forEach(function (mark) { if (registry.get(mark[0])) { canvas.removeMarker(mark[0], mark[1]); } });
    changeMarks = [];
  }

  function canonical(value) {
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (key) {
        return JSON.stringify(key) + ":" + canonical(value[key]);
      }).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  function formsChanged() {
    var keys = {};
    Object.keys(state.forms).concat(Object.keys(state.baselineForms)).forEach(function (k) { keys[k] = true; });
    return Object.keys(keys).filter(function (key) {
      return canonical(state.forms[key]) !== canonical(state.baselineForms[key]);
    }).sort();
  }

  function changeSection(title, kind, items) {
    if (!items.length) { return null; }
    return el("section", { "class": "changes changes-" + kind }, [
      el("h3", { text: title + " (" + items.length + ")" }),
      el("ul", {}, items.map(function (item) {
        return el("li", { "data-element": item.id, "class": "change-" + kind }, [
          el("span", { text: item.label }),
          item.detail ? el("span", { "class": "muted small", text: " " + item.detail }) : null
        ]);
      }))
    ]);
  }

  function showChanges() {
    if (state.baselineXml === null) { return Promise.resolve(); }
    return window.CsiModeler.compare(modeler, state.baselineXml).then(function (found) {
      clearChangeMarks();
      found.added.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "csi-added"); changeMarks.push([id, "csi-added"]); } });
      found.changed.forEach(function (c) { if (registry.get(c.element)) { canvas.addMarker(c.element, "csi-changed"); changeMarks.push([c.element, "csi-changed"]); } });
      var list = document.getElementById("changes-list");
      list.textContent = "";
      var forms = formsChanged();
      var sections = [
        changeSection(t("Added"), "added", found.added.map(function (id) { return { id: id, label: elementName(id) }; })),
        changeSection(t("Removed"), "removed", found.removed.map(function (id) { return { id: id, label: id }; })),
        changeSection(t("Changed"), "changed", found.changed.map(function (c) {
          return { id: c.element, label: elementName(c.element), detail: c.properties.join(", ") };
        })),
        changeSection(t("Moved or resized"), "layout", found.layout.filter(function (id) {
          return found.changed.every(function (c) { return c.element !== id; });
        }).map(function (id) { return { id: id, label: elementName(id) }; })),
        changeSection(t("Forms changed"), "forms", forms.map(function (id) { return { id: id, label: elementName(id) }; }))
      ].filter(Boolean);
      if (!sections.length) {
        list.appendChild(el("p", { "class": "muted", text: t("No changes against version {version}.", { version: setup.latestVersion }) }));
      }
      sections.forEach(function (section) { list.appendChild(section); });
      list.querySelectorAll("li[data-element]").forEach(function (item) {
        item.addEventListener("click", function () { selectElement(item.getAttribute("data-element")); });
      });
    }).catch(function (error) {
      if (window.console) { console.error(error); }
    });
  }

  // ---- saving and submitting -----------------------------------------------------------------

  // Someone else's draft is read here and saved as one's own; one's own submitted
  // draft is refused by the server until it is withdrawn, which the message says.
  function ownEditableDraft() {
    return Boolean(state.draftId) && state.draftAuthor === setup.user;
  }

  function timeNow() {
    var now = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(now.getHours()) + ":" + two(now.getMinutes()) + ":" + two(now.getSeconds());
  }

  function draftSaved(id) {
    state.draftId = id;
    state.draftAuthor = setup.user;
    state.draftStatus = "editing";
    state.dirty = false;
    var url = setup.urls.edit + "?draft=" + encodeURIComponent(id);
    if (window.history && window.history.replaceState) { window.history.replaceState(null, "", url); }
    reviewLink.href = setup.urls.review + id;
    reviewLink.hidden = false;
    draftLabel.textContent = "#" + id;
    saveStatus.textContent = t("Saved at {time}", { time: timeNow() });
    root.setAttribute("data-draft", String(id));
  }

  function save() {
    saveButton.disabled = true;
    saveStatus.textContent = t("Saving…");
    return currentXml().then(function (xml) {
      var body = { bpmn: xml, forms: state.forms };
      return ownEditableDraft()
        ? api("PUT", setup.urls.draftApi + state.draftId, body)
        : api("POST", setup.urls.drafts, body);
    }).then(function (result) {
      saveButton.disabled = false;
      if (!result.ok) {
        saveStatus.textContent = t("Save failed: {reason}", { reason: reasonOf(result) });
        showMessage(t("Save failed: {reason}", { reason: reasonOf(result) }));
        return false;
      }
      showMessage(null);
      draftSaved(result.body.id);
      if (result.body.lint) { showServerFindings(result.body.lint); }
      return true;
    });
  }

  saveButton.addEventListener("click", function () { save(); });

  var dialog = document.getElementById("submit-dialog");
  var noteField = document.getElementById("submit-note");

  submitButton.addEventListener("click", function () {
    noteField.value = "";
    if (typeof dialog.showModal === "function") { dialog.showModal(); }
  });

  dialog.addEventListener("close", function () {
    if (dialog.returnValue !== "submit") { return; }
    var note = noteField.value.trim();
    if (!note) {
      showMessage(t("Write a change note: the approver and the change history read it."));
      return;
    }
    submit(note);
  });

  function submit(note) {
    submitButton.disabled = true;
    var saved = state.dirty || !ownEditableDraft() ? save() : Promise.resolve(true);
    return saved.then(function (ok) {
      if (!ok) { return null; }
      return api("POST", setup.urls.draftApi + state.draftId + "/submit", { note: note });
    }).then(function (result) {
      submitButton.disabled = false;
      if (!result) { return; }
      if (result.ok) {
        state.draftStatus = "submitted";
        showMessage(t("Submitted for approval."), "success");
        root.setAttribute("data-submitted", String(state.draftId));
        return;
      }
      if (result.status === 422 && result.body.details && typeof result.body.details === "object") {
        var findings = [];
        Object.keys(result.body.details).forEach(function (id) {
          (result.body.details[id] || []).forEach(function (text) {
            var rule = String(text).split(":")[0];
            findings.push({ element: id, rule: rule, message: String(text).slice(rule.length + 1).trim(), severity: "error" });
          });
        });
        showServerFindings(findings);
        openTab("findings");
        showMessage(t("The draft has errors; fix them before submitting."));
        return;
      }
      showMessage(t("Submit failed: {reason}", { reason: reasonOf(result) }));
    });
  }

  // ---- loading -------------------------------------------------------------------------------

  // The whole diagram in view, none of it under the palette (which floats over the canvas).
  function fitBesidePalette() {
    canvas.zoom("fit-viewport", "auto");
    var palette = canvas.getContainer().querySelector(".djs-palette");
    var inner = canvas.viewbox().inner;
    if (!palette || !inner.width || !inner.height) { return; }
    var box = canvas.getContainer().getBoundingClientRect();
    var room = palette.getBoundingClientRect().right - box.left + 16;
    var scale = Math.min(1, (box.width - room - 16) / inner.width, (box.height - 32) / inner.height);
    canvas.viewbox({
      x: inner.x - room / scale,
      y: inner.y - (box.height / scale - inner.height) / 2,
      width: box.width / scale,
      height: box.height / scale
    });
  }

  function load() {
    var requests = [
      api("GET", setup.urls.context),
      api("GET", setup.urls.version),
      state.draftId ? api("GET", setup.urls.draftApi + state.draftId) : Promise.resolve(null)
    ];
    return Promise.all(requests).then(function (results) {
      var failed = results.filter(function (r) { return r && !r.ok; })[0];
      if (failed) { throw new Error(reasonOf(failed)); }
      context.roles = results[0].body.roles || [];
      context.services = results[0].body.services || [];
      state.baselineXml = results[1].body.bpmn;
      state.baselineForms = results[1].body.forms || {};
      var content = results[2] ? results[2].body : results[1].body;
      state.forms = JSON.parse(JSON.stringify(content.forms || {}));
      if (results[2] && state.draftAuthor !== setup.user) {
        showMessage(t("This draft is by {author}: saving makes a draft of your own.", { author: state.draftAuthor }), "warning");
      }
      return modeler.importXML(content.bpmn);
    }).then(function () {
      fitBesidePalette();
      eventBus.on("commandStack.changed", changed);
      saveButton.disabled = false;
      submitButton.disabled = false;
      root.setAttribute("data-ready", "true");
      return lint();
    }).catch(function (error) {
      if (window.console) { console.error(error); }
      showMessage(t("The diagram could not be loaded: {reason}", { reason: error.message }));
    });
  }

  window.addEventListener("beforeunload", function (event) {
    if (state.dirty) { event.preventDefault(); event.returnValue = ""; }
  });

  load();
})();
