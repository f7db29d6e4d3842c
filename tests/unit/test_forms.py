"""Form files: what parse_form derives from their keywords and what it refuses, the
option lists `x-options` names, and what a form starts from (prefill)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import NotFound, ValidationFailed
from engine.forms.library import Form, FormLibrary, parse_form
from engine.forms.options import (
    KnownOptions,
    OptionSource,
    option_lists,
    resolve_schema,
    variables_of_option_list,
)
from engine.forms.prefill import Lookups, defaults, prefill
from engine.pack import Prefill
from procedure import PACK


def _never(data: Any, lookups: Any) -> Any:
    raise AssertionError("not called")


PREFILLS = {"from_pack": Prefill(_never, frozenset({"metrics", "owners"}))}


def form_of(schema: dict[str, Any], prefills: Any = None, **raw: Any) -> Form:
    text = json.dumps({"schema": schema, **raw})
    return parse_form("k", text, PREFILLS if prefills is None else prefills)


def props(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


# A field whose type the test does not care about, bounded as every form field must be.
SMALL = {
    "type": ["number", "string", "array", "null"],
    "maxLength": 20,
    "maxItems": 5,
    "items": {"type": "string", "maxLength": 5},
}


# -- parse_form ---------------------------------------------------------------------------------


def test_keywords_are_read_into_the_form() -> None:
    schema = {
        **props(
            plan={"type": "string", "maxLength": 9, "x-carry-over": True},
            owner={"type": "string", "maxLength": 9, "x-options": "users:Owner"},
            code={"type": "string", "maxLength": 9, "x-prefill": "get(metric, 'code')"},
            targets={
                "type": "array",
                "maxItems": 9,
                "x-prefill": {"function": "from_pack"},
                "items": props(
                    code={"type": "string", "maxLength": 9, "x-options": "rows:metrics:code"}
                ),
            },
            people={
                "type": "array",
                "maxItems": 9,
                "items": {"type": "string", "maxLength": 9, "x-options": "data:team"},
            },
        ),
        "x-checks": [{"unique": "targets", "key": "code"}],
    }
    form = form_of(
        schema,
        title={"en": "T"},
        description={"en": "D"},
        context=["source", "reference"],
        notice={"when": "decision == 'reject'", "show": "comment", "text": {"en": "x"}},
    )
    assert form.key == "k"
    assert form.title == {"en": "T"}
    assert form.description == {"en": "D"}
    assert form.context == ("source", "reference")
    assert form.fields == ["plan", "owner", "code", "targets", "people"]
    assert form.carry_over == ("plan",)
    assert form.prefills == {"code": "get(metric, 'code')", "targets": {"function": "from_pack"}}
    assert form.checks == ({"unique": "targets", "key": "code"},)
    assert form.option_lists == ("data:team", "rows:metrics:code", "users:Owner")
    assert form.notice == {"when": "decision == 'reject'", "show": "comment", "text": {"en": "x"}}
    assert form.inputs == {
        "source",  # context
        "reference",
        "plan",  # carry-over
        "metric",  # prefill expression
        "metrics",  # prefill function's reads (and the rows: option list)
        "owners",
        "decision",  # notice condition
        "comment",  # notice's shown variable
        "team",  # data: option list
    }


@pytest.mark.parametrize(
    ("raw", "inputs"),
    [
        ({"schema": props()}, set()),
        ({"schema": props(), "context": ["a"]}, {"a"}),
        ({"schema": props(a={**SMALL, "x-carry-over": False})}, set()),
        (
            {"schema": props(a={**SMALL, "x-prefill": "[m for m in ms if m > limit]"})},
            {"ms", "limit"},
        ),
        ({"schema": props(a={**SMALL, "x-prefill": "len(xs) + 1"})}, {"xs"}),
        (
            {
                "schema": props(
                    a={**SMALL, "x-options": "users"}, b={**SMALL, "x-options": "catalogue"}
                )
            },
            set(),
        ),
        ({"schema": props(), "notice": {"when": "n > 1"}}, {"n"}),
        ({"schema": props(), "notice": "not an object"}, set()),
    ],
)
def test_inputs(raw: dict[str, Any], inputs: set[str]) -> None:
    assert parse_form("k", json.dumps(raw), PREFILLS).inputs == inputs


def test_defaults_of_a_bare_form() -> None:
    form = form_of(props())
    assert (form.title, form.description, form.context, form.notice) == ({}, {}, (), None)
    assert (form.carry_over, form.prefills, form.checks, form.option_lists) == ((), {}, (), ())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "Expecting property name enclosed in double quotes"),
        ("[1, 2]", "no schema"),
        ('{"title": {}}', "no schema"),
        ('{"schema": []}', "no schema"),
        ('{"schema": {"type": 5}}', "5 is not valid under any of the given schemas"),
        ('{"schema": {"minLength": -1}}', "-1 is less than the minimum of 0"),
        (
            '{"schema": {"$schema": "http://json-schema.org/draft-07/schema#"}}',
            "$schema must be https://json-schema.org/draft/2020-12/schema",
        ),
        ('{"schema": {"$ref": "https://example.com/s.json"}}', "$ref 'https://example.com/s"),
        (
            '{"schema": {"properties": {"a": {"items": {"anyOf": [{"$ref": "o.json#/x"}]}}}}}',
            "/properties/a/items/anyOf/0: $ref 'o.json#/x' is not within the form",
        ),
        (
            '{"schema": {"$defs": {"d": {"$dynamicRef": "https://example.com/d"}}}}',
            "/$defs/d: $dynamicRef",
        ),
        (
            '{"schema": {"properties": {"a": {"x-titel-en": "A"}}}}',
            "/properties/a: unknown keyword 'x-titel-en'",
        ),
        ('{"schema": {}, "context": 5}', "'int' object is not iterable"),
        ('{"schema": {"properties": {"a": {"x-prefill": 5}}}}', "x-prefill is an expression"),
        (
            '{"schema": {"properties": {"a": {"x-prefill": {"function": "nope"}}}}}',
            "the pack has no prefill 'nope'",
        ),
        (
            '{"schema": {"properties": {"a": {"x-prefill": {"function": 5}}}}}',
            "x-prefill is an expression",
        ),
        ('{"schema": {"properties": {"a": {"x-prefill": "a.b"}}}}', "attribute access"),
        ('{"schema": {"properties": {"a": {"x-prefill": "open(1)"}}}}', "only these functions"),
        ('{"schema": {}, "notice": {"when": "_x"}}', "name '_x' is not allowed"),
        ('{"schema": {"properties": {"a": {"x-options": "bogus"}}}}', "unknown option list"),
        ('{"schema": {"properties": {"a": {"x-options": "rows:m"}}}}', "names no value key"),
        ('{"schema": {"properties": {"a": {"x-options": "data:"}}}}', "names no variable"),
        ('{"schema": {"x-checks": ["unique"]}}', "each x-checks entry is an object"),
        ('{"schema": {"x-checks": 5}}', "'int' object is not iterable"),
        ('{"schema": {"x-checks": [{"key": "k"}]}}', "a check needs exactly one of"),
        ('{"schema": {"x-checks": [{"unique": "r"}]}}', "a 'unique' check names its 'key'"),
        (
            '{"schema": {"x-checks": [{"unique": "r", "key": "k", "duration": "d"}]}}',
            "a check needs exactly one of",
        ),
        ('{"schema": {"x-checks": [{"rows": "r", "among": "x"}]}}', "names its 'rows' and 'key'"),
        (
            '{"schema": {"x-checks": [{"rows": "r", "key": "k", "cover": "x.y"}]}}',
            "attribute access",
        ),
        ('{"schema": {"x-checks": [{"duration": "d", "when": "1 +"}]}}', "syntax error"),
    ],
)
def test_refused_forms(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_form("k", text, PREFILLS)
    assert refused.value.message.startswith("form k")
    assert list(refused.value.details) == ["k"]
    assert reason in refused.value.details["k"][0]


STRING = {"type": "string", "maxLength": 9}


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (props(a={"type": "string"}), "a: a string needs maxLength"),
        (props(a={"type": ["string", "null"]}), "a: a string needs maxLength"),
        (props(a={"type": "array", "items": STRING}), "a: an array needs maxItems"),
        (props(a={"type": "array", "maxItems": 3}), "a: an array needs a schema for its items"),
        (
            props(a={"type": "array", "maxItems": 3, "items": {"type": "string"}}),
            "a/items: a string needs maxLength",
        ),
        (
            props(a={"type": "array", "maxItems": 3, "items": {"type": "object"}}),
            "a/items: an object needs additionalProperties false",
        ),
        (
            props(a={"type": "object", "properties": {"b": {"type": "string"}}}),
            "a: an object needs additionalProperties false",
        ),
        (props(a=props(b={"type": "string"})), "a/b: a string needs maxLength"),
        (
            {"type": "object", "properties": {}},
            "the schema: an object needs additionalProperties false",
        ),
        (props(a={"title": "anything goes"}), "a declares no type"),
        (props(a={"type": "string", "x-options": "users"}), "a: a string needs maxLength"),
        (props(a={"type": "string", "format": "date"}), "a: a string needs maxLength"),
    ],
)
def test_a_form_that_does_not_bound_what_it_accepts_is_refused(
    schema: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        form_of(schema)
    assert refused.value.details["k"][0] == reason


def test_fixed_values_bound_a_field_without_further_keywords() -> None:
    schema = props(
        kind={"type": "string", "enum": ["a", "b"]},
        fixed={"const": "x"},
        done={"type": "boolean"},
        n={"type": "integer"},
        rows={"type": "array", "maxItems": 3, "items": props(c=STRING)},
    )
    assert form_of(schema).fields == ["kind", "fixed", "done", "n", "rows"]


@pytest.mark.parametrize("key", FormLibrary.of(PACK).task_ids())
def test_every_bundled_form_loads_and_so_bounds_what_it_accepts(key: str) -> None:
    form = FormLibrary.of(PACK).get(key)
    assert form.key == key


@pytest.mark.parametrize("name", ["sorted", "set", "get", "class", "None", "_x", "a-b", "1a"])
def test_a_field_named_like_something_the_engine_provides_is_refused(name: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        form_of(props(**{name: {"type": "integer"}}))
    assert refused.value.details["k"] == [f"field name {name!r} is reserved or not a name"]


# -- option lists -------------------------------------------------------------------------------

DATA = {
    "team": ["ann", 7, None, {"x": 1}],
    "metrics": [
        {"code": "AV", "name": "Availability"},
        {"code": "MTTR"},
        {"code": ""},
        {"name": "no code"},
        "not a row",
        {"code": 3, "name": None},
    ],
    "text": "not a list",
}


def source() -> OptionSource:
    return OptionSource(
        users=lambda role: [("u1", f"User 1 ({role})")],
        data=DATA,
        catalogue=lambda: [("CSAT", "CSAT Satisfaction")],
    )


@pytest.mark.parametrize(
    ("spec", "options", "reads"),
    [
        ("users", [("u1", "User 1 (None)")], set()),
        ("users:", [("u1", "User 1 (None)")], set()),
        ("users:Owner", [("u1", "User 1 (Owner)")], set()),
        ("catalogue", [("CSAT", "CSAT Satisfaction")], set()),
        ("data:team", [("ann", "ann"), ("7", "7")], {"team"}),
        ("data:absent", [], {"absent"}),
        ("data:text", [], {"text"}),
        (
            "rows:metrics:code:name",
            [("AV", "AV Availability"), ("MTTR", "MTTR"), ("3", "3")],
            {"metrics"},
        ),
        ("rows:metrics:code", [("AV", "AV"), ("MTTR", "MTTR"), ("3", "3")], {"metrics"}),
        (
            "rows:metrics:name:code",
            [("Availability", "Availability AV"), ("no code", "no code")],
            {"metrics"},
        ),
        ("rows:absent:code", [], {"absent"}),
    ],
)
def test_option_lists(spec: str, options: list[tuple[str, str]], reads: set[str]) -> None:
    assert source().options(spec) == options
    assert variables_of_option_list(spec) == reads


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "unknown option list"),
        ("user", "unknown option list"),
        ("data", "names no variable"),
        ("rows::code", "names no variable"),
        ("rows:metrics", "names no value key"),
    ],
)
def test_unknown_option_lists(spec: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        source().options(spec)
    with pytest.raises(ValueError, match=reason):
        option_lists({"properties": {"a": {"x-options": spec}}})


def test_resolve_schema_turns_every_list_into_an_enum_and_leaves_the_source_alone() -> None:
    schema = props(
        owner={"type": "string", "x-options": "users:Owner"},
        rows={
            "type": "array",
            "items": {"type": "object", "properties": {"code": {"x-options": "rows:metrics:code"}}},
        },
        plain={"type": "string", "enum": ["a"]},
    )
    before = json.loads(json.dumps(schema))
    resolved = resolve_schema(schema, source())
    assert schema == before
    assert resolved["properties"]["owner"] == {
        "type": "string",
        "x-options": "users:Owner",
        "enum": ["u1"],
        "x-enum-titles": {"zh-CN": ["User 1 (Owner)"], "en": ["User 1 (Owner)"]},
    }
    assert resolved["properties"]["rows"]["items"]["properties"]["code"]["enum"] == [
        "AV",
        "MTTR",
        "3",
    ]
    assert resolved["properties"]["plain"] == {"type": "string", "enum": ["a"]}
    resolved["properties"]["plain"]["enum"].append("b")
    assert schema["properties"]["plain"]["enum"] == ["a"]


def test_known_options_answer_from_the_lists_they_hold() -> None:
    known = KnownOptions({"users": (("u", "U"),)})
    resolved = resolve_schema(props(a={"x-options": "users"}), known)
    assert resolved["properties"]["a"]["enum"] == ["u"]
    with pytest.raises(KeyError):
        known.options("catalogue")


# -- prefill ------------------------------------------------------------------------------------


def _latest(data: Any, lookups: Lookups) -> Any:
    return lookups.latest(data["code"])


def _catalogue(data: Any, lookups: Lookups) -> Any:
    return sorted(lookups.catalogue)


def _fails(data: Any, lookups: Lookups) -> Any:
    raise NotFound("nothing recorded")


def _nothing(data: Any, lookups: Lookups) -> Any:
    return None


FUNCTIONS = {
    "latest": Prefill(_latest, frozenset({"code"})),
    "catalogue": Prefill(_catalogue, frozenset()),
    "fails": Prefill(_fails, frozenset()),
    "nothing": Prefill(_nothing, frozenset()),
}


class Calls:
    def __init__(self) -> None:
        self.made: list[str] = []

    def lookups(self) -> Lookups:
        return Lookups(latest=self.latest, catalogue=self.catalogue)

    def latest(self, code: str) -> float:
        self.made.append(f"latest {code}")
        return 99.5

    def catalogue(self) -> dict[str, Any]:
        self.made.append("catalogue")
        return {"Z": {}, "A": {}}


@pytest.mark.parametrize(
    ("prop", "data", "expected"),
    [
        ({"default": 1}, {}, 1),
        ({"default": 1}, {"a": 5}, 1),  # not carried over: starts at its default
        ({}, {"a": 5}, None),
        ({"x-carry-over": True}, {"a": 5}, 5),
        ({"x-carry-over": True, "default": 1}, {"a": None}, 1),
        ({"x-carry-over": True, "default": 1}, {}, 1),
        ({"x-prefill": "n * 2"}, {"n": 4}, 8),
        ({"x-prefill": "n * 2", "default": 1}, {}, 1),  # n missing: None * 2 fails, skipped
        ({"x-prefill": "absent"}, {}, None),  # a missing variable reads as None
        ({"x-prefill": "absent or 'x'"}, {}, "x"),
        ({"x-prefill": "1 / 0", "default": 0}, {}, 0),
        ({"x-prefill": "get(m, 'k')", "default": "d"}, {"m": {"k": None}}, "d"),
        ({"x-prefill": "n", "x-carry-over": True}, {"a": "old", "n": "new"}, "new"),
        ({"x-prefill": "n", "x-carry-over": True}, {"a": "old"}, "old"),
        ({"x-prefill": {"function": "latest"}}, {"code": "AV"}, 99.5),
        ({"x-prefill": {"function": "catalogue"}}, {}, ["A", "Z"]),
        ({"x-prefill": {"function": "fails"}, "default": "d"}, {}, "d"),
        ({"x-prefill": {"function": "latest"}, "default": "d"}, {}, "d"),  # KeyError: skipped
        ({"x-prefill": {"function": "nothing"}, "x-carry-over": True}, {"a": 3}, 3),
    ],
)
def test_prefill(prop: dict[str, Any], data: dict[str, Any], expected: Any) -> None:
    form = form_of(props(a={**SMALL, **prop}), FUNCTIONS)
    assert prefill(form, data, Calls().lookups(), FUNCTIONS).get("a") == expected


def test_lookups_are_read_only_when_a_prefill_asks() -> None:
    calls = Calls()
    quiet = form_of(props(a={**SMALL, "x-prefill": "n"}), FUNCTIONS)
    assert prefill(quiet, {"n": 1}, calls.lookups(), FUNCTIONS) == {"a": 1}
    assert calls.made == []
    lookups = calls.lookups()
    asks = form_of(
        props(
            a={**SMALL, "x-prefill": {"function": "catalogue"}},
            b={**SMALL, "x-prefill": {"function": "catalogue"}},
            c={**SMALL, "x-prefill": {"function": "latest"}},
        ),
        FUNCTIONS,
    )
    values = prefill(asks, {"code": "AV"}, lookups, FUNCTIONS)
    assert values == {"a": ["A", "Z"], "b": ["A", "Z"], "c": 99.5}
    assert calls.made == ["catalogue", "latest AV"]  # the catalogue once, in field order


def test_carried_over_values_are_copies() -> None:
    data: dict[str, Any] = {"rows": [{"code": "AV", "tags": ["x"]}]}
    rows = {"type": "array", "maxItems": 5, "items": props(), "x-carry-over": True}
    form = form_of(props(rows=rows), FUNCTIONS)
    values = prefill(form, data, Calls().lookups(), FUNCTIONS)
    assert values == data
    values["rows"][0]["tags"].append("y")
    values["rows"].append({})
    assert data == {"rows": [{"code": "AV", "tags": ["x"]}]}


def test_defaults_come_from_properties_only() -> None:
    schema = {
        "default": {"ignored": True},
        "properties": {"a": {"default": [1]}, "b": {"type": "string"}, "c": True},
    }
    assert defaults(schema) == {"a": [1]}
    assert defaults({}) == {}


def test_a_check_function_the_pack_does_not_register_is_refused_when_the_form_loads() -> None:
    text = json.dumps({"schema": {**props(), "x-checks": [{"function": "nope"}]}})
    with pytest.raises(ValidationFailed, match="no check 'nope'"):
        parse_form("f", text, {}, check_functions={"known"})
    known = json.dumps({"schema": {**props(), "x-checks": [{"function": "known"}]}})
    assert parse_form("f", known, {}, check_functions={"known"}).checks == ({"function": "known"},)


def test_a_reference_within_the_form_is_allowed() -> None:
    schema = {
        **props(a={**STRING, "allOf": [{"$ref": "#/$defs/short"}]}),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"short": {"maxLength": 3}},
    }
    assert form_of(schema).fields == ["a"]
