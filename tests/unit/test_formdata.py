"""web.formdata.parse_form: posted fields -> JSON per schema."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from web.formdata import parse_form

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
