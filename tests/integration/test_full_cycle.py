"""The whole procedure end to end through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.access import Actor
from engine.audit import chain
from engine.persistence.database import Database
from engine.persistence.instances import WorkflowCache
from engine.persistence.models import Event, HumanTask, MetricValue, Record
from engine.runtime import Runtime
from engine.workflow import parsing
from tests.cycle import Driver
from tests.helpers.doors import RuntimeDoor


class FreshProcessDoor(RuntimeDoor):
    """Every command as the first one of a newly started worker: no workflow in memory
    and no definition parsed yet."""

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        parsing.forget_parsed()
        super().complete(username, task_id, data)

    def fire_timers(self, now: datetime) -> None:
        parsing.forget_parsed()
        super().fire_timers(now)


@pytest.fixture(params=["warm", "cold", "fresh"])
def any_door(request: pytest.FixtureRequest, db: Database, actors: dict[str, Actor]) -> RuntimeDoor:
    """warm: the workflow stays in memory between commands; cold: nothing is cached and
    the state is snapshotted every 7 events, so most commands rebuild the workflow from
    the snapshot plus the events since (as another web worker would); fresh: cold, and
    the definitions are parsed anew for every command (a restarted worker)."""
    if request.param == "warm":
        return RuntimeDoor(Runtime(db), db, actors)
    cold = Runtime(db, cache=WorkflowCache(capacity=0), snapshot_every=7)
    if request.param == "cold":
        return RuntimeDoor(cold, db, actors)
    return FreshProcessDoor(cold, db, actors)


def test_full_cycle_through_service_layer(any_door: RuntimeDoor, db: Database) -> None:
    result = Driver(any_door).run()
    iid = result.instance_id

    by_metric = {g["metric"]: g for g in result.gaps_first_round}
    assert by_metric["AVAIL"]["gap"] == pytest.approx(0.6)
    assert by_metric["AVAIL"]["progress_pct"] == pytest.approx(33.3333, abs=1e-3)
    assert by_metric["AVAIL"]["status"] == "improving"
    assert by_metric["MTTR"]["gap"] == pytest.approx(1.5)
    assert by_metric["MTTR"]["progress_pct"] == pytest.approx(25.0)
    assert by_metric["MTTR"]["priority"] == 1
    assert by_metric["AVAIL"]["priority"] == 2
    assert result.review_comment_seen == "请补充回退方案"

    final = result.final
    assert final["status"] == "completed"
    assert final["open_tasks"] == []
    data = final["data"]
    outcomes = {m["title"]: m["change_outcome"] for m in data["measures"]}
    assert outcomes == {"核心库主备自动切换": "implemented", "故障处理知识库": "rejected"}
    assert all(m["rfc_number"].startswith("RFC-") for m in data["measures"])
    assert {g["metric"]: g["status"] for g in data["gaps"]} == {
        "AVAIL": "achieved",
        "MTTR": "achieved",
    }
    # Per-person data stays in the collection, never leaks into the instance.
    leaked = {
        "values",
        "owner_report",
        "proposal",
        "metric_owner",
        "process_owner",
        "measure",
        "change_result",
    } & set(data)
    assert not leaked, leaked

    with db.sessions() as session:
        record = session.scalar(select(Record).where(Record.instance_id == iid))
        assert record is not None
        assert record.status == "closed"
        assert record.number.startswith("SI-")
        assert [r["decision"] for r in record.fields["reviews"]] == ["reject", "approve"]
        assert [m["outcome"] for m in record.fields["monitoring"]] == ["continue", "achieved"]
        types = [
            e.type
            for e in session.scalars(
                select(Event).where(Event.instance_id == iid).order_by(Event.seq)
            )
        ]
        assert types[0] == "instance_started"
        assert types[-1] == "instance_completed"
        assert "timer_fired" in types
        assert types.count("service_completed") >= 6  # 3 gap runs, 2 RFC numbers, outcomes
        assert chain.verify(session, iid).ok
        # three rounds of readings, two metrics each
        assert (
            session.scalar(
                select(func.count()).select_from(MetricValue).where(MetricValue.instance_id == iid)
            )
            == 6
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(HumanTask)
                .where(HumanTask.instance_id == iid, HumanTask.status == "open")
            )
            == 0
        )
