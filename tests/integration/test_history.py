"""The hash chain: untouched instances verify, every kind of tampering is named by seq,
and concurrent commands never produce a gap or a twin."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.audit import chain
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask, Instance
from engine.runtime import Runtime
from tests.cycle import REGISTER, Driver
from tests.helpers.actors import actors_of
from tests.helpers.databases import POSTGRES
from tests.helpers.doors import RuntimeDoor


def started_with_events(rt: Runtime, actors: dict[str, Actor]) -> int:
    """An instance with five events: started, claimed, completed, two claims."""
    iid = rt.start_instance(actors["owner"]).instance_id
    with rt.db.sessions() as session:
        task = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
    rt.complete_task(task, actors["owner"], REGISTER)
    with rt.db.sessions() as session:
        rows = session.scalars(
            select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")
        ).all()
    assert len(rows) == 2, rows
    for row in rows:
        rt.claim_task(row.id, actors[row.assignee or ""])
    return iid


def edit_payload(session: Session, iid: int) -> int:
    event = session.scalar(select(Event).where(Event.instance_id == iid, Event.seq == 3))
    event.payload = {**event.payload, "data": {**event.payload["data"], "reference": "forged"}}
    return 3


def delete_event(session: Session, iid: int) -> int:
    session.execute(delete(Event).where(Event.instance_id == iid, Event.seq == 2))
    return 2


def swap_events(session: Session, iid: int) -> int:
    a = session.scalar(select(Event).where(Event.instance_id == iid, Event.seq == 4))
    b = session.scalar(select(Event).where(Event.instance_id == iid, Event.seq == 5))
    a.seq = -1
    session.flush()
    b.seq = 4
    session.flush()
    a.seq = 5
    return 4


def edit_hash(session: Session, iid: int) -> int:
    session.execute(
        update(Event).where(Event.instance_id == iid, Event.seq == 5).values(hash="f" * 64)
    )
    return 5


def edit_actor_and_rehash(session: Session, iid: int) -> int:
    """A forger who recomputes the altered event's own hash still breaks the next link."""
    event = session.scalar(select(Event).where(Event.instance_id == iid, Event.seq == 3))
    event.actor = "mallory"
    event.hash = chain.chain_hash(event.prev_hash, chain.event_body(event))
    return 4


def drop_last_event(session: Session, iid: int) -> int:
    last = session.scalar(select(func.max(Event.seq)).where(Event.instance_id == iid))
    session.execute(delete(Event).where(Event.instance_id == iid, Event.seq == last))
    return last


@pytest.mark.parametrize(
    "tamper",
    [edit_payload, delete_event, swap_events, edit_hash, edit_actor_and_rehash, drop_last_event],
)
def test_tampering_is_named_by_seq(
    rt: Runtime, db: Database, actors: dict[str, Actor], tamper: Callable[[Session, int], int]
) -> None:
    iid = started_with_events(rt, actors)
    untouched = started_with_events(rt, actors)
    with db.sessions() as session:
        assert chain.verify(session, iid).ok
    with db.transaction() as session:
        expected = tamper(session, iid)
    with db.sessions() as session:
        result = chain.verify(session, iid)
        assert not result.ok
        assert result.broken_at == expected, result.message
        assert chain.verify(session, untouched).ok


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_concurrent_commands_keep_every_chain_whole(committed_db: Database) -> None:
    """Threads complete different tasks of the same and of different instances at once."""
    rt = Runtime(committed_db)
    actors = actors_of(committed_db)
    instances = [rt.start_instance(actors["owner"]).instance_id for _ in range(4)]
    with committed_db.sessions() as session:
        for iid in instances:
            task = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
            rt.complete_task(task, actors["owner"], REGISTER)
        work = [
            (row.id, row.assignee)
            for row in session.scalars(
                select(HumanTask).where(
                    HumanTask.instance_id.in_(instances), HumanTask.status == "open"
                )
            )
        ]
    assert len(work) == 8  # two propose_metrics per instance, same instance for each pair
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def complete(task_id: str, username: str) -> None:
        runtime = Runtime(committed_db)  # as a separate web worker would
        barrier.wait()
        try:
            runtime.complete_task(
                task_id, actors[username], {"metrics": [{"name": "可用率", "method": "监控"}]}
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=complete, args=item) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with committed_db.sessions() as session:
        for iid in instances:
            seqs = list(
                session.scalars(
                    select(Event.seq).where(Event.instance_id == iid).order_by(Event.seq)
                )
            )
            assert seqs == list(range(1, len(seqs) + 1))
            assert session.get(Instance, iid).last_seq == len(seqs)
            assert chain.verify(session, iid).ok
            open_tasks = session.scalars(
                select(HumanTask.bpmn_id).where(
                    HumanTask.instance_id == iid, HumanTask.status == "open"
                )
            ).all()
            assert open_tasks == ["define_metrics"]


def test_anchors_kept_outside_catch_a_rewritten_or_truncated_chain(
    db: Database, rt: Runtime, actors: dict[str, Actor]
) -> None:
    """A forger who knows the scheme can rewrite events and hash them anew, or drop the
    newest ones and wind the instance back: the chain then verifies, the anchors don't."""
    from engine.audit import anchors
    from engine.audit.chain import chain_hash, event_body

    rewritten = Driver(RuntimeDoor(rt, db, actors)).run().instance_id
    truncated = Driver(RuntimeDoor(rt, db, actors)).run().instance_id
    untouched = rt.start_instance(actors["owner"]).instance_id
    with db.sessions() as session:
        document = json.loads(json.dumps(anchors.take(session)))
        assert anchors.check(session, document) == []
    with db.transaction() as session:
        events = list(
            session.scalars(select(Event).where(Event.instance_id == rewritten).order_by(Event.seq))
        )
        events[4].actor = "mallory"
        prev = events[3].hash
        for event in events[4:]:
            event.prev_hash = prev
            event.hash = prev = chain_hash(prev, event_body(event))
        session.get(Instance, rewritten).last_hash = prev
        last = session.scalars(
            select(Event).where(Event.instance_id == truncated).order_by(Event.seq.desc())
        ).first()
        instance = session.get(Instance, truncated)
        instance.last_seq, instance.last_hash = last.seq - 1, last.prev_hash
        session.delete(last)
    with db.sessions() as session:
        assert chain.verify(session, rewritten).ok
        assert chain.verify(session, truncated).ok
        problems = {p.instance_id: p.message for p in anchors.check(session, document)}
    assert set(problems) == {rewritten, truncated}
    assert "rewritten" in problems[rewritten]
    assert "gone" in problems[truncated]
    assert untouched not in problems
