"""register_p95_ms_10k, register_json_p95_ms_10k, their growth, and register_xlsx_10k_s:
the register page (服务改进记录台账, first page, default filters) and the register JSON
(GET /api/v1/improvements, first page) as `manager` sees them through the Flask app,
with 10,000 records in the database, each against the same request with 100 records;
and the register workbook of all 10,000 records (GET /improvements?format=xlsx's
engine function, written to a temporary file), in seconds, with its peak Python
memory beside the peak for 1,000 records (flat memory: the two stay alike).

Running 10,000 cycles would take hours, so the database holds a few real records (one
full cycle, a few just started) and the rest are bulk-inserted rows (instance,
process_record, metric_value, SQLAlchemy core) copied from the real cycle's: varied
in number, year, source, stage and open or closed. No workflow state or events are
copied; the register reads none. Statistics are refreshed (ANALYZE) after the insert.

The two sizes live in two databases side by side, timed in alternating rounds (see
bench.inbox) so that noise on this small machine falls on both.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.common import (
    RuntimeDoor,
    backend_url,
    median,
    ms,
    now,
    p95,
    prepared_database,
    ratio,
    run_cycle,
)
from engine.persistence.database import Database
from engine.persistence.models import Instance, MetricValue, Record
from engine.queries.register import RegisterFilter
from engine.runtime import Runtime
from tests.helpers.actors import actors_of

REAL_STARTED = 2
ROUNDS = 10
SOURCES = (
    "management_review",
    "internal_audit",
    "customer_feedback",
    "service_report",
    "satisfaction_survey",
    "periodic_review",
)
OPEN_STAGES = ("registered", "collecting_data", "in_review", "implementing", "monitoring")


class Template:
    """The real full cycle's instance, record and readings rows."""

    def __init__(self, db: Database, instance_id: int) -> None:
        with db.sessions() as session:
            self.instance = dict(
                session.execute(select(Instance.__table__).where(Instance.id == instance_id))
                .one()
                ._mapping
            )
            self.record = dict(
                session.execute(select(Record.__table__).where(Record.instance_id == instance_id))
                .one()
                ._mapping
            )
            self.readings = [
                dict(r._mapping)
                for r in session.execute(
                    select(MetricValue.__table__).where(MetricValue.instance_id == instance_id)
                )
            ]

    def rows_for(
        self, instance_id: int, serial: int
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        year = 2024 + serial % 3
        shift = timedelta(minutes=serial)
        raised = self.record["raised_on"].replace(year=year) - timedelta(days=300) + shift
        closed = serial % 3 == 0
        instance = {
            **self.instance,
            "id": instance_id,
            "status": "completed" if closed else "running",
            "started_at": raised,
            "updated_at": raised,
            "completed_at": raised + timedelta(days=40) if closed else None,
            "next_timer_at": None,
            "parent_instance_id": None,
        }
        record = {
            **self.record,
            "id": instance_id,
            "instance_id": instance_id,
            "number": f"SI-{year}-{serial:05d}",
            "source": SOURCES[serial % len(SOURCES)],
            "reference": f"REF-{serial:05d}",
            "status": "closed" if closed else OPEN_STAGES[serial % len(OPEN_STAGES)],
            "raised_on": raised,
            "closed_on": raised + timedelta(days=40) if closed else None,
        }
        readings = [
            {
                **r,
                "id": None,
                "instance_id": instance_id,
                "recorded_at": raised + (r["recorded_at"] - self.record["raised_on"]),
            }
            for r in self.readings
        ]
        for r in readings:
            r.pop("id")
        return instance, record, readings


def _records(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Record)) or 0)


def fill(db: Database, template: Template, target: int, batch: int = 1000) -> float:
    """Bulk-insert synthetic records until `target` are kept; seconds taken."""
    started = now()
    missing = target - _records(db)
    with db.sessions() as session:
        next_id = int(session.scalar(select(func.max(Instance.id))) or 0) + 1
    serial = next_id
    while missing > 0:
        instances, records, readings = [], [], []
        for _ in range(min(batch, missing)):
            inst, rec, values = template.rows_for(serial, serial)
            instances.append(inst)
            records.append(rec)
            readings += values
            serial += 1
            missing -= 1
        with db.engine.begin() as connection:
            connection.execute(insert(Instance), instances)
            connection.execute(insert(Record), records)
            connection.execute(insert(MetricValue), readings)
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('instance', 'id'), "
                    "(SELECT max(id) FROM instance))"
                )
            )
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('process_record', 'id'), "
                    "(SELECT max(id) FROM process_record))"
                )
            )
            connection.commit()
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE instance, process_record, metric_value")
            )
        else:
            connection.execute(text("ANALYZE"))
            connection.commit()
    return now() - started


