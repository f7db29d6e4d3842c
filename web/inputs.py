"""The door every request passes before a view reads it (engine.inputs has the rules).

- The body: at most MAX_CONTENT_LENGTH bytes (the setting CSI_MAX_REQUEST_BYTES);
  a larger one is answered 413 before it is read.
- Text: a path, query parameter or form field holding NUL or a lone surrogate is
  refused with 422 here, so no view passes it to a database that cannot store it.
- Ids: `<int:…>` in every route is an id the database can hold; a larger number names
  no page (404). Ids and numbers in query strings and forms go through `int_arg`.
- JSON bodies go through `json_body`: an object, nested at most engine.inputs.MAX_DEPTH
  levels, its text storable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from werkzeug.routing import IntegerConverter, Map

from engine.errors import ValidationFailed
from engine.inputs import MAX_ID, UNSTORABLE, loads, storable

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BoundedInt(IntegerConverter):
    """Werkzeug's `int` converter with the database's bound as its default maximum:
    `/instances/99999999999999999999` is no page, not a number the driver cannot bind."""

    def __init__(
        self,
        url_map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = MAX_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def int_arg(name: str, values: Mapping[str, str] | None = None, lowest: int = 1) -> int | None:
    """The whole number `name` of the query string (or of `values`, e.g. the posted
    form), from `lowest` to MAX_ID; None when absent or empty, 422 when it is not one."""
    text = (request.args if values is None else values).get(name, "").strip()
    if not text:
        return None
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID))
    number = int(text) if digits else -1
    if not lowest <= number <= MAX_ID:
        raise ValidationFailed(
            f"{name} must be a whole number from {lowest} to {MAX_ID}", {name: ["not a number"]}
        )
    return number


def json_body(what: str = "the body") -> dict[str, Any]:
    """The request's JSON object (an empty body reads as {}); anything else is 422."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    body = loads(raw, what)
    if not isinstance(body, dict):
        raise ValidationFailed(f"{what} must be a JSON object", {"": ["not an object"]})
    return body


def _refuse_unstorable_text() -> None:
    fields: list[tuple[str, str]] = [("path", request.path), *request.args.items(multi=True)]
    if request.mimetype in FORM_TYPES:
        fields += request.form.items(multi=True)
    for name, value in fields:
        if not (storable(name or "") and storable(value or "")):
            where = name if storable(name or "") else ""
            raise ValidationFailed(f"the request {UNSTORABLE}", {where: [UNSTORABLE]})


def install(app: Flask) -> None:
    """Before any blueprint registers its routes (the converter applies as they do)."""
    app.url_map.converters["int"] = BoundedInt
    app.before_request(_refuse_unstorable_text)
