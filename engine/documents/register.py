"""The register (服务改进记录台账) as a workbook: a sheet of records, one of measures and
their RFCs, one of metric readings, for the records a filter finds. Written row by
row (engine.documents.sheets: the package from openpyxl's write-only workbook, the
rows streamed through temporary files) and read from the database in batches, so that
memory stays flat however many records there are."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from engine.documents.sheets import StreamedWorkbook
from engine.documents.shown import Label, scalar
from engine.persistence.models import Instance, MetricValue, Record
from engine.queries.register import SORTS, RegisterFilter, conditions, overdue_condition

BATCH = 500

HEADERS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "records": {
        "number": ("记录编号", "Number"),
        "description": ("改进输入描述", "Description"),
        "source": ("改进来源", "Source"),
        "reference": ("来源编号", "Reference"),
        "owner": ("负责人", "Owner"),
        "stage": ("阶段", "Stage"),
        "status": ("状态", "Status"),
        "raised_on": ("登记日期", "Raised on"),
        "closed_on": ("关闭日期", "Closed on"),
        "overdue": ("逾期", "Overdue"),
        "gap_status": ("差距状态", "Gap status"),
        "due_on": ("最早计划完成日期", "Earliest due date"),
        "process_owners": ("流程负责人", "Process owners"),
        "metric_codes": ("度量项", "Metrics"),
    },
    "measures": {
        "number": ("记录编号", "Number"),
        "title": ("措施", "Measure"),
        "responsible": ("责任人", "Responsible"),
        "due_date": ("计划完成日期", "Due date"),
        "metric_codes": ("相关指标", "Metrics addressed"),
        "priority": ("优先级", "Priority"),
        "rfc_number": ("RFC 编号", "RFC number"),
        "change_outcome": ("变更结果", "Change outcome"),
    },
    "readings": {
        "number": ("记录编号", "Number"),
        "code": ("指标", "Metric"),
        "value": ("数值", "Value"),
        "period": ("周期", "Period"),
        "recorded_by": ("填报人", "Recorded by"),
        "recorded_at": ("记录时间", "Recorded at"),
    },
}
SHEETS: Mapping[str, tuple[str, str]] = {
    "records": ("服务改进记录", "Records"),
    "measures": ("改进措施与变更", "Measures and RFCs"),
    "readings": ("度量数据", "Metric readings"),
}
YES_NO = (Label("是", "Yes"), Label("否", "No"))
STATES = (Label("进行中", "Open"), Label("已关闭", "Closed"))


@dataclass(frozen=True)
class Labels:
    """How codes show in the workbook: record stages and the schemas of the variables
    whose enum titles name their values."""

    stages: Mapping[str, Mapping[str, str]]
    variables: Mapping[str, Mapping[str, Any]]
    _shown: dict[Any, str] = field(default_factory=dict, compare=False, repr=False)

    def stage(self, key: str, lang: str) -> str:
        return Label.of_mapping(self.stages.get(key), key).of(lang)

    def of(self, variable: str, value: Any, lang: str) -> str:
        return scalar(value, self.variables.get(variable) or {}).of(lang)

    def column(self, variable: str, column: str, value: Any, lang: str) -> str:
        key = (variable, column, tuple(value) if isinstance(value, list) else value, lang)
        try:
            return self._shown[key]
        except (KeyError, TypeError):  # not seen yet, or not hashable (kept uncached)
            pass
        items = (self.variables.get(variable) or {}).get("items") or {}
        schema = (items.get("properties") or {}).get(column) or {}
        text = scalar(value, schema).of(lang)
        if len(self._shown) < 10_000:  # a register's codes and names repeat; its texts do not
            with contextlib.suppress(TypeError):
                self._shown[key] = text
        return text


def _minute(at: datetime | None) -> str:
    return at.isoformat()[:16].replace("T", " ") if at else ""


def register_xlsx(
    session: Session,
    chosen: RegisterFilter,
    now: datetime,
    labels: Labels,
    out: IO[bytes],
    locale: str = "zh-CN",
    actor_scope: ColumnElement[bool] | None = None,
) -> int:
    """Write the workbook of every record `chosen` finds (paging ignored) into `out`;
    the number of records written."""
    lang = "zh-CN" if locale.startswith("zh") else "en"
    where = [*conditions(chosen, now), *([actor_scope] if actor_scope is not None else [])]
    column = SORTS[chosen.sort]
    order = [column.desc() if chosen.descending else column.asc(), Record.id.desc()]
    book = StreamedWorkbook()
    sheets = {
        name: book.sheet(
            Label(*SHEETS[name]).of(lang), [Label(*h).of(lang) for h in HEADERS[name].values()]
        )
        for name in SHEETS
    }

    overdue = overdue_condition(now).label("overdue")
    rows = session.execute(
        select(
            Record.number,
            Record.description,
            Record.source,
            Record.reference,
            Record.raised_by,
            Record.status,
            Record.raised_on,
            Record.closed_on,
            overdue,
            Record.gap_status,
            Record.due_on,
            Record.people,
            Record.metric_codes,
            # only the measures of the data: decoding whole instance data is most of the cost
            Instance.data["measures"].label("measures"),
        )
        .join(Instance, Instance.id == Record.instance_id)
        .where(*where)
        .order_by(*order)
        .execution_options(yield_per=BATCH)
    )
    count = 0
    for r in rows:
        count += 1
        sheets["records"].append(
            [
                r.number,
                r.description or "",
                labels.of("source", r.source, lang),
                r.reference or "",
                r.raised_by or "",
                labels.stage(r.status, lang),
                STATES[1 if r.closed_on else 0].of(lang),
                _minute(r.raised_on),
                _minute(r.closed_on),
                YES_NO[0 if r.overdue else 1].of(lang),
                labels.column("gaps", "status", r.gap_status, lang) if r.gap_status else "",
                r.due_on or "",
                " ".join((r.people or "").split()),
                " ".join((r.metric_codes or "").split()),
            ]
        )
        for measure in r.measures if isinstance(r.measures, list) else []:
            if not isinstance(measure, Mapping):
                continue
            sheets["measures"].append(
                [
                    r.number,
                    *(
                        labels.column("measures", key, measure.get(key), lang)
                        for key in HEADERS["measures"]
                        if key != "number"
                    ),
                ]
            )
    readings = session.execute(
        select(
            Record.number,
            MetricValue.code,
            MetricValue.value,
            MetricValue.period,
            MetricValue.recorded_by,
            MetricValue.recorded_at,
        )
        .join(Record, Record.instance_id == MetricValue.instance_id)
        .where(*where)
        .order_by(*order, MetricValue.recorded_at, MetricValue.id)
        .execution_options(yield_per=BATCH * 4)
    )
    for number, code, value, period, by, at in readings:
        sheets["readings"].append([number, code, value, period, by or "", _minute(at)])
    book.save(out)
    return count
