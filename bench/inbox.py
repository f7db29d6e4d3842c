"""inbox_p95_ms_10k and inbox_growth: engine.queries.instances.inbox for one user (a session
opened and closed per call, as a request does) with 10,000 open instances in the
database, and its ratio to the same query with 100 open instances.

Starting 10,000 instances through the service layer would take long, so the database
holds a few real instances (one full cycle, a few just started) and the rest are
bulk-inserted projection rows (instance + human_task, SQLAlchemy core): copies of the
real full cycle's rows, each synthetic instance cut at one of the cycle's 27 stages
(the tasks completed by then, plus the ones open then). No workflow state or events
are copied; the inbox does not read them. Statistics are refreshed (ANALYZE) after the
bulk insert, as autovacuum / a maintenance job would.

The two sizes live in two databases side by side (on PostgreSQL the second is
`<name>_2`) and are timed in alternating rounds: a burst of noise on this small
machine then falls on both, not on one of the two numbers the ratio divides.
"""

from __future__ import annotations

import uuid
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
from engine.persistence.models import HumanTask, Instance
from engine.queries import instances
from engine.runtime import Runtime
from tests.helpers.actors import actors_of

USERS = ("owner", "po1")  # the first is the headline
REAL_STARTED = 3
NAMESPACE = uuid.UUID("0c1d5f0e-3a7b-4b43-9d3e-4b7e3f1a2c55")


class Template:
    """One real full cycle's instance row and its human_task rows, by stage."""

    def __init__(self, db: Database, instance_id: int) -> None:
        with db.sessions() as session:
            inst = session.execute(
                select(Instance.__table__).where(Instance.id == instance_id)
            ).one()
            rows = session.execute(
                select(HumanTask.__table__).where(HumanTask.instance_id == instance_id)
            ).all()
        self.instance = dict(inst._mapping)
        self.tasks = [dict(r._mapping) for r in rows]
        done = sorted(
            (t for t in self.tasks if t["completed_at"] is not None),
            key=lambda t: t["completed_at"],
        )
        self.stages: list[list[dict[str, Any]]] = []
        for k, row in enumerate(done):
            cut = row["completed_at"]
            stage = []
            for t in done[:k]:
                stage.append(t)
            for t in self.tasks:
                completed = t["completed_at"]
                if t["created_at"] <= cut and (completed is None or completed >= cut):
                    stage.append(
                        {
                            **t,
                            "status": "open",
                            "completed_at": None,
                            "completed_by": None,
                            "claimed_by": None,
                        }
                    )
            self.stages.append(stage)

    def rows_for(
        self, instance_id: int, serial: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        stage = self.stages[serial % len(self.stages)]
        shift = timedelta(seconds=serial)
        instance = {
            **self.instance,
            "id": instance_id,
            "status": "running",
            "completed_at": None,
            "next_timer_at": None,
            "parent_instance_id": None,
            "started_at": self.instance["started_at"] + shift,
            "updated_at": self.instance["updated_at"] + shift,
        }
        tasks = []
        for n, t in enumerate(stage):
            tasks.append(
                {
                    **t,
                    "id": str(uuid.uuid5(NAMESPACE, f"{instance_id}:{n}")),
                    "instance_id": instance_id,
                    "created_at": t["created_at"] + shift,
                    "due_at": t["due_at"] + shift if t["due_at"] else None,
                    "completed_at": t["completed_at"] + shift if t["completed_at"] else None,
                }
            )
        return instance, tasks


def _open_instances(db: Database) -> int:
    with db.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Instance).where(Instance.status == "running")
            )
            or 0
        )


def fill(db: Database, template: Template, open_target: int, batch: int = 1000) -> dict[str, float]:
    """Bulk-insert synthetic open instances until `open_target` are open."""
    missing = open_target - _open_instances(db)
    started = now()
    with db.sessions() as session:
        next_id = int(session.scalar(select(func.max(Instance.id))) or 0) + 1
    serial = next_id
    while missing > 0:
        instances, tasks = [], []
        for _ in range(min(batch, missing)):
            inst, rows = template.rows_for(serial, serial)
            instances.append(inst)
            tasks += rows
            serial += 1
            missing -= 1
        with db.engine.begin() as connection:
            connection.execute(insert(Instance), instances)
            connection.execute(insert(HumanTask), tasks)
    with db.engine.begin() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('instance', 'id'), "
                    "(SELECT max(id) FROM instance))"
                )
            )
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE instance, human_task")
            )
        else:
            connection.execute(text("ANALYZE"))
            connection.commit()
    return {"insert_s": now() - started}


def counts(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        return {
            "open_instances": _open_instances(db),
            "instances": int(session.scalar(select(func.count()).select_from(Instance)) or 0),
            "human_task_rows": int(
                session.scalar(select(func.count()).select_from(HumanTask)) or 0
            ),
            "open_human_tasks": int(
                session.scalar(
                    select(func.count()).select_from(HumanTask).where(HumanTask.status == "open")
                )
                or 0
            ),
        }


def time_inbox(db: Database, actor: Any, queries_n: int) -> tuple[list[float], int]:
    samples = []
    rows = 0
    for _ in range(queries_n):
        started = now()
        with db.sessions() as session:
            rows = len(instances.inbox(session, actor))
        samples.append(now() - started)
    return samples, rows


ROUNDS = 10


def measure_backend(
    backend: str, small: int = 100, large: int = 10_000, queries_n: int = 200
) -> dict[str, Any]:
    """Two databases, one with `small` and one with `large` open instances, timed in
    alternating rounds so that the machine's noise falls on both alike."""
    dbs = {
        "small": prepared_database(backend_url(backend, "inbox")),
        "large": prepared_database(backend_url(backend, "inbox", second=True)),
    }
    try:
        out: dict[str, Any] = {"backend": backend}
        actors: dict[str, Any] = {}
        for label, target in (("small", small), ("large", large)):
            db = dbs[label]
            actors = actors_of(db)
            rt = Runtime(db)
            result = run_cycle(RuntimeDoor(rt, db, actors))
            for _ in range(REAL_STARTED):
                rt.start_instance(actors["owner"])
            filled = fill(db, Template(db, result.instance_id), target)
            out[label] = {**counts(db), "bulk_insert_s": filled["insert_s"], "users": {}}
            for user in USERS:  # warm-up: connections, statement caches
                time_inbox(db, actors[user], 10)
        for user in USERS:
            samples: dict[str, list[float]] = {"small": [], "large": []}
            rows: dict[str, int] = {}
            for _ in range(ROUNDS):
                for label in ("small", "large"):
                    taken, rows[label] = time_inbox(dbs[label], actors[user], queries_n // ROUNDS)
                    samples[label] += taken
            for label in ("small", "large"):
                out[label]["users"][user] = {
                    "p95_ms": ms(p95(samples[label])),
                    "median_ms": ms(median(samples[label])),
                    "rows_returned": rows[label],
                }
        head = USERS[0]
        out["p95_ms_large"] = out["large"]["users"][head]["p95_ms"]
        out["growth"] = ratio(
            out["large"]["users"][head]["p95_ms"], out["small"]["users"][head]["p95_ms"]
        )
        out["user"] = head
        return out
    finally:
        for db in dbs.values():
            db.dispose()
