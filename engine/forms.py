"""Task forms: JSON Schema per user task, run-time option lists, prefill, validation.

A form file (`bpmn/forms/<task_id>.json`) holds a title, a description, the instance
variables to show as context, an optional named prefill and a JSON Schema (draft
2020-12). Option lists known only at run time (`x-options`) are turned into plain
`enum`s before the schema is shown or used, so the browser and the server validate
against the very same list.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from engine import checks
from engine.errors import NotFound, ValidationFailed
from engine.specs import DEFAULT_BPMN_DIR

FORMS_DIR = DEFAULT_BPMN_DIR / "forms"


@dataclass(frozen=True, eq=False)
class Form:
    key: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    context: tuple[str, ...]
    prefill: str | None
    schema: Mapping[str, Any]
    # Fields that start from the instance's current value (a revised plan starts from
    # the last one); every other field starts empty or at its default, so a second
    # review never comes up with the first one's decision filled in.
    carry_over: tuple[str, ...] = ()
    # Derived once at load: every variable the form page reads (inputs_of) and the
    # run-time option lists its schema names.
    inputs: frozenset[str] = frozenset()
    option_lists: tuple[str, ...] = ()


_forms_lock = threading.Lock()
_forms: dict[tuple[str, float], Form] = {}


def load_form(key: str, forms_dir: Path = FORMS_DIR) -> Form:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,127}", key):
        raise NotFound(f"no form {key!r}")
    path = forms_dir / f"{key}.json"
    try:
        stamp = path.stat().st_mtime
    except FileNotFoundError as exc:
        raise NotFound(f"no form for task {key!r}") from exc
    cache_key = (str(path), stamp)
    with _forms_lock:
        hit = _forms.get(cache_key)
    if hit is not None:
        return hit
    raw = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(raw["schema"])
    form = Form(
        key=key,
        title=raw.get("title", {}),
        description=raw.get("description", {}),
        context=tuple(raw.get("context", [])),
        prefill=raw.get("prefill"),
        schema=raw["schema"],
        carry_over=tuple(raw.get("carry_over", [])),
        option_lists=tuple(sorted(_option_lists(raw["schema"]))),
    )
    form = replace(form, inputs=inputs_of(form))
    with _forms_lock:
        _forms[cache_key] = form
    return form


# -- run-time option lists ----------------------------------------------------------------

Option = tuple[str, str]  # (value, label)


@dataclass
class OptionSource:
    """What `x-options` may refer to: users by role, and the instance's data."""

    users: Callable[[str | None], Sequence[Option]]
    data: Mapping[str, Any]
    # The metric catalogue as (code, label), read only if a form asks for it.
    catalogue: Callable[[], Sequence[Option]] = lambda: ()

    def options(self, spec: str) -> list[Option]:
        kind, _, arg = spec.partition(":")
        if kind == "users":
            return list(self.users(arg or None))
        if kind == "catalogue":
            return list(self.catalogue())
        if kind == "data":
            values = self.data.get(arg) or []
            return [(str(v), str(v)) for v in values if isinstance(v, str | int)]
        if kind == "metrics":
            return [
                (str(m.get("code")), f"{m.get('code')} {m.get('name', '')}".strip())
                for m in self.data.get("metrics") or []
                if m.get("code")
            ]
        raise ValueError(f"unknown option list {spec!r}")


def resolve_schema(
    schema: Mapping[str, Any], source: OptionSource | _KnownOptions
) -> dict[str, Any]:
    """A copy of `schema` where every `x-options` became an `enum` with titles."""
    resolved = copy.deepcopy(dict(schema))
    for node in list(_option_nodes(resolved)):  # all found before any is changed
        options = source.options(node["x-options"])
        node["enum"] = [value for value, _ in options]
        labels = [label for _, label in options]
        node["x-enum-titles"] = {"zh-CN": labels, "en": labels}
    return resolved


# -- validation -------------------------------------------------------------------------------

_REQUIRED = re.compile(r"^'(.+)' is a required property$")


