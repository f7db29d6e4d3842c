"""A process record (e.g. a 服务改进记录) as the company files it: one document built from
the record row, the instance's history and its metric readings, rendered as a
standalone printable A4 page and as a workbook.

`record_document` reads; `record_html` and `record_xlsx` only render what it read, so
the same history gives the same bytes (nothing here reads the clock). Every review
round, monitoring entry, called-process run (an RFC) and the verification are kept, not
only the latest: they come from the record's logs and the `task_completed` events,
read by the indexed instance id, never from serialized workflow state.

What the page names beyond the diagram and forms comes from the pack's `record`
section (pack.json): the signature block (which task's completer signs as 编制 / 审核 /
批准), labels of the record's logs and which log carries metric readings, and the
columns of the called-process table.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import chain
from engine.dictionary import DataDictionary
from engine.documents.shown import EMPTY, Label, Shown, Table, scalar, shown, title_of
from engine.errors import NotFound
from engine.forms.library import FormLibrary
from engine.pack import Pack
from engine.persistence.models import Event, HumanTask, Instance, Metric, MetricValue, Record
from engine.workflow import definitions
from engine.workflow.model import ProcessModel, model_of

# ---- the document ------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    label: Label
    value: Shown


@dataclass(frozen=True)
class Reading:
    code: str
    name: Label
    value: float
    period: str
    recorded_by: str | None
    recorded_at: str


@dataclass(frozen=True)
class LogEntry:
    """One entry of a record log (a review round, a monitoring entry): the values of its
    fields, who made it when, and for a log that carries them, the readings it was
    based on (the latest round of readings recorded since the entry before)."""

    round: int
    values: tuple[Shown, ...]
    raw: Mapping[str, Any]
    by: str | None
    at: str
    readings: tuple[Reading, ...] = ()


@dataclass(frozen=True)
class RecordLog:
    name: str
    label: Label
    columns: tuple[Label, ...]
    entries: tuple[LogEntry, ...]
    with_readings: bool


@dataclass(frozen=True)
class Step:
    """A completed task: who did it when, with what it submitted."""

    seq: int
    task: str
    name: str
    actor: str | None
    at: str
    run: str  # the called-process run it belongs to ("" for the record's own process)
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Call:
    """One run of a called process (an RFC): its label, the row of the record it was
    called for (a measure), the summary columns the pack names, and its steps."""

    label: str
    process_id: str
    key: str  # e.g. the RFC number
    title: str  # e.g. the measure's title
    columns: tuple[Field, ...]
    outcome: Label
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Signature:
    label: Label
    actor: str | None
    at: str | None


@dataclass(frozen=True)
class Verification:
    task: str
    by: str | None
    at: str
    fields: tuple[Field, ...]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class RecordDocument:
    title: Label  # the procedure's name (服务改进管理制度)
    document: str  # its document number (YNTD-ITSS-0409)
    record_title: Label  # the record's name (服务改进记录)
    number: str
    instance_id: int
    process_id: str
    status: str
    status_label: Label
    instance_status: str
    raised_by: str | None
    raised_on: str
    closed_on: str | None
    fields: tuple[Field, ...]
    logs: tuple[RecordLog, ...]
    calls: tuple[Call, ...]
    verification: Verification | None
    signatures: tuple[Signature, ...]
    steps: tuple[Step, ...]
    readings: tuple[Reading, ...]
    chain_head: str
    chain_ok: bool
    verified_at: str | None  # the date the record's effect was verified

    def log(self, name: str) -> RecordLog | None:
        return next((log for log in self.logs if log.name == name), None)

    @property
    def rounds(self) -> tuple[LogEntry, ...]:
        """The review rounds: entries of the first log that carries no readings."""
        log = next((log for log in self.logs if not log.with_readings), None)
        return log.entries if log else ()

    @property
    def monitoring(self) -> tuple[LogEntry, ...]:
        """The monitoring entries: entries of the first log that carries readings."""
        log = next((log for log in self.logs if log.with_readings), None)
        return log.entries if log else ()

    @property
    def rfcs(self) -> tuple[Call, ...]:
        return self.calls


# ---- reading -------------------------------------------------------------------------------

_libraries: dict[int, FormLibrary] = {}
_libraries_lock = threading.Lock()


def _library(pack: Pack) -> FormLibrary:
    with _libraries_lock:
        library = _libraries.get(id(pack))
        if library is None:
            library = _libraries[id(pack)] = FormLibrary.of(pack)
        return library


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class _Forms:
    """The form schema of a task in the versions the instance runs on (empty when the
    task has none)."""

    def __init__(self, session: Session, pack: Pack, instance: Instance) -> None:
        self.versions = definitions.forms_of_instance(
            session, _library(pack), instance.definition_id, instance.called_definitions or {}
        )

    def properties(self, task: str) -> Mapping[str, Any]:
        if not self.versions.has(task):
            return {}
        try:
            return self.versions.get(task).schema.get("properties") or {}
        except Exception:  # a broken form must not hide the record
            return {}

    def fields(self, task: str, data: Mapping[str, Any]) -> tuple[Field, ...]:
        properties = self.properties(task)
        names = [n for n in properties if n in data] or sorted(data)
        return tuple(
            Field(
                n, title_of(properties.get(n) or {}, n), shown(data.get(n), properties.get(n) or {})
            )
            for n in names
        )


def _record_config(pack: Pack) -> Mapping[str, Any]:
    return pack.manifest.get("record") or {}


def _readings(session: Session, instance_id: int) -> list[Reading]:
    names = {
        code: Label(zh, en)
        for code, zh, en in session.execute(select(Metric.code, Metric.name_zh, Metric.name_en))
    }
    rows = session.execute(
        select(
            MetricValue.code,
            MetricValue.value,
            MetricValue.period,
            MetricValue.recorded_by,
            MetricValue.recorded_at,
        )
        .where(MetricValue.instance_id == instance_id)
        .order_by(MetricValue.recorded_at, MetricValue.id)
    )
    return [
        Reading(code, names.get(code, Label.same(code)), value, period, by, at.isoformat())
        for code, value, period, by, at in rows
    ]


def _readings_before(
    readings: Sequence[Reading], after: str | None, until: str
) -> tuple[Reading, ...]:
    """The latest round of readings (those recorded at one instant) in (after, until]."""
    window = [
        r for r in readings if r.recorded_at <= until and (after is None or r.recorded_at > after)
    ]
    if not window:
        return ()
    latest = window[-1].recorded_at
    return tuple(r for r in window if r.recorded_at == latest)


def _logs(
    model: ProcessModel,
    stored: Mapping[str, Any],
    forms: _Forms,
    config: Mapping[str, Any],
    readings: Sequence[Reading],
) -> tuple[RecordLog, ...]:
    declared: Mapping[str, Any] = config.get("logs") or {}
    logs: list[RecordLog] = []
    names = [n for n in declared if n in model.record_logs]
    names += [n for n in model.record_logs if n not in names]
    for name in names:
        task = next(
            (e.id for e in model.elements.values() if e.properties.get("record_log") == name), ""
        )
        log = model.log_of(task)
        fields = log.fields if log is not None else ()
        properties = forms.properties(task)
        settings = declared.get(name) or {}
        with_readings = bool(settings.get("readings"))
        entries: list[LogEntry] = []
        previous: str | None = None
        for index, entry in enumerate(stored.get(name) or [], start=1):
            at = str(entry.get("on") or "")
            entries.append(
                LogEntry(
                    index,
                    tuple(shown(entry.get(f), properties.get(f) or {}) for f in fields),
                    dict(entry),
                    entry.get("by"),
                    at,
                    _readings_before(readings, previous, at) if with_readings else (),
                )
            )
            previous = at
        logs.append(
            RecordLog(
                name,
                Label.of_mapping(settings, name),
                tuple(title_of(properties.get(f) or {}, f) for f in fields),
                tuple(entries),
                with_readings,
            )
        )
    return tuple(logs)


def _steps(
    session: Session, instance: Instance, forms: _Forms
) -> tuple[list[Step], dict[str, str]]:
    """Every completed task in history order, and the process each called run belongs to."""
    tasks = {
        task_id: (process_id, label)
        for task_id, process_id, label in session.execute(
            select(HumanTask.id, HumanTask.process_id, HumanTask.label).where(
                HumanTask.instance_id == instance.id
            )
        )
    }
    events = session.execute(
        select(Event.seq, Event.at, Event.actor, Event.task_id, Event.bpmn_id, Event.payload)
        .where(Event.instance_id == instance.id, Event.type == "task_completed")
        .order_by(Event.seq)
    )
    steps: list[Step] = []
    run_process: dict[str, str] = {}
    for seq, at, actor, task_id, bpmn_id, payload in events:
        process_id, label = tasks.get(task_id or "", (instance.process_id, ""))
        run = label if process_id != instance.process_id else ""
        if run:
            run_process[run] = process_id
        data = payload.get("data") if isinstance(payload, Mapping) else None
        data = data if isinstance(data, Mapping) else {}
        task = bpmn_id or ""
        steps.append(
            Step(
                seq,
                task,
                str(payload.get("name") or task) if isinstance(payload, Mapping) else task,
                actor,
                at.isoformat(),
                run,
                forms.fields(task, data),
            )
        )
    return steps, run_process


def _raw_of(step: Step, name: str) -> Field | None:
    return next((f for f in step.fields if f.name == name), None)


def _calls(
    steps: Sequence[Step],
    run_process: Mapping[str, str],
    data: Mapping[str, Any],
    config: Mapping[str, Any],
    forms: _Forms,
    row_schema: Mapping[str, Any],
) -> tuple[Call, ...]:
    settings: Mapping[str, Any] = config.get("calls") or {}
    rows_name = settings.get("rows")
    key_name = settings.get("key") or ""
    title_name = settings.get("title") or "title"
    outcome_name = settings.get("outcome") or ""
    rows = data.get(rows_name) if rows_name else None
    rows = [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
    calls: list[Call] = []
    for run in dict.fromkeys(s.run for s in steps if s.run):
        run_steps = tuple(s for s in steps if s.run == run)
        row: Mapping[str, Any] = next(
            (r for r in rows if key_name and r.get(key_name) and str(r.get(key_name)) in run),
            {},
        )
        columns: list[Field] = []
        for column in settings.get("columns") or []:
            task, name = column.get("task"), column.get("field")
            step = next((s for s in reversed(run_steps) if s.task == task), None)
            found = _raw_of(step, name) if step is not None else None
            label = (
                found.label
                if found is not None
                else title_of(forms.properties(task).get(name) or {}, name)
            )
            if column.get("zh-CN") or column.get("en"):
                label = Label.of_mapping(column, name)
            columns.append(Field(name, label, found.value if found is not None else EMPTY))
        outcome = row.get(outcome_name) if outcome_name else None
        calls.append(
            Call(
                run,
                run_process.get(run, ""),
                str(row.get(key_name) or ""),
                str(row.get(title_name) or ""),
                tuple(columns),
                scalar(outcome, row_schema.get(outcome_name) or {}) if outcome else EMPTY,
                run_steps,
            )
        )
    return tuple(calls)


def _row_properties(
    variables: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]
) -> Mapping[str, Any]:
    rows = (config.get("calls") or {}).get("rows")
    items = (variables.get(rows) or {}).get("items") if rows else None
    return (items or {}).get("properties") or {} if isinstance(items, Mapping) else {}


def _verification(model: ProcessModel, steps: Sequence[Step]) -> Verification | None:
    """The last completion of the task whose completer the record keeps (record_actor)."""
    tasks = {e.id for e in model.elements.values() if e.properties.get("record_actor")}
    step = next((s for s in reversed(steps) if s.task in tasks), None)
    if step is None:
        return None
    raw = {f.name: f.value for f in step.fields}
    return Verification(step.task, step.actor, step.at, step.fields, raw)


def _verified_at(verification: Verification | None, forms: _Forms) -> str | None:
    if verification is None:
        return None
    properties = forms.properties(verification.task)
    for field in verification.fields:
        is_date = (properties.get(field.name) or {}).get("format") == "date"
        if is_date and isinstance(field.value, Label) and field.value.zh:
            return field.value.zh
    return verification.at[:10]


def _signatures(config: Mapping[str, Any], steps: Sequence[Step]) -> tuple[Signature, ...]:
    found: list[Signature] = []
    for signature in config.get("signatures") or []:
        task = signature.get("task")
        step = next((s for s in reversed(steps) if s.task == task), None)
        found.append(
            Signature(
                Label.of_mapping(signature, str(task)),
                step.actor if step else None,
                step.at if step else None,
            )
        )
    return tuple(found)


def _record_fields(
    record: Record,
    data: Mapping[str, Any],
    record_names: Iterable[str],
    dictionary: Mapping[str, Mapping[str, Any]],
    leave_out: set[str],
) -> tuple[Field, ...]:
    fields: list[Field] = []
    for name in ("source", "reference", "description"):
        fields.append(
            Field(
                name,
                title_of(dictionary.get(name) or {}, name),
                shown(getattr(record, name), dictionary.get(name) or {}),
            )
        )
    for name in record_names:
        if name in leave_out or name in ("source", "reference", "description"):
            continue
        if name not in data:
            continue
        schema = dictionary.get(name) or {}
        fields.append(Field(name, title_of(schema, name), shown(data.get(name), schema)))
    return tuple(fields)


def record_document(session: Session, pack: Pack, instance_id: int) -> RecordDocument:
    """The record of instance `instance_id` as a document (NotFound when it keeps none).
    The caller decides who may read it (engine.access)."""
    record = session.scalar(select(Record).where(Record.instance_id == instance_id))
    instance = session.get(Instance, instance_id)
    if record is None or instance is None:
        raise NotFound(f"instance {instance_id} keeps no record")
    model = model_of(instance.definition)
    forms = _Forms(session, pack, instance)
    config = _record_config(pack)
    dictionary = DataDictionary(pack, _library(pack))
    data: Mapping[str, Any] = instance.data or {}
    readings = _readings(session, instance_id)
    steps, run_process = _steps(session, instance, forms)
    verification = _verification(model, steps)
    leave_out = set(verification.raw) if verification else set()
    statuses = model.record_statuses
    head = chain.verify(session, instance_id)
    return RecordDocument(
        title=Label.of_mapping(pack.title, pack.name),
        document=str(pack.manifest.get("document") or ""),
        record_title=Label.of_mapping(config.get("title"), record.number.split("-")[0]),
        number=record.number,
        instance_id=instance_id,
        process_id=instance.process_id,
        status=record.status,
        status_label=Label.of_mapping(statuses.get(record.status), record.status),
        instance_status=instance.status,
        raised_by=record.raised_by,
        raised_on=record.raised_on.isoformat(),
        closed_on=_iso(record.closed_on),
        fields=_record_fields(
            record, data, dictionary.record_fields, dictionary.variables, leave_out
        ),
        logs=_logs(model, record.fields or {}, forms, config, readings),
        calls=_calls(
            steps, run_process, data, config, forms, _row_properties(dictionary.variables, config)
        ),
        verification=verification,
        signatures=_signatures(config, steps),
        steps=tuple(steps),
        readings=tuple(readings),
        chain_head=instance.last_hash,
        chain_ok=head.ok,
        verified_at=_verified_at(verification, forms),
    )


# ---- rendering -----------------------------------------------------------------------------

WORDS: Mapping[str, tuple[str, str]] = {
    "number": ("记录编号", "Record number"),
    "status": ("状态", "Status"),
    "raised_by": ("登记人", "Raised by"),
    "raised_on": ("登记日期", "Raised on"),
    "closed_on": ("关闭日期", "Closed on"),
    "basics": ("基本信息", "Record"),
    "round": ("轮次", "Round"),
    "by": ("人员", "By"),
    "at": ("时间", "When"),
    "readings": ("所依据的度量数据", "Readings it was based on"),
    "all_readings": ("度量数据", "Metric readings"),
    "metric": ("指标", "Metric"),
    "value": ("数值", "Value"),
    "period": ("周期", "Period"),
    "recorded_by": ("填报人", "Recorded by"),
    "recorded_at": ("记录时间", "Recorded at"),
    "calls": ("变更请求（RFC）", "Requests for change (RFC)"),
    "rfc": ("RFC 编号", "RFC number"),
    "measure": ("措施", "Measure"),
    "outcome": ("变更结果", "Change outcome"),
    "verification": ("验证", "Verification"),
    "verifier": ("验证人", "Verifier"),
    "signatures": ("签署", "Sign-off"),
    "steps": ("处理过程", "Who did each step when"),
    "step": ("步骤", "Step"),
    "chain_head": ("历史链头哈希", "History chain head"),
    "chain_ok": ("历史校验", "History check"),
    "chain_ok_yes": ("完整", "intact"),
    "chain_ok_no": ("已损坏", "broken"),
    "verified_at": ("验证日期", "Verified on"),
    "none": ("无", "none"),
    "field": ("项目", "Field"),
    "page": ("第", "Page"),
}


def word(key: str, locale: str) -> str:
    zh, en = WORDS[key]
    return zh if locale.startswith("zh") else en


def _day(iso: str | None) -> str:
    return (iso or "")[:10]


def _minute(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["day"] = _day
_env.filters["minute"] = _minute


_TEMPLATES = Path(__file__).parent / "templates"
# The print page's stylesheet, inline so the page stands alone (saved, mailed, packed).
RECORD_STYLE = (_TEMPLATES / "record.css").read_text(encoding="utf-8")


def record_style_hash() -> str:
    """The CSP source (`'sha256-…'`) that lets exactly the print page's inline style in."""
    digest = hashlib.sha256(RECORD_STYLE.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _render(template: str, doc: RecordDocument, locale: str) -> str:
    lang = "zh-CN" if locale.startswith("zh") else "en"
    return _env.get_template(template).render(
        doc=doc,
        lang=lang,
        style=Markup(RECORD_STYLE),  # noqa: S704 - our own file, not input
        w=lambda key: word(key, lang),
        t=lambda label: label.of(lang),
        is_table=lambda value: isinstance(value, Table),
    )


def record_html(doc: RecordDocument, locale: str = "zh-CN") -> str:
    """The record as a standalone A4 page (CSS inline, nothing fetched, no script)."""
    return _render("record.html", doc, locale)


def record_fragment(doc: RecordDocument, locale: str = "zh-CN") -> str:
    """The record's content as record_html lays it out, without the page around it
    (for a page of the application to show)."""
    return _render("record_body.html", doc, locale)


# ---- workbook ------------------------------------------------------------------------------

# Workbook properties and zip entry times fixed, so the same record gives the same bytes.
FIXED_TIME = datetime(2000, 1, 1)
_CORE_MODIFIED = re.compile(rb"<dcterms:modified([^>]*)>[^<]*</dcterms:modified>")


def fixed_bytes(book: Workbook) -> bytes:
    """`book` saved with no trace of when: fixed document properties and zip entry
    times, entries in the order openpyxl writes them."""
    book.properties.creator = "CSI Workflow"
    book.properties.created = FIXED_TIME
    book.properties.lastModifiedBy = None
    raw = io.BytesIO()
    book.save(raw)
    return fixed_zip(raw.getvalue())


def fixed_zip(data: bytes) -> bytes:
    stamp = b"<dcterms:modified\\1>2000-01-01T00:00:00Z</dcterms:modified>"
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _CORE_MODIFIED.sub(stamp, content)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, content)
    return out.getvalue()


