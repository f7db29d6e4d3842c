"""A procedure pack: what the generic engine runs.

A pack is a folder of data and, only where the procedure needs it, a few functions
registered by name. The folder holds the diagrams (`*.bpmn`), one form per user task
(`forms/<task_id>.json`), `pack.json` (the pack's name and the roles its lanes name)
and `variables.json` (the process variables no form defines and how pages show
them). The functions are what cannot be declared: service-task functions, prefills
that read beyond the instance, checks that compare more than rows, the rule that
starts a successor instance, the data a scheduled review starts with, and seed content (a metric catalogue, demo users).

A pack without any code is complete: a diagram with its forms runs as it is. The
engine names no procedure; it asks the pack it was given.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from engine.errors import ValidationFailed
from engine.roles import RoleBook, role_book
from engine.services import ServiceFunction

# The variables a prefill or check reads besides the instance data: recorded metric
# values (`latest(code)`) and the metric catalogue. See engine.forms.
Lookups = Any
PrefillFunction = Callable[[Mapping[str, Any], Lookups], Any]
CheckFunction = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, list[str]]]
# The seed of the instance that follows a completed one (same process), or None.
SuccessorRule = Callable[["Completed"], "dict[str, Any] | None"]
# The initial data of the instance a review schedule starts for one period.
ReviewRule = Callable[["ScheduledReview"], "dict[str, Any]"]


@dataclass(frozen=True)
class Prefill:
    """A named prefill function and the instance variables it reads (the task
    projection copies exactly those, so the form page never loads workflow state)."""

    function: PrefillFunction
    reads: frozenset[str]


@dataclass(frozen=True)
class Completed:
    """What a successor rule knows of the instance that just completed."""

    instance_id: int
    process_id: str
    data: Mapping[str, Any]
    record_number: str | None


@dataclass(frozen=True)
class ScheduledReview:
    """What a review rule knows of the period a schedule starts an instance for."""

    schedule_id: int
    schedule_name: str
    process_id: str
    period_label: str
    period_start: datetime
    period_end: datetime
    owner: str
    process_owners: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class MetricSeed:
    code: str
    name_zh: str
    name_en: str
    category: str
    unit: str
    direction: str
    method: str


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    roles: tuple[str, ...]


class Registry(dict[str, Any]):
    """Functions a pack offers by name; `register` is a decorator."""

    def register(self, name: str) -> Callable[[Any], Any]:
        def add(function: Any) -> Any:
            if name in self:
                raise ValueError(f"{name!r} is registered twice")
            self[name] = function
            return function

        return add


@dataclass
class Pack:
    name: str
    files: Traversable
    services: Mapping[str, ServiceFunction] = field(default_factory=dict)
    prefills: Mapping[str, Prefill] = field(default_factory=dict)
    checks: Mapping[str, CheckFunction] = field(default_factory=dict)
    successor: SuccessorRule | None = None
    review: ReviewRule | None = None
    catalogue: Sequence[MetricSeed] = ()
    demo_users: Sequence[DemoUser] = ()

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return _json(self.files / "pack.json", default={})

    @cached_property
    def roles(self) -> RoleBook:
        return role_book(self.manifest.get("roles") or [])

    @property
    def title(self) -> Mapping[str, str]:
        return self.manifest.get("title") or {"zh-CN": self.name, "en": self.name}

    @property
    def main_process(self) -> str | None:
        """The process a user starts when they name none (the start page, the API)."""
        return self.manifest.get("main_process")

    @property
    def forms_dir(self) -> Traversable:
        return self.files / "forms"

    @cached_property
    def variables(self) -> dict[str, Any]:
        """variables.json: the process variables no form defines, how pages show them."""
        return _json(self.files / "variables.json", default={})

    def diagram_files(self) -> list[Traversable]:
        """The pack's diagrams in the order they deploy: a called process before the
        processes that call it (each call is pinned to a deployed version)."""
        files = sorted(
            (f for f in self.files.iterdir() if f.name.endswith(".bpmn") and f.is_file()),
            key=lambda f: f.name,
        )
        return _called_first(files)


def _json(resource: Traversable, default: Any) -> Any:
    if not resource.is_file():
        return default
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValidationFailed(
            f"{resource.name} is not valid JSON: {exc}", {resource.name: [str(exc)]}
        ) from exc


def _called_first(files: Iterable[Traversable]) -> list[Traversable]:
    """Order diagram files so that each file's called processes come from earlier ones."""
    from engine.workflow.parsing import processes_and_calls  # parsing needs lxml: on use

    pending = {f.name: (f, *processes_and_calls(f.read_bytes(), f.name)) for f in files}
    ordered: list[Traversable] = []
    provided: set[str] = set()
    while pending:
        ready = [
            name
            for name, (_, defines, calls) in pending.items()
            if calls <= provided | defines or not calls & _defined_by(pending)
        ]
        if not ready:  # a cycle: deploy refuses it with its own message
            ready = sorted(pending)
        for name in sorted(ready):
            resource, defines, _ = pending.pop(name)
            ordered.append(resource)
            provided |= defines
    return ordered


def _defined_by(pending: Mapping[str, tuple[Any, set[str], set[str]]]) -> set[str]:
    return {pid for _, defines, _ in pending.values() for pid in defines}


def load(spec: str | Path) -> Pack:
    """The pack `spec` names: a module whose `PACK` is one (the default `procedure`), or
    a folder holding a pack's data and no code."""
    text = str(spec)
    if not isinstance(spec, Path) and text.replace(".", "").replace("_", "").isalnum():
        module = importlib.import_module(text)
        pack = getattr(module, "PACK", None)
        if not isinstance(pack, Pack):
            raise ValueError(f"module {text} has no PACK")
        return pack
    folder = Path(spec)
    if not (folder / "pack.json").is_file() and not any(folder.glob("*.bpmn")):
        raise ValueError(f"{folder} holds no pack (no pack.json, no diagram)")
    manifest = _json(folder / "pack.json", default={})
    return Pack(name=str(manifest.get("name") or folder.name), files=folder)


DEFAULT_PACK = "procedure"
