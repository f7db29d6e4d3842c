"""The form editor's preview (`POST /models/form-preview`): a form document not yet saved,
rendered by the inbox's form templates, refused when the server lint would refuse it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.modeling.lint import MAX_FORM_BYTES
from tests.helpers import html
from tests.helpers.pages import client_for, csrf_token

URL = "/models/form-preview"


def choice_form() -> dict[str, Any]:
    """What the editor makes of a task with one required choice and one text field."""
    return {
        "title": {"zh-CN": "准备管理评审材料", "en": "Prepare management review"},
        "description": {"zh-CN": "汇总本期改进。", "en": "Sum up this cycle's improvements."},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "review_kind": {
                    "title": "评审类型",
                    "x-title-en": "Kind of review",
                    "type": "string",
                    "enum": ["annual", "special"],
                    "x-enum-titles": {
                        "zh-CN": ["年度评审", "专项评审"],
                        "en": ["Annual", "Special"],
                    },
                },
                "summary": {
                    "title": "材料摘要",
                    "x-title-en": "Summary",
                    "type": "string",
                    "maxLength": 4000,
                    "x-widget": "textarea",
                },
            },
            "required": ["review_kind"],
            "additionalProperties": False,
        },
    }


def post(client: Any, body: Any, token: str | None, *, raw: bytes | None = None) -> Any:
    headers = {"X-CSRFToken": token} if token else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, headers=headers, content_type="application/json")


@pytest.fixture
def owner(app: Any) -> tuple[Any, str]:
    client = client_for(app, "owner")
    return client, csrf_token(client, "/")


def test_a_modeler_sees_the_form_as_the_inbox_renders_it(owner: tuple[Any, str]) -> None:
    client, token = owner
    response = post(client, {"form": choice_form()}, token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    doc = html.page(response)
    assert html.text_of(html.select_one(doc, ".form-preview-title")) == "准备管理评审材料"
    assert "汇总本期改进。" in html.text_of(html.select_one(doc, ".lead"))
    # The widgets of templates/_form.html, with the names and ids the task page uses.
    label = html.select_one(doc, 'label[for="f-review_kind"]')
    assert "评审类型" in html.text_of(label)
    assert html.select(label, ".req"), "a required field is marked"
    select = html.select_one(doc, "select#f-review_kind")
    assert select.get("name") == "review_kind"
    assert select.get("required") is not None
    options = [html.text_of(o) for o in html.select(select, "option")]
    assert options[1:] == ["年度评审", "专项评审"]
    textarea = html.select_one(doc, "textarea#f-summary")
    assert textarea.get("maxlength") == "4000"
    assert "材料摘要" in html.text_of(html.select_one(doc, 'label[for="f-summary"]'))
    # A fragment, and nothing in it could be sent.
    assert not html.select(doc, "form")
    assert "<html" not in response.get_data(as_text=True)


def test_the_preview_speaks_the_language_asked_for(owner: tuple[Any, str]) -> None:
    client, token = owner
    response = post(client, {"form": choice_form(), "locale": "en"}, token)
    assert response.status_code == 200
    doc = html.page(response)
    assert html.text_of(html.select_one(doc, ".form-preview-title")) == "Prepare management review"
    assert "Kind of review" in html.text_of(html.select_one(doc, 'label[for="f-review_kind"]'))
    options = [html.text_of(o) for o in html.select(doc, "select#f-review_kind option")]
    assert options == ["— choose —", "Annual", "Special"]


def test_a_bundled_form_previews_with_its_widgets(owner: tuple[Any, str], app: Any) -> None:
    client, token = owner
    document = app.extensions["csi"].runtime.forms.document("review_plan")
    response = post(client, {"form": document}, token)
    assert response.status_code == 200, response.get_data(as_text=True)
    doc = html.page(response)
    assert [html.text_of(o) for o in html.select(doc, "select#f-decision option")][1:] == [
        "通过",
        "驳回",
    ]
    assert html.select_one(doc, "textarea#f-comment") is not None


def test_nothing_of_the_form_is_evaluated(owner: tuple[Any, str]) -> None:
    """Prefills and run-time option lists name data of an instance: the preview has none,
    reads no users and runs no expression; the fields show empty."""
    client, token = owner
    form = choice_form()
    properties = form["schema"]["properties"]
    properties["summary"]["x-prefill"] = "problem + ' (from the record)'"
    properties["reviewer"] = {
        "title": "评审人",
        "x-title-en": "Reviewer",
        "type": "string",
        "maxLength": 64,
        "x-options": "users:ImprovementManager",
    }
    response = post(client, {"form": form}, token)
    assert response.status_code == 200, response.get_data(as_text=True)
    doc = html.page(response)
    assert html.text_of(html.select_one(doc, "textarea#f-summary")) == ""
    assert len(html.select(doc, "select#f-reviewer option")) == 1  # "— choose —" alone
    assert "manager" not in response.get_data(as_text=True)


@pytest.mark.parametrize("username", ["manager", "auditor"])
def test_approvers_and_auditors_who_read_models_may_preview(app: Any, username: str) -> None:
    client = client_for(app, username)
    response = post(client, {"form": choice_form()}, csrf_token(client, "/"))
    assert response.status_code == 200


def test_a_user_who_neither_models_nor_reads_models_is_refused(app: Any) -> None:
    client = client_for(app, "po1")
    response = post(client, {"form": choice_form()}, csrf_token(client, "/"))
    assert response.status_code == 403
    assert response.get_json()["errors"]


def test_anonymous_is_refused_in_json_not_sent_to_log_in(client: Any) -> None:
    response = post(client, {"form": choice_form()}, csrf_token(client, "/login"))
    assert response.status_code == 403
    assert response.get_json()["errors"]


def test_csrf_token_is_required(owner: tuple[Any, str]) -> None:
    client, _token = owner
    assert post(client, {"form": choice_form()}, None).status_code == 400
    assert post(client, {"form": choice_form()}, "not-the-token").status_code == 400


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'{"form": "text"}', b'{"schema": {}}', b"", b'{"form": {"a": NaN}'],
)
def test_a_body_without_a_form_is_400(owner: tuple[Any, str], raw: bytes) -> None:
    client, token = owner
    response = post(client, None, token, raw=raw)
    assert response.status_code == 400, raw
    assert response.get_json()["errors"]


def _broken(change: str) -> dict[str, Any]:
    form = choice_form()
    schema = form["schema"]
    if change == "no en label":
        del schema["properties"]["summary"]["x-title-en"]
    elif change == "no title":
        form["title"] = {"zh-CN": "只有中文"}
    elif change == "unbounded text":
        del schema["properties"]["summary"]["maxLength"]
    elif change == "unknown keyword":
        schema["properties"]["summary"]["x-widgit"] = "textarea"
    elif change == "remote reference":
        schema["properties"]["summary"] = {"$ref": "https://example.org/field.json"}
    elif change == "bad field name":
        schema["properties"]["2nd"] = copy.deepcopy(schema["properties"]["summary"])
    elif change == "meta-schema":
        schema["required"] = "review_kind"
    elif change == "no schema":
        del form["schema"]
    return form


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("no en label", "x-title-en"),
        ("no title", "en"),
        ("unbounded text", "maxLength"),
        ("unknown keyword", "x-widgit"),
        ("remote reference", "not within the form"),
        ("bad field name", "2nd"),
        ("meta-schema", "required"),
        ("no schema", "no schema"),
    ],
)
def test_a_form_the_lint_refuses_is_422_with_the_reasons(
    owner: tuple[Any, str], change: str, said: str
) -> None:
    client, token = owner
    response = post(client, {"form": _broken(change)}, token)
    assert response.status_code == 422, change
    errors = response.get_json()["errors"]
    assert any(said in error for error in errors), errors


def test_a_form_beyond_the_bound_of_a_drafts_forms_is_refused(owner: tuple[Any, str]) -> None:
    client, token = owner
    form = choice_form()
    form["description"]["en"] = "x" * (MAX_FORM_BYTES - 500)
    response = post(client, {"form": form}, token)
    assert response.status_code == 422
    assert any(str(MAX_FORM_BYTES) in e for e in response.get_json()["errors"])
    form["description"]["en"] = "x" * (MAX_FORM_BYTES + 2000)
    assert post(client, {"form": form}, token).status_code == 413
