"""What the engine accepts from outside at all, before any form or rule looks at it.

- Ids: the schema's integer keys are 32-bit on PostgreSQL (64-bit on SQLite). A number
  beyond `MAX_ID` names nothing that can exist, and binding it fails in the driver, so
  it is refused (or not found) before any query.
- Text: no NUL (PostgreSQL stores it in neither text nor JSON) and no lone surrogate
  (it has no UTF-8 encoding, so hashing, storing and answering it all fail).
- JSON: at most `MAX_DEPTH` levels deep, since every walk over data (the JSON encoder,
  deep copies, the workflow serializer) recurses once per level; keys at most
  `MAX_KEY_CHARS` long, so that an error may name them; numbers finite.

The web layer applies the same rules at its door (paths, query strings, form fields,
JSON bodies); the engine applies them again to whatever reaches a command, so a
caller other than the web (the CLI, a successor rule) is held to them too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.errors import ValidationFailed

MAX_ID = 2**31 - 1
MAX_DEPTH = 32
MAX_KEY_CHARS = 128

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,10}")

UNSTORABLE = "holds a character that cannot be stored (NUL or a lone surrogate)"
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
KEY_TOO_LONG = f"has a key longer than {MAX_KEY_CHARS} characters"


def storable(text: str) -> bool:
    """Whether every database and encoder the engine uses can keep `text` as it is."""
    return _UNSTORABLE.search(text) is None


def parse_id(text: str | None) -> int | None:
    """The id `text` spells (decimal digits, 1 ≤ id ≤ MAX_ID), else None."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def is_id(value: Any) -> bool:
    """Whether `value` is an integer that may be a row's id."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def json_problem(value: Any) -> tuple[str, str] | None:
    """The first rule `value` (decoded JSON or what will be encoded as JSON) breaks, as
    (path, reason), or None. Iterative, so that depth is checked before anything recurses."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return path, UNSTORABLE
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return path, TOO_DEEP
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str):
                    if not storable(key):
                        return path, UNSTORABLE
                    if len(key) > MAX_KEY_CHARS:
                        return path, KEY_TOO_LONG
                stack.append((child, f"{path}/{key}" if path else str(key), depth + 1))
    return None


def check_json(value: Any, what: str, at: str = "") -> None:
    """Refuse `value` with a 422 naming where it breaks one of the rules above."""
    problem = json_problem(value)
    if problem is not None:
        path, reason = problem
        where = "/".join(p for p in (at, path) if p)
        raise ValidationFailed(f"{what} {reason}", {where: [reason]})


def plain_json(data: Any, what: str = "the form data", at: str = "") -> dict[str, Any]:
    """A JSON-only copy of an object that keeps the rules above (non-finite numbers
    refused); errors name the place under `at`."""
    if not isinstance(data, dict):
        raise ValidationFailed(f"{what} must be an object", {at: ["not an object"]})
    check_json(data, what, at)
    try:
        copied: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{what} must be plain JSON", {at: [str(exc)]}) from exc
    return copied


def loads(body: bytes | str, what: str = "the body") -> Any:
    """Decode untrusted JSON text and check it. Nesting deep enough to exhaust the
    decoder's recursion is refused like any other nesting beyond MAX_DEPTH."""
    try:
        value = json.loads(body)
    except RecursionError as exc:
        raise ValidationFailed(f"{what} is {TOO_DEEP}", {"": [TOO_DEEP]}) from exc
    except ValueError as exc:  # includes bytes that are not UTF-8, and overlong integers
        raise ValidationFailed(f"{what} is not valid JSON", {"": ["not JSON"]}) from exc
    check_json(value, what)
    return value
