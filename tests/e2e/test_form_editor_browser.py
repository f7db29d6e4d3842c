"""The modeler's form editor in Chromium: a user task without a form gets one, built
field by field, previewed as the inbox renders it, and edited as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.helpers.browser import login, refused_by_csp

EXPECTED = {
    "title": {"zh-CN": "准备管理评审材料", "en": "Prepare management review"},
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "review_kind": {
                "title": "评审类型",
                "x-title-en": "Kind of review",
                "type": "string",
                "enum": ["annual", "special"],
                "x-enum-titles": {"zh-CN": ["年度评审", "专项评审"], "en": ["Annual", "Special"]},
            }
        },
        "required": ["review_kind"],
        "additionalProperties": False,
    },
}

MOUNT = """([token, locale]) => {
  const box = document.createElement("section");
  box.id = "editor-under-test";
  box.className = "panel";
  (document.querySelector("main") || document.body).prepend(box);
  window.changes = [];
  window.editor = window.CsiFormEditor.mount(box, {
    locale: locale,
    previewUrl: "/models/form-preview",
    csrfToken: token,
    onChange: (form) => window.changes.push(form),
  });
  window.editor.setForm(null, "Task_prepare_review", "准备管理评审材料");
}"""


def _mount(page: Any, base: str, locale: str = "zh-CN") -> Any:
    """The editor mounted into the inbox page (same origin, the app's CSP in force)."""
    page.goto(f"{base}/")
    token = page.locator("form[action$='/logout'] input[name=csrf_token]").input_value()
    page.add_script_tag(url=f"{base}/static/js/form-editor.js")
    page.evaluate(MOUNT, [token, locale])
    return page.locator("#editor-under-test")


def _last_change(page: Any) -> Any:
    return page.evaluate("window.changes[window.changes.length - 1]")


def test_owner_builds_a_form_and_sees_it_as_the_inbox_will(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    refused = refused_by_csp(page)
    base = live_server
    login(page, base, "owner")
    editor = _mount(page, base)

    # A task without a form: the editor says so and offers to create one.
    expect(editor.locator("[data-fe=empty]")).to_contain_text("此用户任务还没有表单")
    assert page.evaluate("window.editor.getForm()") is None
    editor.get_by_role("button", name="创建表单").click()
    created = _last_change(page)
    assert created["title"] == {"zh-CN": "准备管理评审材料", "en": "准备管理评审材料"}
    assert created["schema"]["properties"] == {}
    expect(editor.locator("[data-fe=editor]")).to_have_attribute(
        "data-fe-preview", "ready"
    )  # the server takes it
    editor.get_by_label("标题（英文）").fill("Prepare management review")

    # One field: a required choice between two labelled values.
    editor.get_by_role("button", name="添加字段").click()
    field = editor.locator("[data-fe=field]").first
    name = field.get_by_label("字段名")
    name.fill("2nd kind")
    expect(field.locator(".field-errors")).to_contain_text("字母开头")
    assert "2nd kind" not in json.dumps(_last_change(page))  # refused, not applied
    name.fill("review_kind")
    expect(field.locator(".field-errors")).to_be_hidden()
    field.get_by_label("标签（中文）").fill("评审类型")
    field.get_by_label("标签（英文）").fill("Kind of review")
    field.get_by_label("类型").select_option("choice")
    for _ in range(2):
        field.get_by_role("button", name="添加选项").click()
    for row, (value, zh, en) in enumerate(
        [("annual", "年度评审", "Annual"), ("special", "专项评审", "Special")]
    ):
        field.get_by_label(f"值 {row + 1}").fill(value)
        field.get_by_label(f"中文 {row + 1}").fill(zh)
        field.get_by_label(f"英文 {row + 1}").fill(en)
    field.get_by_label("必填").check()

    assert _last_change(page) == EXPECTED
    assert page.evaluate("window.editor.getForm()") == EXPECTED

    # The preview is the inbox's own widgets: the label, the required mark, the choices.
    preview = editor.locator("[data-fe=preview]")
    expect(preview.locator("label[for=f-review_kind]")).to_contain_text("评审类型")
    expect(preview.locator("label[for=f-review_kind] .req")).to_have_count(1)
    expect(preview.locator("select#f-review_kind option")).to_have_text(
        ["— 请选择 —", "年度评审", "专项评审"]
    )
    expect(editor.locator("[data-fe=preview-errors]")).to_be_hidden()
    editor.get_by_role("button", name="English").click()
    expect(preview.locator("label[for=f-review_kind]")).to_contain_text("Kind of review")
    expect(preview.locator(".form-preview-title")).to_have_text("Prepare management review")
    page.screenshot(path=str(artifacts / "form-editor-fields.png"), full_page=True)

    # A label left out: the preview lists what the lint says, the last preview stays.
    field.get_by_label("标签（英文）").fill("")
    expect(editor.locator("[data-fe=preview-errors]")).to_contain_text("x-title-en")
    expect(preview).to_have_class("fe-preview-body is-stale")
    field.get_by_label("标签（英文）").fill("Kind of review")
    expect(editor.locator("[data-fe=preview-errors]")).to_be_hidden()

    # The JSON tab shows the whole document and applies what is typed there.
    editor.get_by_role("tab", name="JSON").click()
    area = editor.locator("textarea[data-fe=json]")
    assert json.loads(area.input_value()) == EXPECTED
    edited = json.loads(area.input_value())
    edited["schema"]["properties"]["review_kind"]["x-title-en"] = "Review kind"
    edited["context"] = ["problem"]
    area.fill(json.dumps(edited, ensure_ascii=False, indent=2))
    editor.get_by_role("button", name="应用").click()
    assert _last_change(page) == edited
    expect(preview.locator("label[for=f-review_kind]")).to_contain_text("Review kind")

    # Invalid JSON is refused and changes nothing.
    changes = page.evaluate("window.changes.length")
    area.fill('{"title": {"zh-CN": "坏的"')
    editor.get_by_role("button", name="应用").click()
    expect(editor.locator("[data-fe=json-error]")).to_contain_text("JSON 无效")
    area.fill("[1, 2]")
    editor.get_by_role("button", name="应用").click()
    expect(editor.locator("[data-fe=json-error]")).to_contain_text("JSON 对象")
    assert page.evaluate("window.changes.length") == changes
    assert page.evaluate("window.editor.getForm()") == edited
    page.screenshot(path=str(artifacts / "form-editor-json.png"), full_page=True)

    # Back on the fields, the document as applied, with the key the editor does not show.
    editor.get_by_role("tab", name="字段").click()
    expect(field.get_by_label("标签（英文）")).to_have_value("Review kind")
    field.get_by_role("button", name="删除字段").click()
    assert _last_change(page)["schema"]["properties"] == {}
    assert _last_change(page)["schema"]["required"] == []
    assert _last_change(page)["context"] == ["problem"]

    page.evaluate("window.editor.destroy()")
    expect(editor.locator("[data-fe=editor]")).to_have_count(0)
    assert refused == []
    context.close()


def test_fields_are_moved_and_retyped_with_other_keys_kept(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en")
    page = context.new_page()
    base = live_server
    login(page, base, "owner")
    editor = _mount(page, base, locale="en")
    form = {
        "title": {"zh-CN": "审核", "en": "Review"},
        "context": ["problem"],
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "comment": {
                    "title": "意见",
                    "x-title-en": "Comment",
                    "type": "string",
                    "maxLength": 4000,
                    "x-widget": "textarea",
                    "x-carry-over": True,
                },
                "due": {
                    "title": "日期",
                    "x-title-en": "Due",
                    "type": "string",
                    "format": "date",
                    "maxLength": 10,
                    "x-widget": "date",
                },
                # A choice written by hand, without labels for its values.
                "level": {"title": "级别", "x-title-en": "Level", "enum": ["low", "high"]},
            },
            "required": ["comment"],
            "additionalProperties": False,
        },
    }
    page.evaluate("(form) => window.editor.setForm(form, 'Task_review', 'Review')", form)
    fields = editor.locator("[data-fe=field]")
    expect(fields).to_have_count(3)
    expect(fields.nth(0).get_by_label("Type")).to_have_value("textarea")
    expect(fields.nth(1).get_by_label("Type")).to_have_value("date")
    expect(fields.nth(2).get_by_label("Type")).to_have_value("choice")
    expect(fields.nth(2).get_by_label("Value 2")).to_have_value("high")
    # Showing a form is no change, and changes nothing of it.
    assert page.evaluate("window.changes.length") == 0
    assert page.evaluate("window.editor.getForm()") == form
    expect(editor.locator("[data-fe=preview] textarea#f-comment")).to_have_count(1)

    fields.nth(1).get_by_role("button", name="Move up").click()
    changed = _last_change(page)
    assert list(changed["schema"]["properties"]) == ["due", "comment", "level"]
    fields.nth(1).get_by_label("Name").fill("remark")
    fields.nth(1).get_by_label("Type").select_option("text")
    changed = _last_change(page)
    assert changed["schema"]["required"] == ["remark"]
    assert changed["schema"]["properties"]["remark"] == {
        "title": "意见",
        "x-title-en": "Comment",
        "x-carry-over": True,
        "type": "string",
        "maxLength": 200,
    }
    assert changed["context"] == ["problem"]
    fields.nth(0).get_by_label("Type").select_option("boolean")
    expect(editor.locator("[data-fe=preview] input[type=checkbox]#f-due")).to_have_count(1)
    expect(editor.locator("[data-fe=preview] input[type=text]#f-remark")).to_have_count(1)
    page.screenshot(path=str(artifacts / "form-editor-en.png"), full_page=True)
    context.close()


def test_a_file_field_names_the_kinds_it_takes_and_previews_as_a_file_input(
    browser: Any, live_server: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en")
    page = context.new_page()
    refused = refused_by_csp(page)
    login(page, live_server, "owner")
    editor = _mount(page, live_server, "en")
    editor.get_by_role("button", name="Create form").click()
    editor.get_by_label("Title (English)").fill("Verification evidence")
    editor.get_by_role("button", name="Add field").click()
    field = editor.locator("[data-fe=field]").first
    field.get_by_label("Name", exact=True).fill("evidence_file")
    field.get_by_label("Label (Chinese)").fill("验证证据")
    field.get_by_label("Label (English)").fill("Evidence")
    field.get_by_label("Type", exact=True).select_option("file")
    for kind in ("png", "jpeg", "text", "docx"):
        field.get_by_label(kind, exact=True).uncheck()

    prop = _last_change(page)["schema"]["properties"]["evidence_file"]
    assert prop["format"] == "binary"
    assert prop["x-attachment"] == {"types": ["pdf", "csv", "xlsx"]}
    assert "type" not in prop  # the engine gives a file field its value's schema
    # The server takes it, and the inbox shows a file input.
    preview = editor.locator("[data-fe=preview]")
    expect(preview.locator("input[type=file]#f-evidence_file")).to_be_attached()
    expect(editor.locator("[data-fe=preview-errors]")).to_be_hidden()

    # None chosen: the server's form rules say why the form cannot be used yet.
    for kind in ("pdf", "csv", "xlsx"):
        field.get_by_label(kind, exact=True).uncheck()
    expect(editor.locator("[data-fe=preview-errors]")).to_contain_text("types must list kinds")
    assert not refused, refused
    context.close()
