"""The dashboard and the period report (周期报告) against improvements with known
outcomes, made by the real engine at chosen moments: three full cycles closed in the
previous and the current quarter (known cycle days, change outcomes and verdicts), and
three improvements still open at known stages, two of them with overdue tasks. Every
figure's values are checked, on the engine's read side, on the page, in the JSON and
in the workbook; each figure's links open the register filtered to what it counts."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.persistence.database import Database
from engine.persistence.models import Record
from engine.projections.records import quarter_of
from engine.queries.dashboard import parse_quarter, percentile, quarter_bounds
from engine.runtime import Runtime
from tests.cycle import REGISTER, Driver
from tests.helpers import html
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.doors import RuntimeDoor
from tests.helpers.pages import client_for

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SetClock:
    """The engine's clock, set by the test to the moment each command happens at."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def previous_quarter(name: str) -> str:
    parsed = parse_quarter(name)
    assert parsed is not None
    year, quarter = parsed
    return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"


@dataclass
class Known:
    this: str  # the current quarter
    last: str  # the one before
    numbers: dict[str, str]  # name → record number
    opened: dict[str, int]  # quarter → improvements started in it


@pytest.fixture
def known(db: Database) -> Known:
    now = datetime.now(UTC)
    this = quarter_of(now.date())
    last = previous_quarter(this)
    last_start = quarter_bounds(*parse_quarter(last))[0]  # type: ignore[misc]
    this_start = quarter_bounds(*parse_quarter(this))[0]  # type: ignore[misc]
    clock = SetClock(now)
    rt = Runtime(db, clock=clock)
    door = RuntimeDoor(rt, db, actors_of(db))
    numbers: dict[str, str] = {}

    def cycle(name: str, start: datetime, days: int, verdict: str) -> None:
        clock.at = start

        def later() -> None:
            clock.at = start + timedelta(days=days)

        driver = Driver(door, before_timer=later)
        result = driver.run(verdict=verdict, verified_on=clock.at.date().isoformat())
        numbers[name] = number_of(db, result.instance_id)

    # closed last quarter after 20 and 60 days, effective; this quarter after 10, not
    cycle("a", last_start + timedelta(days=5), 20, "effective")
    cycle("b", last_start + timedelta(days=6), 60, "effective")
    cycle("c", this_start, 10, "ineffective")

    driver = Driver(door)
    clock.at = now - timedelta(days=10)  # its review was due 2 days after: overdue
    review = door.start("owner")
    driver.to_first_review(review)
    numbers["review"] = number_of(db, review)
    clock.at = now  # due in days to come
    audit = door.start("owner")
    driver.do("owner", audit, "register_input", {**REGISTER, "source": "internal_audit"})
    numbers["audit"] = number_of(db, audit)
    clock.at = now - timedelta(days=30)  # nobody registered the input: overdue
    numbers["idle"] = number_of(db, door.start("owner"))
    # the three open ones fall in this quarter or, early in one, the last
    started = [last_start, last_start, this_start, now - timedelta(days=10), now]
    started.append(now - timedelta(days=30))
    opened: dict[str, int] = {}
    for at in started:
        opened[quarter_of(at.date())] = opened.get(quarter_of(at.date()), 0) + 1
    return Known(this, last, numbers, opened)


def number_of(db: Database, instance_id: int) -> str:
    with db.sessions() as session:
        record = session.query(Record).filter_by(instance_id=instance_id).one()
        return record.number


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile({}, 50) is None
    assert percentile({20: 1, 60: 1}, 50) == 20
    assert percentile({20: 1, 60: 1}, 90) == 60
    assert percentile({1: 9, 100: 1}, 90) == 1
    assert percentile({1: 8, 100: 2}, 90) == 100


def test_every_figure_of_the_dashboard(app: Any, known: Known) -> None:
    board = app.extensions["csi"].runtime.queries.dashboard(actors_of_app(app)["manager"])
    assert board.open_by_stage == {"in_review": 1, "defining_metrics": 1, "registered": 1}
    overdue = {(t.role, t.person): t.count for t in board.overdue_tasks}
    assert overdue == {("ImprovementManager", None): 1, ("ImprovementOwner", None): 1}
    assert board.overdue_records == 2
    # the improvement in review: both metrics a third and a quarter of the way
    assert board.gap_status == {"AVAIL": {"improving": 1}, "MTTR": {"improving": 1}}
    cycles = {c.quarter: (c.closed, c.median_days, c.p90_days) for c in board.cycle_time}
    assert cycles[known.last] == (2, 20, 60)
    assert cycles[known.this] == (1, 10, 10)
    assert {q: v for q, v in cycles.items() if v[0]} == {
        known.last: (2, 20, 60),
        known.this: (1, 10, 10),
    }
    # each cycle: one change implemented, one the CAB rejected, recorded before its
    # wait (in the quarter it started in)
    assert board.outcomes[known.last] == {"implemented": 2, "rejected": 2}
    assert board.outcomes[known.this] == {"implemented": 1, "rejected": 1}
    assert board.sources == {"customer_feedback": 4, "internal_audit": 1, "": 1}
    assert board.verdicts[known.last] == {"effective": 2}
    assert board.verdicts[known.this] == {"ineffective": 1}
    assert sum(sum(v.values()) for v in board.verdicts.values()) == 3