_FORMAT_CHECKER = FormatChecker()
_validators_lock = threading.Lock()
_validators: OrderedDict[tuple[Any, ...], Draft202012Validator] = OrderedDict()
_VALIDATORS_KEPT = 256


def _option_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema node that names a run-time option list (`x-options`)."""
    if isinstance(node, dict):
        if isinstance(node.get("x-options"), str):
            yield node
        for value in node.values():
            yield from _option_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _option_nodes(value)


def _option_lists(schema: Any) -> set[str]:
    return {node["x-options"] for node in _option_nodes(schema)}


@dataclass
class _KnownOptions:
    lists: Mapping[str, Sequence[Option]]

    def options(self, spec: str) -> list[Option]:
        return list(self.lists[spec])


def validate_submission(form: Form, source: OptionSource, data: Any) -> dict[str, Any]:
    """Validate submitted data against the form with its option lists as they are now.
    The checked data comes back as a JSON-only copy (non-finite numbers are refused)."""
    if not isinstance(data, dict):
        raise ValidationFailed("the form data must be an object", {"": ["not an object"]})
    try:
        data = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("the form data must be plain JSON", {"": [str(exc)]}) from exc
    lists = {spec: tuple(source.options(spec)) for spec in form.option_lists}
    key = (id(form), form.key, tuple(sorted(lists.items())))
    with _validators_lock:
        validator = _validators.get(key)
        if validator is not None:
            _validators.move_to_end(key)
    if validator is None:
        schema = resolve_schema(form.schema, _KnownOptions(lists)) if lists else form.schema
        validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
        with _validators_lock:
            _validators[key] = validator
            while len(_validators) > _VALIDATORS_KEPT:
                _validators.popitem(last=False)
    clean = _checked(validator, data)
    errors = checks.check(form.key, clean, source.data)
    if errors:
        raise ValidationFailed("the form has errors", errors)
    return clean


def validate(schema: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """Return `data` when it fits `schema`, else raise with errors keyed by field path."""
    if not isinstance(data, dict):
        raise ValidationFailed("the form data must be an object", {"": ["not an object"]})
    return _checked(Draft202012Validator(schema, format_checker=_FORMAT_CHECKER), data)


def _checked(validator: Draft202012Validator, data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = [str(p) for p in error.absolute_path]
        message = error.message
        if error.validator == "required":
            match = _REQUIRED.match(error.message)
            if match:
                path.append(match.group(1))
                message = "required"
        elif error.validator == "enum":
            message = "not one of the allowed values"
        elif error.validator == "minLength" and error.validator_value == 1:
            message = "required"
        errors.setdefault("/".join(path), []).append(message)
    if errors:
        raise ValidationFailed("the form has errors", errors)
    return data


def defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: prop["default"]
        for name, prop in (schema.get("properties") or {}).items()
        if "default" in prop
    }


# -- prefill ----------------------------------------------------------------------------------


class HistorySource:
    """What prefills read besides the instance: recorded metric values (baselines come
    from history) and the metric catalogue ({code: {name_zh, name_en, category, unit,
    direction, method}})."""

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

    def catalogued(self, item: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
        """The catalogue metric a proposal means: by its code, else by its name."""
        catalogue = self.catalogue
        code = item.get("code")
        if code and code in catalogue:
            return str(code), catalogue[code]
        name = str(item.get("name") or "").strip().casefold()
        for known, metric in catalogue.items():
            names = {str(metric.get(k) or "").casefold() for k in ("name_zh", "name_en")}
            if name and (name in names or name == known.casefold()):
                return known, metric
        return None


def _metrics_from_proposals(data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    """The proposals as this cycle's metric set: a proposal naming a catalogue metric
    (by code or by name) takes the catalogue's code, unit, direction and category, so
    its baseline and trend come from that metric's recorded history."""
    metrics: list[dict[str, Any]] = []
    taken: set[str] = set()
    for proposal in data.get("proposals") or []:
        owner = proposal.get("process_owner") or ""
        for i, item in enumerate(proposal.get("metrics") or [], start=1):
            found = history.catalogued(item)
            known: Mapping[str, Any] = found[1] if found else {}
            code = found[0] if found else item.get("code") or f"{owner.upper()}_{i}"
            if code in taken:
                continue  # two owners proposed the same metric: one row
            taken.add(code)
            metrics.append(
                {
                    "code": code,
                    "name": item.get("name") or known.get("name_zh", ""),
                    "category": item.get("category") or known.get("category", "quality"),
                    "unit": item.get("unit") or known.get("unit", ""),
                    "direction": item.get("direction") or known.get("direction", "higher_better"),
                    "method": item.get("method") or known.get("method", ""),
                    "owner": owner,
                }
            )
    return {"metrics": metrics} if metrics else {}


