"""verify_10k_events_s: seconds to recompute the hash chain of one instance with 10,000
events (DESIGN 6; goal < 1 s). The events are real ones: the payloads of a full cycle,
repeated, chained with the same hashing code the runtime uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from bench.common import (
    RuntimeDoor,
    backend_url,
    median,
    now,
    prepared_database,
    run_cycle,
)
from engine.audit import chain
from engine.clock import utcnow
from engine.persistence.models import Event, Instance
from engine.runtime import Runtime
from tests.helpers.actors import actors_of

EVENTS = 10_000


def measure(backend: str = "sqlite", events: int = EVENTS, repeats: int = 3) -> dict[str, Any]:
    db = prepared_database(backend_url(backend, "verify"))
    try:
        door = RuntimeDoor(Runtime(db), db, actors_of(db))
        run_cycle(door, 0)
        iid = door.last_instance
        assert iid is not None
        with db.transaction() as session:
            template = list(
                session.scalars(select(Event).where(Event.instance_id == iid).order_by(Event.seq))
            )
            session.execute(delete(Event).where(Event.instance_id == iid))
            prev = chain.GENESIS_HASH
            rows: list[dict[str, Any]] = []
            for seq in range(1, events + 1):
                model = template[(seq - 1) % len(template)]
                event = Event(
                    instance_id=iid,
                    seq=seq,
                    type=model.type,
                    at=utcnow(),
                    actor=model.actor,
                    task_id=model.task_id,
                    bpmn_id=model.bpmn_id,
                    payload=model.payload,
                    prev_hash=prev,
                    hash="",
                )
                event.hash = chain.chain_hash(prev, chain.event_body(event))
                prev = event.hash
                rows.append(
                    {
                        c: getattr(event, c)
                        for c in (
                            "instance_id",
                            "seq",
                            "type",
                            "at",
                            "actor",
                            "task_id",
                            "bpmn_id",
                            "payload",
                            "prev_hash",
                            "hash",
                        )
                    }
                )
            session.execute(insert(Event), rows)
            instance = session.get(Instance, iid)
            assert instance is not None
            instance.last_seq, instance.last_hash = events, prev
        timings = []
        for _ in range(repeats):
            with db.sessions() as session:
                started = now()
                result = chain.verify(session, iid)
                timings.append(now() - started)
            assert result.ok, result.message
        return {
            "seconds": median(timings),
            "details": {"backend": backend, "events": events, "seconds_each": timings},
        }
    finally:
        db.dispose()
