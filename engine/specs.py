"""BPMN diagrams: safe parsing, validation before deploy, versions by content hash.

Every XML read goes through defusedxml first (no DTDs, no entities, no external
references), then lxml with entity resolution and network access off builds the
tree SpiffWorkflow parses. Validation refuses what the runtime could not run safely:
a missing start event, a lane that is no known role, a service that is not
registered, an expression outside the whitelist, a user task without a form.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import BpmnValidator, SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import expressions, services
from engine.errors import NotFound, UnsafeExpression, ValidationFailed
from engine.roles import role_for_lane
from engine.store import ProcessDefinition, utcnow

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
MAX_DIAGRAM_BYTES = 2_000_000

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BPMN_DIR = REPO_ROOT / "bpmn"

_validator_lock = threading.Lock()
_validator: BpmnValidator | None = None


def _xsd_validator() -> BpmnValidator:
    # Loading the BPMN XSD takes ~100 ms: once per process, on first use.
    global _validator
    with _validator_lock:
        if _validator is None:
            _validator = BpmnValidator()
        return _validator


def content_hash(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


def safe_tree(xml: bytes, filename: str = "diagram.bpmn") -> etree._Element:
    """Parse untrusted XML: defusedxml vets it, then lxml builds the tree without entities."""
    if not xml or not xml.strip():
        raise ValidationFailed("the file is empty", {filename: ["empty file"]})
    if len(xml) > MAX_DIAGRAM_BYTES:
        raise ValidationFailed(
            f"the file is larger than {MAX_DIAGRAM_BYTES} bytes", {filename: ["too large"]}
        )
    try:
        SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValidationFailed(
            "the XML uses DTDs or entities, which are refused", {filename: [type(exc).__name__]}
        ) from exc
    except SafeET.ParseError as exc:
        raise ValidationFailed(f"not well-formed XML: {exc}", {filename: [str(exc)]}) from exc
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    return etree.fromstring(xml, parser=parser)


@dataclass
class DiagramReport:
    """What one BPMN file holds, once it passed validation."""

    processes: dict[str, str]  # process id -> name
    called: dict[str, list[str]]  # process id -> called process ids
    user_tasks: dict[str, list[str]] = field(default_factory=dict)


def _element_errors(errors: dict[str, list[str]], element_id: str, message: str) -> None:
    errors.setdefault(element_id or "?", []).append(message)


def _owner_id(node: etree._Element) -> str:
    """Id of the BPMN element a (possibly nested extension) node belongs to."""
    while node is not None:
        if etree.QName(node).namespace == BPMN_NS and node.get("id"):
            return str(node.get("id"))
        node = node.getparent()
    return "?"


def validate_tree(
    tree: etree._Element, forms_dir: Path | None, filename: str = "diagram.bpmn"
) -> DiagramReport:
    """Check one diagram; raise ValidationFailed with reasons keyed by element id."""
    errors: dict[str, list[str]] = {}
    if etree.QName(tree).namespace != BPMN_NS or etree.QName(tree).localname != "definitions":
        raise ValidationFailed("not a BPMN 2.0 file", {filename: ["root is not bpmn:definitions"]})

    try:
        _xsd_validator().validate(tree, filename)
    except ValidationException as exc:
        raise ValidationFailed(
            f"the diagram does not follow the BPMN 2.0 schema: {exc}", {filename: [str(exc)]}
        ) from exc

    processes: dict[str, str] = {}
    called: dict[str, list[str]] = {}
    user_tasks: dict[str, list[str]] = {}
    executable = tree.findall("bpmn:process", NS)
    if not executable:
        _element_errors(errors, filename, "the file has no process")
    for process in executable:
        pid = process.get("id", "")
        processes[pid] = process.get("name", pid)
        if not process.findall("bpmn:startEvent", NS):
            _element_errors(errors, pid, "the process has no start event")
        lane_of: dict[str, str] = {}
        for lane in process.iterfind(".//bpmn:lane", NS):
            # SpiffWorkflow reports a task's lane by the lane's name, so the name (key,
            # zh or en name of a role) is what must resolve, whatever the id says.
            if role_for_lane(lane.get("name")) is None:
                _element_errors(
                    errors,
                    lane.get("id", ""),
                    f"lane {lane.get('name')!r} is not a known role",
                )
            for ref in lane.iterfind("bpmn:flowNodeRef", NS):
                lane_of[(ref.text or "").strip()] = lane.get("id", "")
        user_tasks[pid] = []
        for task in process.iterfind(".//bpmn:userTask", NS):
            tid = task.get("id", "")
            user_tasks[pid].append(tid)
            if tid not in lane_of:
                _element_errors(errors, tid, "a user task must lie in a role's lane")
            if forms_dir is not None and not (forms_dir / f"{tid}.json").is_file():
                _element_errors(errors, tid, f"no form bpmn/forms/{tid}.json for this user task")
        for op in process.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
            name = op.get("id", "")
            if name not in services.REGISTRY:
                _element_errors(errors, _owner_id(op), f"unknown service {name!r}")
        for tag in ("manualTask", "businessRuleTask", "sendTask", "receiveTask"):
            for node in process.iterfind(f".//bpmn:{tag}", NS):
                _element_errors(errors, node.get("id", ""), f"{tag} is not supported")
        for service in process.iterfind(".//bpmn:serviceTask", NS):
            if service.find(".//spiffworkflow:serviceTaskOperator", NS) is None:
                _element_errors(errors, service.get("id", ""), "service task names no service")
        called[pid] = sorted(
            {c.get("calledElement", "") for c in process.iterfind(".//bpmn:callActivity", NS)}
        )
        _check_expressions(process, errors)

    if errors:
        raise ValidationFailed("the diagram was refused", errors)
    return DiagramReport(processes, called, user_tasks)


def _check_expressions(process: etree._Element, errors: dict[str, list[str]]) -> None:
    checks: list[tuple[etree._Element, str, bool]] = []
    for path in (
        ".//bpmn:conditionExpression",
        ".//bpmn:timeDuration",
        ".//bpmn:timeDate",
        ".//bpmn:timeCycle",
        ".//bpmn:completionCondition",
        ".//bpmn:loopCardinality",
    ):
        checks += [(n, n.text or "", False) for n in process.iterfind(path, NS)]
    checks += [(n, n.text or "", True) for n in process.iterfind(".//bpmn:script", NS)]
    for tag in ("preScript", "postScript"):
        checks += [(n, n.text or "", True) for n in process.iterfind(f".//spiffworkflow:{tag}", NS)]
    for param in process.iterfind(".//spiffworkflow:parameter", NS):
        checks.append((param, param.get("value", ""), False))
    for prop in process.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == "assignee":
            checks.append((prop, prop.get("value", ""), False))
    for node, text, is_script in checks:
        if not text.strip():
            continue
        try:
            expressions.check(text, script=is_script)
        except UnsafeExpression as exc:
            _element_errors(errors, _owner_id(node), f"{text.strip()[:80]!r}: {exc.message}")


# -- deployment -----------------------------------------------------------------------


@dataclass
class Deployed:
    definitions: list[ProcessDefinition]
    created: bool


def deploy(
    session: Session,
    xml: bytes,
    *,
    filename: str = "diagram.bpmn",
    deployed_by: str | None = None,
    forms_dir: Path | None = DEFAULT_BPMN_DIR / "forms",
) -> Deployed:
    """Validate and store one BPMN file; the same content again returns its version."""
    tree = safe_tree(xml, filename)
    report = validate_tree(tree, forms_dir, filename)
    # The file must also parse as SpiffWorkflow sees it, against what it calls.
    digest = content_hash(xml)
    text = xml.decode("utf-8")
    definitions: list[ProcessDefinition] = []
    created = False
    for pid, name in report.processes.items():
        existing = session.scalar(
            select(ProcessDefinition).where(
                ProcessDefinition.process_id == pid, ProcessDefinition.content_hash == digest
            )
        )
        if existing is not None:
            definitions.append(existing)
            continue
        version = (
            session.scalar(
                select(func.max(ProcessDefinition.version)).where(
                    ProcessDefinition.process_id == pid
                )
            )
            or 0
        ) + 1
        definition = ProcessDefinition(
            process_id=pid,
            name=name,
            version=version,
            content_hash=digest,
            bpmn_xml=text,
            filename=filename,
            called_processes=report.called.get(pid, []),
            deployed_at=utcnow(),
            deployed_by=deployed_by,
        )
        session.add(definition)
        definitions.append(definition)
        created = True
    session.flush()
    for definition in definitions:
        _check_parses(session, definition)
    return Deployed(definitions, created)


def _check_parses(session: Session, definition: ProcessDefinition) -> None:
    try:
        resolve(session, definition)
    except SpiffWorkflowException as exc:
        raise ValidationFailed(
            f"SpiffWorkflow cannot run {definition.process_id}: {exc}",
            {definition.process_id: [str(exc)]},
        ) from exc
    except NotFound as exc:
        raise ValidationFailed(exc.message, {definition.process_id: [exc.message]}) from exc


def latest(session: Session, process_id: str) -> ProcessDefinition:
    definition = session.scalar(
        select(ProcessDefinition)
        .where(ProcessDefinition.process_id == process_id)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    )
    if definition is None:
        raise NotFound(f"no deployed process {process_id!r}")
    return definition


def version_of(session: Session, process_id: str, version: int | None) -> ProcessDefinition:
    """One deployed version of a process (the latest when `version` is None)."""
    if version is None:
        return latest(session, process_id)
    definition = session.scalar(
        select(ProcessDefinition).where(
            ProcessDefinition.process_id == process_id, ProcessDefinition.version == version
        )
    )
    if definition is None:
        raise NotFound(f"no version {version} of {process_id!r}")
    return definition


def called_by_others(session: Session) -> set[str]:
    """Processes some deployed process calls: they start only as call activities."""
    called: set[str] = set()
    for row in session.scalars(select(ProcessDefinition.called_processes)):
        called.update(row or [])
    return called


def pin_called(session: Session, definition: ProcessDefinition) -> dict[str, int]:
    """Latest versions of every process `definition` calls, transitively."""
    pinned: dict[str, int] = {}
    pending = list(definition.called_processes or [])
    while pending:
        pid = pending.pop()
        if pid in pinned:
            continue
        called = latest(session, pid)
        pinned[pid] = called.id
        pending.extend(called.called_processes or [])
    return pinned


def resolve(session: Session, definition: ProcessDefinition) -> ParsedSpecs:
    """Parsed specs for `definition` with the latest versions of what it calls."""
    pinned = pin_called(session, definition)
    rows = {definition.id: definition}
    for def_id in pinned.values():
        row = session.get(ProcessDefinition, def_id)
        assert row is not None
        rows[def_id] = row
    return parsed_specs(definition.process_id, rows.values())


# -- parsed spec cache ----------------------------------------------------------------


@dataclass(frozen=True)
class ParsedSpecs:
    """A top process spec and its called specs, shared by every instance pinned to them."""

    key: tuple[str, ...]
    process_id: str
    spec: BpmnProcessSpec
    subprocess_specs: Mapping[str, BpmnProcessSpec]

    @property
    def starter_roles(self) -> frozenset[str]:
        """Roles of the lanes that hold the process's start events: who may start it
        (empty when the start events lie in no lane)."""
        roles = set()
        for task_spec in self.spec.task_specs.values():
            if isinstance(task_spec, StartEvent):
                role = role_for_lane(task_spec.lane)
                if role is not None:
                    roles.add(role)
        return frozenset(roles)


_cache_lock = threading.Lock()
_cache: dict[tuple[str, ...], ParsedSpecs] = {}


def parsed_specs(process_id: str, rows: Iterable[ProcessDefinition]) -> ParsedSpecs:
    """Parse (once per process lifetime) the definitions named by `rows`.

    Definitions are immutable, so their ids are a safe cache key.
    """
    rows = list(rows)
    # Ids alone could be reused by a rolled-back test database; the hash pins the content.
    key = tuple(sorted(f"{r.id}:{r.content_hash}" for r in rows))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    parser = SpiffBpmnParser()
    for row in rows:
        tree = safe_tree(row.bpmn_xml.encode("utf-8"), row.filename or f"{row.process_id}.bpmn")
        parser.add_bpmn_xml(tree, row.filename or f"{row.process_id}.bpmn")
    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise ValidationFailed(str(exc), {process_id: [str(exc)]}) from exc
    for process in [spec, *subprocess_specs.values()]:
        _connect_loop_children(process)
    parsed = ParsedSpecs(key, process_id, spec, subprocess_specs)
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


def spec_for_instance(
    session: Session, definition_id: int, called: Mapping[str, int]
) -> ParsedSpecs:
    rows = [session.get(ProcessDefinition, definition_id)]
    rows += [session.get(ProcessDefinition, i) for i in called.values()]
    if any(r is None for r in rows):
        raise NotFound("a pinned process definition is missing")
    top = rows[0]
    assert top is not None
    return parsed_specs(top.process_id, [r for r in rows if r is not None])


def bundled_files(bpmn_dir: Path = DEFAULT_BPMN_DIR) -> list[Path]:
    """The diagrams that ship with the product, called processes first."""
    files = sorted(bpmn_dir.glob("*.bpmn"))
    return sorted(files, key=lambda p: 0 if p.stem != "service_improvement" else 1)


def describe(definition: ProcessDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "process_id": definition.process_id,
        "name": definition.name,
        "version": definition.version,
        "content_hash": definition.content_hash,
        "filename": definition.filename,
        "called_processes": definition.called_processes,
        "deployed_at": definition.deployed_at.isoformat(),
        "deployed_by": definition.deployed_by,
    }