def actors_of_app(app: Any) -> Any:
    return actors_of(app.config["DATABASE"])


Cell = tuple[str, str | None]


def table(doc: Any, key: str) -> dict[str, list[Cell]]:
    """A figure's table: each row's heading → its other cells (text and link)."""
    rows: dict[str, list[Cell]] = {}
    for row in html.select(doc, f'table[data-figure-table="{key}"] tbody tr'):
        head, *cells = row.getchildren()
        rows[html.text_of(head)] = [
            (
                html.text_of(c),
                ((c.cssselect("a") or [None])[0] is not None and c.cssselect("a")[0].get("href"))
                or None,
            )
            for c in cells
        ]
    return rows


def numbers_at(client: Any, link: str | None) -> set[str]:
    """The record numbers the register lists at `link`."""
    assert link is not None
    assert link.startswith("/improvements?"), link
    doc = html.page(client.get(link))
    return set(re.findall(r"SI-\d{4}-\d{4}", " ".join(html.texts(doc, "table tbody tr"))))


def test_the_page_shows_each_figure_and_links_to_the_register(app: Any, known: Known) -> None:
    client = client_for(app, "manager")
    doc = html.page(client.get("/dashboard"))
    n = known.numbers
    for key in (
        "open_by_stage",
        "overdue_tasks",
        "gap_status",
        "cycle_time",
        "outcomes",
        "sources",
        "verdicts",
    ):
        canvas = html.select_one(doc, f'section[data-figure="{key}"] canvas')
        chart = json.loads(canvas.get("data-chart"))
        assert chart["labels"], key
        assert len(chart["links"]) == len(chart["datasets"]), key

    stages = table(doc, "open_by_stage")
    assert {name: cells[0][0] for name, cells in stages.items()} == {
        "审核中": "1",
        "定义度量项": "1",
        "已登记": "1",
    } or {name: cells[0][0] for name, cells in stages.items()} == {
        "In review": "1",
        "Defining metrics": "1",
        "Registered": "1",
    }
    assert sorted(numbers_at(client, cells[0][1]).pop() for cells in stages.values()) == sorted(
        [n["review"], n["audit"], n["idle"]]
    )

    gaps = table(doc, "gap_status")
    assert [c for c, _ in gaps["AVAIL"]] == ["0", "1", "0", "0"]
    assert [c for c, _ in gaps["MTTR"]] == ["0", "1", "0", "0"]
    assert numbers_at(client, gaps["AVAIL"][1][1]) == {n["review"]}
    assert numbers_at(client, gaps["AVAIL"][0][1]) == set()

    cycle = table(doc, "cycle_time")
    assert [c for c, _ in cycle[known.last]] == ["2", "20", "60"]
    assert [c for c, _ in cycle[known.this]] == ["1", "10", "10"]
    assert numbers_at(client, cycle[known.last][0][1]) == {n["a"], n["b"]}

    outcomes = table(doc, "outcomes")
    assert [c for c, _ in outcomes[known.last]] == ["2", "2", "0"]
    assert [c for c, _ in outcomes[known.this]] == ["1", "1", "0"]
    assert numbers_at(client, outcomes[known.this][1][1]) == {n["c"]}

    sources = table(doc, "sources")
    counts = sorted(cells[0][0] for cells in sources.values())
    assert counts == ["1", "1", "4"]
    feedback = next(cells for cells in sources.values() if cells[0][0] == "4")
    assert numbers_at(client, feedback[0][1]) == {n["a"], n["b"], n["c"], n["review"]}

    verdicts = table(doc, "verdicts")
    assert [c for c, _ in verdicts[known.last]] == ["2", "0"]
    assert [c for c, _ in verdicts[known.this]] == ["0", "1"]
    assert numbers_at(client, verdicts[known.this][1][1]) == {n["c"]}

    overdue = html.select(doc, 'table[data-figure-table="overdue_tasks"] tbody tr')
    assert len(overdue) == 2
    link = overdue[0].cssselect("a")[0].get("href")
    assert numbers_at(client, link) == {n["review"], n["idle"]}