class Site:
    """The Flask app on one database, `manager` signed in on the page and the API."""

    def __init__(self, db: Database) -> None:
        from web import create_app

        self.app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "bench-secret",
                "DATABASE": db,
                "DATABASE_URL": db.url,
                "WTF_CSRF_ENABLED": False,
                "EMBEDDED_WORKER": False,
            }
        )
        self.page = self.app.test_client()
        signed_in = self.page.post("/login", data={"username": "manager", "password": "demo"})
        assert signed_in.status_code == 302, signed_in.status_code
        api = self.app.test_client()
        token = api.post(
            "/api/v1/auth/token", json={"username": "manager", "password": "demo"}
        ).json["token"]
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}

    def register_page(self) -> int:
        response = self.page.get("/improvements")
        assert response.status_code == 200, response.status_code
        return len(response.data)

    def register_json(self) -> int:
        response = self.api.get("/api/v1/improvements", headers=self.headers)
        assert response.status_code == 200, response.status_code
        return len(response.json)


def _timed(call: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = now()
        call()
        samples.append(now() - started)
    return samples


def compare_sizes(
    out: dict[str, Any], calls: dict[str, str], sites: dict[str, Any], queries_n: int
) -> None:
    """Time each call (kind → the sites' method) on the small and the large site in
    interleaved rounds, so that both see the same machine; write each kind's p95 and
    median per size, its p95 at the large size and its growth into `out`."""
    samples: dict[str, dict[str, list[float]]] = {
        kind: {"small": [], "large": []} for kind in calls
    }
    for _ in range(ROUNDS):
        for label in ("small", "large"):
            for kind, method in calls.items():
                samples[kind][label] += _timed(
                    getattr(sites[label], method), max(1, queries_n // ROUNDS)
                )
    for kind in calls:
        for label in ("small", "large"):
            out[label][kind] = {
                "p95_ms": ms(p95(samples[kind][label])),
                "median_ms": ms(median(samples[kind][label])),
            }
        out[f"{kind}_p95_ms_large"] = out["large"][kind]["p95_ms"]
        out[f"{kind}_growth"] = ratio(out["large"][kind]["p95_ms"], out["small"][kind]["p95_ms"])


def xlsx(site: Site, traced: bool = False) -> dict[str, float]:
    """The register workbook of every record; seconds, and with `traced` the peak
    Python memory (MB) while writing it."""
    runtime = site.app.extensions["csi"].runtime
    manager = actors_of(runtime.db)["manager"]
    with tempfile.TemporaryFile() as out:
        if traced:
            tracemalloc.start()
        started = now()
        written = runtime.queries.register_xlsx(manager, RegisterFilter(), out)
        seconds = now() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        if traced:
            tracemalloc.stop()
        size = out.tell()
    return {"seconds": seconds, "records": written, "bytes": size, "peak_mb": peak / 2**20}


def measure_backend(
    backend: str, small: int = 100, large: int = 10_000, queries_n: int = 60, memory: int = 1_000
) -> dict[str, Any]:
    dbs = {
        "small": prepared_database(backend_url(backend, "register")),
        "large": prepared_database(backend_url(backend, "register", second=True)),
    }
    try:
        out: dict[str, Any] = {"backend": backend}
        sites: dict[str, Site] = {}
        for label, target in (("small", small), ("large", large)):
            db = dbs[label]
            actors = actors_of(db)
            runtime = Runtime(db)
            result = run_cycle(RuntimeDoor(runtime, db, actors))
            for _ in range(REAL_STARTED):
                runtime.start_instance(actors["owner"])
            out[label] = {"bulk_insert_s": fill(db, Template(db, result.instance_id), target)}
            out[label]["records"] = _records(db)
            sites[label] = Site(db)
            _timed(sites[label].register_page, 5)  # warm-up: connections, caches
            _timed(sites[label].register_json, 5)
        compare_sizes(out, {"page": "register_page", "json": "register_json"}, sites, queries_n)
        out["xlsx_large"] = xlsx(sites["large"])
        # flat memory: the peak while writing all records against the peak for `memory`
        out["xlsx_memory"] = {
            "peak_mb_all": xlsx(sites["large"], traced=True)["peak_mb"],
            "records_all": out["large"]["records"],
        }
        if memory < large:
            sized = prepared_database(backend_url(backend, "register-memory"))
            try:
                actors = actors_of(sized)
                result = run_cycle(RuntimeDoor(Runtime(sized), sized, actors))
                fill(sized, Template(sized, result.instance_id), memory)
                out["xlsx_memory"]["peak_mb_few"] = xlsx(Site(sized), traced=True)["peak_mb"]
                out["xlsx_memory"]["records_few"] = _records(sized)
            finally:
                sized.dispose()
        return out
    finally:
        for db in dbs.values():
            db.dispose()
