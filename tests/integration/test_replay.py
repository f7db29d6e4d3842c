"""Replay rebuilds a full cycle step by step, and reports changed definitions.

The tests read, or tamper with, one finished improvement per backend: it is run once
for the module and committed, and each test sees it through `db`, whose outer
transaction is rolled back afterwards, so what one test alters no other sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import pytest
from sqlalchemy import delete, select, update

from engine.access import Actor
from engine.audit import chain, replay
from engine.persistence.database import Database
from engine.persistence.models import (
    Event,
    HumanTask,
    Instance,
    MetricValue,
    ProcessDefinition,
    Record,
)
from engine.runtime import Runtime
from engine.workflow import definitions
from procedure import PACK
from tests.cycle import Driver
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.databases import BACKENDS, delete_committed_rows, shared_database
from tests.helpers.doors import RuntimeDoor


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Module-wide here, so the tests of one backend run together around one cycle."""
    return str(request.param)


@pytest.fixture(scope="module")
def finished_cycle(backend: str, database_urls: dict[str, str | None]) -> Iterator[int]:
    """The full cycle, run and committed once per backend for this module; set up
    before any test's `db` (module scope first), and deleted when the module is done."""
    base = shared_database(backend, database_urls)
    try:
        yield Driver(RuntimeDoor(Runtime(base), base, actors_of(base))).run().instance_id
    finally:
        delete_committed_rows(base)


@pytest.fixture
def finished(finished_cycle: int, db: Database) -> int:
    """The finished improvement, for a test working in `db` (changes rolled back)."""
    return finished_cycle


def test_replay_of_full_cycle_matches_at_every_step(db: Database, finished: int) -> None:
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
        assert result.ok, result.mismatch and result.mismatch.as_dict()
        assert result.steps == session.get(Instance, finished).last_seq
        final = result.state
        assert final is not None
        assert final.type == "instance_completed"
        assert "close_improvement" in final.completed_elements
        assert final.active_elements == []
        assert final.data == session.get(Instance, finished).data


def test_the_path_taken_is_the_flows_the_run_went_along(db: Database, finished: int) -> None:
    with db.sessions() as session:
        final = replay.replay(session, PACK, finished).state
    assert final is not None
    taken = set(final.taken_flows)
    assert {"gw_review>gw_plan", "gw_review>prepare_changes"} <= taken  # rejected, then approved
    assert {"gw_monitor>wait_recheck", "gw_monitor>record_verification"} <= taken
    # Both ends of the 'adjust' loop completed, but the run never went that way.
    assert "gw_monitor>gw_plan" not in taken
    assert {"gw_monitor", "gw_plan"} <= set(final.completed_elements)


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
        result = replay.replay(session, PACK, finished, step=review)
        assert result.ok
        assert result.step == review
        state = result.state
        assert state is not None
        assert state.bpmn_id == "review_plan"
        assert state.data["decision"] == "reject"
        assert "decision" in state.changed
        assert "comment" in state.changed
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
        result = replay.replay(session, PACK, finished)
        assert not result.ok
        assert result.mismatch is not None
        assert result.mismatch.seq == 1
        assert "content hash" in result.mismatch.message


def test_replay_reports_a_diverging_definition(db: Database, finished: int) -> None:
    """Rewrite the definition together with its hash and the recorded start (a forger
    who knows the scheme): the replay itself diverges where the changed gateway acts."""

    with db.transaction() as session:
        definition_id = session.get(Instance, finished).definition_id
        row = session.get(ProcessDefinition, definition_id)
        changed = row.bpmn_xml.replace("decision == 'reject'", "decision == 'approve'")
        digest = definitions.version_hash(changed.encode("utf-8"), row.forms)
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
        result = replay.replay(session, PACK, finished)
        assert not result.ok
        assert result.mismatch is not None
        assert result.mismatch.seq == reject
        assert result.mismatch.element == "review_plan"


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
        result = replay.replay(session, PACK, finished)
        assert not result.ok
        assert result.mismatch is not None
        assert result.mismatch.seq == seq
        assert result.mismatch.element == "monitor_progress"


def test_replay_through_the_api(app, client, finished: int) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "auditor")
    body = client.get(f"/api/v1/instances/{finished}/replay?step=3", headers=headers).json
    assert body["ok"] is True
    assert body["step"] == 3
    assert body["mismatch"] is None
    assert body["steps"] > 50
    assert body["state"]["completed_elements"][:2] == ["start", "register_input"]
    assert (
        client.get(f"/api/v1/instances/{finished}/replay", headers=headers).json["step"]
        == body["steps"]
    )


def _first_event(session, finished: int, bpmn_id: str, type_: str = "task_completed") -> Event:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(Event)
        .where(Event.instance_id == finished, Event.bpmn_id == bpmn_id, Event.type == type_)
        .order_by(Event.seq)
    )


def test_a_data_mismatch_names_the_variable_and_both_values(db: Database, finished: int) -> None:
    with db.transaction() as session:
        event = _first_event(session, finished, "analyse_gaps")
        event.payload = {**event.payload, "data": {**event.payload["data"], "impact": "无影响"}}
        seq = event.seq
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.seq == seq
    assert result.mismatch.element == "analyse_gaps"
    assert "impact" in result.mismatch.message
    assert result.mismatch.recorded == "结账期间业务中断，影响客户满意度"
    assert result.mismatch.replayed == "无影响"


