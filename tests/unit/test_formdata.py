"""web.formdata: posted fields -> JSON per schema, schema -> widgets, errors -> words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_babel import Babel
from werkzeug.datastructures import MultiDict

import web
from engine.errors import FieldError, ValidationFailed
from web.formdata import (
    build_fields,
    display,
    error_text,
    errors_of,
    field_paths,
    parse_form,
    texts_by_path,
    unplaced,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "owners": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "value": {"type": "number"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "priority": {"type": "string", "enum": ["high", "medium"], "default": "medium"},
                    "done": {"type": "boolean"},
                },
            },
        },
    },
}


def test_scalars_are_coerced_and_empty_values_dropped() -> None:
    form = MultiDict(
        [("title", "  x "), ("count", "3"), ("ratio", "2.5"), ("flag", "false"), ("flag", "true")]
    )
    assert parse_form(SCHEMA, form) == {"title": "x", "count": 3, "ratio": 2.5, "flag": True}
    assert parse_form(SCHEMA, MultiDict([("title", ""), ("count", " "), ("flag", "false")])) == {
        "flag": False
    }


def test_unparseable_numbers_stay_strings_for_the_validator() -> None:
    assert parse_form(SCHEMA, MultiDict([("count", "3.5"), ("ratio", "12,5")])) == {
        "count": 3.5,
        "ratio": "12,5",
    }
    assert parse_form(SCHEMA, MultiDict([("ratio", "nan")])) == {"ratio": "nan"}


def test_checkboxes_give_a_list() -> None:
    assert parse_form(SCHEMA, MultiDict([("owners", "a"), ("owners", "c")])) == {
        "owners": ["a", "c"]
    }
    assert parse_form(SCHEMA, MultiDict([("csrf_token", "t")])) == {}


def test_rows_in_index_order_and_empty_rows_dropped() -> None:
    form = MultiDict(
        [
            ("rows-10-code", "B"),
            ("rows-10-value", "7"),
            ("rows-10-done", "false"),
            ("rows-2-code", "A"),
            ("rows-2-value", "1.25"),
            ("rows-2-tags", "x"),
            ("rows-2-tags", "y"),
            ("rows-2-done", "false"),
            ("rows-2-done", "true"),
            # a row left empty: only the default and an unchecked box
            ("rows-5-code", ""),
            ("rows-5-priority", "medium"),
            ("rows-5-done", "false"),
        ]
    )
    assert parse_form(SCHEMA, form) == {
        "rows": [
            {"code": "A", "value": 1.25, "tags": ["x", "y"], "done": True},
            {"code": "B", "value": 7, "done": False},
        ]
    }


@pytest.mark.parametrize(
    ("prop", "posted", "expected"),
    [
        ({"type": "integer"}, ["3"], 3),
        ({"type": "integer"}, [" 3 "], 3),
        ({"type": "integer"}, ["3.0"], 3),
        ({"type": "integer"}, ["1e3"], 1000),
        ({"type": "integer"}, ["x"], "x"),
        ({"type": "number"}, ["2"], 2),
        ({"type": "number"}, ["2.0"], 2.0),
        ({"type": "number"}, ["1e2"], 100.0),
        ({"type": "number"}, ["-0.5"], -0.5),
        ({"type": "number"}, ["inf"], "inf"),
        ({"type": ["number", "null"]}, ["4"], 4),
        ({"type": "string"}, ["a\r\nb "], "a\nb"),
        ({"type": "string"}, ["  "], None),
        ({"type": "boolean"}, ["false", "on"], True),
        ({"type": "boolean"}, ["yes"], True),
        ({"type": "boolean"}, ["false"], False),
        ({"type": "boolean"}, ["0"], False),
        ({"type": "array", "items": {"type": "string"}}, ["a\nb\n\n c "], ["a", "b", "c"]),
        ({"type": "array", "items": {"type": "integer"}}, ["1", "2"], [1, 2]),
        ({"type": "array", "items": {"type": "string"}}, [""], None),
        ({"type": "object", "properties": {"x": {"type": "number"}}}, None, {"x": 1.5}),
    ],
)
def test_posted_values(prop: dict[str, Any], posted: list[str] | None, expected: Any) -> None:
    schema = {"type": "object", "properties": {"f": prop}}
    form = MultiDict([("f-x", "1.5")] if posted is None else [("f", v) for v in posted])
    value = parse_form(schema, form).get("f")
    assert (value, type(value)) == (expected, type(expected))


def test_a_table_with_only_blank_rows_is_left_out() -> None:
    form = MultiDict([("rows-0-code", ""), ("rows-0-priority", "medium"), ("rows-0-done", "false")])
    assert parse_form(SCHEMA, form) == {}


# -- widgets ------------------------------------------------------------------------------------

WIDGETS = {
    "type": "object",
    "required": ["title", "kind", "flag", "rows", "grp"],
    "properties": {
        "title": {
            "type": "string",
            "title": "标题",
            "x-title-en": "Title",
            "description": "说明",
            "x-description-en": "Help",
            "maxLength": 50,
        },
        "notes": {"type": "string", "x-widget": "textarea", "maxLength": 9},
        "on": {"type": "string", "format": "date"},
        "due": {"type": "string", "x-widget": "date"},
        "n": {"type": "integer", "minimum": 0, "maximum": 9},
        "x": {"type": ["number", "null"], "minimum": 0.5},
        "flag": {"type": "boolean"},
        "kind": {
            "type": "string",
            "enum": ["a", "b"],
            "x-enum-titles": {"zh-CN": ["甲", "乙"], "en": ["A"]},
        },
        "owners": {"type": "array", "items": {"type": "string", "enum": ["u1", "u2"]}},
        "picks": {"type": "array", "x-widget": "select", "items": {"enum": ["p"]}},
        "lines": {"type": "array", "items": {"type": "string"}},
        "grp": {
            "type": "object",
            "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
        },
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["c"],
                "properties": {
                    "c": {"type": "string"},
                    "p": {"type": "string", "enum": ["h", "m"], "default": "m"},
                },
            },
        },
        "ignored": True,
    },
}


@pytest.mark.parametrize(
    ("key", "widget", "required", "html_required", "attrs"),
    [
        ("title", "text", True, True, {"maxlength": 50}),
        ("notes", "textarea", False, False, {"maxlength": 9}),
        ("on", "date", False, False, {}),
        ("due", "date", False, False, {}),
        ("n", "number", False, False, {"step": "1", "min": 0, "max": 9}),
        ("x", "number", False, False, {"step": "any", "min": 0.5}),
        ("flag", "checkbox", True, False, {}),
        ("kind", "select", True, True, {}),
        ("owners", "checkboxes", False, False, {}),
        ("picks", "multiselect", False, False, {}),
        ("lines", "lines", False, False, {}),
        ("grp", "group", True, False, {}),
        ("rows", "table", True, False, {}),
    ],
)
def test_widget_by_schema(
    key: str, widget: str, required: bool, html_required: bool, attrs: dict[str, Any]
) -> None:
    fields = {f.key: f for f in build_fields(WIDGETS, None, None, "en")}
    assert list(fields) == [k for k in WIDGETS["properties"] if k != "ignored"]
    field = fields[key]
    assert (field.name, field.path) == (key, key)
    assert (field.widget, field.required, field.html_required, field.attrs) == (
        widget,
        required,
        html_required,
        attrs,
    )


@pytest.mark.parametrize(
    ("locale", "label", "help", "kind_options"),
    [
        ("en", "Title", "Help", [("a", "A"), ("b", "b")]),
        ("zh-CN", "标题", "说明", [("a", "甲"), ("b", "乙")]),
    ],
)
def test_labels_by_locale(
    locale: str, label: str, help: str, kind_options: list[tuple[str, str]]
) -> None:
    fields = {f.key: f for f in build_fields(WIDGETS, None, None, locale)}
    assert (fields["title"].label, fields["title"].help) == (label, help)
    assert (fields["notes"].label, fields["notes"].help) == ("notes", "")
    assert fields["kind"].options == kind_options


def test_values_not_on_the_list_stay_visible() -> None:
    values = {"kind": "z", "owners": ["u2", "gone"], "picks": []}
    fields = {f.key: f for f in build_fields(WIDGETS, values, None, "zh-CN")}
    assert fields["kind"].options == [("a", "甲"), ("b", "乙"), ("z", "z")]
    assert fields["owners"].options == [("u1", "u1"), ("u2", "u2"), ("gone", "gone")]
    assert fields["picks"].options == [("p", "p")]
    assert fields["owners"].selected("u2")
    assert not fields["owners"].selected("u1")
    assert fields["kind"].selected("z")
    assert not fields["title"].selected("")


def test_a_table_has_a_row_template_and_its_rows() -> None:
    values = {"rows": [{"c": "1"}, {"c": "2", "p": "h"}, "not a row"]}
    errors = {"rows": ["table"], "rows/1/c": ["cell"], "rows/0": ["row"], "rows/2": ["row 2"]}
    (table,) = [f for f in build_fields(WIDGETS, values, errors, "en") if f.key == "rows"]
    assert [(c.name, c.path, c.value, c.required) for c in table.row_template] == [
        ("rows-__index__-c", "", None, True),
        ("rows-__index__-p", "", "m", False),
    ]
    assert [[(c.name, c.path, c.value, c.errors) for c in row] for row in table.rows] == [
        [("rows-0-c", "rows/0/c", "1", []), ("rows-0-p", "rows/0/p", None, [])],
        [("rows-1-c", "rows/1/c", "2", ["cell"]), ("rows-1-p", "rows/1/p", "h", [])],
        [("rows-2-c", "rows/2/c", None, []), ("rows-2-p", "rows/2/p", None, [])],
    ]
    assert table.errors == ["table", "row", "row 2"]  # errors about whole rows show on the table
    assert all(not c.html_required for row in table.rows for c in row)


def test_an_empty_table_starts_with_one_blank_row_of_defaults() -> None:
    for values in (None, {"rows": []}, {"rows": "not a list"}):
        (table,) = [f for f in build_fields(WIDGETS, values, None, "en") if f.key == "rows"]
        assert [[(c.name, c.value) for c in row] for row in table.rows] == [
            [("rows-0-c", None), ("rows-0-p", "m")]
        ]


def test_a_group_has_one_row_of_subfields() -> None:
    errors = {"grp/a": ["missing"]}
    (group,) = [
        f for f in build_fields(WIDGETS, {"grp": {"a": "x"}}, errors, "en") if f.key == "grp"
    ]
    assert [
        [(c.name, c.path, c.value, c.required, c.errors) for c in row] for row in group.rows
    ] == [[("grp-a", "grp/a", "x", True, ["missing"]), ("grp-b", "grp/b", None, False, [])]]


def test_errors_show_on_their_field_and_field_paths_name_every_place() -> None:
    values = {"rows": [{"c": "1"}, {"c": "2"}]}
    fields = build_fields(WIDGETS, values, {"title": ["e1", "e2"], "nowhere": ["x"]}, "en")
    assert {f.key: f.errors for f in fields if f.errors} == {"title": ["e1", "e2"]}
    paths = field_paths(fields)
    assert paths == {
        *(k for k in WIDGETS["properties"] if k != "ignored"),
        "grp/a",
        "grp/b",
        "rows/0",
        "rows/0/c",
        "rows/0/p",
        "rows/1",
        "rows/1/c",
        "rows/1/p",
    }
    texts = {"title": ["e"], "rows/1/c": ["e"], "": ["whole form"], "nowhere": ["x"]}
    assert unplaced(texts, paths) == [("Form", ["whole form"]), ("nowhere", ["x"])]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (False, "false"), (2.0, "2"), (2.5, "2.5"), (["a", 1.0], "a\n1")],
)
def test_display(value: Any, text: str) -> None:
    assert display(value) == text


# -- error texts --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chinese_app() -> Flask:
    """A bare app that speaks Chinese with the web layer's catalogue."""
    app = Flask(__name__)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(web.__file__).parent / "translations")
    Babel(app, locale_selector=lambda: "zh_CN")
    return app


