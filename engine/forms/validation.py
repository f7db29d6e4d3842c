"""Server-side validation of submitted form data: the form's schema with its option
lists as they are now, then its declared checks. Refusals carry stable codes."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from engine.attachments import fields as attachments
from engine.errors import FieldError, ValidationFailed
from engine.forms import checks
from engine.forms.library import Form
from engine.forms.options import KnownOptions, OptionSource, resolve_schema
from engine.inputs import plain_json
from engine.pack import CheckFunction

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_FORMAT_CHECKER = FormatChecker()
_validators_lock = threading.Lock()
_validators: OrderedDict[tuple[Any, ...], Draft202012Validator] = OrderedDict()
_VALIDATORS_KEPT = 256


def validate_submission(
    form: Form,
    source: OptionSource,
    data: Any,
    functions: Mapping[str, CheckFunction] | None = None,
) -> dict[str, Any]:
    """Validate submitted data against the form with its option lists as they are now,
    then its checks; the checked data comes back as a JSON-only copy."""
    data = plain_json(data)
    lists = {spec: tuple(source.options(spec)) for spec in form.option_lists}
    key = (id(form), form.key, tuple(sorted(lists.items())))
    with _validators_lock:
        validator = _validators.get(key)
        if validator is not None:
            _validators.move_to_end(key)
    if validator is None:
        schema = resolve_schema(form.schema, KnownOptions(lists)) if lists else form.schema
        validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
        _keep(key, validator)
    errors = beyond_bounds(form.schema, data) or schema_errors(validator, data)
    if not errors:
        errors = checks.run(form.checks, data, source.data, functions or {})
    if errors:
        raise ValidationFailed("the form has errors", errors=errors)
    return data


def _keep(key: tuple[Any, ...], validator: Draft202012Validator) -> None:
    with _validators_lock:
        _validators[key] = validator
        while len(_validators) > _VALIDATORS_KEPT:
            _validators.popitem(last=False)


def validate_start(forms: Sequence[Form], data: dict[str, Any], at: str = "data") -> None:
    """Refuse initial data that the start forms (those of the tasks a new instance first
    waits at) would not accept: a key none of them has, or a value one of them refuses.
    Their required fields may be missing (the person at that task fills them), and
    their option lists and checks wait for that task too, as they read the instance."""
    known = {name for form in forms for name in form.fields}
    files = {name for form in forms for name in attachments.rules_of(form.schema)}
    errors = [
        FieldError(f"{at}/{key}", "additionalProperties", "unknown field")
        for key in sorted(data)
        if key not in known
    ] + [
        # A file is sent with its task's completion, where it is checked and stored.
        FieldError(
            f"{at}/{key}", "attachment_invalid", "a file is attached when completing the task"
        )
        for key in sorted(data)
        if key in files
    ]
    data = {k: v for k, v in data.items() if k not in files}
    for form in forms:
        part = {k: v for k, v in data.items() if k in form.fields}
        if part:
            found = beyond_bounds(form.schema, part) or schema_errors(_start_validator(form), part)
            errors += [replace(e, path=f"{at}/{e.path}") for e in found]
    if errors:
        raise ValidationFailed("the initial data does not fit the start form", errors=errors)


def _start_validator(form: Form) -> Draft202012Validator:
    key = (id(form), form.key, "start")
    with _validators_lock:
        validator = _validators.get(key)
    if validator is None:
        schema = {k: v for k, v in form.schema.items() if k not in ("required", "x-checks")}
        validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
        _keep(key, validator)
    return validator


def validate(schema: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """Return `data` when it fits `schema`, else raise with errors keyed by field path."""
    data = plain_json(data)
    errors = schema_errors(Draft202012Validator(schema, format_checker=_FORMAT_CHECKER), data)
    if errors:
        raise ValidationFailed("the form has errors", errors=errors)
    return data


def beyond_bounds(schema: Mapping[str, Any], data: Any) -> list[FieldError]:
    """The values longer than their `maxLength` or with more items than their `maxItems`,
    found walking the data along the schema's properties and items only. Every form
    bounds its fields (engine.forms.library), so this cheap pass refuses an oversized
    submission before the full validation spends time on each of its items (a command
    validates while it holds its instance's lock)."""
    errors: list[FieldError] = []
    stack: list[tuple[Mapping[str, Any], Any, str]] = [(schema, data, "")]
    while stack:
        rule, value, path = stack.pop()
        code = _LENGTH_KEYWORDS.get(type(value))
        limit = rule.get(code) if code else None
        if isinstance(limit, int) and len(value) > limit:
            errors.append(
                FieldError(path, str(code), _RULES[str(code)].format(limit), {"expected": limit})
            )
            continue
        if isinstance(value, list) and isinstance(rule.get("items"), Mapping):
            stack += [(rule["items"], v, _joined(path, i)) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            known = rule.get("properties") or {}
            stack += [
                (known[k], v, _joined(path, k))
                for k, v in value.items()
                if isinstance(known.get(k), Mapping)
            ]
    return sorted(errors, key=lambda e: e.path)


_LENGTH_KEYWORDS: dict[type, str] = {str: "maxLength", list: "maxItems"}


def _joined(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def schema_errors(validator: Draft202012Validator, data: Any) -> list[FieldError]:
    found = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    return [refusal for error in found for refusal in _field_errors(error)]


# What each keyword's refusal says: the rule with the schema's own numbers, never the
# submitted value (jsonschema's messages quote it, and it may be megabytes long).
_RULES: dict[str, str] = {
    "type": "must be of type {}",
    "maxLength": "at most {} characters",
    "minLength": "at least {} characters",
    "maxItems": "at most {} items",
    "minItems": "at least {} items",
    "maximum": "at most {}",
    "minimum": "at least {}",
    "exclusiveMaximum": "less than {}",
    "exclusiveMinimum": "more than {}",
    "multipleOf": "a multiple of {}",
    "pattern": "must match the pattern {}",
    "format": "not a valid {}",
    "uniqueItems": "the same entry twice",
    "const": "not the allowed value",
    "enum": "not one of the allowed values",
}


def _field_errors(error: ValidationError) -> list[FieldError]:
    """One schema refusal as field errors, its keyword as code. An object's unknown keys
    are refused one by one, under their own path (keys are short: see engine.inputs)."""
    path = [str(p) for p in error.absolute_path]
    code = str(error.validator)
    expected = error.validator_value
    params: dict[str, Any] = {}
    if code == "required":
        match = _REQUIRED.match(error.message)
        if match:
            path.append(match.group(1))
        return [FieldError("/".join(path), code, "required")]
    if code == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties") or {} if isinstance(error.schema, dict) else {}
        return [
            FieldError("/".join([*path, str(key)]), code, "unknown field")
            for key in sorted(error.instance)
            if key not in known
        ]
    if code == "minLength" and expected == 1:
        return [FieldError("/".join(path), "required", "required")]
    if code == "minItems" and expected == 1:
        message = "at least one item"
    elif code in _RULES:
        message = _RULES[code].format(_shown(expected))
    else:
        message = f"does not satisfy {code}"
    if isinstance(expected, str | int | float | bool):
        params["expected"] = expected
    return [FieldError("/".join(path), code, message, params)]


def _shown(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(str(e) for e in expected)
    return str(expected)
