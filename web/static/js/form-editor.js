/* The modeler's form editor: a user task's form document (title, description and the
 * fields of its JSON Schema, with zh-CN and en labels) edited without writing JSON, a
 * JSON tab for the whole document, and a live preview the server renders with the
 * inbox's own form templates (POST previewUrl, web/form_preview.py).
 *
 *   var editor = window.CsiFormEditor.mount(container, {
 *     locale: "zh-CN" | "en",           // the editor's own labels (default zh-CN)
 *     previewUrl: "/models/form-preview",
 *     csrfToken: "…",                    // sent as X-CSRFToken
 *     onChange: function (form) { … },   // every change the user makes; a copy
 *     strings: { key: "text" }           // optional: replaces labels of the dictionary
 *   });
 *   editor.setForm(form | null, taskId, taskName);  // shows a form; never calls onChange
 *   editor.getForm();                                // a copy of the form, or null
 *   editor.destroy();
 *
 * The editor changes only what it shows: every other key of the document (context,
 * notice, x-checks, nested tables, a field's prefill …) is kept as it was. Plain browser
 * script (ES2017, no build step); no inline style, so it runs under the app's CSP. */
(function () {
  "use strict";

  var DIALECT = "https://json-schema.org/draft/2020-12/schema";
  var NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
  var PREVIEW_DELAY_MS = 400;
  // What bounds a string field (engine.forms.library._unbounded wants maxLength): the
  // lengths the bundled forms use for a line, a text and a date.
  var TEXT_MAX = 200;
  var TEXTAREA_MAX = 4000;
  var DATE_MAX = 10;

  var STRINGS = {
    "zh-CN": {
      noForm: "此用户任务还没有表单。",
      createForm: "创建表单",
      tabFields: "字段",
      tabJson: "JSON",
      formSection: "表单",
      titleZh: "标题（中文）",
      titleEn: "标题（英文）",
      descriptionZh: "说明（中文，可选）",
      descriptionEn: "说明（英文，可选）",
      fieldsSection: "字段",
      noFields: "还没有字段。",
      addField: "添加字段",
      name: "字段名",
      nameHelp: "流程变量名：字母开头，其后为字母、数字或 _。",
      nameInvalid: "字段名须以字母开头，只含字母、数字和 _。",
      nameTaken: "已有同名字段。",
      labelZh: "标签（中文）",
      labelEn: "标签（英文）",
      type: "类型",
      required: "必填",
      moveUp: "上移",
      moveDown: "下移",
      removeField: "删除字段",
      choices: "选项",
      choiceValue: "值",
      choiceZh: "中文",
      choiceEn: "英文",
      addChoice: "添加选项",
      removeChoice: "删除选项",
      noChoices: "还没有选项。",
      more: "更多设置",
      helpZh: "填写说明（中文）",
      helpEn: "填写说明（英文）",
      maxLength: "最大长度",
      jsonHelp: "整个表单文档（JSON Schema 与界面提示）。修改后点击“应用”。",
      apply: "应用",
      discard: "放弃修改",
      jsonInvalid: "JSON 无效，未作任何修改：",
      jsonNotObject: "表单须为 JSON 对象，未作任何修改。",
      jsonApplied: "已应用。",
      preview: "预览",
      previewHelp: "与待办中任务表单的显示相同。",
      previewLoading: "正在更新预览…",
      previewErrors: "表单还不能使用：",
      previewFailed: "无法更新预览。",
      previewNoFields: "表单还没有字段。",
      unnamedField: "（未命名字段）",
      typeText: "单行文本",
      typeTextarea: "多行文本",
      typeInteger: "整数",
      typeNumber: "数字",
      typeBoolean: "是 / 否",
      typeDate: "日期",
      typeChoice: "选项（单选）",
      typeFile: "文件（附件）",
      fileKinds: "允许的文件类型",
      typeOther: "其他（在 JSON 中编辑）"
    },
    en: {
      noForm: "This user task has no form.",
      createForm: "Create form",
      tabFields: "Fields",
      tabJson: "JSON",
      formSection: "Form",
      titleZh: "Title (Chinese)",
      titleEn: "Title (English)",
      descriptionZh: "Description (Chinese, optional)",
      descriptionEn: "Description (English, optional)",
      fieldsSection: "Fields",
      noFields: "No fields yet.",
      addField: "Add field",
      name: "Name",
      nameHelp: "The process variable: a letter, then letters, digits or _.",
      nameInvalid: "A name starts with a letter and holds only letters, digits and _.",
      nameTaken: "Another field has this name.",
      labelZh: "Label (Chinese)",
      labelEn: "Label (English)",
      type: "Type",
      required: "Required",
      moveUp: "Move up",
      moveDown: "Move down",
      removeField: "Delete field",
      choices: "Choices",
      choiceValue: "Value",
      choiceZh: "Chinese",
      choiceEn: "English",
      addChoice: "Add choice",
      removeChoice: "Remove choice",
      noChoices: "No choices yet.",
      more: "More settings",
      helpZh: "Help text (Chinese)",
      helpEn: "Help text (English)",
      maxLength: "Maximum length",
      jsonHelp: "The whole form document (JSON Schema and display hints). Edit it, then Apply.",
      apply: "Apply",
      discard: "Discard changes",
      jsonInvalid: "Invalid JSON, nothing changed: ",
      jsonNotObject: "A form is a JSON object; nothing changed.",
      jsonApplied: "Applied.",
      preview: "Preview",
      previewHelp: "As the inbox will show the task's form.",
      previewLoading: "Updating the preview…",
      previewErrors: "The form cannot be used yet:",
      previewFailed: "The preview could not be updated.",
      previewNoFields: "The form has no fields yet.",
      unnamedField: "(unnamed field)",
      typeText: "Text (one line)",
      typeTextarea: "Long text",
      typeInteger: "Whole number",
      typeNumber: "Number",
      typeBoolean: "Yes / no",
      typeDate: "Date",
      typeChoice: "Choice (one of a list)",
      typeFile: "File (attachment)",
      fileKinds: "File types allowed",
      typeOther: "Other (edit in JSON)"
    }
  };

  var TYPES = ["text", "textarea", "integer", "number", "boolean", "date", "choice", "file"];
  // The kinds of file the engine recognises by content (engine/attachments/kinds.py).
  var FILE_KINDS = ["pdf", "png", "jpeg", "csv", "text", "xlsx", "docx"];
  var TYPE_LABEL = {
    text: "typeText", textarea: "typeTextarea", integer: "typeInteger", number: "typeNumber",
    boolean: "typeBoolean", date: "typeDate", choice: "typeChoice", file: "typeFile",
    other: "typeOther"
  };
  // A field's keywords that belong to its type: replaced when the type changes; labels,
  // help texts and the engine's other keywords (x-prefill, x-carry-over …) stay.
  var TYPE_KEYS = [
    "type", "enum", "x-enum-titles", "x-options", "const", "format", "x-widget",
    "maxLength", "minLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "items", "maxItems", "minItems", "uniqueItems",
    "properties", "required", "additionalProperties", "default", "x-attachment"
  ];

  function copy(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === false || value === null || value === undefined) { return; }
      if (key === "text") { node.textContent = value; }
      else if (key === "value") { node.value = value; }
      else if (key === "checked") { node.checked = Boolean(value); }
      else { node.setAttribute(key, value === true ? "" : String(value)); }
    });
    (children || []).forEach(function (child) {
      if (child) { node.appendChild(typeof child === "string" ? document.createTextNode(child) : child); }
    });
    return node;
  }

  /* What kind of field a schema property is, for the type selector. */
  function kindOf(prop) {
    if (!isObject(prop)) { return "other"; }
    if (prop["x-attachment"] !== undefined) {
      return isObject(prop["x-attachment"]) && Array.isArray(prop["x-attachment"].types) ? "file" : "other";
    }
    var type = prop.type;
    if (prop["x-options"] !== undefined || Array.isArray(type)) { return "other"; }
    if (Array.isArray(prop.enum)) {
      return type === undefined || type === "string" || type === "integer" || type === "number"
        ? "choice" : "other";
    }
    if (type === "boolean") { return "boolean"; }
    if (type === "integer") { return "integer"; }
    if (type === "number") { return "number"; }
    if (type === "string") {
      if (prop.format === "date" || prop["x-widget"] === "date") { return "date"; }
      if (prop["x-widget"] === "textarea") { return "textarea"; }
      return "text";
    }
    return "other";
  }

  function setKind(prop, kind) {
    TYPE_KEYS.forEach(function (key) { delete prop[key]; });
    if (kind === "text") { prop.type = "string"; prop.maxLength = TEXT_MAX; }
    else if (kind === "textarea") {
      prop.type = "string"; prop.maxLength = TEXTAREA_MAX; prop["x-widget"] = "textarea";
    } else if (kind === "integer") { prop.type = "integer"; }
    else if (kind === "number") { prop.type = "number"; }
    else if (kind === "boolean") { prop.type = "boolean"; }
    else if (kind === "date") {
      prop.type = "string"; prop.format = "date"; prop.maxLength = DATE_MAX; prop["x-widget"] = "date";
    } else if (kind === "choice") {
      prop.type = "string"; prop.enum = []; prop["x-enum-titles"] = { "zh-CN": [], en: [] };
    } else if (kind === "file") {
      prop.format = "binary"; prop["x-attachment"] = { types: FILE_KINDS.slice() };
    }
  }

  function minimalForm(taskName) {
    var name = taskName || "";
    return {
      title: { "zh-CN": name, en: name },
      schema: {
        $schema: DIALECT,
        type: "object",
        properties: {},
        required: [],
        // Every form bounds what it accepts (engine.forms.library): no other keys.
        additionalProperties: false
      }
    };
  }

  function mount(container, options) {
    options = options || {};
    var locale = options.locale === "en" ? "en" : "zh-CN";
    var strings = Object.assign({}, STRINGS[locale], options.strings || {});
    var previewUrl = options.previewUrl || "/models/form-preview";
    var onChange = typeof options.onChange === "function" ? options.onChange : function () {};

    var form = null;
    var taskName = "";
    var tab = "fields";
    var previewLocale = locale;
    var previewTimer = null;
    var previewSeq = 0;
    var previewAbort = null;
    var destroyed = false;

    function t(key) { return strings[key] !== undefined ? strings[key] : key; }

    // -- the document ----------------------------------------------------------------------

    // Reading the document changes nothing of it (a form applied as JSON stays as it
    // was until the user edits); schema() and requiredList() make what an edit needs.
    function props() {
      return isObject(form.schema) && isObject(form.schema.properties) ? form.schema.properties : {};
    }
    function names() { return Object.keys(props()); }
    function prop(index) { return props()[names()[index]]; }
    function isRequired(name) {
      return isObject(form.schema) && Array.isArray(form.schema.required) &&
        form.schema.required.indexOf(name) !== -1;
    }
    function schema() {
      if (!isObject(form.schema)) { form.schema = minimalForm("").schema; }
      if (!isObject(form.schema.properties)) { form.schema.properties = {}; }
      return form.schema;
    }
    function requiredList() {
      var s = schema();
      if (!Array.isArray(s.required)) { s.required = []; }
      return s.required;
    }

    function reorder(order, renamed) {
      var s = schema();
      var old = s.properties;
      var next = {};
      order.forEach(function (name) { next[renamed && renamed[name] ? renamed[name] : name] = old[name]; });
      s.properties = next;
    }

    function rename(index, to) {
      var from = names()[index];
      if (from === to) { return; }
      var map = {};
      map[from] = to;
      reorder(names(), map);
      var required = requiredList();
      var at = required.indexOf(from);
      if (at !== -1) { required[at] = to; }
    }

    function freeName() {
      var taken = names();
      for (var n = taken.length + 1; ; n += 1) {
        if (taken.indexOf("field_" + n) === -1) { return "field_" + n; }
      }
    }

    function setText(target, key, value) {
      if (value.trim() === "") { delete target[key]; } else { target[key] = value; }
    }

    function setLocaleText(key, loc, value) {
      var texts = isObject(form[key]) ? form[key] : {};
      if (key === "title") { texts[loc] = value; }  // the title is required: kept, even empty
      else { setText(texts, loc, value); }
      if (key !== "title" && Object.keys(texts).length === 0) { delete form[key]; }
      else { form[key] = texts; }
    }

    function enumTitles(p) {
      if (!isObject(p["x-enum-titles"])) { p["x-enum-titles"] = {}; }
      var titles = p["x-enum-titles"];
      ["zh-CN", "en"].forEach(function (loc) {
        if (!Array.isArray(titles[loc])) { titles[loc] = []; }
        while (titles[loc].length < p.enum.length) { titles[loc].push(""); }
      });
      return titles;
    }

    function choiceValue(p, text) {
      if ((p.type === "integer" || p.type === "number") && text.trim() !== "" && !isNaN(Number(text))) {
        return Number(text);
      }
      return text;
    }

    function changed() {
      if (destroyed) { return; }
      onChange(copy(form));
      schedulePreview(PREVIEW_DELAY_MS);
    }

    // -- the page --------------------------------------------------------------------------

    var root = el("div", { "class": "form-editor", "data-fe": "editor" });
    container.appendChild(root);

    function render() {
      root.textContent = "";
      if (form === null) {
        root.appendChild(el("div", { "class": "fe-empty", "data-fe": "empty" }, [
          el("p", { "class": "muted", text: t("noForm") }),
          el("button", { type: "button", "class": "btn btn-primary", "data-fe": "create", text: t("createForm") })
        ]));
        return;
      }
      root.appendChild(el("div", { "class": "fe-tabs", role: "tablist" }, [
        tabButton("fields", t("tabFields")),
        tabButton("json", t("tabJson"))
      ]));
      var fieldsPanel = el("div", { role: "tabpanel", "data-fe": "panel-fields", hidden: tab !== "fields" });
      fieldsPanel.appendChild(formSection());
      fieldsPanel.appendChild(fieldsSection());
      root.appendChild(fieldsPanel);
      root.appendChild(jsonPanel());
      root.appendChild(previewSection());
    }

    function tabButton(name, label) {
      return el("button", {
        type: "button", role: "tab", "class": "fe-tab", "data-fe-tab": name,
        "aria-selected": tab === name ? "true" : "false", text: label
      });
    }

    var uid = 0;
    function input(label, attrs, help) {
      uid += 1;
      var id = "fe-" + uid + "-" + Math.random().toString(36).slice(2, 7);
      var control = el(attrs.multiline ? "textarea" : "input", Object.assign(
        attrs.multiline ? { rows: 2 } : { type: attrs.type || "text" },
        { id: id, value: attrs.value, "data-fe": attrs.fe, "data-fe-loc": attrs.loc,
          maxlength: attrs.maxlength, min: attrs.min, step: attrs.step,
          "aria-describedby": help ? id + "-help" : null }
      ));
      return el("div", { "class": "field fe-input" }, [
        el("label", { "for": id, text: label }),
        control,
        // Below the control, unlike the task page: the editor's grid keeps its inputs aligned.
        help ? el("p", { "class": "help fe-help", id: id + "-help", text: help }) : null,
        attrs.errorSlot ? el("ul", { "class": "field-errors", id: id + "-errors", hidden: true, "data-fe": "errors" }) : null
      ]);
    }

    function formSection() {
      var title = isObject(form.title) ? form.title : {};
      var description = isObject(form.description) ? form.description : {};
      return el("fieldset", { "class": "fe-section fe-form-texts" }, [
        el("legend", { text: t("formSection") }),
        el("div", { "class": "fe-pair" }, [
          input(t("titleZh"), { fe: "form-title", loc: "zh-CN", value: title["zh-CN"] || "", maxlength: 200 }),
          input(t("titleEn"), { fe: "form-title", loc: "en", value: title.en || "", maxlength: 200 })
        ]),
        el("div", { "class": "fe-pair" }, [
          input(t("descriptionZh"), { fe: "form-description", loc: "zh-CN", value: description["zh-CN"] || "", multiline: true }),
          input(t("descriptionEn"), { fe: "form-description", loc: "en", value: description.en || "", multiline: true })
        ])
      ]);
    }

    function fieldsSection() {
      var list = el("ol", { "class": "fe-fields", "data-fe": "fields" });
      var all = names();
      all.forEach(function (name, index) { list.appendChild(fieldItem(name, index, all.length)); });
      return el("fieldset", { "class": "fe-section" }, [
        el("legend", { text: t("fieldsSection") }),
        all.length ? list : el("p", { "class": "muted", "data-fe": "no-fields", text: t("noFields") }),
        el("p", {}, [el("button", { type: "button", "class": "btn btn-small", "data-fe": "add-field", text: "＋ " + t("addField") })])
      ]);
    }

    function summary(name, p) {
      var label = isObject(p) ? (locale === "en" ? p["x-title-en"] || p.title : p.title || p["x-title-en"]) : "";
      return (label || t("unnamedField")) + " · " + name;
    }

    function fieldItem(name, index, count) {
      var p = props()[name];
      var kind = kindOf(p);
      var item = el("li", { "class": "fe-field", "data-fe": "field", "data-fe-index": index });
      item.appendChild(el("div", { "class": "fe-field-head" }, [
        el("strong", { "class": "fe-field-summary", "data-fe": "summary", text: summary(name, p) }),
        el("span", { "class": "row-buttons" }, [
          el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "move-up", disabled: index === 0, title: t("moveUp"), "aria-label": t("moveUp"), text: "↑" }),
          el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "move-down", disabled: index === count - 1, title: t("moveDown"), "aria-label": t("moveDown"), text: "↓" }),
          el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "remove-field", title: t("removeField"), "aria-label": t("removeField"), text: "✕" })
        ])
      ]));
      var p2 = isObject(p) ? p : {};
      uid += 1;
      var typeId = "fe-type-" + uid;
      var typeSelect = el("select", { id: typeId, "data-fe": "type" }, TYPES.concat(kind === "other" ? ["other"] : []).map(function (k) {
        return el("option", { value: k, text: t(TYPE_LABEL[k]), selected: k === kind, disabled: k === "other" });
      }));
      var requiredBox = el("label", { "class": "choice fe-required" }, [
        el("input", { type: "checkbox", "data-fe": "required", checked: isRequired(name) }),
        el("span", { text: t("required") })
      ]);
      item.appendChild(el("div", { "class": "fe-grid" }, [
        input(t("name"), { fe: "name", value: name, maxlength: 64, errorSlot: true }, t("nameHelp")),
        el("div", { "class": "field fe-input" }, [el("label", { "for": typeId, text: t("type") }), typeSelect]),
        input(t("labelZh"), { fe: "label", loc: "zh-CN", value: p2.title || "", maxlength: 200 }),
        input(t("labelEn"), { fe: "label", loc: "en", value: p2["x-title-en"] || "", maxlength: 200 }),
        requiredBox
      ]));
      if (kind === "choice") { item.appendChild(choicesTable(p2)); }
      if (kind === "file") { item.appendChild(fileKinds(p2)); }
      item.appendChild(moreSettings(p2, kind));
      return item;
    }

    function choicesTable(p) {
      var given = isObject(p["x-enum-titles"]) ? p["x-enum-titles"] : {};
      var titles = {
        "zh-CN": Array.isArray(given["zh-CN"]) ? given["zh-CN"] : [],
        en: Array.isArray(given.en) ? given.en : []
      };
      var rows = p.enum.map(function (value, i) {
        return el("tr", { "data-fe": "choice", "data-fe-choice": i }, [
          el("td", {}, [el("input", { type: "text", "data-fe": "choice-value", value: String(value), "aria-label": t("choiceValue") + " " + (i + 1), maxlength: 200 })]),
          el("td", {}, [el("input", { type: "text", "data-fe": "choice-label", "data-fe-loc": "zh-CN", value: titles["zh-CN"][i] || "", "aria-label": t("choiceZh") + " " + (i + 1), maxlength: 200 })]),
          el("td", {}, [el("input", { type: "text", "data-fe": "choice-label", "data-fe-loc": "en", value: titles.en[i] || "", "aria-label": t("choiceEn") + " " + (i + 1), maxlength: 200 })]),
          el("td", { "class": "row-actions" }, [el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "remove-choice", title: t("removeChoice"), "aria-label": t("removeChoice"), text: "✕" })])
        ]);
      });
      return el("div", { "class": "fe-choices table-wrap" }, [
        el("table", { "class": "data edit-table" }, [
          el("caption", { "class": "fe-caption", text: t("choices") }),
          el("thead", {}, [el("tr", {}, [
            el("th", { scope: "col", text: t("choiceValue") }),
            el("th", { scope: "col", text: t("choiceZh") }),
            el("th", { scope: "col", text: t("choiceEn") }),
            el("th", { "class": "row-actions" })
          ])]),
          el("tbody", {}, rows.length ? rows : [el("tr", {}, [el("td", { colspan: 4, "class": "muted", text: t("noChoices") })])])
        ]),
        el("p", { "class": "table-actions" }, [el("button", { type: "button", "class": "btn btn-small", "data-fe": "add-choice", text: "＋ " + t("addChoice") })])
      ]);
    }

    function fileKinds(p) {
      var chosen = p["x-attachment"].types;
      return el("fieldset", { "class": "fe-file-kinds" }, [el("legend", { text: t("fileKinds") })].concat(
        FILE_KINDS.map(function (k) {
          return el("label", { "class": "choice" }, [
            el("input", { type: "checkbox", "data-fe": "file-kind", value: k, checked: chosen.indexOf(k) !== -1 }),
            el("span", { text: k })
          ]);
        })
      ));
    }

    function moreSettings(p, kind) {
      var body = [
        el("summary", { text: t("more") }),
        el("div", { "class": "fe-pair" }, [
          input(t("helpZh"), { fe: "help", loc: "zh-CN", value: p.description || "", multiline: true }),
          input(t("helpEn"), { fe: "help", loc: "en", value: p["x-description-en"] || "", multiline: true })
        ])
      ];
      if (kind === "text" || kind === "textarea") {
        body.push(input(t("maxLength"), { fe: "max-length", type: "number", min: 1, step: 1, value: String(p.maxLength || "") }));
      }
      return el("details", { "class": "fe-more" }, body);
    }

    function jsonPanel() {
      var area = el("textarea", {
        "class": "fe-json", "data-fe": "json", rows: 18, spellcheck: "false",
        "aria-label": t("tabJson"), value: JSON.stringify(form, null, 2)
      });
      return el("div", { role: "tabpanel", "data-fe": "panel-json", hidden: tab !== "json" }, [
        el("p", { "class": "help", text: t("jsonHelp") }),
        area,
        el("div", { "class": "alert alert-error", role: "alert", "data-fe": "json-error", hidden: true }),
        el("p", { "class": "muted small", "data-fe": "json-status", "aria-live": "polite" }),
        el("p", { "class": "form-actions" }, [
          el("button", { type: "button", "class": "btn btn-small btn-primary", "data-fe": "json-apply", text: t("apply") }),
          el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "json-reset", text: t("discard") })
        ])
      ]);
    }

    function previewSection() {
      return el("section", { "class": "fe-preview", "data-fe": "preview-section" }, [
        el("div", { "class": "fe-preview-head" }, [
          el("h3", { text: t("preview") }),
          el("span", { "class": "fe-preview-langs" }, [
            el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "preview-locale", "data-fe-loc": "zh-CN", "aria-pressed": previewLocale === "zh-CN" ? "true" : "false", lang: "zh-CN", text: "中文" }),
            el("button", { type: "button", "class": "btn btn-small btn-ghost", "data-fe": "preview-locale", "data-fe-loc": "en", "aria-pressed": previewLocale === "en" ? "true" : "false", lang: "en", text: "English" })
          ])
        ]),
        el("p", { "class": "help", text: t("previewHelp") }),
        el("p", { "class": "muted small", "data-fe": "preview-status", "aria-live": "polite" }),
        el("div", { "class": "alert alert-error", role: "alert", "data-fe": "preview-errors", hidden: true }),
        el("div", { "class": "fe-preview-body", "data-fe": "preview" })
      ]);
    }

    function find(fe, within) { return (within || root).querySelector('[data-fe="' + fe + '"]'); }

    // -- the preview -----------------------------------------------------------------------

    function schedulePreview(delay) {
      if (previewTimer !== null) { clearTimeout(previewTimer); }
      previewTimer = setTimeout(function () { previewTimer = null; refreshPreview(); }, delay);
    }

    function showPreviewErrors(errors) {
      var box = find("preview-errors");
      var body = find("preview");
      if (!box || !body) { return; }
      box.textContent = "";
      if (!errors) {
        box.hidden = true;
        body.classList.remove("is-stale");
        return;
      }
      box.appendChild(el("strong", { text: t("previewErrors") }));
      box.appendChild(el("ul", {}, errors.map(function (e) { return el("li", { text: String(e) }); })));
      box.hidden = false;
      body.classList.add("is-stale");  // the last preview that could be shown stays, dimmed
    }

    function refreshPreview() {
      if (destroyed || form === null) { return; }
      previewSeq += 1;
      var seq = previewSeq;
      if (previewAbort) { previewAbort.abort(); }
      previewAbort = typeof AbortController === "function" ? new AbortController() : null;
      var status = find("preview-status");
      if (status) { status.textContent = t("previewLoading"); }
      root.setAttribute("data-fe-preview", "loading");
      var headers = { "Content-Type": "application/json", "Accept": "text/html, application/json" };
      if (options.csrfToken) { headers["X-CSRFToken"] = options.csrfToken; }
      fetch(previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: headers,
        body: JSON.stringify({ form: form, locale: previewLocale }),
        signal: previewAbort ? previewAbort.signal : undefined
      }).then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        var read = type.indexOf("application/json") !== -1 ? response.json() : response.text();
        return read.then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
      }).then(function (answer) {
        if (destroyed || seq !== previewSeq) { return; }  // a later change asked again
        var body = find("preview");
        if (status) { status.textContent = ""; }
        if (answer.ok && typeof answer.body === "string") {
          body.innerHTML = answer.body;  // rendered and escaped by the server's templates
          if (!body.querySelector(".field")) {
            body.appendChild(el("p", { "class": "muted", text: t("previewNoFields") }));
          }
          showPreviewErrors(null);
        } else {
          var errors = answer.body && Array.isArray(answer.body.errors) ? answer.body.errors : null;
          showPreviewErrors(errors || [t("previewFailed") + " (" + answer.status + ")"]);
        }
        root.setAttribute("data-fe-preview", answer.ok ? "ready" : "refused");
      }).catch(function (error) {
        if (destroyed || seq !== previewSeq || (error && error.name === "AbortError")) { return; }
        if (status) { status.textContent = ""; }
        showPreviewErrors([t("previewFailed")]);
        root.setAttribute("data-fe-preview", "failed");
      });
    }

    // -- what the user does ----------------------------------------------------------------

    function fieldIndex(target) {
      var item = target.closest('[data-fe="field"]');
      return item ? Number(item.getAttribute("data-fe-index")) : -1;
    }

    function choiceIndex(target) {
      var row = target.closest('[data-fe="choice"]');
      return row ? Number(row.getAttribute("data-fe-choice")) : -1;
    }

    function nameProblem(index, value) {
      if (!NAME.test(value)) { return t("nameInvalid"); }
      var taken = names();
      var at = taken.indexOf(value);
      return at !== -1 && at !== index ? t("nameTaken") : null;
    }

    function showNameProblem(target, problem) {
      var slot = target.parentNode.querySelector('[data-fe="errors"]');
      target.setAttribute("aria-invalid", problem ? "true" : "false");
      var described = target.id + "-help" + (problem ? " " + target.id + "-errors" : "");
      target.setAttribute("aria-describedby", described);
      if (slot) {
        slot.textContent = "";
        if (problem) { slot.appendChild(el("li", { text: problem })); }
        slot.hidden = !problem;
      }
    }

    function updateSummary(target, index) {
      var item = target.closest('[data-fe="field"]');
      var name = names()[index];
      var label = item && find("summary", item);
      if (label) { label.textContent = summary(name, props()[name]); }
    }

    function onInput(event) {
      var target = event.target;
      var fe = target.getAttribute("data-fe");
      var loc = target.getAttribute("data-fe-loc");
      if (form === null || !fe || fe === "json") { return; }
      var index = fieldIndex(target);
      var p = index >= 0 ? prop(index) : null;
      if (fe === "form-title") { setLocaleText("title", loc, target.value); }
      else if (fe === "form-description") { setLocaleText("description", loc, target.value); }
      else if (fe === "name") {
        var value = target.value.trim();
        var problem = nameProblem(index, value);
        showNameProblem(target, problem);
        if (problem) { return; }  // the document keeps the last good name
        rename(index, value);
        updateSummary(target, index);
      } else if (!isObject(p)) { return; }
      else if (fe === "label") {
        setText(p, loc === "en" ? "x-title-en" : "title", target.value);
        updateSummary(target, index);
      } else if (fe === "help") {
        setText(p, loc === "en" ? "x-description-en" : "description", target.value);
      } else if (fe === "max-length") {
        var length = parseInt(target.value, 10);
        if (!(length > 0)) { return; }
        p.maxLength = length;
      } else if (fe === "choice-value") {
        p.enum[choiceIndex(target)] = choiceValue(p, target.value);
      } else if (fe === "choice-label") {
        enumTitles(p)[loc][choiceIndex(target)] = target.value;
      } else { return; }
      changed();
    }

    function onChangeEvent(event) {
      var target = event.target;
      var fe = target.getAttribute("data-fe");
      if (form === null || (fe !== "type" && fe !== "required" && fe !== "file-kind")) { return; }
      var index = fieldIndex(target);
      var name = names()[index];
      if (fe === "type") {
        if (!isObject(prop(index))) { schema().properties[name] = {}; }
        setKind(prop(index), target.value);
        render();
        var again = root.querySelectorAll('[data-fe="field"]')[index];
        var select = again && find("type", again);
        if (select) { select.focus(); }
      } else if (fe === "file-kind") {
        var item = root.querySelectorAll('[data-fe="field"]')[index];
        prop(index)["x-attachment"].types = Array.prototype.filter.call(
          item.querySelectorAll('[data-fe="file-kind"]'), function (box) { return box.checked; }
        ).map(function (box) { return box.value; });
      } else {
        var required = requiredList();
        var at = required.indexOf(name);
        if (target.checked && at === -1) { required.push(name); }
        if (!target.checked && at !== -1) { required.splice(at, 1); }
      }
      changed();
    }

    function focusField(index, fe) {
      var item = root.querySelectorAll('[data-fe="field"]')[index];
      var control = item && find(fe, item);
      if (control && control.disabled) { control = find("name", item); }
      if (control) { control.focus(); }
    }

    function onClick(event) {
      var button = event.target.closest("button");
      if (!button || !root.contains(button)) { return; }
      var fe = button.getAttribute("data-fe");
      var tabName = button.getAttribute("data-fe-tab");
      if (fe === "create") {
        form = minimalForm(taskName);
        tab = "fields";
        render();
        changed();
        return;
      }
      if (form === null) { return; }
      if (tabName) { switchTab(tabName); return; }
      var index = fieldIndex(button);
      var order = names();
      if (fe === "add-field") {
        var name = freeName();
        schema().properties[name] = { title: "", "x-title-en": "" };
        setKind(schema().properties[name], "text");
        render();
        focusField(order.length, "name");
      } else if (fe === "remove-field") {
        delete schema().properties[order[index]];
        var required = requiredList();
        if (required.indexOf(order[index]) !== -1) { required.splice(required.indexOf(order[index]), 1); }
        render();
      } else if (fe === "move-up" || fe === "move-down") {
        var to = fe === "move-up" ? index - 1 : index + 1;
        if (to < 0 || to >= order.length) { return; }
        var moved = order.splice(index, 1)[0];
        order.splice(to, 0, moved);
        reorder(order);
        render();
        focusField(to, fe);
      } else if (fe === "add-choice") {
        var p = prop(index);
        if (!Array.isArray(p.enum)) { p.enum = []; }
        var titles = enumTitles(p);
        p.enum.push(choiceValue(p, "option_" + (p.enum.length + 1)));
        titles["zh-CN"].push("");
        titles.en.push("");
        render();
        var rows = root.querySelectorAll('[data-fe="field"]')[index].querySelectorAll('[data-fe="choice-value"]');
        if (rows.length) { rows[rows.length - 1].select(); }
      } else if (fe === "remove-choice") {
        var q = prop(index);
        var at = choiceIndex(button);
        var all = enumTitles(q);
        q.enum.splice(at, 1);
        all["zh-CN"].splice(at, 1);
        all.en.splice(at, 1);
        render();
      } else if (fe === "json-apply") {
        applyJson();
        return;
      } else if (fe === "json-reset") {
        find("json").value = JSON.stringify(form, null, 2);
        find("json-error").hidden = true;
        return;
      } else if (fe === "preview-locale") {
        previewLocale = button.getAttribute("data-fe-loc");
        root.querySelectorAll('[data-fe="preview-locale"]').forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        refreshPreview();
        return;
      } else {
        return;
      }
      changed();
    }

    function switchTab(name) {
      tab = name;
      root.querySelectorAll("[data-fe-tab]").forEach(function (b) {
        b.setAttribute("aria-selected", b.getAttribute("data-fe-tab") === name ? "true" : "false");
      });
      find("panel-fields").hidden = name !== "fields";
      find("panel-json").hidden = name !== "json";
      if (name === "json") {
        find("json").value = JSON.stringify(form, null, 2);
        find("json-error").hidden = true;
        find("json-status").textContent = "";
      }
    }

    function applyJson() {
      var area = find("json");
      var error = find("json-error");
      var parsed;
      try {
        parsed = JSON.parse(area.value);
      } catch (exc) {
        error.textContent = t("jsonInvalid") + exc.message;
        error.hidden = false;
        find("json-status").textContent = "";
        return;
      }
      if (!isObject(parsed)) {
        error.textContent = t("jsonNotObject");
        error.hidden = false;
        find("json-status").textContent = "";
        return;
      }
      form = parsed;
      render();  // the JSON tab stays open, showing the document as applied
      find("json-status").textContent = t("jsonApplied");
      changed();
    }

    root.addEventListener("input", onInput);
    root.addEventListener("change", onChangeEvent);
    root.addEventListener("click", onClick);
    render();

    return {
      setForm: function (next, taskId, name) {
        form = isObject(next) ? copy(next) : null;
        taskName = name || taskId || "";
        tab = "fields";
        previewSeq += 1;  // an answer about the form shown before is dropped
        if (previewTimer !== null) { clearTimeout(previewTimer); previewTimer = null; }
        render();
        if (form !== null) { refreshPreview(); }
      },
      getForm: function () { return form === null ? null : copy(form); },
      destroy: function () {
        destroyed = true;
        if (previewTimer !== null) { clearTimeout(previewTimer); }
        if (previewAbort) { previewAbort.abort(); }
        root.removeEventListener("input", onInput);
        root.removeEventListener("change", onChangeEvent);
        root.removeEventListener("click", onClick);
        if (root.parentNode) { root.parentNode.removeChild(root); }
      }
    };
  }

  window.CsiFormEditor = { mount: mount, strings: STRINGS };
})();
