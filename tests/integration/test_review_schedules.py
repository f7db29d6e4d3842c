"""Periodic review schedules: exactly one improvement per (schedule, period), however
many workers run the same pass at the same moment; the next period starts another."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.errors import Forbidden, ValidationFailed
from engine.persistence.database import Database
from engine.persistence.models import (
    HumanTask,
    Instance,
    Notification,
    Record,
    ReviewRun,
    User,
)
from engine.runtime import Runtime
from tests.helpers.actors import actors_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUARTERLY = "R/2027-01-01T00:00:00+08:00/P3M"
IN_Q1 = datetime(2027, 1, 15, 9, 0, tzinfo=SHANGHAI)
IN_Q2 = datetime(2027, 4, 2, 9, 0, tzinfo=SHANGHAI)
SCHEDULE = {
    "name": "季度服务改进评审",
    "period": QUARTERLY,
    "owner": "owner",
    "process_owners": ["po1", "po2"],
    "description": "",
    "active": True,
}


def _runtime(url_db: Database, now: datetime) -> Runtime:
    """A worker of its own: its own engine, pool and connections."""
    return Runtime(Database(url_db.url), clock=lambda: now)


def _both_workers_at(db: Database, now: datetime) -> list[list[int]]:
    workers = [_runtime(db, now) for _ in range(2)]
    barrier = threading.Barrier(2)
    started: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            started[i] = workers[i].worker_pass(now).reviews
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.db.dispose()
    assert errors == []
    return started


def test_two_workers_start_exactly_one_review_per_period(committed_db: Database) -> None:
    admin = actors_of(committed_db)["admin"]
    schedule_id = Runtime(committed_db).save_schedule(admin, None, SCHEDULE)

    first = _both_workers_at(committed_db, IN_Q1)
    assert sorted(len(s) for s in first) == [0, 1]
    again = _both_workers_at(committed_db, IN_Q1)
    assert again == [[], []]
    second = _both_workers_at(committed_db, IN_Q2)
    assert sorted(len(s) for s in second) == [0, 1]

    with committed_db.sessions() as session:
        runs = session.execute(
            select(ReviewRun.period_label, ReviewRun.instance_id)
            .where(ReviewRun.schedule_id == schedule_id)
            .order_by(ReviewRun.period_start)
        ).all()
        assert [label for label, _ in runs] == ["2027-Q1", "2027-Q2"]
        instance_ids = [i for _, i in runs]
        assert sorted(instance_ids) == sorted([*first[0], *first[1], *second[0], *second[1]])
        assert session.scalar(select(func.count()).select_from(Instance)) == 2
        for instance_id in instance_ids:
            instance = session.get(Instance, instance_id)
            assert instance is not None
            assert instance.started_by == "owner via schedule"
            assert instance.data["source"] == "periodic_review"
            assert instance.data["process_owners"] == ["po1", "po2"]
            record = session.scalar(select(Record).where(Record.instance_id == instance_id))
            assert record is not None
            assert record.source == "periodic_review"
        references = sorted(
            session.scalars(select(Record.reference).where(Record.instance_id.in_(instance_ids)))
        )
        assert references == ["季度服务改进评审 2027-Q1", "季度服务改进评审 2027-Q2"]
        # The owner registers the input: the task arrived, and they were told.
        task = session.scalar(
            select(HumanTask).where(
                HumanTask.instance_id == instance_ids[0], HumanTask.status == "open"
            )
        )
        assert task is not None
        assert task.bpmn_id == "register_input"
        told = set(
            session.scalars(
                select(Notification.recipient).where(
                    Notification.task_id == task.id, Notification.kind == "task_arrived"
                )
            )
        )
        assert "owner" in told


def test_a_deactivated_schedule_starts_nothing_and_before_its_first_period_neither(
    rt: Runtime, db: Database
) -> None:
    admin = actors_of(db)["admin"]
    schedule_id = rt.save_schedule(admin, None, SCHEDULE)
    assert rt.start_due_reviews(datetime(2026, 12, 31, 12, tzinfo=SHANGHAI)) == []
    rt.set_schedule_active(admin, schedule_id, False)
    assert rt.start_due_reviews(IN_Q1) == []
    rt.set_schedule_active(admin, schedule_id, True)
    assert len(rt.start_due_reviews(IN_Q1)) == 1


def test_schedules_are_for_administrators_and_checked(rt: Runtime, db: Database) -> None:
    actors = actors_of(db)
    with pytest.raises(Forbidden):
        rt.save_schedule(actors["owner"], None, SCHEDULE)
    with pytest.raises(ValidationFailed) as refused:
        rt.save_schedule(
            actors["admin"],
            None,
            {
                **SCHEDULE,
                "period": "R/2027-01-01/PT1H",
                "owner": "po1",
                "process_owners": ["nobody"],
            },
        )
    assert set(refused.value.details) == {"period", "owner", "process_owners"}
    named = rt.save_schedule(actors["admin"], None, {**SCHEDULE, "period": "quarterly"})
    row = rt.queries.notifications.schedule(actors["admin"], named)
    assert row.recurrence.startswith("R/")
    assert row.recurrence.endswith("/P3M")


def test_an_owner_who_may_no_longer_start_it_starts_nothing_and_the_schedule_says_why(
    rt: Runtime, db: Database
) -> None:
    actors = actors_of(db)
    schedule_id = rt.save_schedule(actors["admin"], None, SCHEDULE)
    with db.transaction() as session:
        owner = session.scalar(select(User).where(User.username == "owner"))
        assert owner is not None
        owner.roles = ["ProcessOwner"]
    assert rt.start_due_reviews(IN_Q1) == []
    row = rt.queries.notifications.schedule(actors["admin"], schedule_id)
    assert row.last_error
    assert row.runs == 0
    with db.transaction() as session:
        owner = session.scalar(select(User).where(User.username == "owner"))
        assert owner is not None
        owner.roles = ["ImprovementOwner"]
    assert len(rt.start_due_reviews(IN_Q1)) == 1
    row = rt.queries.notifications.schedule(actors["admin"], schedule_id)
    assert row.last_error is None
    assert (row.runs, row.last_period) == (1, "2027-Q1")