@pytest.mark.parametrize(
    ("code", "params", "english", "chinese"),
    [
        ("required", {}, "This field is required.", "此项为必填项。"),
        ("enum", {}, "Choose one of the allowed values.", "请从可选值中选择。"),
        ("not_allowed", {}, "Choose one of the allowed values.", "请从可选值中选择。"),
        ("duplicate", {}, "This value is already used in another row.", "该值已在其他行中使用。"),
        (
            "duration",
            {},
            "Enter an ISO 8601 duration such as P7D, P2W or PT12H.",
            "请输入 ISO 8601 时长，如 P7D、P2W 或 PT12H。",
        ),
        ("type", {"expected": "number"}, "Enter a number.", "请输入数字。"),
        ("type", {"expected": "integer"}, "Enter a number.", "请输入数字。"),
        ("type", {"expected": "object"}, "The value has the wrong type.", "值的类型不正确。"),
        (
            "format",
            {"expected": "date"},
            "Enter a valid date (YYYY-MM-DD).",
            "请输入有效日期（YYYY-MM-DD）。",
        ),
        ("format", {"expected": "email"}, "The format is not valid.", "格式不正确。"),
        ("pattern", {}, "The format is not valid.", "格式不正确。"),
        ("maxLength", {"expected": 5}, "The text is too long.", "内容过长。"),
        ("maxItems", {}, "Too many entries.", "条目过多。"),
        ("minLength", {"expected": 2}, "Add at least one entry.", "请至少填写一项。"),
        ("minItems", {}, "Add at least one entry.", "请至少填写一项。"),
        ("uniqueItems", {}, "Entries must be unique.", "各项不能重复。"),
        ("minimum", {}, "The value is too small.", "数值过小。"),
        ("exclusiveMinimum", {}, "The value is too small.", "数值过小。"),
        ("maximum", {}, "The value is too large.", "数值过大。"),
        ("exclusiveMaximum", {}, "The value is too large.", "数值过大。"),
        ("additionalProperties", {}, "the engine's words", "the engine's words"),
        ("invalid", {}, "the engine's words", "the engine's words"),
    ],
)
def test_error_text_by_code(
    code: str, params: dict[str, Any], english: str, chinese: str, chinese_app: Flask
) -> None:
    error = FieldError("f", code, "the engine's words", params)
    assert error_text(error, "en") == english  # outside a request: gettext's English
    with chinese_app.app_context():
        assert error_text(error, "zh-CN") == chinese


