"""Loading forms: a pack's form files, read once and kept until they change."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from engine.attachments import fields as attachments
from engine.errors import NotFound, UnsafeExpression, ValidationFailed
from engine.forms import checks
from engine.forms.options import option_lists, variables_of_option_list
from engine.pack import Pack, Prefill
from engine.workflow import expressions

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, eq=False)
class Form:
    key: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    context: tuple[str, ...]
    schema: Mapping[str, Any]
    notice: Mapping[str, Any] | None = None
    # Derived from the schema's keywords when the form is loaded:
    carry_over: tuple[str, ...] = ()
    prefills: Mapping[str, Any] = field(default_factory=dict)  # field -> x-prefill rule
    checks: tuple[Mapping[str, Any], ...] = ()
    option_lists: tuple[str, ...] = ()
    # Every instance variable the form page reads (context, carry-over, notice, prefill
    # inputs, option lists): the task projection copies exactly these.
    inputs: frozenset[str] = frozenset()

    @property
    def fields(self) -> list[str]:
        return list((self.schema.get("properties") or {}).keys())


_parsed_lock = threading.Lock()
_parsed: dict[tuple[str, int, int], tuple[float | None, Form]] = {}


class FormLibrary:
    """The forms of one pack's `forms` folder, keyed by user task id. A file is read
    again when its modification time changes (a form edited beside a running server)."""

    def __init__(
        self,
        folder: Traversable,
        prefills: Mapping[str, Prefill],
        check_functions: Container[str] | None = None,
    ) -> None:
        self.folder = folder
        self.prefills = prefills
        self.check_functions = check_functions

    @classmethod
    def of(cls, pack: Pack) -> FormLibrary:
        """The forms of `pack`, checked against the prefills and checks it registers."""
        return cls(pack.forms_dir, pack.prefills, pack.checks)

    def has(self, key: str) -> bool:
        return bool(_KEY.fullmatch(key)) and (self.folder / f"{key}.json").is_file()

    def task_ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(f.name[:-5] for f in self.folder.iterdir() if f.name.endswith(".json"))

    def get(self, key: str) -> Form:
        if not _KEY.fullmatch(key):
            raise NotFound(f"no form {key!r}")
        resource = self.folder / f"{key}.json"
        stamp = _stamp(resource)
        # Shared by every library of the same pack in the process (each app and CLI run
        # builds one): a form is parsed once, and again only when its file changes.
        cache_key = (str(resource), id(self.prefills), id(self.check_functions))
        with _parsed_lock:
            hit = _parsed.get(cache_key)
        if hit is not None and hit[0] == stamp and stamp is not None:
            return hit[1]
        if not resource.is_file():
            raise NotFound(f"no form for task {key!r}")
        form = parse_form(
            key, resource.read_text(encoding="utf-8"), self.prefills, self.check_functions
        )
        with _parsed_lock:
            _parsed[cache_key] = (stamp, form)
        return form

    def inputs_of(self, key: str) -> frozenset[str]:
        """What the task projection copies for task `key` (nothing when it has no form)."""
        try:
            return self.get(key).inputs
        except NotFound:
            return frozenset()

    def document(self, key: str) -> Any:
        """The form file of task `key` as JSON (what a version stores of it)."""
        if not self.has(key):
            raise NotFound(f"no form for task {key!r}")
        try:
            return json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValidationFailed(f"form {key} is not JSON: {exc}", {key: [str(exc)]}) from exc


def _stamp(resource: Traversable) -> float | None:
    if isinstance(resource, Path):
        try:
            return resource.stat().st_mtime
        except FileNotFoundError:
            return None
    return 0.0  # inside a wheel or zip: never changes while the process runs


def is_form_key(key: str) -> bool:
    """Whether `key` may name a form (a user task's id, a start form)."""
    return bool(_KEY.fullmatch(key))


def parse_form(
    key: str,
    text: str,
    prefills: Mapping[str, Prefill],
    check_functions: Container[str] | None = None,
) -> Form:
    """A form from its file's text; refuses a schema or a keyword the engine cannot use."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed(f"form {key} is not JSON: {exc}", {key: [str(exc)]}) from exc
    return form_of(key, raw, prefills, check_functions)


def form_of(
    key: str,
    raw: Any,
    prefills: Mapping[str, Prefill],
    check_functions: Container[str] | None = None,
) -> Form:
    """A form from its document (the decoded JSON); refuses it with every problem found."""
    form, problems = _read(key, raw, prefills, check_functions)
    if form is None or problems:
        problems = problems or ["no schema"]
        raise ValidationFailed(f"form {key}: {problems[0]}", {key: problems})
    return form


def form_problems(
    raw: Any, prefills: Mapping[str, Prefill], check_functions: Container[str] | None = None
) -> list[str]:
    """Why a form document cannot be used (nothing when it can): what `form_of` refuses."""
    return _read("form", raw, prefills, check_functions)[1]


def _read(
    key: str,
    raw: Any,
    prefills: Mapping[str, Prefill],
    check_functions: Container[str] | None,
) -> tuple[Form | None, list[str]]:
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if not isinstance(schema, dict):
        return None, ["no schema"]
    problems = _meta_schema_problems(schema)
    if problems:
        return None, problems  # what follows walks a schema the meta-schema admits
    problems = attachments.problems(schema, _nested_attachments(schema))
    if problems:
        return None, problems
    # A file field's value schema (the stored file's reference) is the engine's.
    schema = attachments.expand(schema)
    properties: Mapping[str, Any] = schema.get("properties") or {}
    carry_over = tuple(
        n for n, p in properties.items() if isinstance(p, dict) and p.get("x-carry-over")
    )
    prefills_of = {
        n: p["x-prefill"] for n, p in properties.items() if isinstance(p, dict) and "x-prefill" in p
    }
    notice = raw.get("notice")
    form: Form | None = None
    try:
        form = Form(
            key=key,
            title=raw.get("title") or {},
            description=raw.get("description") or {},
            context=tuple(raw.get("context") or ()),
            schema=schema,
            notice=notice if isinstance(notice, dict) else None,
            carry_over=carry_over,
            prefills=prefills_of,
            checks=tuple(schema.get("x-checks") or ()),
            option_lists=tuple(sorted(option_lists(schema))),
        )
        form = Form(**{**form.__dict__, "inputs": _inputs(form, prefills)})
        checks.validate_rules(form.checks, check_functions)
    except (UnsafeExpression, ValueError, KeyError, TypeError) as exc:
        problems.append(getattr(exc, "message", None) or str(exc))
    problems += (
        _remote_references(schema)
        + _unknown_keywords(schema)
        + _unbounded(schema)
        + _reserved_fields(schema)
    )
    return form, problems


def _meta_schema_problems(schema: Mapping[str, Any]) -> list[str]:
    """Where the schema breaks JSON Schema 2020-12 (the dialect every form is read in)."""
    declared = schema.get("$schema")
    if declared is not None and (not isinstance(declared, str) or declared.rstrip("#") != _DIALECT):
        return [f"$schema must be {_DIALECT} (JSON Schema 2020-12), not {declared!r}"]
    errors = sorted(_META_VALIDATOR.iter_errors(schema), key=lambda e: list(e.absolute_path))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" if e.absolute_path else e.message
        for e in errors[:_MAX_REPORTED]
    ]


_DIALECT = str(Draft202012Validator.META_SCHEMA["$id"])
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA)
_MAX_REPORTED = 20  # a broken form gets a useful list, not one line per node of it

# The keywords a form's schema may use beyond JSON Schema (engine.forms and the data
# dictionary, engine.dictionary, read them). Anything else spelled `x-` is a typo or a
# keyword some other tool reads: either way the engine would silently ignore it.
KEYWORDS = frozenset(
    {
        "x-title-en",
        "x-description-en",
        "x-enum-titles",
        "x-widget",
        "x-hidden",
        "x-carry-over",
        "x-prefill",
        "x-options",
        "x-checks",
        "x-display",
        "x-lookup",
        "x-record",
        "x-internal",
        "x-card-title",
        attachments.KEYWORD,
    }
)
# JSON Schema keywords whose value is a schema, a list of schemas or a map of them.
_IN_SCHEMA = (
    *("items", "additionalProperties", "not", "if", "then", "else", "contains"),
    *("propertyNames", "unevaluatedItems", "unevaluatedProperties"),
)
_IN_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_IN_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema within `schema` (itself first), with its JSON pointer path."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        yield path, node
        for keyword in _IN_SCHEMA:
            stack.append((f"{path}/{keyword}", node.get(keyword)))
        for keyword in _IN_LIST:
            inner = node.get(keyword)
            if isinstance(inner, list):
                stack.extend((f"{path}/{keyword}/{n}", s) for n, s in enumerate(inner))
        for keyword in _IN_MAP:
            inner = node.get(keyword)
            if isinstance(inner, Mapping):
                stack.extend((f"{path}/{keyword}/{n}", s) for n, s in inner.items())


def _nested_attachments(schema: Mapping[str, Any]) -> list[str]:
    return sorted(
        path
        for path, node in subschemas(schema)
        if attachments.KEYWORD in node and not re.fullmatch(r"/properties/[^/]+", path)
    )


def _remote_references(schema: Mapping[str, Any]) -> list[str]:
    """A reference outside the form (`other.json`, `https://…`) would make validating a
    submission fetch or look up a document the form does not hold: only references
    within the form (`#/$defs/…`) are allowed."""
    return sorted(
        f"{path or '/'}: {keyword} {node[keyword]!r} is not within the form (only '#…')"
        for path, node in subschemas(schema)
        for keyword in _REFERENCES
        if isinstance(node.get(keyword), str) and not node[keyword].startswith("#")
    )


def _unknown_keywords(schema: Mapping[str, Any]) -> list[str]:
    return sorted(
        f"{path or '/'}: unknown keyword {keyword!r}"
        for path, node in subschemas(schema)
        for keyword in node
        if isinstance(keyword, str) and keyword.startswith("x-") and keyword not in KEYWORDS
    )


def _unbounded(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """What lets a submission grow without bound: a string without `maxLength`, an array
    without `maxItems`, an object open to any other key, a field without a type. Every
    form must bound what it accepts (a fixed `enum` or `const` bounds a value too), so
    that no submission can hold a command (and the instance's lock) for long.
    Subschemas combined with `allOf`, `if`/`then` … only narrow what this tree admits,
    so the tree itself is what must be bounded."""
    where = path or "the schema"
    if "enum" in schema or "const" in schema:
        return []
    kind = schema.get("type")
    types = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    problems = []
    if not types:
        problems.append(f"{where} declares no type")
    if "string" in types and not isinstance(schema.get("maxLength"), int):
        problems.append(f"{where}: a string needs maxLength")
    if "array" in types:
        if not isinstance(schema.get("maxItems"), int):
            problems.append(f"{where}: an array needs maxItems")
        items = schema.get("items")
        if isinstance(items, dict):
            problems += _unbounded(items, f"{path}/items" if path else "items")
        elif items is not False:
            problems.append(f"{where}: an array needs a schema for its items")
    if "object" in types:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where}: an object needs additionalProperties false")
        for name, prop in (schema.get("properties") or {}).items():
            inner = f"{path}/{name}" if path else str(name)
            if isinstance(prop, dict):
                problems += _unbounded(prop, inner)
            else:
                problems.append(f"{inner} is not a schema")
    return problems


def _reserved_fields(schema: Mapping[str, Any]) -> list[str]:
    """A form's fields become instance variables: each must be a name expressions can
    read and that shadows nothing the evaluator provides."""
    return [
        f"field name {name!r} is reserved or not a name"
        for name in schema.get("properties") or {}
        if not str(name).isidentifier() or expressions.is_reserved(str(name))
    ]


def _inputs(form: Form, prefills: Mapping[str, Prefill]) -> frozenset[str]:
    names = set(form.carry_over) | set(form.context)
    for rule in form.prefills.values():
        if isinstance(rule, str):
            names |= expressions.names_in(rule)
        elif isinstance(rule, dict) and isinstance(rule.get("function"), str):
            prefill = prefills.get(rule["function"])
            if prefill is None:
                raise ValueError(f"the pack has no prefill {rule['function']!r}")
            names |= prefill.reads
        else:
            raise ValueError("x-prefill is an expression or {'function': name}")
    if form.notice:
        if isinstance(form.notice.get("when"), str):
            names |= expressions.names_in(form.notice["when"])
        if isinstance(form.notice.get("show"), str):
            names.add(form.notice["show"])
    for spec in form.option_lists:
        names |= variables_of_option_list(spec)
    return frozenset(names)
