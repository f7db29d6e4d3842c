"""The engine's front door: one object per app or CLI run holding the pack, the
database, the access policy and the workflows kept between commands.

Commands (engine.commands) each own their transaction; reads (engine.queries) each
open a reader. This class only wires them together, so routes and the CLI call one
method per use case and never see a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.access import Actor, Policy
from engine.attachments.store import AttachmentStore
from engine.clock import Clock, utcnow
from engine.commands import deploy as deploying
from engine.commands import (
    drafts,
    metrics,
    migration,
    repair,
    schedules,
    setup,
    start,
    tasks,
    timers,
    users,
    worker,
)
from engine.commands.context import DEFAULT_SNAPSHOT_EVERY, CommandContext, Remembered
from engine.commands.progress import CommandResult
from engine.forms.library import FormLibrary
from engine.metrics import importing
from engine.notifications import notices
from engine.notifications.delivery import Composer, plain_composer
from engine.pack import DEFAULT_PACK, Pack, load
from engine.persistence.database import Database
from engine.persistence.instances import WorkflowCache
from engine.queries.reader import Queries
from engine.queries.views import DefinitionRow, view_of
from engine.settings import Delivery, Settings
from engine.workflow.serializer import StateSerializer


class Runtime:
    def __init__(
        self,
        db: Database,
        pack: Pack | None = None,
        *,
        cache: WorkflowCache[Remembered] | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        clock: Clock = utcnow,
        attachments: AttachmentStore | None = None,
        timezone: str = "Asia/Shanghai",
        delivery: Delivery | None = None,
    ) -> None:
        self.pack = pack or load(DEFAULT_PACK)
        self.attachments = attachments or Settings.from_env().attachment_store()
        self.forms = FormLibrary.of(self.pack)
        self.policy = Policy(self.pack.roles)
        self.ctx = CommandContext(
            db=db,
            pack=self.pack,
            forms=self.forms,
            policy=self.policy,
            clock=clock,
            attachments=self.attachments,
            cache=cache if cache is not None else WorkflowCache(),
            serializer=StateSerializer(),
            snapshot_every=max(1, snapshot_every),
            timezone=timezone,
            delivery=delivery or Delivery(),
        )
        # How notification messages are worded: the web app installs its translated one.
        self.composer: Composer = plain_composer
        self.queries = Queries(db, self.pack, self.forms, self.policy, self.attachments)

    @classmethod
    def from_settings(cls, settings: Settings, pack: Pack | None = None, **options: Any) -> Runtime:
        """The runtime of an installation: its database and pack (or `pack`, given)."""
        settings.prepare_sqlite_file()  # the folder it lies in, not the instance folder regardless
        options.setdefault("attachments", settings.attachment_store())
        options.setdefault("timezone", settings.timezone)
        options.setdefault("delivery", settings.delivery)
        return cls(Database(settings.database_url), pack or load(settings.pack), **options)

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def cache(self) -> WorkflowCache[Remembered]:
        return self.ctx.cache

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    # ---- commands -------------------------------------------------------------------------------

    def start_instance(
        self, actor: Actor, process_id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> CommandResult:
        return start.start_instance(self.ctx, actor, process_id, data)

    def claim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return tasks.claim_task(self.ctx, task_id, actor)

    def unclaim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return tasks.unclaim_task(self.ctx, task_id, actor)

    def complete_task(self, task_id: str, actor: Actor, data: Mapping[str, Any]) -> CommandResult:
        return tasks.complete_task(self.ctx, task_id, actor, data)

    def fire_due_timers(self, now: datetime | None = None, limit: int = 100) -> list[int]:
        return timers.fire_due_timers(self.ctx, now, limit)

    def migrate_instance(
        self, instance_id: int, actor: Actor, version: int | None = None
    ) -> CommandResult:
        return migration.migrate_instance(self.ctx, instance_id, actor, version)

    def repair_state(self, instance_id: int, actor: Actor) -> CommandResult:
        return repair.repair_state(self.ctx, instance_id, actor)

    # ---- changing the procedure ------------------------------------------------------------

    def create_draft(
        self, actor: Actor, process_id: str, xml: Any, forms: Any, note: Any
    ) -> drafts.Saved:
        return drafts.create_draft(self.ctx, actor, process_id, xml, forms, note)

    def update_draft(
        self, actor: Actor, draft_id: int, xml: Any, forms: Any, note: Any = None
    ) -> drafts.Saved:
        return drafts.update_draft(self.ctx, actor, draft_id, xml, forms, note)

    def submit_draft(self, actor: Actor, draft_id: int, note: Any = None) -> drafts.Saved:
        return drafts.submit_draft(self.ctx, actor, draft_id, note)

    def withdraw_draft(self, actor: Actor, draft_id: int) -> None:
        drafts.withdraw_draft(self.ctx, actor, draft_id)

    def approve_draft(self, actor: Actor, draft_id: int) -> drafts.Approved:
        return drafts.approve_draft(self.ctx, actor, draft_id)

    def reject_draft(self, actor: Actor, draft_id: int, comment: Any) -> None:
        drafts.reject_draft(self.ctx, actor, draft_id, comment)

    def deploy(self, actor: Actor, xml: bytes, filename: str) -> deploying.Deployed:
        return deploying.deploy(self.ctx, actor, xml, filename)

    # ---- the metric catalogue and its history ---------------------------------------------

    def create_metric(self, actor: Actor, code: str, values: Mapping[str, Any]) -> str:
        return metrics.create_metric(self.ctx, actor, code, values)

    def update_metric(self, actor: Actor, code: str, values: Mapping[str, Any]) -> None:
        metrics.update_metric(self.ctx, actor, code, values)

    def retire_metric(self, actor: Actor, code: str) -> None:
        metrics.set_metric_active(self.ctx, actor, code, False)

    def reactivate_metric(self, actor: Actor, code: str) -> None:
        metrics.set_metric_active(self.ctx, actor, code, True)

    def import_readings(
        self, actor: Actor, rows: Iterable[Any], default_code: str | None = None
    ) -> importing.Preview:
        return metrics.import_readings(self.ctx, actor, rows, default_code)

    def import_readings_file(
        self, actor: Actor, content: bytes, filename: str, default_code: str | None = None
    ) -> importing.Preview:
        return metrics.import_file(self.ctx, actor, content, filename, default_code)

    # ---- setting a database up -------------------------------------------------------------------

    def init_database(self) -> list[DefinitionRow]:
        """Create or upgrade the schema; deploy the pack's diagrams and catalogue."""
        return [
            view_of(DefinitionRow, d) for d in setup.init_database(self.db, self.pack, self.forms)
        ]

    def seed_demo(self) -> list[str]:
        with self.db.transaction() as session:
            setup.seed_catalogue(session, self.pack)
            return setup.seed_demo_users(session, self.pack)

    def upsert_user(self, username: str, password: str, roles: list[str], display: str) -> None:
        with self.db.transaction() as session:
            setup.upsert_user(session, self.pack, username, password, roles, display)

    def create_user(self, actor: Actor, **values: Any) -> int:
        return users.create_user(self.ctx, actor, **values)

    def update_user(self, actor: Actor, user_id: int, **values: Any) -> None:
        users.update_user(self.ctx, actor, user_id, **values)

    def end_session(self, user_id: int, session_id: str, keep: timedelta) -> None:
        users.end_session(self.ctx, user_id, session_id, keep)

    def log_out_everywhere(self, user_id: int) -> None:
        users.log_out_everywhere(self.ctx, user_id)

    # ---- the worker, review schedules, notifications ---------------------------------------------

    def worker_pass(self, now: datetime | None = None) -> worker.PassResult:
        """One pass of the worker (engine.commands.worker)."""
        return worker.run_pass(self.ctx, self.composer, now)

    def start_due_reviews(self, now: datetime | None = None) -> list[int]:
        return schedules.start_due_reviews(self.ctx, now)

    def save_schedule(self, actor: Actor, schedule_id: int | None, values: dict[str, Any]) -> int:
        return schedules.save_schedule(self.ctx, actor, schedule_id, values)

    def set_schedule_active(self, actor: Actor, schedule_id: int, active: bool) -> None:
        schedules.set_active(self.ctx, actor, schedule_id, active)

    def mark_notifications_read(self, actor: Actor, ids: list[int] | None = None) -> int:
        return notices.mark_read(self.ctx, actor, ids)

    def set_my_email(self, actor: Actor, email: Any, notifications: bool) -> None:
        notices.set_my_email(self.ctx, actor, email, notifications)
