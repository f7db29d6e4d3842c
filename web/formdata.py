"""HTML forms generated from a task's JSON Schema, both ways.

`parse_form` turns the posted fields into the JSON the schema describes; `build_fields`
turns the schema, the current values and the validator's errors into widgets for
templates/_form.html.

Field names: a top-level property by its name (`source`); an array of objects one
field per cell, `<array>-<row>-<property>` (`measures-0-title`); a nested object
`<object>-<property>`. An array of strings posts the same name once per checked box.
A checkbox is preceded by a hidden "false" of the same name, so unchecked gives false.
A file field (`x-attachment`, engine.attachments.fields) is a file input of the same
name in a multipart form; the posted file reaches the engine as an `Upload`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage, MultiDict

from engine.attachments import fields as attachments
from engine.attachments import kinds
from engine.attachments.fields import Upload
from engine.errors import FieldError, ValidationFailed

TRUE_VALUES = {"true", "on", "1", "yes"}
ROW_INDEX = "__index__"  # placeholder of the row index in a table's row template


# -- parsing ---------------------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return {str(k) for k in kind}
    return {str(kind)} if kind else set()


def _coerce(schema: Mapping[str, Any], raw: str) -> Any:
    """One posted string as the schema's scalar type; unparseable stays the raw string
    so that the validator reports it."""
    text = raw.strip()
    types = _types(schema)
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return text
            return int(number) if number.is_integer() else number
    if "number" in types:
        try:
            number = float(text)
        except ValueError:
            return text
        if number != number or number in (float("inf"), float("-inf")):
            return text
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if "boolean" in types:
        return text.lower() in TRUE_VALUES
    return raw.replace("\r\n", "\n").strip()


def _items(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    items = schema.get("items")
    return items if isinstance(items, Mapping) else {}


def _is_object_array(schema: Mapping[str, Any]) -> bool:
    items = schema.get("items")
    return "array" in _types(schema) and isinstance(items, dict) and "object" in _types(items)


def _parse_value(schema: Mapping[str, Any], form: MultiDict, name: str) -> tuple[bool, Any]:
    """(present, value) of the field `name`; absent when empty."""
    types = _types(schema)
    if _is_object_array(schema):
        rows = _parse_rows(schema["items"], form, name)
        return (bool(rows), rows)
    if "array" in types:
        items = _items(schema)
        # Checkboxes and multi-selects repeat the name; a textarea gives one value per line.
        values = [line for v in form.getlist(name) for line in v.splitlines() if line.strip()]
        parsed = [_coerce(items, v) for v in values]
        return (bool(parsed), parsed)
    if "object" in types:
        value = _parse_object(schema, form, name + "-")
        return (bool(value), value)
    if "boolean" in types:
        values = form.getlist(name)
        if not values:
            return (False, None)
        return (True, any(v.strip().lower() in TRUE_VALUES for v in values))
    raw = form.get(name)
    if raw is None or raw.strip() == "":
        return (False, None)
    return (True, _coerce(schema, raw))


def _parse_object(schema: Mapping[str, Any], form: MultiDict, prefix: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        present, value = _parse_value(prop, form, prefix + key)
        if present:
            result[key] = value
    return result


def _parse_rows(item_schema: Mapping[str, Any], form: MultiDict, name: str) -> list[dict[str, Any]]:
    pattern = re.compile(re.escape(name) + r"-(\d+)-")
    indexes = sorted({int(m.group(1)) for key in form if (m := pattern.match(key))})
    defaults = {
        k: p["default"]
        for k, p in (item_schema.get("properties") or {}).items()
        if isinstance(p, dict) and "default" in p
    }
    rows = []
    for index in indexes:
        row = _parse_object(item_schema, form, f"{name}-{index}-")
        # A row holding nothing but unchecked boxes and defaults is an empty row left over.
        if any(v is not False and v != defaults.get(k) for k, v in row.items()):
            rows.append(row)
    return rows


def parse_form(
    schema: Mapping[str, Any], form: MultiDict, files: MultiDict | None = None
) -> dict[str, Any]:
    """The posted form as JSON per `schema`: numbers, integers and booleans coerced,
    arrays of strings from repeated names, arrays of objects from `name-<i>-<prop>`,
    empty values left out; each file field's posted file (`files`) as an Upload."""
    parsed = _parse_object(
        {
            **schema,
            "properties": {
                k: p
                for k, p in (schema.get("properties") or {}).items()
                if not attachments.is_attachment(p)
            },
        },
        form,
    )
    for name, prop in (schema.get("properties") or {}).items():
        if attachments.is_attachment(prop) and files is not None:
            upload = files.get(name)
            # A file input left empty posts a part without a name or content.
            if isinstance(upload, FileStorage) and upload.filename:
                parsed[name] = Upload(upload.filename, upload.read())
    return parsed


# -- widgets -----------------------------------------------------------------------------------


