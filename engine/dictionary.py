"""The process data dictionary: every variable a pack's forms and `variables.json`
declare, what it holds and how pages show it.

A form field's schema describes the variable the form sets; `variables.json` adds the
variables no form sets (service results, multi-instance collections, working
variables) and may add to a form's variables (columns a service writes onto rows).
Its shape:

    {"order": [<variable>, …],           how an instance page lists them (by default
                                          every declared variable, as declared)
     "variables": {<name>: <schema>, …}}

Each schema is JSON Schema with the forms' label keywords (`title`, `x-title-en`,
`x-enum-titles`) and display keywords:

- `x-display`: how a value shows: `badge` (an enum as a coloured label), `code`,
  `progress` (a percentage bar), `trend` (an arrow), `rank`, `cards` (a list of
  objects as one card per person, titled by `x-card-title`), `alert` (text shown as
  a warning);
- `x-lookup`: `{"variable": <list>, "key": <column>, "show": [<columns>]}`, a code
  shown with the matching row's other columns (a metric code with its name);
- `x-record: true`: the variable belongs to the record (register, exports);
- `x-internal: true`: a working variable, not worth a reader's attention.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from engine.errors import DomainError
from engine.forms.library import FormLibrary
from engine.pack import Pack


def _merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` onto `base`, recursively for `properties` and `items`."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if key in ("properties", "items") and isinstance(value, Mapping):
            current = merged.get(key)
            if key == "properties":
                merged[key] = {
                    **(current or {}),
                    **{
                        name: _merge((current or {}).get(name) or {}, prop)
                        for name, prop in value.items()
                    },
                }
            else:
                merged[key] = _merge(current if isinstance(current, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class DataDictionary:
    pack: Pack
    forms: FormLibrary

    @cached_property
    def variables(self) -> dict[str, dict[str, Any]]:
        """Every declared variable's schema: the forms' first (in form order), then what
        variables.json says of it."""
        found: dict[str, dict[str, Any]] = {}
        for key in self.forms.task_ids():
            try:
                form = self.forms.get(key)
            except DomainError:
                continue  # a broken form must not break every page
            for name, prop in (form.schema.get("properties") or {}).items():
                if isinstance(prop, Mapping) and name not in found:
                    found[name] = copy.deepcopy(dict(prop))
        declared = self.pack.variables.get("variables") or {}
        for name, schema in declared.items():
            found[name] = _merge(found.get(name) or {}, schema)
        return found

    @cached_property
    def order(self) -> list[str]:
        """The variables an instance page lists first, in this order: variables.json's
        `order`, else every declared variable but the working ones."""
        declared = self.pack.variables.get("order")
        if declared:
            return list(declared)
        return [n for n, s in self.variables.items() if not s.get("x-internal")]

    def schema(self, name: str) -> dict[str, Any]:
        return self.variables.get(name) or {}

    def is_internal(self, name: str) -> bool:
        return bool(self.schema(name).get("x-internal"))

    @cached_property
    def record_fields(self) -> list[str]:
        """The variables that belong to the record, in the order pages list them."""
        marked = [n for n, s in self.variables.items() if s.get("x-record")]
        ordered = [n for n in self.order if n in marked]
        return ordered + [n for n in marked if n not in ordered]

    def enum_values(self, name: str) -> list[Any]:
        schema = self.schema(name)
        target = schema.get("items") if schema.get("type") == "array" else schema
        return list((target or {}).get("enum") or [])
