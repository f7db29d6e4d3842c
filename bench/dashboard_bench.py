"""dashboard_p95_ms_10k and dashboard_growth: the manager's dashboard (GET /dashboard,
every figure) through the Flask app with 10,000 improvements in the database, against
the same page with 100; and the period report of the current quarter beside it.

The records are made as in bench.register_bench (one real full cycle, a few started,
the rest bulk-inserted rows copied from the real cycle's), with the dashboard's
columns varied the way commands would have kept them: the stage, the source, each
metric's gap status, the calls' outcomes and the quarter they were recorded in, the
verdict and its quarter, the quarter closed and the days it took. Every open record
gets an open task of its own (a quarter of them past due), so the overdue figure
reads a task table as large as the register. ANALYZE after the insert.

The two sizes live in two databases side by side, timed in alternating rounds (see
bench.inbox) so that noise on this small machine falls on both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text

from bench.common import (
    RuntimeDoor,
    backend_url,
    prepared_database,
    run_cycle,
)
from bench.register_bench import (
    REAL_STARTED,
    Site,
    Template,
    _records,
    _timed,
    compare_sizes,
    fill,
)
from engine.persistence.database import Database
from engine.persistence.models import HumanTask, Record
from engine.projections.records import quarter_of
from engine.runtime import Runtime
from tests.helpers.actors import actors_of

ROUNDS = 10
GAPS = ("achieved", "improving", "flat", "regressing")
METRICS = ("AVAIL", "MTTR", "FCR", "CSAT", "SLA")
OUTCOMES = (" implemented ", " implemented rejected ", " failed implemented ", " rejected ")
ROLES = ("ImprovementOwner", "ImprovementManager", "ProcessOwner")


class DashboardTemplate(Template):
    """The real cycle's rows with the dashboard's columns varied per record."""

    def rows_for(
        self, instance_id: int, serial: int
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        instance, record, readings = super().rows_for(instance_id, serial)
        raised = record["raised_on"]
        closed = record["closed_on"]
        days = 10 + serial % 120
        if closed is not None:
            closed = raised + timedelta(days=days)
            instance["completed_at"] = closed
        record.update(
            closed_on=closed,
            closed_quarter=quarter_of(closed.date()) if closed else None,
            cycle_days=days if closed else None,
            gaps=" ".join(
                [
                    "",
                    *(
                        f"{m}:{GAPS[(serial + i) % 4]}"
                        for i, m in enumerate(METRICS[: serial % 3 + 1])
                    ),
                    "",
                ]
            ),
            outcomes=OUTCOMES[serial % len(OUTCOMES)] if serial % 5 else None,
            outcomes_quarter=quarter_of((raised + timedelta(days=20)).date())
            if serial % 5
            else None,
            verdict=("effective" if serial % 4 else "ineffective") if closed else None,
            verdict_quarter=quarter_of(closed.date()) if closed else None,
        )
        return instance, record, readings


def add_tasks(db: Database, template_task: dict[str, Any], batch: int = 1000) -> int:
    """An open task for every open record without one; a quarter of them overdue."""
    now = datetime.now(UTC)
    with db.sessions() as session:
        having = set(
            session.scalars(select(HumanTask.instance_id).where(HumanTask.status == "open"))
        )
        open_ids = [
            i
            for i in session.scalars(select(Record.instance_id).where(Record.closed_on.is_(None)))
            if i not in having
        ]
    rows = []
    for n, instance_id in enumerate(open_ids):
        rows.append(
            {
                **template_task,
                "id": str(uuid.uuid4()),
                "instance_id": instance_id,
                "role": ROLES[n % len(ROLES)],
                "assignee": f"po{n % 7}" if n % 2 else None,
                "claimed_by": None,
                "status": "open",
                "created_at": now - timedelta(days=10),
                "due_at": now - timedelta(days=n % 9) if n % 4 == 0 else now + timedelta(days=3),
            }
        )
    for start in range(0, len(rows), batch):
        with db.engine.begin() as connection:
            connection.execute(insert(HumanTask), rows[start : start + batch])
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE human_task, process_record")
            )
        else:
            connection.execute(text("ANALYZE"))
            connection.commit()
    return len(rows)


def _open_task(db: Database) -> dict[str, Any]:
    with db.sessions() as session:
        return dict(
            session.execute(select(HumanTask.__table__).where(HumanTask.status == "open").limit(1))
            .one()
            ._mapping
        )


class DashboardSite(Site):
    def dashboard(self) -> int:
        response = self.page.get("/dashboard")
        assert response.status_code == 200, response.status_code
        return len(response.data)

    def report(self) -> int:
        response = self.page.get(f"/reports/{quarter_of(datetime.now(UTC).date())}")
        assert response.status_code == 200, response.status_code
        return len(response.data)


def measure_backend(
    backend: str, small: int = 100, large: int = 10_000, queries_n: int = 60
) -> dict[str, Any]:
    dbs = {
        "small": prepared_database(backend_url(backend, "dashboard")),
        "large": prepared_database(backend_url(backend, "dashboard", second=True)),
    }
    try:
        out: dict[str, Any] = {"backend": backend}
        sites: dict[str, DashboardSite] = {}
        for label, target in (("small", small), ("large", large)):
            db = dbs[label]
            actors = actors_of(db)
            runtime = Runtime(db)
            result = run_cycle(RuntimeDoor(runtime, db, actors))
            for _ in range(REAL_STARTED):
                runtime.start_instance(actors["owner"])
            template = DashboardTemplate(db, result.instance_id)
            out[label] = {"bulk_insert_s": fill(db, template, target)}
            out[label]["open_tasks_added"] = add_tasks(db, _open_task(db))
            out[label]["records"] = _records(db)
            sites[label] = DashboardSite(db)
            _timed(sites[label].dashboard, 5)  # warm-up: connections, caches
            _timed(sites[label].report, 5)
        compare_sizes(out, {"page": "dashboard", "report": "report"}, sites, queries_n)
        return out
    finally:
        for db in dbs.values():
            db.dispose()