@dataclass
class Field:
    key: str
    name: str  # HTML name
    path: str  # the validator's error path, "measures/0/title"
    label: str
    help: str
    required: bool
    html_required: bool
    widget: str  # text textarea date number select checkbox checkboxes table group lines file
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    columns: list[Field] = field(default_factory=list)  # table: one template cell per column
    rows: list[list[Field]] = field(default_factory=list)  # table rows; group: [subfields]

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    def selected(self, value: str) -> bool:
        current = self.value
        if isinstance(current, list):
            return value in [str(v) for v in current]
        return current is not None and str(current) == value

    @property
    def text(self) -> str:
        return display(self.value)

    @property
    def checked(self) -> bool:
        return self.value is True or (
            isinstance(self.value, str) and self.value.lower() in TRUE_VALUES
        )

    @property
    def row_template(self) -> list[Field]:
        return self.columns


def display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "\n".join(display(v) for v in value)
    return str(value)


def _label(prop: Mapping[str, Any], key: str, locale: str) -> str:
    if locale == "en":
        return str(prop.get("x-title-en") or prop.get("title") or key)
    return str(prop.get("title") or prop.get("x-title-en") or key)


def _help(prop: Mapping[str, Any], locale: str) -> str:
    if locale == "en":
        return str(prop.get("x-description-en") or prop.get("description") or "")
    return str(prop.get("description") or "")


def _options(prop: Mapping[str, Any], locale: str, value: Any) -> list[tuple[str, str]]:
    enum = list(prop.get("enum") or [])
    titles = prop.get("x-enum-titles") or {}
    labels = titles.get(locale) or titles.get("zh-CN") or titles.get("en") or []
    options = [
        (display(v), str(labels[i]) if i < len(labels) else display(v)) for i, v in enumerate(enum)
    ]
    # Keep a value that is not (or no longer) on the list visible, so it is not lost silently.
    known = {v for v, _ in options}
    for current in value if isinstance(value, list) else [value]:
        if current not in (None, "") and display(current) not in known:
            options.append((display(current), display(current)))
            known.add(display(current))
    return options


def _widget(prop: Mapping[str, Any]) -> str:
    types = _types(prop)
    hint = prop.get("x-widget")
    if attachments.is_attachment(prop):
        return "file"
    if _is_object_array(prop):
        return "table"
    if "array" in types:
        items = _items(prop)
        if "enum" in items:
            return "multiselect" if hint in ("select", "multiselect") else "checkboxes"
        return "lines"
    if "object" in types:
        return "group"
    if "enum" in prop:
        return "select"
    if "boolean" in types:
        return "checkbox"
    if types & {"number", "integer"}:
        return "number"
    if hint == "textarea":
        return "textarea"
    if prop.get("format") == "date" or hint == "date":
        return "date"
    return "text"


def _accept(prop: Mapping[str, Any]) -> str:
    """The file input's hint to the browser's picker (the server judges by content)."""
    rule = prop.get(attachments.KEYWORD) or {}
    media = sorted(
        {m for kind in rule.get("types") or [] for m in kinds.KINDS.get(kind, frozenset())}
    )
    return ",".join([*(f".{kinds.EXTENSIONS[m]}" for m in media), *media])


def _attrs(prop: Mapping[str, Any], widget: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if widget == "file":
        attrs["accept"] = _accept(prop)
    if widget in ("text", "textarea") and isinstance(prop.get("maxLength"), int):
        attrs["maxlength"] = prop["maxLength"]
    if widget == "number":
        attrs["step"] = "1" if "integer" in _types(prop) else "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(prop.get(key), int | float):
                attrs[attr] = prop[key]
    return attrs


def _field(
    key: str,
    prop: Mapping[str, Any],
    *,
    name: str,
    path: str,
    value: Any,
    required: bool,
    top_level: bool,
    errors: Mapping[str, list[str]],
    locale: str,
) -> Field:
    widget = _widget(prop)
    items = _items(prop)
    option_source = items if widget in ("checkboxes", "multiselect") else prop
    result = Field(
        key=key,
        name=name,
        path=path,
        label=_label(prop, key, locale),
        help=_help(prop, locale),
        required=required,
        html_required=required
        and top_level
        and widget in ("text", "textarea", "date", "number", "select", "file"),
        widget=widget,
        value=value,
        options=_options(option_source, locale, value)
        if widget in ("select", "checkboxes", "multiselect")
        else [],
        errors=list(errors.get(path, [])),
        attrs=_attrs(prop, widget),
    )
    if widget == "table":
        item_props = items.get("properties") or {}
        item_required = set(items.get("required") or [])
        result.columns = [
            _field(
                sub,
                sp,
                name=f"{name}-{ROW_INDEX}-{sub}",
                path="",
                value=sp.get("default"),
                required=sub in item_required,
                top_level=False,
                errors={},
                locale=locale,
            )
            for sub, sp in item_props.items()
            if isinstance(sp, dict)
        ]
        rows = value if isinstance(value, list) else []
        if not rows:
            # Start with one blank row (defaults filled): it is dropped again if left empty.
            rows = [{sub: sp["default"] for sub, sp in item_props.items() if "default" in sp}]
        for index, row in enumerate(rows):
            row = row if isinstance(row, dict) else {}
            result.rows.append(
                [
                    _field(
                        sub,
                        sp,
                        name=f"{name}-{index}-{sub}",
                        path=f"{path}/{index}/{sub}",
                        value=row.get(sub),
                        required=sub in item_required,
                        top_level=False,
                        errors=errors,
                        locale=locale,
                    )
                    for sub, sp in item_props.items()
                    if isinstance(sp, dict)
                ]
            )
            # Errors about the row as a whole (a type error on the item) show on the table.
            result.errors += errors.get(f"{path}/{index}", [])
    elif widget == "group":
        sub_required = set(prop.get("required") or [])
        current = value if isinstance(value, dict) else {}
        result.rows = [
            [
                _field(
                    sub,
                    sp,
                    name=f"{name}-{sub}",
                    path=f"{path}/{sub}",
                    value=current.get(sub),
                    required=sub in sub_required,
                    top_level=False,
                    errors=errors,
                    locale=locale,
                )
                for sub, sp in (prop.get("properties") or {}).items()
                if isinstance(sp, dict)
            ]
        ]
    return result


def build_fields(
    schema: Mapping[str, Any],
    values: Mapping[str, Any] | None,
    errors: Mapping[str, list[str]] | None,
    locale: str,
) -> list[Field]:
    """Widgets for the top-level properties of `schema` (a resolved schema: enums, not
    x-options), filled with `values` and showing `errors` (keyed by path)."""
    values = values or {}
    errors = errors or {}
    required = set(schema.get("required") or [])
    return [
        _field(
            key,
            prop,
            name=key,
            path=key,
            value=values.get(key),
            required=key in required,
            top_level=True,
            errors=errors,
            locale=locale,
        )
        for key, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, dict)
    ]


