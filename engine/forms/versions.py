"""The forms a deployed version holds.

A version is its diagram and the forms of its user tasks: a process owner who changes
a form publishes a new version, and instances on the old one keep the old form. So a
task's form is looked up in the versions its instance runs on (its definition and the
called ones it pinned). Versions deployed before forms were versioned hold none and
read the pack's form files, as they always did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import NotFound
from engine.forms.library import Form, FormLibrary, parse_form

# Parsed form sets kept per set of versions (immutable, so never stale); bounded so
# that a long-lived process that saw many versions does not keep them all.
MAX_KEPT = 256


@dataclass(frozen=True)
class StoredForms:
    """The form documents of some versions, merged by task id; `fallback` when one of
    them holds none (deployed before forms were versioned)."""

    documents: Mapping[str, Any]
    fallback: bool


def merged(rows: Iterable[Mapping[str, Any] | None]) -> StoredForms:
    documents: dict[str, Any] = {}
    fallback = False
    for forms in rows:
        if forms is None:
            fallback = True
        else:
            for key, document in forms.items():
                documents.setdefault(key, document)
    return StoredForms(documents, fallback)


@dataclass
class VersionForms:
    """The forms of the versions one instance runs on (or one version starts with)."""

    library: FormLibrary
    stored: StoredForms
    _parsed: dict[str, Form] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def has(self, key: str) -> bool:
        if key in self.stored.documents:
            return True
        return self.stored.fallback and self.library.has(key)

    def get(self, key: str) -> Form:
        document = self.stored.documents.get(key)
        if document is None:
            if self.stored.fallback:
                return self.library.get(key)
            raise NotFound(f"no form for task {key!r}")
        with self._lock:
            form = self._parsed.get(key)
        if form is None:
            form = parse_form(
                key, json.dumps(document), self.library.prefills, self.library.check_functions
            )
            with self._lock:
                self._parsed[key] = form
        return form

    def inputs_of(self, key: str) -> frozenset[str]:
        """What the task projection copies for task `key` (nothing when it has no form)."""
        try:
            return self.get(key).inputs
        except NotFound:
            return frozenset()

    def documents(self) -> dict[str, Any]:
        """Every form these versions hold, as documents (the pack's files included for
        versions that hold none)."""
        found = dict(self.stored.documents)
        if self.stored.fallback:
            for key in self.library.task_ids():
                if key not in found:
                    found[key] = self.library.document(key)
        return found


_kept_lock = threading.Lock()
_kept: dict[tuple[Any, ...], VersionForms] = {}


def kept(library: FormLibrary, key: tuple[str, ...], load: Any) -> VersionForms:
    """The forms of the versions `key` names ("id:content hash" of each, which pins
    their content), loaded by `load()` the first time."""
    cache_key = (id(library), *key)
    with _kept_lock:
        hit = _kept.get(cache_key)
    if hit is not None:
        return hit
    forms = VersionForms(library, load())
    with _kept_lock:
        if len(_kept) >= MAX_KEPT:
            _kept.pop(next(iter(_kept)))
        _kept[cache_key] = forms
    return forms
