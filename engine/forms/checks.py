"""Checks of submitted data that JSON Schema cannot express, declared in the form's
`x-checks`: they compare rows with each other or with the instance.

Each check is an object with one kind and its arguments; `when` (an expression over
the instance's data and the submitted data, the latter winning) limits it, and
`message` (by locale) words its refusal. The kinds:

- `{"unique": <list>, "key": <column>}`: no two rows share a value (code `duplicate`);
- `{"rows": <list>, "key": <column>, "among": <expression>}`: each row's value is one
  the expression lists; an empty list allows any (code `not_allowed`);
- `{"rows": <list>, "key": <column>, "cover": <expression>}`: each value the expression
  lists has a row (code `missing_row`);
- `{"duration": <field>}`: the field is an ISO 8601 duration a timer can wait for,
  within the engine's bound (engine.workflow.durations; code `duration`);
- `{"function": <name>}`: a check the pack registers, for what no kind can say.

Refusals are FieldErrors keyed by path, like schema validation's.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import FieldError
from engine.pack import CheckFunction
from engine.workflow import durations, expressions

KINDS = ("unique", "among", "cover", "duration", "function")  # see _KINDS
DEFAULT_MESSAGES = {
    "duplicate": "duplicate",
    "not_allowed": "not one of the allowed values",
    "missing_row": "a row is missing",
    "duration": "not a duration the timer understands",
}


def kind_of(rule: Mapping[str, Any]) -> str:
    found = [k for k in KINDS if k in rule]
    if len(found) != 1:
        raise ValueError(f"a check needs exactly one of {', '.join(KINDS)}: {dict(rule)}")
    return found[0]


def validate_rules(rules: Iterable[Any], functions: Container[str] | None = None) -> None:
    """Refuse a check the engine cannot run (unknown kind, unsafe expression, a function
    the pack does not register when `functions` names those it does)."""
    for rule in rules:
        if not isinstance(rule, Mapping):
            raise ValueError("each x-checks entry is an object")
        kind = kind_of(rule)
        if not isinstance(rule[kind], str):
            raise ValueError(f"a check's {kind!r} must be text")
        if kind in ("among", "cover") and not (
            isinstance(rule.get("rows"), str) and isinstance(rule.get("key"), str)
        ):
            raise ValueError(f"a {kind!r} check names its 'rows' and 'key'")
        if kind == "unique" and not isinstance(rule.get("key"), str):
            raise ValueError("a 'unique' check names its 'key'")
        if kind == "function" and functions is not None and rule["function"] not in functions:
            raise ValueError(f"the pack has no check {rule['function']!r}")
        for source in (rule.get("when"), rule.get(kind) if kind in ("among", "cover") else None):
            if isinstance(source, str):
                expressions.check(source)


def run(
    rules: Sequence[Mapping[str, Any]],
    submitted: Mapping[str, Any],
    instance: Mapping[str, Any],
    functions: Mapping[str, CheckFunction],
) -> list[FieldError]:
    """Every refusal the checks find in `submitted`, given the task's instance data."""
    errors: list[FieldError] = []
    scope = {**instance, **submitted}
    case = _Case(submitted, instance, scope, functions)
    for rule in rules:
        when = rule.get("when")
        if isinstance(when, str) and not _holds(when, scope):
            continue
        declared = rule.get("message")
        texts: Mapping[str, str] = declared if isinstance(declared, Mapping) else {}
        for path, code in _refusals(rule, case):
            message = texts.get("en") or DEFAULT_MESSAGES.get(code, code)
            errors.append(FieldError(path, code, message, texts=texts))
    return errors


def _holds(expression: str, scope: Mapping[str, Any]) -> bool:
    try:
        return bool(expressions.evaluate_over(expression, scope))
    except Exception:  # a condition over data that is not there: the check does not apply
        return False


def _listed(expression: str, scope: Mapping[str, Any]) -> list[Any]:
    try:
        value = expressions.evaluate_over(expression, scope)
    except Exception:
        return []
    return list(value) if isinstance(value, list | tuple | set | frozenset) else []


def _rows(data: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The rows of a list that are objects, each with its index in the list (the path
    of a refusal names the row as submitted)."""
    rows = data.get(name)
    if not isinstance(rows, list):
        return []
    return [(i, row) for i, row in enumerate(rows) if isinstance(row, Mapping)]


@dataclass(frozen=True)
class _Case:
    """What one check looks at: the submitted data, the instance's, both as a scope."""

    submitted: Mapping[str, Any]
    instance: Mapping[str, Any]
    scope: Mapping[str, Any]
    functions: Mapping[str, CheckFunction]


Refusals = Iterator[tuple[str, str]]  # (path, code)


def _unique(rule: Mapping[str, Any], case: _Case) -> Refusals:
    name, key = rule["unique"], rule["key"]
    seen: set[Any] = set()
    for i, row in _rows(case.submitted, name):
        value = row.get(key)
        if value in (None, ""):
            continue
        if value in seen:
            yield f"{name}/{i}/{key}", "duplicate"
        seen.add(value)


def _among(rule: Mapping[str, Any], case: _Case) -> Refusals:
    name, key = rule["rows"], rule["key"]
    allowed = _listed(rule["among"], case.scope)
    if allowed:
        for i, row in _rows(case.submitted, name):
            if row.get(key) not in allowed:
                yield f"{name}/{i}/{key}", "not_allowed"


def _cover(rule: Mapping[str, Any], case: _Case) -> Refusals:
    name, key = rule["rows"], rule["key"]
    given = {row.get(key) for _, row in _rows(case.submitted, name)}
    if any(value not in given for value in _listed(rule["cover"], case.scope)):
        yield name, "missing_row"


def _duration(rule: Mapping[str, Any], case: _Case) -> Refusals:
    name = rule["duration"]
    value = case.submitted.get(name)
    if isinstance(value, str) and value and not _is_duration(value):
        yield name, "duration"


def _function(rule: Mapping[str, Any], case: _Case) -> Refusals:
    for path, codes in case.functions[rule["function"]](case.submitted, case.instance).items():
        for code in codes:
            yield path, code


_KINDS: dict[str, Callable[[Mapping[str, Any], _Case], Refusals]] = {
    "unique": _unique,
    "among": _among,
    "cover": _cover,
    "duration": _duration,
    "function": _function,
}


def _refusals(rule: Mapping[str, Any], case: _Case) -> Refusals:
    return _KINDS[kind_of(rule)](rule, case)


def _is_duration(value: str) -> bool:
    try:
        durations.parse(value)
    except durations.InvalidDuration:
        return False
    return True
