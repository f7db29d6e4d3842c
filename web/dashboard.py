"""The manager's dashboard (/dashboard) and the period report (周期报告, /reports/<quarter>,
the input to the management review): each figure a table that works without
JavaScript, with a chart drawn from the same numbers, each cell and bar linking to
the register filtered to it."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.documents.period_report import period_report_xlsx
from engine.queries.dashboard import (
    Dashboard,
    PeriodReport,
    current_quarter,
    parse_quarter,
    recent_quarters,
)
from web import backend, ui

bp = Blueprint("dashboard", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHART_JS = Path("vendor/chartjs/chart.umd.min.js")
GAP_STATUSES = ("achieved", "improving", "flat", "regressing")
OUTCOMES = ("implemented", "rejected", "failed")
VERDICTS = ("effective", "ineffective")


@dataclass
class Figure:
    """One figure: a table (rows of cells, each with an optional register link) and the
    chart drawn from it (`chart`: labels, datasets, and each bar's link)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[tuple[Any, str | None]]]
    chart: dict[str, Any] | None = None
    note: str = ""
    empty: bool = field(default=False)


def _register(**args: Any) -> str:
    return url_for("improvements.index", **{k: v for k, v in args.items() if v is not None})


def _chart(
    kind: str,
    labels: list[str],
    series: list[tuple[str, list[Any], Sequence[str | None]]],
    stacked: bool = False,
) -> dict[str, Any]:
    return {
        "type": kind,
        "stacked": stacked,
        "labels": labels,
        "datasets": [{"label": name, "data": data} for name, data, _links in series],
        "links": [links for _name, _data, links in series],
    }


def _stage_names() -> dict[str, str]:
    labels = backend().queries.register_labels()
    return {key: ui.pick(names, key) for key, names in labels.stages.items()}


def _gap_label(status: str) -> str:
    schema = ui.column_schema(ui.schema_of("gaps"), "status")
    return ui.enum_label("status", status, schema)


def _outcome_label(outcome: str) -> str:
    schema = ui.column_schema(ui.schema_of("measures"), "change_outcome")
    return ui.enum_label("change_outcome", outcome, schema)


def _verdict_label(verdict: str) -> str:
    label = ui.enum_label("result", verdict)
    if label != verdict:
        return label
    return {"effective": _("Effective"), "ineffective": _("Ineffective")}.get(verdict, verdict)


def _source_label(source: str) -> str:
    return ui.enum_label("source", source) if source else _("(none)")


def _per_quarter(
    name: str,
    title: str,
    quarters: list[str],
    keys: tuple[str, ...],
    label: Callable[[str], str],
    counts: Mapping[str, Mapping[str, int]],
    link: Callable[[str, str], str],
) -> Figure:
    """A count per key and quarter: a table of quarters and a stacked bar per key, each
    count linking to the register filtered to its key and quarter."""
    return Figure(
        name,
        title,
        [_("Quarter"), *(label(k) for k in keys)],
        [[(q, None), *((counts[q].get(k, 0), link(k, q)) for k in keys)] for q in quarters],
        _chart(
            "bar",
            quarters,
            [
                (label(k), [counts[q].get(k, 0) for q in quarters], [link(k, q) for q in quarters])
                for k in keys
            ],
            stacked=True,
        ),
        empty=not any(counts[q] for q in quarters),
    )


def _figures(board: Dashboard) -> list[Figure]:
    stages = _stage_names()
    figures: list[Figure] = []

    order = [key for key in stages if board.open_by_stage.get(key)]
    order += sorted(k for k in board.open_by_stage if k not in stages)
    stage_links = [_register(status="open", stage=key) for key in order]
    figures.append(
        Figure(
            "open_by_stage",
            _("Open improvements by stage"),
            [_("Stage"), _("Not yet closed")],
            [
                [(stages.get(k, k), None), (board.open_by_stage[k], link)]
                for k, link in zip(order, stage_links, strict=True)
            ],
            _chart(
                "bar",
                [stages.get(k, k) for k in order],
                [(_("Not yet closed"), [board.open_by_stage[k] for k in order], stage_links)],
            ),
            empty=not order,
        )
    )

    overdue_link = _register(overdue="1")
    figures.append(
        Figure(
            "overdue_tasks",
            _("Overdue tasks by role and person"),
            [_("Role"), _("Person"), _("Overdue tasks")],
            [
                [
                    (ui.role_label(r.role) if r.role else "—", None),
                    (r.person or _("(anyone in the role)"), None),
                    (r.count, overdue_link),
                ]
                for r in board.overdue_tasks
            ],
            _chart(
                "bar",
                [
                    f"{ui.role_label(r.role) if r.role else '—'} · {r.person or _('(anyone)')}"
                    for r in board.overdue_tasks
                ],
                [
                    (
                        _("Overdue tasks"),
                        [r.count for r in board.overdue_tasks],
                        [overdue_link] * len(board.overdue_tasks),
                    )
                ],
            ),
            note=_("%(count)s open improvements are overdue.", count=board.overdue_records),
            empty=not board.overdue_tasks,
        )
    )

    metrics = sorted(board.gap_status)
    figures.append(
        Figure(
            "gap_status",
            _("Gap status across metrics (open improvements)"),
            [_("Metric"), *(_gap_label(s) for s in GAP_STATUSES)],
            [
                [
                    (code, _register(metric=code, status="open")),
                    *(
                        (
                            board.gap_status[code].get(s, 0),
                            _register(gap=f"{code}:{s}", status="open"),
                        )
                        for s in GAP_STATUSES
                    ),
                ]
                for code in metrics
            ],
            _chart(
                "bar",
                metrics,
                [
                    (
                        _gap_label(s),
                        [board.gap_status[c].get(s, 0) for c in metrics],
                        [_register(gap=f"{c}:{s}", status="open") for c in metrics],
                    )
                    for s in GAP_STATUSES
                ],
                stacked=True,
            ),
            empty=not metrics,
        )
    )

    cycle = board.cycle_time
    figures.append(
        Figure(
            "cycle_time",
            _("Cycle time from start to close (days)"),
            [_("Quarter closed"), _("Closed"), _("Median"), _("90th percentile")],
            [
                [
                    (c.quarter, None),
                    (c.closed, _register(closed=c.quarter)),
                    (c.median_days if c.median_days is not None else "—", None),
                    (c.p90_days if c.p90_days is not None else "—", None),
                ]
                for c in cycle
            ],
            _chart(
                "line",
                [c.quarter for c in cycle],
                [
                    (
                        _("Median"),
                        [c.median_days for c in cycle],
                        [_register(closed=c.quarter) for c in cycle],
                    ),
                    (
                        _("90th percentile"),
                        [c.p90_days for c in cycle],
                        [_register(closed=c.quarter) for c in cycle],
                    ),
                ],
            ),
            empty=not any(c.closed for c in cycle),
        )
    )

    source_keys = sorted(board.sources, key=lambda s: (-board.sources[s], s))
    source_links = [_register(source=s or None) for s in source_keys]
    figures.append(
        Figure(
            "sources",
            _("Source mix"),
            [_("Source"), _("Improvements")],
            [
                [(_source_label(s), None), (board.sources[s], link)]
                for s, link in zip(source_keys, source_links, strict=True)
            ],
            _chart(
                "doughnut",
                [_source_label(s) for s in source_keys],
                [(_("Improvements"), [board.sources[s] for s in source_keys], source_links)],
            ),
            empty=not source_keys,
        )
    )

    figures.append(
        _per_quarter(
            "outcomes",
            _("Change outcomes per quarter"),
            board.quarters,
            OUTCOMES,
            _outcome_label,
            board.outcomes,
            lambda o, q: _register(outcome=o, outcomes_in=q),
        )
    )
    figures.append(
        _per_quarter(
            "verdicts",
            _("Verified effectiveness per quarter"),
            board.quarters,
            VERDICTS,
            _verdict_label,
            board.verdicts,
            lambda v, q: _register(verdict=v, verified_in=q),
        )
    )
    return figures


def _chart_js() -> str | None:
    """The vendored Chart.js, when the front-end build has put it in place."""
    static = Path(current_app.static_folder or "")
    return str(CHART_JS) if (static / CHART_JS).is_file() else None


@bp.get("/dashboard")
@login_required
def index() -> Any:
    board = backend().queries.dashboard(current_user.actor)
    return render_template(
        "dashboard/index.html",
        board=board,
        figures=_figures(board),
        chart_js=_chart_js(),
        report_quarter=current_quarter(board.as_of),
    )


@bp.get("/reports")
@login_required
def reports() -> Any:
    """The period picker's form lands here: on to the chosen quarter's report."""
    chosen = request.args.get("quarter") or ""
    if parse_quarter(chosen) is None:
        board = backend().queries.dashboard(current_user.actor)  # access first
        chosen = current_quarter(board.as_of)
    return redirect(url_for("dashboard.report", quarter=chosen))


def _report_sections(report: PeriodReport) -> dict[str, Any]:
    """The report's tables with labels, for the page and the workbook alike."""
    stages = _stage_names()
    q = report.quarter

    def by_source(
        found: dict[str, dict[str, int]], link: str
    ) -> tuple[list[str], list[list[tuple[Any, str | None]]]]:
        statuses = [k for k in stages if any(k in v for v in found.values())]
        statuses += sorted({k for v in found.values() for k in v} - set(statuses))
        rows: list[list[tuple[Any, str | None]]] = []
        for source in sorted(found):
            counts = found[source]
            rows.append(
                [
                    (_source_label(source), None),
                    *(
                        (counts.get(s, 0), _register(source=source or None, stage=s, **{link: q}))
                        for s in statuses
                    ),
                    (sum(counts.values()), _register(source=source or None, **{link: q})),
                ]
            )
        return [_("Source"), *(stages.get(s, s) for s in statuses), _("Total")], rows

    opened_columns, opened_rows = by_source(report.opened, "opened")
    closed_columns, closed_rows = by_source(report.closed, "closed")
    metrics = sorted(report.gaps_closed)
    return {
        "opened": (_("Improvements opened"), opened_columns, opened_rows),
        "closed": (_("Improvements closed"), closed_columns, closed_rows),
        "gaps": (
            _("Gaps of the improvements closed"),
            [_("Metric"), *(_gap_label(s) for s in GAP_STATUSES)],
            [
                [
                    (code, None),
                    *(
                        (report.gaps_closed[code].get(s, 0), _register(gap=f"{code}:{s}", closed=q))
                        for s in GAP_STATUSES
                    ),
                ]
                for code in metrics
            ],
        ),
        "outcomes": (
            _("Measures and change (RFC) outcomes"),
            [_("Outcome"), _("Changes")],
            [
                [
                    (_outcome_label(o), None),
                    (report.outcomes.get(o, 0), _register(outcome=o, outcomes_in=q)),
                ]
                for o in OUTCOMES
            ],
        ),
        "verdicts": (
            _("Verified effectiveness"),
            [_("Verdict"), _("Improvements")],
            [
                [
                    (_verdict_label(v), None),
                    (report.verdicts.get(v, 0), _register(verdict=v, verified_in=q)),
                ]
                for v in VERDICTS
            ],
        ),
        "cycle": (
            _("Cycle time from start to close (days)"),
            [_("Closed"), _("Median"), _("90th percentile")],
            [
                [
                    (report.cycle_time.closed, _register(closed=q)),
                    (
                        report.cycle_time.median_days
                        if report.cycle_time.median_days is not None
                        else "—",
                        None,
                    ),
                    (
                        report.cycle_time.p90_days
                        if report.cycle_time.p90_days is not None
                        else "—",
                        None,
                    ),
                ]
            ],
        ),
        "overdue": (
            _("Overdue work"),
            [_("Role"), _("Person"), _("Overdue tasks")],
            [
                [
                    (ui.role_label(r.role) if r.role else "—", None),
                    (r.person or _("(anyone in the role)"), None),
                    (r.count, _register(overdue="1")),
                ]
                for r in report.overdue_tasks
            ],
        ),
    }


@bp.get("/reports/<quarter>")
@login_required
def report(quarter: str) -> Any:
    found = backend().queries.period_report(current_user.actor, quarter)
    sections = _report_sections(found)
    if request.args.get("format") == "xlsx":
        out = io.BytesIO()
        period_report_xlsx(
            out,
            _("Period report %(quarter)s", quarter=found.quarter),
            [
                (title, columns, [[v for v, _link in row] for row in rows])
                for title, columns, rows in sections.values()
            ],
            found.as_of,
        )
        response = Response(out.getvalue(), mimetype=XLSX)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="period-report-{found.quarter}.xlsx"'
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    return render_template(
        "dashboard/report.html",
        report=found,
        sections=sections,
        quarters=list(reversed(recent_quarters(found.as_of.date(), 12))),
    )
