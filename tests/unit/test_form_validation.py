"""What a submitted form is refused for: schema refusals with stable codes, then the
form's declared checks (x-checks) of each kind."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from engine.errors import FieldError, UnsafeExpression, ValidationFailed
from engine.forms import checks
from engine.forms.library import Form, parse_form
from engine.forms.options import OptionSource
from engine.forms.validation import plain_json, validate, validate_submission

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "code": {"type": "string", "minLength": 2, "maxLength": 9},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "owner": {"type": "string", "maxLength": 9, "x-options": "users"},
        "n": {"type": "integer", "minimum": 0, "maximum": 10},
        "x": {"type": "number", "exclusiveMinimum": 0},
        "on": {"type": "string", "format": "date", "maxLength": 10},
        "pat": {"type": "string", "pattern": "^[A-Z]+$", "maxLength": 9},
        "rows": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"c": {"type": "string", "maxLength": 9}},
                "required": ["c"],
                "additionalProperties": False,
            },
        },
        "due": {"type": "string", "maxLength": 9},
    },
    "required": ["name", "rows"],
    "additionalProperties": False,
    "x-checks": [{"unique": "rows", "key": "c"}, {"duration": "due"}],
}
VALID = {"name": "ok", "rows": [{"c": "1"}]}


def form() -> Form:
    return parse_form("k", json.dumps({"schema": SCHEMA}), {})


def users(role: str | None) -> list[tuple[str, str]]:
    return [("u1", "User 1")]


def refusals(data: Any, instance: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    source = OptionSource(users=users, data=instance or {})
    with pytest.raises(ValidationFailed) as refused:
        validate_submission(form(), source, data)
    return [(e.path, e.code, e.message) for e in refused.value.errors]


@pytest.mark.parametrize(
    ("change", "path", "code", "message"),
    [
        ({"name": None}, "name", "required", "required"),  # a field left out
        ({"name": ""}, "name", "required", "required"),  # minLength 1 reads as required
        ({"name": "toolong"}, "name", "maxLength", "at most 5 characters"),
        ({"code": "a"}, "code", "minLength", "at least 2 characters"),
        ({"kind": "z"}, "kind", "enum", "not one of the allowed values"),
        ({"owner": "u2"}, "owner", "enum", "not one of the allowed values"),  # x-options
        ({"n": "3"}, "n", "type", "must be of type integer"),
        ({"n": 1.5}, "n", "type", "must be of type integer"),
        ({"n": 11}, "n", "maximum", "at most 10"),
        ({"n": -1}, "n", "minimum", "at least 0"),
        ({"x": 0}, "x", "exclusiveMinimum", "more than 0"),
        ({"on": "2024-13-01"}, "on", "format", "not a valid date"),
        ({"pat": "ab"}, "pat", "pattern", "must match the pattern ^[A-Z]+$"),
        ({"rows": []}, "rows", "minItems", "at least one item"),
        ({"rows": [{"c": "1"}] * 4}, "rows", "maxItems", "at most 3 items"),
        ({"rows": [{}]}, "rows/0/c", "required", "required"),
        ({"rows": [{"c": "1"}, 5]}, "rows/1", "type", "must be of type object"),
        ({"rows": [{"c": "1", "d": 2}]}, "rows/0/d", "additionalProperties", "unknown field"),
        ({"extra": 1}, "extra", "additionalProperties", "unknown field"),
    ],
)
def test_schema_refusals(change: dict[str, Any], path: str, code: str, message: str) -> None:
    data = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    assert refusals(data) == [(path, code, message)]


@pytest.mark.parametrize("value", ["SUBMITTED", "SUBMITTED" * 10_000])
def test_refusals_name_the_rule_never_the_value(value: str) -> None:
    """A refusal is answered to the sender and may be shown on a page: it says which
    rule the value broke, never quotes the value (which may be megabytes long)."""
    data = {
        **{name: value for name in ("code", "kind", "owner", "n", "x", "on", "pat")},
        "rows": [{"c": value}, value],
        "due": [value],
        "unknown": value,
    }
    with pytest.raises(ValidationFailed) as refused:
        validate_submission(form(), OptionSource(users=users, data={}), data)
    said = json.dumps([refused.value.message, refused.value.details])
    assert len(refused.value.errors) >= 4
    assert "SUBMITTED" not in said
    assert len(said) < 1000


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"n": 11}, {"expected": 10}),
        ({"code": "a"}, {"expected": 2}),
        ({"n": "3"}, {"expected": "integer"}),
        ({"on": "x"}, {"expected": "date"}),
        ({"kind": "z"}, {}),
        ({"name": ""}, {}),
    ],
)
def test_schema_refusals_carry_what_was_expected(
    change: dict[str, Any], expected: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate(SCHEMA, {**VALID, **change})
    assert [dict(e.params) for e in refused.value.errors] == [expected]


def test_every_schema_refusal_is_reported_in_path_order() -> None:
    data = {"name": "", "n": 11, "kind": "z", "rows": [{}]}
    assert [(p, c) for p, c, _ in refusals(data)] == [
        ("kind", "enum"),
        ("n", "maximum"),
        ("name", "required"),
        ("rows/0/c", "required"),
    ]
    assert [(p, c) for p, c, _ in refusals({})] == [("name", "required"), ("rows", "required")]


def test_values_beyond_the_bounds_are_refused_before_anything_else_is_checked() -> None:
    data = {"name": "toolong", "kind": "z", "rows": [{"c": "x" * 10}, {}, {}, {}], "due": "x"}
    assert refusals(data) == [
        ("name", "maxLength", "at most 5 characters"),
        ("rows", "maxItems", "at most 3 items"),
    ]
    data = {"name": "ok", "kind": "z", "rows": [{"c": "x" * 10}], "pat": ["ABCDEFGHIJ"]}
    assert refusals(data) == [("rows/0/c", "maxLength", "at most 9 characters")]


def test_checks_run_only_once_the_schema_passes() -> None:
    duplicated = {**VALID, "rows": [{"c": "1"}, {"c": "1"}], "due": "soon"}
    assert refusals(duplicated) == [
        ("rows/1/c", "duplicate", "duplicate"),
        ("due", "duration", "not a duration the timer understands"),
    ]
    assert refusals({**duplicated, "n": -1}) == [("n", "minimum", "at least 0")]


def test_accepted_data_comes_back_as_a_json_copy() -> None:
    data = {**VALID, "owner": "u1", "n": 3, "due": "P7D", "on": "2026-02-28"}
    accepted = validate_submission(form(), OptionSource(users=users, data={}), data)
    assert accepted == data
    assert accepted is not data
    assert accepted["rows"] is not data["rows"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"x": math.inf}, "Out of range float values are not JSON compliant"),
        ({"x": math.nan}, "Out of range float values are not JSON compliant"),
        ({"rows": [{"c": -math.inf}]}, "Out of range float values are not JSON compliant"),
        ({"x": object()}, "Object of type object is not JSON serializable"),
        ([1], "not an object"),
        ("text", "not an object"),
    ],
)
def test_not_plain_json_is_refused(data: Any, reason: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        plain_json(data)
    assert refused.value.details == {"": [reason]}
    assert refused.value.errors == ()
    with pytest.raises(ValidationFailed):
        validate(SCHEMA, data)


def test_plain_json_turns_tuples_into_lists() -> None:
    assert plain_json({"a": (1, 2), "b": {"c": None}}) == {"a": [1, 2], "b": {"c": None}}


# -- x-checks -----------------------------------------------------------------------------------

ROWS = [{"k": "A"}, {"k": "B"}, "not a row", {"k": "A"}, {"k": ""}, {"k": ""}, {}, {"k": "B"}]


def same_a(submitted: Mapping[str, Any], instance: Mapping[str, Any]) -> dict[str, list[str]]:
    if submitted.get("a") == instance.get("a"):
        return {"a": ["same", "again"], "b": []}
    return {}


def run(
    rule: dict[str, Any], submitted: dict[str, Any], instance: dict[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    checks.validate_rules([rule])
    found = checks.run([rule], submitted, instance or {}, {"same_a": same_a})
    return [(e.path, e.code, e.message) for e in found]


DUPLICATE = ("duplicate", "duplicate")
NOT_ALLOWED = ("not_allowed", "not one of the allowed values")
MISSING = ("missing_row", "a row is missing")
DURATION = ("duration", "not a duration the timer understands")


@pytest.mark.parametrize(
    ("rule", "submitted", "instance", "expected"),
    [
        # unique: empty values never clash; the path names the row as submitted
        (
            {"unique": "r", "key": "k"},
            {"r": ROWS},
            {},
            [("r/3/k", *DUPLICATE), ("r/7/k", *DUPLICATE)],
        ),
        ({"unique": "r", "key": "k"}, {"r": [{"k": 1}, {"k": 2}]}, {}, []),
        ({"unique": "r", "key": "k"}, {"r": "not a list"}, {}, []),
        ({"unique": "r", "key": "k"}, {}, {}, []),
        # among: each row's value is listed; an empty or unreadable list allows any
        (
            {"rows": "r", "key": "k", "among": "allowed"},
            {"r": [{"k": "A"}, "x", {"k": "C"}, {}]},
            {"allowed": ["A"]},
            [("r/2/k", *NOT_ALLOWED), ("r/3/k", *NOT_ALLOWED)],
        ),
        ({"rows": "r", "key": "k", "among": "allowed"}, {"r": [{"k": "C"}]}, {"allowed": []}, []),
        ({"rows": "r", "key": "k", "among": "allowed"}, {"r": [{"k": "C"}]}, {}, []),
        ({"rows": "r", "key": "k", "among": "allowed"}, {"r": [{"k": "C"}]}, {"allowed": "AB"}, []),
        (
            {"rows": "r", "key": "k", "among": "[get(m, 'c') for m in ms]"},
            {"r": [{"k": "A"}, {"k": "Z"}]},
            {"ms": [{"c": "A"}, {"c": "B"}]},
            [("r/1/k", *NOT_ALLOWED)],
        ),
        # the submitted data wins over the instance's
        (
            {"rows": "r", "key": "k", "among": "allowed"},
            {"r": [{"k": "A"}], "allowed": ["B"]},
            {"allowed": ["A"]},
            [("r/0/k", *NOT_ALLOWED)],
        ),
        # cover: each listed value has a row (one refusal for the list)
        (
            {"rows": "r", "key": "k", "cover": "need"},
            {"r": [{"k": "A"}]},
            {"need": ["A", "B", "C"]},
            [("r", *MISSING)],
        ),
        (
            {"rows": "r", "key": "k", "cover": "need"},
            {"r": [{"k": "B"}, {"k": "A"}]},
            {"need": ["A", "B"]},
            [],
        ),
        ({"rows": "r", "key": "k", "cover": "need"}, {}, {"need": []}, []),
        ({"rows": "r", "key": "k", "cover": "need"}, {}, {}, []),
        ({"rows": "r", "key": "k", "cover": "need"}, {}, {"need": ["A"]}, [("r", *MISSING)]),
        # duration: an ISO 8601 duration a timer can wait for; empty is the schema's business
        ({"duration": "d"}, {"d": "P7D"}, {}, []),
        ({"duration": "d"}, {"d": "P2W"}, {}, []),
        ({"duration": "d"}, {"d": "PT12H"}, {}, []),
        ({"duration": "d"}, {"d": "7 days"}, {}, [("d", *DURATION)]),
        ({"duration": "d"}, {"d": "P1X"}, {}, [("d", *DURATION)]),
        ({"duration": "d"}, {"d": ""}, {}, []),
        ({"duration": "d"}, {"d": 7}, {}, []),
        ({"duration": "d"}, {}, {"d": "bad"}, []),  # only the submitted value counts
        # function: the pack's check, each code a refusal with the code as its message
        (
            {"function": "same_a"},
            {"a": 1},
            {"a": 1},
            [("a", "same", "same"), ("a", "again", "again")],
        ),
        ({"function": "same_a"}, {"a": 1}, {"a": 2}, []),
    ],
)
def test_check_kinds(
    rule: dict[str, Any],
    submitted: dict[str, Any],
    instance: dict[str, Any],
    expected: list[tuple[str, str, str]],
) -> None:
    assert run(rule, submitted, instance) == expected


@pytest.mark.parametrize(
    ("when", "submitted", "instance", "applies"),
    [
        ("mode == 'timer'", {"mode": "timer"}, {}, True),
        ("mode == 'timer'", {}, {"mode": "timer"}, True),
        ("mode == 'timer'", {"mode": "manual"}, {"mode": "timer"}, False),  # submitted wins
        ("mode == 'timer'", {}, {}, False),  # a missing variable reads as None
        ("absent['x']", {}, {}, False),  # cannot be evaluated: the check does not apply
        ("len(rows) > 0", {"rows": [1]}, {}, True),
    ],
)
def test_when_limits_a_check(
    when: str, submitted: dict[str, Any], instance: dict[str, Any], applies: bool
) -> None:
    rule = {"duration": "d", "when": when}
    expected = [("d", *DURATION)] if applies else []
    assert run(rule, {"d": "bad", **submitted}, instance) == expected


@pytest.mark.parametrize(
    ("message", "text", "texts"),
    [
        (
            {"zh-CN": "时长不对", "en": "bad wait"},
            "bad wait",
            {"zh-CN": "时长不对", "en": "bad wait"},
        ),
        ({"zh-CN": "时长不对"}, DURATION[1], {"zh-CN": "时长不对"}),
        ("words", DURATION[1], {}),
        (None, DURATION[1], {}),
    ],
)
def test_declared_messages(message: Any, text: str, texts: dict[str, str]) -> None:
    rule: dict[str, Any] = {"duration": "d"}
    if message is not None:
        rule["message"] = message
    found = checks.run([rule], {"d": "bad"}, {}, {})
    assert found == [FieldError("d", "duration", text, texts=texts)]


def test_a_declared_message_words_a_function_check_too() -> None:
    rule = {"function": "same_a", "message": {"en": "a is unchanged"}}
    found = checks.run([rule], {"a": 1}, {"a": 1}, {"same_a": same_a})
    assert [(e.code, e.message) for e in found] == [
        ("same", "a is unchanged"),
        ("again", "a is unchanged"),
    ]


def test_no_checks_no_refusals() -> None:
    checks.validate_rules([])
    assert checks.run([], {"a": 1}, {}, {}) == []
    assert checks.run((), {}, {}, {}) == []


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("unique", "each x-checks entry is an object"),
        ({}, "a check needs exactly one of"),
        ({"key": "k", "rows": "r"}, "a check needs exactly one of"),
        ({"among": "x", "cover": "y", "rows": "r", "key": "k"}, "a check needs exactly one of"),
        ({"unique": "r"}, "a 'unique' check names its 'key'"),
        ({"unique": ["r"], "key": "k"}, "a check's 'unique' must be text"),
        ({"among": "x", "key": "k"}, "a 'among' check names its 'rows' and 'key'"),
        ({"cover": "x", "rows": "r"}, "a 'cover' check names its 'rows' and 'key'"),
        ({"cover": 5, "rows": "r", "key": "k"}, "a check's 'cover' must be text"),
        ({"duration": 5}, "a check's 'duration' must be text"),
        ({"function": None}, "a check's 'function' must be text"),
    ],
)
def test_rules_the_engine_cannot_run(rule: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        checks.validate_rules([rule])


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"among": "a.b", "rows": "r", "key": "k"}, "attribute access is not allowed"),
        ({"cover": "__import__('os')", "rows": "r", "key": "k"}, "only these functions"),
        ({"duration": "d", "when": "x.y"}, "attribute access is not allowed"),
    ],
)
def test_unsafe_expressions_in_checks(rule: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnsafeExpression, match=reason):
        checks.validate_rules([rule])