def _targets_from_metrics(data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    previous = {t.get("code"): t for t in data.get("targets") or []}
    targets = []
    for metric in data.get("metrics") or []:
        code = metric.get("code")
        row = {"code": code, "baseline": history.latest(code), "target": None}
        row.update({k: v for k, v in previous.get(code, {}).items() if v is not None})
        targets.append(row)
    return {"targets": targets}


def _targets_from_current(data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    """After implementation the measured values become the new baseline (4.6)."""
    current = {g.get("metric"): g.get("current") for g in data.get("gaps") or []}
    targets = []
    for target in data.get("targets") or []:
        code = target.get("code")
        baseline = current.get(code)
        targets.append(
            {
                "code": code,
                "baseline": baseline if baseline is not None else target.get("baseline"),
                "target": target.get("target"),
            }
        )
    return {"targets": targets}


def _values_for_owner(data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    owner = data.get("metric_owner")
    codes = [m.get("code") for m in data.get("metrics") or [] if m.get("owner") == owner]
    return {"values": [{"code": code, "value": None} for code in codes]}


def _change_from_measure(data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    """An RFC starts from the measure it implements: its due date as the planned date,
    its rollback as the rollback plan, its resources in the implementation plan."""
    measure = data.get("measure")
    if not isinstance(measure, Mapping):
        return {}
    start = {
        "planned_date": measure.get("due_date"),
        "rollback_plan": measure.get("rollback"),
        "implementation_plan": measure.get("description"),
    }
    return {k: v for k, v in start.items() if v}


PREFILLS: dict[str, Callable[[Mapping[str, Any], HistorySource], dict[str, Any]]] = {
    "metrics_from_proposals": _metrics_from_proposals,
    "targets_from_metrics": _targets_from_metrics,
    "targets_from_current": _targets_from_current,
    "values_for_owner": _values_for_owner,
    "change_from_measure": _change_from_measure,
}


PREFILL_INPUTS: dict[str, frozenset[str]] = {
    "metrics_from_proposals": frozenset({"proposals", "metrics"}),
    "targets_from_metrics": frozenset({"metrics", "targets"}),
    "targets_from_current": frozenset({"gaps", "targets"}),
    "values_for_owner": frozenset({"metrics", "metric_owner"}),
    "change_from_measure": frozenset({"measure"}),
}


def inputs_of(form: Form) -> frozenset[str]:
    """Every variable the form page reads: the fields it carries over, its context, its
    prefill's inputs and the data its option lists name."""
    names = set(form.carry_over) | set(form.context)
    if form.prefill:
        names |= PREFILL_INPUTS.get(form.prefill, frozenset())
    for spec in _option_lists(form.schema):
        kind, _, arg = spec.partition(":")
        if kind == "data" and arg:
            names.add(arg)
        elif kind == "metrics":
            names.add("metrics")
    return frozenset(names)


def prefill(form: Form, data: Mapping[str, Any], history: HistorySource) -> dict[str, Any]:
    """Initial values: schema defaults, then what the instance already holds for the
    fields the form carries over, then the named prefill."""
    values = defaults(form.schema)
    for name in form.carry_over:
        if data.get(name) is not None:
            values[name] = copy.deepcopy(data[name])
    if form.prefill and form.prefill in PREFILLS:
        values.update(PREFILLS[form.prefill](data, history))
    return values