def test_the_dashboard_json(app: Any, client: Any, known: Known) -> None:
    figures = client.get("/api/v1/dashboard", headers=bearer(client, "manager")).get_json()
    assert figures["open_by_stage"] == {"in_review": 1, "defining_metrics": 1, "registered": 1}
    assert figures["sources"]["customer_feedback"] == 4
    assert figures["outcomes"][known.last] == {"implemented": 2, "rejected": 2}


def test_the_period_report_and_its_workbook(app: Any, known: Known) -> None:
    client = client_for(app, "manager")
    n = known.numbers
    doc = html.page(client.get(f"/reports/{known.last}"))
    totals = json.loads(html.select_one(doc, "[data-totals]").get("data-totals"))
    # outcomes: 2 implemented + 2 rejected; gaps: both metrics of the two closed
    assert totals == {
        "opened": known.opened[known.last],
        "closed": 2,
        "gaps_achieved": 4,
        "calls": 4,
        "verified": 2,
    }
    opened = table(doc, "opened")
    feedback = next(cells for name, cells in opened.items() if name.startswith("客户反馈"))
    assert {n["a"], n["b"]} <= numbers_at(client, feedback[-1][1])
    assert sum(int(cells[-1][0]) for cells in opened.values()) == known.opened[known.last]
    closed = table(doc, "closed")
    (closed_cells,) = closed.values()
    assert closed_cells[-1][0] == "2"
    assert numbers_at(client, closed_cells[-1][1]) == {n["a"], n["b"]}
    gaps = table(doc, "gaps")
    assert {code: [c for c, _ in cells] for code, cells in gaps.items()} == {
        "AVAIL": ["2", "0", "0", "0"],
        "MTTR": ["2", "0", "0", "0"],
    }
    assert numbers_at(client, gaps["MTTR"][0][1]) == {n["a"], n["b"]}
    assert [c for c, _ in table(doc, "cycle")["2"]] == ["20", "60"]
    outcome_counts = [cells[0][0] for cells in table(doc, "outcomes").values()]
    assert outcome_counts == ["2", "2", "0"]
    assert [cells[0][0] for cells in table(doc, "verdicts").values()] == ["2", "0"]
    assert len(html.select(doc, 'table[data-figure-table="overdue"] tbody tr')) == 2
    assert html.select(doc, "button[data-print]")
    assert [o.get("value") for o in html.select(doc, ".period-picker option[selected]")] == [
        known.last
    ]

    this = html.page(client.get(f"/reports/{known.this}"))
    this_totals = json.loads(html.select_one(this, "[data-totals]").get("data-totals"))
    assert this_totals == {
        "opened": known.opened[known.this],
        "closed": 1,
        "gaps_achieved": 2,
        "calls": 2,
        "verified": 1,
    }

    workbook = client.get(f"/reports/{known.last}?format=xlsx")
    assert workbook.status_code == 200
    assert workbook.mimetype == XLSX
    sheet = load_workbook(io.BytesIO(workbook.data)).active
    assert sheet is not None
    rows = [[c for c in row if c is not None] for row in sheet.iter_rows(values_only=True)]
    assert known.last in str(rows[0][0])
    assert [r[1:] for r in rows if r[:1] in (["AVAIL"], ["MTTR"])] == [[2, 0, 0, 0]] * 2
    outcome_rows = [r for r in rows if r[:1] in (["已实施"], ["已驳回"], ["失败"])]
    assert [r[1] for r in outcome_rows] == [2, 2, 0]
    assert [2, 20, 60] in rows

    picked = client.get(f"/reports?quarter={known.this}")
    assert picked.status_code == 302
    assert picked.headers["Location"].endswith(f"/reports/{known.this}")


def test_who_sees_the_dashboard(app: Any, client: Any) -> None:
    for username in ("manager", "owner", "auditor", "admin"):
        signed_in = client_for(app, username)
        assert signed_in.get("/dashboard").status_code == 200, username
        assert signed_in.get("/reports/2026-Q4").status_code == 200, username
    for username in ("po1", "cab", "impl"):
        signed_in = client_for(app, username)
        assert signed_in.get("/dashboard").status_code == 403, username
        assert signed_in.get("/reports/2026-Q4").status_code == 403, username
        assert b'href="/dashboard"' not in signed_in.get("/").data
    assert client.get("/api/v1/dashboard", headers=bearer(client, "po1")).status_code == 403
    assert client_for(app, "manager").get("/reports/2026-Q5").status_code == 404


def test_the_manager_lands_on_the_dashboard(app: Any) -> None:
    from tests.helpers.pages import login

    landed = login(app.test_client(), "manager", "demo")
    assert landed.headers["Location"].endswith("/dashboard")
    for username in ("owner", "po1"):
        assert login(app.test_client(), username, "demo").headers["Location"] == "/"