@pytest.mark.parametrize(
    ("texts", "locale", "shown"),
    [
        ({"zh-CN": "时长不对", "en": "bad wait"}, "en", "Bad wait"),
        ({"zh-CN": "时长不对", "en": "bad wait"}, "zh-CN", "时长不对"),
        ({"zh-CN": "时长不对"}, "zh-CN", "时长不对"),
        ({"zh-CN": "时长不对"}, "en", "Enter an ISO 8601 duration such as P7D, P2W or PT12H."),
        ({"en": "bad wait"}, "zh-CN", "Enter an ISO 8601 duration such as P7D, P2W or PT12H."),
        ({"en": ""}, "en", "Enter an ISO 8601 duration such as P7D, P2W or PT12H."),
    ],
)
def test_error_text_prefers_the_forms_own_words(
    texts: dict[str, str], locale: str, shown: str
) -> None:
    assert error_text(FieldError("d", "duration", "m", texts=texts), locale) == shown


def test_texts_by_path_and_errors_of() -> None:
    errors = (
        FieldError("a", "required", "required"),
        FieldError("a", "weird", "odd"),
        FieldError("", "duration", "m", texts={"en": "whole"}),
    )
    assert texts_by_path(errors, "en") == {
        "a": ["This field is required.", "odd"],
        "": ["Whole"],
    }
    assert errors_of(ValidationFailed("m", errors=errors)) == errors
    assert errors_of(ValidationFailed("m", {"a": ["x", "y"], "b": "z"})) == (
        FieldError("a", "invalid", "x"),
        FieldError("a", "invalid", "y"),
        FieldError("b", "invalid", "z"),
    )
    assert errors_of(ValidationFailed("no details")) == (FieldError("", "invalid", "no details"),)
