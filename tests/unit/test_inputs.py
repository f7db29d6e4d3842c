"""What the engine accepts from outside at all: ids the database can hold, text every
store keeps, JSON of bounded depth; refused with the place it breaks, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import ValidationFailed
from engine.inputs import MAX_DEPTH, MAX_ID, check_json, loads, parse_id, plain_json


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({"a": "\udfff"}, "a", "holds a character that cannot be stored"),
        ({"a": ["ok", "x\ud800y"]}, "a/1", "holds a character that cannot be stored"),
        ({"a": "NUL\x00"}, "a", "holds a character that cannot be stored"),
        ({"a": {"\x00": 1}}, "a", "holds a character that cannot be stored"),
        ({"k" * 129: 1}, "", "has a key longer than 128 characters"),
        ({"a": deep(MAX_DEPTH)}, "a" + "/0" * (MAX_DEPTH - 1), "nested more than"),
        ({"a": deep(900)}, "a" + "/0" * (MAX_DEPTH - 1), "nested more than"),
        ({"a": deep(100_000)}, "a" + "/0" * (MAX_DEPTH - 1), "nested more than"),
    ],
)
def test_json_beyond_the_rules_is_refused_where_it_breaks(
    data: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        plain_json(data, "initial data", "data")
    [(where, [said])] = refused.value.details.items()
    assert where == "/".join(p for p in ("data", path) if p)
    assert reason in said
    assert refused.value.message.startswith("initial data ")


def test_json_at_the_limits_is_accepted() -> None:
    data = {"a": deep(MAX_DEPTH - 1), "k" * 128: "text \u4e2d\U0001f600"}  # 32 levels
    assert plain_json(data) == json.loads(json.dumps(data))
    check_json(deep(MAX_DEPTH), "a value")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ("{", "not JSON"),
        (b"\xff", "not JSON"),
        ("1" * 5000, "not JSON"),  # beyond Python's digits limit for int()
        ('"\\udfff"', "cannot be stored"),
        ('{"a": "\\u0000"}', "cannot be stored"),
    ],
)
def test_loads_refuses_what_it_cannot_decode_or_keep(body: str | bytes, reason: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        loads(body)
    assert reason in next(iter(refused.value.details.values()))[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("0042", 42),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        (str(2**63), None),
        ("9" * 5000, None),
        ("0", None),
        ("-1", None),
        ("1.0", None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("", None),
        (None, None),
    ],
)
def test_parse_id(text: str | None, expected: int | None) -> None:
    assert parse_id(text) == expected
