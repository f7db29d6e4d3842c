"""The read side of notifications and review schedules: the header's task counts,
a person's notices, delivery failures and schedules for administrators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from engine.access import Actor, Policy
from engine.errors import NotFound
from engine.persistence.database import Database
from engine.persistence.models import (
    HumanTask,
    Notification,
    Record,
    ReviewRun,
    ReviewSchedule,
)

PAGE = 100


@dataclass(frozen=True)
class NoticeRow:
    id: int
    kind: str
    recipient: str
    link: str
    created_at: datetime
    read_at: datetime | None
    task_id: str | None
    task_name: str | None
    task_bpmn_id: str | None
    task_label: str | None
    task_status: str | None
    due_at: datetime | None
    record_number: str | None
    email_status: str
    email_attempts: int
    email_error: str | None
    webhook_status: str
    webhook_attempts: int
    webhook_error: str | None


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    name: str
    process_id: str
    period: str
    recurrence: str
    owner: str
    process_owners: tuple[str, ...]
    description: str
    active: bool
    last_error: str | None
    last_period: str | None
    last_instance_id: int | None
    runs: int


_NOTICE = (
    select(
        Notification.id,
        Notification.kind,
        Notification.recipient,
        Notification.link,
        Notification.created_at,
        Notification.read_at,
        Notification.task_id,
        HumanTask.name,
        HumanTask.bpmn_id,
        HumanTask.label,
        HumanTask.status,
        HumanTask.due_at,
        Record.number,
        Notification.email_status,
        Notification.email_attempts,
        Notification.email_error,
        Notification.webhook_status,
        Notification.webhook_attempts,
        Notification.webhook_error,
    )
    .outerjoin(HumanTask, HumanTask.id == Notification.task_id)
    .outerjoin(Record, Record.instance_id == Notification.instance_id)
)


class NotificationQueries:
    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def task_counts(self, actor: Actor, now: datetime) -> tuple[int, int]:
        """(open, overdue) tasks in the actor's inbox: one indexed count."""
        if not actor.roles:
            return 0, 0
        statement = (
            select(
                func.count(),
                func.coalesce(func.sum(case((HumanTask.due_at < now, 1), else_=0)), 0),
            )
            .select_from(HumanTask)
            .where(
                HumanTask.status == "open",
                HumanTask.role.in_(sorted(actor.roles)),
                or_(HumanTask.assignee.is_(None), HumanTask.assignee == actor.username),
            )
        )
        with self.db.sessions() as session:
            total, overdue = session.execute(statement).one()
        return int(total or 0), int(overdue or 0)

    def unread(self, actor: Actor) -> int:
        with self.db.sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.recipient == actor.username, Notification.read_at.is_(None))
                )
                or 0
            )

    def mine(self, actor: Actor, limit: int = PAGE) -> list[NoticeRow]:
        with self.db.sessions() as session:
            rows = session.execute(
                _NOTICE.where(Notification.recipient == actor.username)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(limit)
            )
            return [NoticeRow(*row) for row in rows]  # type: ignore[call-arg]

    def failures(self, actor: Actor, limit: int = PAGE) -> list[NoticeRow]:
        """Deliveries given up on, newest first (administrators)."""
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            rows = session.execute(
                _NOTICE.where(
                    or_(
                        Notification.email_status == "failed",
                        Notification.webhook_status == "failed",
                    )
                )
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(limit)
            )
            return [NoticeRow(*row) for row in rows]  # type: ignore[call-arg]

    def retrying(self, actor: Actor) -> int:
        """Deliveries that failed at least once and will be tried again."""
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            waiting = or_(
                and_(Notification.email_status == "pending", Notification.email_attempts > 0),
                and_(Notification.webhook_status == "pending", Notification.webhook_attempts > 0),
            )
            return int(
                session.scalar(select(func.count()).select_from(Notification).where(waiting)) or 0
            )

    def schedules(self, actor: Actor) -> list[ScheduleRow]:
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            schedules = session.scalars(select(ReviewSchedule).order_by(ReviewSchedule.id)).all()
            return [self._row(session, s) for s in schedules]

    def schedule(self, actor: Actor, schedule_id: int) -> ScheduleRow:
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            found = session.get(ReviewSchedule, schedule_id)
            if found is None:
                raise NotFound(f"no schedule {schedule_id}")
            return self._row(session, found)

    def _row(self, session: Session, s: ReviewSchedule) -> ScheduleRow:
        last = session.execute(
            select(ReviewRun.period_label, ReviewRun.instance_id)
            .where(ReviewRun.schedule_id == s.id)
            .order_by(ReviewRun.period_start.desc())
            .limit(1)
        ).first()
        runs = session.scalar(
            select(func.count()).select_from(ReviewRun).where(ReviewRun.schedule_id == s.id)
        )
        return ScheduleRow(
            s.id,
            s.name,
            s.process_id,
            s.period,
            s.recurrence,
            s.owner,
            tuple(s.process_owners or ()),
            s.description,
            bool(s.active),
            s.last_error,
            last[0] if last else None,
            last[1] if last else None,
            int(runs or 0),
        )
