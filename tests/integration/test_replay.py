"""Replay rebuilds a full cycle step by step, and reports changed definitions."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from engine import replay
from engine.runtime import Actor, Runtime
from engine.store import Database, Event, Instance, ProcessDefinition
from tests.cycle import Driver
from tests.integration.test_full_cycle import RuntimeDoor


@pytest.fixture
def finished(rt: Runtime, db: Database, actors: dict[str, Actor]) -> int:
    return Driver(RuntimeDoor(rt, db, actors)).run().instance_id


def test_replay_of_full_cycle_matches_at_every_step(db: Database, finished: int) -> None:
    with db.sessions() as session:
        result = replay.replay(session, finished)
        assert result.ok, result.mismatch and result.mismatch.as_dict()
        assert result.steps == session.get(Instance, finished).last_seq
        final = result.state
        assert final is not None and final.type == "instance_completed"
        assert "close_improvement" in final.completed_elements and final.active_elements == []
        assert final.data == session.get(Instance, finished).data


def test_state_at_an_intermediate_step(db: Database, finished: int) -> None:
    with db.sessions() as session:
        review = session.scalar(
            select(Event.seq)
            .where(
                Event.instance_id == finished,
                Event.bpmn_id == "review_plan",
                Event.type == "task_completed",
            )
            .order_by(Event.seq)
        )
        result = replay.replay(session, finished, step=review)
        assert result.ok and result.step == review
        state = result.state
        assert state is not None and state.bpmn_id == "review_plan"
        assert state.data["decision"] == "reject"
        assert "decision" in state.changed and "comment" in state.changed
        assert [t["bpmn_id"] for t in state.open_tasks] == ["record_improvement"]
        assert "implement_measures" not in state.completed_elements


def test_replay_reports_a_changed_definition(db: Database, finished: int) -> None:
    with db.transaction() as session:
        definition_id = session.get(Instance, finished).definition_id
        xml = session.get(ProcessDefinition, definition_id).bpmn_xml
        session.execute(
            update(ProcessDefinition)
            .where(ProcessDefinition.id == definition_id)
            .values(bpmn_xml=xml.replace("decision == 'reject'", "decision == 'approve'"))
        )
    with db.sessions() as session:
        result = replay.replay(session, finished)
        assert not result.ok
        assert result.mismatch is not None and result.mismatch.seq == 1
        assert "content hash" in result.mismatch.message


def test_replay_reports_a_diverging_definition(db: Database, finished: int) -> None:
    """Rewrite the definition together with its hash and the recorded start (a forger
    who knows the scheme): the replay itself diverges where the changed gateway acts."""
    from engine import specs

    with db.transaction() as session:
        definition_id = session.get(Instance, finished).definition_id
        xml = session.get(ProcessDefinition, definition_id).bpmn_xml
        changed = xml.replace("decision == 'reject'", "decision == 'approve'")
        digest = specs.content_hash(changed.encode("utf-8"))
        session.execute(
            update(ProcessDefinition)
            .where(ProcessDefinition.id == definition_id)
            .values(bpmn_xml=changed, content_hash=digest)
        )
        started = session.scalar(select(Event).where(Event.instance_id == finished, Event.seq == 1))
        started.payload = {
            **started.payload,
            "definition": {**started.payload["definition"], "hash": digest},
        }
        reject = session.scalar(
            select(Event.seq)
            .where(
                Event.instance_id == finished,
                Event.bpmn_id == "review_plan",
                Event.type == "task_completed",
            )
            .order_by(Event.seq)
        )
    with db.sessions() as session:
        result = replay.replay(session, finished)
        assert not result.ok and result.mismatch is not None
        assert result.mismatch.seq == reject and result.mismatch.element == "review_plan"


def test_replay_reports_altered_task_data(db: Database, finished: int) -> None:
    with db.transaction() as session:
        event = session.scalar(
            select(Event)
            .where(
                Event.instance_id == finished,
                Event.bpmn_id == "monitor_progress",
                Event.type == "task_completed",
            )
            .order_by(Event.seq)
        )
        event.payload = {**event.payload, "data": {**event.payload["data"], "outcome": "achieved"}}
        seq = event.seq
    with db.sessions() as session:
        result = replay.replay(session, finished)
        assert not result.ok and result.mismatch is not None
        assert result.mismatch.seq == seq and result.mismatch.element == "monitor_progress"


def test_replay_through_the_api(app, client, finished: int) -> None:  # type: ignore[no-untyped-def]
    token = client.post(
        "/api/v1/auth/token", json={"username": "auditor", "password": "demo"}
    ).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get(f"/api/v1/instances/{finished}/replay?step=3", headers=headers).json
    assert body["ok"] is True and body["step"] == 3 and body["mismatch"] is None
    assert body["steps"] > 50
    assert body["state"]["completed_elements"][:2] == ["start", "register_input"]
    assert (
        client.get(f"/api/v1/instances/{finished}/replay", headers=headers).json["step"]
        == body["steps"]
    )