def field_paths(fields: list[Field]) -> set[str]:
    paths: set[str] = set()
    for f in fields:
        paths.add(f.path)
        for row in f.rows:
            paths |= field_paths(row)
        if f.widget == "table":
            paths |= {f"{f.path}/{i}" for i in range(len(f.rows))}
    return paths


def errors_of(exc: ValidationFailed) -> tuple[FieldError, ...]:
    """A refusal's field errors (with codes); a refusal that gave only messages by path
    (an engine rule rather than the form) reads as errors without a known code."""
    if exc.errors:
        return exc.errors
    details = exc.details if isinstance(exc.details, Mapping) else {"": [exc.message]}
    return tuple(
        FieldError(str(path), "invalid", str(message))
        for path, messages in details.items()
        for message in (messages if isinstance(messages, list) else [messages])
    )


def texts_by_path(errors: Iterable[FieldError], locale: str) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for error in errors:
        texts.setdefault(error.path, []).append(error_text(error, locale))
    return texts


def unplaced(texts: Mapping[str, list[str]], known: set[str]) -> list[tuple[str, list[str]]]:
    """The errors no field of the form shows (a rule about the form as a whole)."""
    return [(path or _("Form"), messages) for path, messages in texts.items() if path not in known]


def error_text(error: FieldError, locale: str) -> str:
    """A refusal in the reader's language: the words the form declared for it, else the
    code's, else the engine's message."""
    declared = error.texts.get(locale) or (error.texts.get("zh-CN") if locale != "en" else None)
    if declared:
        return declared[:1].upper() + declared[1:]
    expected = error.params.get("expected")
    by_code = {
        "required": lambda: _("This field is required."),
        "enum": lambda: _("Choose one of the allowed values."),
        "not_allowed": lambda: _("Choose one of the allowed values."),
        "duplicate": lambda: _("This value is already used in another row."),
        "duration": lambda: _("Enter an ISO 8601 duration such as P7D, P2W or PT12H."),
        "type": lambda: (
            _("Enter a number.")
            if expected in ("number", "integer")
            else _("The value has the wrong type.")
        ),
        "format": lambda: (
            _("Enter a valid date (YYYY-MM-DD).")
            if expected == "date"
            else _("The format is not valid.")
        ),
        "pattern": lambda: _("The format is not valid."),
        "maxLength": lambda: _("The text is too long."),
        "maxItems": lambda: _("Too many entries."),
        "minLength": lambda: _("Add at least one entry."),
        "minItems": lambda: _("Add at least one entry."),
        "uniqueItems": lambda: _("Entries must be unique."),
        "attachment_too_large": lambda: _("The file is too large."),
        "attachment_type": lambda: _("This type of file is not accepted here."),
        "attachment_count": lambda: _("Too many files in one submission."),
        "attachment_total": lambda: _("The files together are too large."),
        "attachment_empty": lambda: _("The file is empty."),
        "attachment_invalid": lambda: _("Choose a file to upload."),
        "minimum": lambda: _("The value is too small."),
        "exclusiveMinimum": lambda: _("The value is too small."),
        "maximum": lambda: _("The value is too large."),
        "exclusiveMaximum": lambda: _("The value is too large."),
    }.get(error.code)
    return by_code() if by_code is not None else error.message
