"""Server-side validation of submitted form data: the form's schema with its option
lists as they are now, then its declared checks. Refusals carry stable codes."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from engine.errors import FieldError, ValidationFailed
from engine.forms import checks
from engine.forms.library import Form
from engine.forms.options import KnownOptions, OptionSource, resolve_schema
from engine.pack import CheckFunction

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_FORMAT_CHECKER = FormatChecker()
_validators_lock = threading.Lock()
_validators: OrderedDict[tuple[Any, ...], Draft202012Validator] = OrderedDict()
_VALIDATORS_KEPT = 256


def plain_json(data: Any, what: str = "the form data") -> dict[str, Any]:
    """A JSON-only copy of an object (non-finite numbers refused)."""
    if not isinstance(data, dict):
        raise ValidationFailed(f"{what} must be an object", {"": ["not an object"]})
    try:
        copied: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{what} must be plain JSON", {"": [str(exc)]}) from exc
    return copied


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
        with _validators_lock:
            _validators[key] = validator
            while len(_validators) > _VALIDATORS_KEPT:
                _validators.popitem(last=False)
    errors = schema_errors(validator, data)
    if not errors:
        errors = checks.run(form.checks, data, source.data, functions or {})
    if errors:
        raise ValidationFailed("the form has errors", errors=errors)
    return data


def validate(schema: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """Return `data` when it fits `schema`, else raise with errors keyed by field path."""
    data = plain_json(data)
    errors = schema_errors(Draft202012Validator(schema, format_checker=_FORMAT_CHECKER), data)
    if errors:
        raise ValidationFailed("the form has errors", errors=errors)
    return data


def schema_errors(validator: Draft202012Validator, data: Any) -> list[FieldError]:
    return [
        _field_error(error)
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]


def _field_error(error: ValidationError) -> FieldError:
    """One schema refusal with its keyword as code. Messages never quote the submitted
    value beyond the keyword's own wording."""
    path = [str(p) for p in error.absolute_path]
    code = str(error.validator)
    message = error.message
    params: dict[str, Any] = {}
    if code == "required":
        match = _REQUIRED.match(error.message)
        if match:
            path.append(match.group(1))
        message = "required"
    elif code == "enum":
        message = "not one of the allowed values"
    elif code == "minLength" and error.validator_value == 1:
        code, message = "required", "required"
    elif isinstance(error.validator_value, str | int | float | bool):
        params["expected"] = error.validator_value
    return FieldError("/".join(path), code, message, params)