def test_an_altered_reading_shows_in_the_gap_results(db: Database, finished: int) -> None:
    with db.transaction() as session:
        event = _first_event(session, finished, "collect_data")
        data = event.payload["data"]
        event.payload = {
            **event.payload,
            "data": {**data, "values": [{**data["values"][0], "value": 90.0}]},
        }
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
        gaps = _first_event(session, finished, "compute_gaps", "service_completed")
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.seq == gaps.seq
    assert result.mismatch.element == "compute_gaps"
    assert result.mismatch.recorded == gaps.payload["result"]
    assert {g["metric"]: g["current"] for g in result.mismatch.replayed}["AVAIL"] == 90.0


def test_history_written_later_does_not_make_a_faithful_record_look_forged(
    db: Database, finished: int
) -> None:
    """Another transaction may commit readings stamped before this instance's gap
    analysis after it read the history: the recorded reads, not today's table, count."""
    from datetime import datetime

    with db.transaction() as session:
        for value in (90.0, 95.0, 99.0):
            session.add(
                MetricValue(
                    code="AVAIL",
                    value=value,
                    period="2020-01",
                    recorded_at=datetime(2020, 1, 1, tzinfo=UTC),
                )
            )
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
    assert result.ok, result.mismatch and result.mismatch.as_dict()


@pytest.mark.parametrize(
    ("table", "change", "element"),
    [
        (Instance, {"data": {"summary": "伪造"}}, "instance"),
        (Instance, {"status": "running"}, "instance"),
        (Record, {"source": "internal_audit"}, "process_record"),
        (Record, {"fields": {"reviews": [], "monitoring": []}}, "process_record"),
        (HumanTask, {"completed_by": "po2"}, "human_task"),
        (MetricValue, None, "metric_value"),
    ],
)
def test_replay_catches_a_tampered_projection(  # type: ignore[no-untyped-def]
    db: Database, finished: int, table, change, element: str
) -> None:
    with db.transaction() as session:
        if table is MetricValue:
            victim = session.scalar(
                select(MetricValue.id).where(MetricValue.instance_id == finished)
            )
            session.execute(delete(MetricValue).where(MetricValue.id == victim))
        elif table is HumanTask:
            victim = session.scalar(
                select(HumanTask.id).where(
                    HumanTask.instance_id == finished, HumanTask.bpmn_id == "review_plan"
                )
            )
            session.execute(update(HumanTask).where(HumanTask.id == victim).values(**change))
        elif table is Instance:
            if "data" in change:
                data = session.get(Instance, finished).data
                change = {"data": {**data, **change["data"]}}
            session.execute(update(Instance).where(Instance.id == finished).values(**change))
        else:
            session.execute(update(Record).where(Record.instance_id == finished).values(**change))
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
        assert chain.verify(session, finished).ok  # the chain alone cannot see this
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.element == element, result.mismatch.as_dict()


def test_replay_catches_a_repinned_called_process(db: Database, finished: int) -> None:
    with db.transaction() as session:
        instance = session.get(Instance, finished)
        other = session.scalar(
            select(ProcessDefinition.id).where(
                ProcessDefinition.process_id == "service_improvement"
            )
        )
        instance.called_definitions = {"change_management": other}
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
    # The replay runs on what the start recorded; the row that says otherwise is caught.
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.element == "instance"
    assert "pinned definitions" in result.mismatch.message
    assert result.mismatch.recorded["called"] == {"change_management": other}


def test_a_stored_value_equal_only_to_python_is_still_a_mismatch(
    db: Database, finished: int
) -> None:
    """1.0 stored for 1 (or True for 1) compares equal in Python but not as JSON."""
    with db.transaction() as session:
        data = {**session.get(Instance, finished).data, "next_cycle": 0}  # the record: false
        # (a Core update: the ORM itself sees 0 == False and would write nothing)
        session.execute(update(Instance).where(Instance.id == finished).values(data=data))
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.element == "instance"
    assert "data" in result.mismatch.message


def test_replay_catches_an_open_task_handed_to_another_role(
    db: Database, rt: Runtime, actors: dict[str, Actor]
) -> None:
    iid = rt.start_instance(actors["owner"]).instance_id
    with db.transaction() as session:
        session.execute(
            update(HumanTask)
            .where(HumanTask.instance_id == iid, HumanTask.status == "open")
            .values(role="ProcessOwner")
        )
    with db.sessions() as session:
        result = replay.replay(session, PACK, iid)
    assert not result.ok
    assert result.mismatch is not None
    assert result.mismatch.element == "human_task"
    assert result.mismatch.recorded["role"] == "ProcessOwner"


def test_a_service_that_reads_other_history_than_recorded_is_a_mismatch(
    db: Database, finished: int
) -> None:
    """The replay hands a service the reads the record holds, in order, each for the
    metric and length asked: a record whose reads were edited does not replay."""
    with db.transaction() as session:
        event = session.scalar(
            select(Event)
            .where(Event.instance_id == finished, Event.bpmn_id == "compute_gaps")
            .order_by(Event.seq)
        )
        reads = event.payload["reads"]["metric_history"]
        assert [r[0] for r in reads] == ["AVAIL", "MTTR"]
        assert all(r[1] == 5 for r in reads)
        swapped = [reads[1], reads[0]]
        event.payload = {**event.payload, "reads": {"metric_history": swapped}}
        seq = event.seq
    with db.sessions() as session:
        result = replay.replay(session, PACK, finished)
    assert not result.ok
    assert result.mismatch is not None
    assert "no metric history of AVAIL" in result.mismatch.message
    assert result.mismatch.seq == seq - 1  # the command whose service read it