def _cell(value: Shown, locale: str) -> str:
    if isinstance(value, Table):
        lines = [" | ".join(c.of(locale) for c in value.columns)]
        lines += [" | ".join(c.of(locale) for c in row) for row in value.rows]
        return "\n".join(lines)
    return value.of(locale)


_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")


def _header(sheet: Any, names: Sequence[str]) -> None:
    sheet.append(list(names))
    for cell in sheet[sheet.max_row]:
        cell.font = _BOLD


def _record_sheet(book: Workbook, doc: RecordDocument, lang: str) -> None:
    def w(key: str) -> str:
        return word(key, lang)

    sheet = book.active
    sheet.title = doc.record_title.of(lang)[:31] or "record"
    sheet.append([f"{doc.title.of(lang)} {doc.document}".strip()])
    sheet["A1"].font = _BOLD
    _header(sheet, [w("field"), w("value")])
    basics = [
        (w("number"), doc.number),
        (w("status"), doc.status_label.of(lang)),
        (w("raised_by"), doc.raised_by or ""),
        (w("raised_on"), _minute(doc.raised_on)),
        (w("closed_on"), _minute(doc.closed_on)),
    ]
    for name, value in basics:
        sheet.append([name, value])
    for field in doc.fields:
        sheet.append([field.label.of(lang), _cell(field.value, lang)])
    if doc.verification is not None:
        for field in doc.verification.fields:
            sheet.append(
                [f"{w('verification')} · {field.label.of(lang)}", _cell(field.value, lang)]
            )
        sheet.append([w("verifier"), doc.verification.by or ""])
    for signature in doc.signatures:
        sheet.append(
            [signature.label.of(lang), f"{signature.actor or ''} {_minute(signature.at)}".strip()]
        )
    sheet.append([w("chain_head"), doc.chain_head])
    sheet.append([w("verified_at"), doc.verified_at or ""])
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 90
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = _WRAP


