"""What a catalogue metric is made of, and the checks every create and edit passes.

Errors are stable codes by field (the web layer words them), like user
administration's: `required`, `too_long`, `invalid_code`, `taken`, `unknown_choice`,
`unknown_user`,
`not_text`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# ISO/IEC 20000 and the seed's 4.1: what a metric says about the service.
CATEGORIES = ("quality", "effect", "cost", "efficiency")
DIRECTIONS = ("higher_better", "lower_better")

CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
LIMITS = {"name_zh": 128, "name_en": 128, "unit": 16, "method": 2000, "owner": 64}
EDITABLE = ("name_zh", "name_en", "category", "unit", "direction", "method", "owner")

REQUIRED = "required"
TOO_LONG = "too_long"
INVALID_CODE = "invalid_code"
TAKEN = "taken"
UNKNOWN_CHOICE = "unknown_choice"
UNKNOWN_USER = "unknown_user"
NOT_TEXT = "not_text"


@dataclass(frozen=True)
class MetricFields:
    """A metric as entered: every editable field, trimmed."""

    name_zh: str
    name_en: str
    category: str
    unit: str
    direction: str
    method: str = ""
    owner: str = ""

    @classmethod
    def of(cls, values: Mapping[str, Any], errors: dict[str, list[str]]) -> MetricFields:
        """The fields of `values`; one that is there and no text is an error."""
        read: dict[str, str] = {}
        for name in EDITABLE:
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                errors.setdefault(name, []).append(NOT_TEXT)
                value = None
            read[name] = (value or "").strip()
        return cls(**read)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_code(code: str, errors: dict[str, list[str]]) -> None:
    if not code:
        errors.setdefault("code", []).append(REQUIRED)
    elif not CODE.match(code):
        errors.setdefault("code", []).append(INVALID_CODE)


def check_fields(
    fields: MetricFields, user_exists: Callable[[str], bool], errors: dict[str, list[str]]
) -> None:
    values = fields.as_dict()
    for name in ("name_zh", "name_en", "unit"):
        if not values[name]:
            errors.setdefault(name, []).append(REQUIRED)
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            errors.setdefault(name, []).append(TOO_LONG)
    if fields.category not in CATEGORIES:
        errors.setdefault("category", []).append(UNKNOWN_CHOICE)
    if fields.direction not in DIRECTIONS:
        errors.setdefault("direction", []).append(UNKNOWN_CHOICE)
    if fields.owner and len(fields.owner) <= LIMITS["owner"] and not user_exists(fields.owner):
        errors.setdefault("owner", []).append(UNKNOWN_USER)
