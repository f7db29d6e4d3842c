"""What a form starts from: schema defaults, the fields it carries over from the
instance, then each field's `x-prefill` (an expression or a pack function)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import DomainError
from engine.forms.library import Form
from engine.pack import Prefill
from engine.workflow import expressions

log = logging.getLogger(__name__)


class Lookups:
    """What prefills read besides the instance: the latest recorded value of a metric
    (baselines come from history) and the metric catalogue ({code: {name_zh, name_en,
    category, unit, direction, method}}), each read only when asked for."""

    def __init__(
        self,
        latest: Callable[[str], float | None],
        catalogue: Callable[[], Mapping[str, Mapping[str, Any]]] = dict,
    ) -> None:
        self.latest = latest
        self._catalogue = catalogue
        self._loaded: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def catalogue(self) -> Mapping[str, Mapping[str, Any]]:
        if self._loaded is None:
            self._loaded = self._catalogue()
        return self._loaded


def defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: prop["default"]
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, dict) and "default" in prop
    }


def prefill(
    form: Form, data: Mapping[str, Any], lookups: Lookups, functions: Mapping[str, Prefill]
) -> dict[str, Any]:
    """Initial values of `form` over the instance's `data`. A prefill that yields None
    (or cannot be evaluated: a variable not set yet) leaves the field as it was."""
    values = defaults(form.schema)
    for name in form.carry_over:
        if data.get(name) is not None:
            values[name] = copy.deepcopy(data[name])
    for name, rule in form.prefills.items():
        value = _prefilled(form.key, name, rule, data, lookups, functions)
        if value is not None:
            values[name] = value
    return values


def _prefilled(
    form: str,
    name: str,
    rule: Any,
    data: Mapping[str, Any],
    lookups: Lookups,
    functions: Mapping[str, Prefill],
) -> Any:
    try:
        if isinstance(rule, str):
            return expressions.evaluate_over(rule, data)
        return functions[rule["function"]].function(data, lookups)
    except (DomainError, LookupError, TypeError, ValueError, ArithmeticError) as exc:
        log.info("form %s: prefill of %s skipped: %s", form, name, exc)
        return None