def _log_sheet(book: Workbook, log: RecordLog, lang: str) -> None:
    page = book.create_sheet(log.label.of(lang)[:31])
    columns = [word("round", lang), *(c.of(lang) for c in log.columns)]
    columns += [word("by", lang), word("at", lang)]
    if log.with_readings:
        columns.append(word("readings", lang))
    _header(page, columns)
    for entry in log.entries:
        row = [entry.round, *(_cell(v, lang) for v in entry.values), entry.by or ""]
        row.append(_minute(entry.at))
        if log.with_readings:
            row.append("; ".join(f"{r.code}={r.value:g} ({r.period})" for r in entry.readings))
        page.append(row)


def _calls_sheet(book: Workbook, doc: RecordDocument, lang: str) -> None:
    calls = book.create_sheet(word("calls", lang)[:31])
    first = doc.calls[0] if doc.calls else None
    extra = [f.label.of(lang) for f in first.columns] if first else []
    _header(
        calls,
        [
            word("rfc", lang),
            word("measure", lang),
            *extra,
            word("outcome", lang),
            word("steps", lang),
        ],
    )
    for call in doc.calls:
        calls.append(
            [
                call.key or call.label,
                call.title,
                *(_cell(f.value, lang) for f in call.columns),
                call.outcome.of(lang),
                "; ".join(f"{s.name} {s.actor or ''} {_minute(s.at)}" for s in call.steps),
            ]
        )


def record_xlsx(doc: RecordDocument, locale: str = "zh-CN") -> bytes:
    """The record as a workbook: the record's fields, each log with every entry, the
    called-process runs, the readings and who did each step when."""
    lang = "zh-CN" if locale.startswith("zh") else "en"

    def w(key: str) -> str:
        return word(key, lang)

    book = Workbook()
    _record_sheet(book, doc, lang)
    for log in doc.logs:
        _log_sheet(book, log, lang)
    _calls_sheet(book, doc, lang)
    readings = book.create_sheet(w("all_readings")[:31])
    _header(readings, [w("metric"), w("value"), w("period"), w("recorded_by"), w("recorded_at")])
    for reading in doc.readings:
        readings.append(
            [
                f"{reading.code} {reading.name.of(lang)}".strip(),
                reading.value,
                reading.period,
                reading.recorded_by or "",
                _minute(reading.recorded_at),
            ]
        )
    steps = book.create_sheet(w("steps")[:31])
    _header(steps, [w("step"), w("by"), w("at"), w("calls")])
    for step in doc.steps:
        steps.append([step.name, step.actor or "", _minute(step.at), step.run])
    return fixed_bytes(book)
