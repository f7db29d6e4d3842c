"""Deployed diagrams as SpiffWorkflow runs them: parsed once per version and kept,
with what each process declares beyond execution (engine.workflow.model). A version
is immutable, so its parsed specs are kept for the life of the process."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.errors import ValidationFailed
from engine.persistence.models import ProcessDefinition
from engine.workflow import bounds
from engine.workflow.model import ProcessModel, read_models
from engine.workflow.safe_xml import NS, safe_tree


def processes_and_calls(xml: bytes, filename: str) -> tuple[set[str], set[str]]:
    """The process ids a file defines and the process ids its call activities name."""
    tree = safe_tree(xml, filename)
    defines = {p.get("id", "") for p in tree.iterfind("bpmn:process", NS)}
    calls = {c.get("calledElement", "") for c in tree.iterfind(".//bpmn:callActivity", NS)}
    return defines, calls - defines


@dataclass(frozen=True)
class ParsedSpecs:
    """A top process spec and its called specs, shared by every instance pinned to them."""

    key: tuple[str, ...]
    process_id: str
    spec: BpmnProcessSpec
    subprocess_specs: Mapping[str, BpmnProcessSpec]
    models: Mapping[str, ProcessModel]  # of every process parsed, by process id


_cache_lock = threading.Lock()
_cache: dict[tuple[str, ...], ParsedSpecs] = {}


def parsed_specs(
    process_id: str, rows: Iterable[ProcessDefinition], *, keep: bool = True
) -> ParsedSpecs:
    """Parse (once per process lifetime) the definitions named by `rows`.

    Definitions are immutable, so their ids are a safe cache key. Rows that are not
    stored (a draft, which has no id) pass `keep=False`: parsed each time, never kept.
    """
    rows = list(rows)
    # Ids alone could be reused by a rolled-back test database; the hash pins the content.
    key = tuple(sorted(f"{r.id}:{r.content_hash}" for r in rows))
    with _cache_lock:
        hit = _cache.get(key) if keep else None
    if hit is not None:
        return hit
    parser = SpiffBpmnParser()
    models: dict[str, ProcessModel] = {}
    for row in rows:
        tree = safe_tree(row.bpmn_xml.encode("utf-8"), row.filename or f"{row.process_id}.bpmn")
        parser.add_bpmn_xml(tree, row.filename or f"{row.process_id}.bpmn")
        models.update(read_models(tree))
    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise ValidationFailed(str(exc), {process_id: [str(exc)]}) from exc
    for process in [spec, *subprocess_specs.values()]:
        bounds.bound(process)
        _connect_loop_children(process)
    parsed = ParsedSpecs(key, process_id, spec, subprocess_specs, models)
    if keep:
        with _cache_lock:
            _cache[key] = parsed
    return parsed


def _connect_loop_children(process: BpmnProcessSpec) -> None:
    """Wire each loop or multi-instance task to its child spec's completion up front.

    SpiffWorkflow does it lazily, when a child is created; a workflow restored in a
    process that has not yet created one (a snapshot taken mid multi-instance, loaded
    by another worker or after a restart) then never merges its children, and the
    multi-instance task never finishes."""
    for task_spec in process.task_specs.values():
        if isinstance(task_spec, LoopTask):
            child = process.task_specs[task_spec.task_spec]
            if not child.completed_event.is_connected(task_spec.merge_child):
                child.completed_event.connect(task_spec.merge_child)


def forget_parsed() -> None:
    """Drop every parsed definition, as if the process had just started (tests, tools)."""
    with _cache_lock:
        _cache.clear()
