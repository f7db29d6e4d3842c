"""The read side's front door: what pages, the API, exports and the CLI read, each
behind the access policy, each in a reader session of its own, each answered with
plain view objects (engine.queries.views) or JSON-ready dicts."""

from __future__ import annotations

import threading
from datetime import tzinfo
from typing import IO, Any

from sqlalchemy import exists, func, or_, select

from engine.access import Actor, Policy
from engine.attachments import audit as attachment_audit
from engine.attachments.store import AttachmentStore
from engine.audit import anchors, chain, replay
from engine.audit.anchors import AnchorProblem
from engine.clock import utcnow
from engine.dictionary import DataDictionary
from engine.documents import register as register_document
from engine.documents.record import RecordDocument, record_document
from engine.errors import Forbidden, NotFound
from engine.forms.library import FormLibrary
from engine.metrics import importing
from engine.pack import Pack
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask, Instance, ProcessDefinition
from engine.queries import audit, instances, register, tasks, users
from engine.queries import dashboard as figures
from engine.queries import metrics as catalogue
from engine.queries.evidence import EvidenceQueries
from engine.queries.models import ModelQueries
from engine.queries.notifications import NotificationQueries
from engine.queries.register import RegisterFilter, RegisterPage
from engine.queries.views import DefinitionRow, InstanceRow, TaskRow, UserRow
from engine.workflow import definitions
from engine.workflow.model import Element, ProcessModel, model_of, models_of


class Queries:
    def __init__(
        self,
        db: Database,
        pack: Pack,
        forms: FormLibrary,
        policy: Policy,
        attachments: AttachmentStore | None = None,
    ) -> None:
        self.db = db
        self.attachments = attachments
        self.pack = pack
        self.forms = forms
        self.policy = policy
        self.dictionary = DataDictionary(pack, forms)
        self.models = ModelQueries(db, pack, forms, policy)
        self.evidence = EvidenceQueries(self, attachments)
        self.notifications = NotificationQueries(db, policy)
        self._latest_lock = threading.Lock()

    # ---- inbox and tasks ----------------------------------------------------------------------

    def inbox(self, actor: Actor, instance_id: int | None = None) -> list[TaskRow]:
        with self.db.sessions() as session:
            return instances.inbox(session, actor, instance_id)

    def record_numbers(self, instance_ids: set[int]) -> dict[int, str]:
        with self.db.sessions() as session:
            return instances.record_numbers(session, instance_ids)

    def task_page(self, actor: Actor, task_id: str) -> tuple[tasks.TaskPage, bool]:
        """The task page and whether the actor may complete it; refused to someone who
        may neither work on it nor read every instance."""
        with self.db.sessions() as session:
            page = tasks.task_page(session, self.pack, self.forms, task_id)
        may_work = self.policy.may_work_on(actor, page.task)
        if not may_work and not self.policy.may_read_all(actor):
            raise Forbidden("this task belongs to another role or person", reason="task_of_another")
        return page, may_work

    def open_task(self, task_id: str) -> TaskRow | None:
        with self.db.sessions() as session:
            row = session.get(HumanTask, task_id)
            return instances.task_row(row) if row is not None else None

    # ---- instances ----------------------------------------------------------------------------

    def _require_read(self, session: Any, actor: Actor, instance_id: int) -> None:
        if not self.policy.may_read_all(actor):
            self.policy.require_read(
                actor, instance_id, instances.participation(session, instance_id)
            )

    def instance(
        self, actor: Actor, instance_id: int, with_events: bool = True
    ) -> instances.InstanceView:
        with self.db.sessions() as session:
            self._require_read(session, actor, instance_id)
            return instances.instance_view(session, instance_id, with_events)

    def instance_list(
        self, actor: Actor, status: str | None = None, limit: int = 200
    ) -> list[instances.InstanceListRow]:
        with self.db.sessions() as session:
            rows = instances.instances(
                session, status, limit=limit if self.policy.may_read_all(actor) else 2000
            )
            if self.policy.may_read_all(actor):
                return rows
            readable = self._readable_ids(session, actor, [r.instance.id for r in rows])
            return [r for r in rows if r.instance.id in readable][:limit]

    def _readable_ids(self, session: Any, actor: Actor, ids: list[int]) -> set[int]:
        """Of `ids`, the instances `actor` takes part in (see engine.access)."""
        if not ids:
            return set()
        me = actor.username
        took_part = or_(
            Instance.started_by == me,
            exists().where(Event.instance_id == Instance.id, Event.actor == me),
            exists().where(
                HumanTask.instance_id == Instance.id,
                or_(
                    HumanTask.assignee == me,
                    HumanTask.claimed_by == me,
                    HumanTask.completed_by == me,
                    (HumanTask.status == "open")
                    & HumanTask.role.in_(sorted(actor.roles))
                    & HumanTask.assignee.is_(None),
                ),
            ),
        )
        return set(session.scalars(select(Instance.id).where(Instance.id.in_(ids), took_part)))

    def history(self, actor: Actor, instance_id: int) -> list[dict[str, Any]]:
        with self.db.snapshot() as session:
            self._require_read(session, actor, instance_id)
            return instances.event_dicts(session, instance_id)

    def history_file_name(self, actor: Actor, instance_id: int) -> str:
        with self.db.sessions() as session:
            self._require_read(session, actor, instance_id)
            record = instances.record_of(session, instance_id)
            return record.number if record else f"instance-{instance_id}"

    def diagram(self, actor: Actor, instance_id: int, definition_id: int | None = None) -> str:
        with self.db.sessions() as session:
            self._require_read(session, actor, instance_id)
            return instances.diagram_xml(session, instance_id, definition_id)

    def latest_version(self, process_id: str) -> int | None:
        with self.db.sessions() as session:
            return instances.latest_version(session, process_id)

    def definitions_of(self, instance: InstanceRow) -> list[DefinitionRow]:
        with self.db.sessions() as session:
            return instances.definitions_of(session, instance)

    # ---- what diagrams declare ------------------------------------------------------------------

    def elements_of(self, instance: InstanceRow) -> dict[str, Element]:
        """The elements of the definitions an instance runs on (its own process first,
        then the processes it calls), by id."""
        found: dict[str, Element] = {}
        with self.db.sessions() as session:
            for definition_id in [
                instance.definition_id,
                *(instance.called_definitions or {}).values(),
            ]:
                definition = session.get(ProcessDefinition, definition_id)
                if definition is None:
                    continue
                for model in models_of(definition).values():
                    for element_id, element in model.elements.items():
                        found.setdefault(element_id, element)
        return found

    def process_models(self) -> dict[str, ProcessModel]:
        """The model of each process's latest version."""
        with self.db.sessions() as session:
            latest = (
                select(ProcessDefinition.process_id, func.max(ProcessDefinition.version))
                .group_by(ProcessDefinition.process_id)
                .subquery()
            )
            rows = session.scalars(
                select(ProcessDefinition).join(
                    latest,
                    (ProcessDefinition.process_id == latest.c.process_id)
                    & (ProcessDefinition.version == latest.c[1]),
                )
            ).all()
            return {row.process_id: model_of(row) for row in rows}

    def startable(
        self, actor: Actor, models: dict[str, ProcessModel] | None = None
    ) -> list[ProcessModel]:
        """The processes `actor` may start: those no other process calls, whose start
        event's lane is one of the actor's roles (or lies in no lane). `models`: the
        latest process models, when the caller has them already."""
        with self.db.sessions() as session:
            called = definitions.called_by_others(session)
        return [
            model
            for process_id, model in (models or self.process_models()).items()
            if process_id not in called and self.policy.may_start(actor, model.starter_lanes)
        ]

    # ---- audit ------------------------------------------------------------------------------------

    def verify(self, actor: Actor, instance_id: int) -> chain.Verification:
        """The chain of `instance_id` in the log (also when its instance row is gone),
        and its stored state against its checkpoint."""
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            return self._verify(session, instance_id)

    def _verify(self, session: Any, instance_id: int) -> chain.Verification:
        """The chain, the stored state, then every attached file against its hash."""
        return attachment_audit.verify_instance(session, self.attachments, instance_id)

    def replay(
        self, actor: Actor, instance_id: int, step: int | None = None
    ) -> replay.ReplayResult:
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            return replay.replay(session, self.pack, instance_id, step)

    def audit_search(
        self, actor: Actor, filters: audit.SearchFilters, zone: tzinfo
    ) -> tuple[list[audit.SearchRow], bool, list[tuple[str, str]]]:
        self.policy.require_audit(actor)
        with self.db.sessions() as session:
            rows, more = audit.search(session, filters, zone)
            return rows, more, users.people(session)

    def audit_view(
        self, actor: Actor, instance_id: int, step: int | None
    ) -> tuple[audit.AuditView, int, audit.StepView]:
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            view = audit.audit_view(
                session, self.pack, instance_id, self._verify(session, instance_id)
            )
            step_no = audit.initial_step(view.replay, step)
            step_view = audit.step_view(
                session, self.pack, instance_id, step_no, view.replay, view.verification
            )
            return view, step_no, step_view

    def audit_step(
        self, actor: Actor, instance_id: int, step: int
    ) -> tuple[InstanceRow, audit.StepView]:
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            instance = instances.instance_row(session, instance_id)
            return instance, audit.step_view(session, self.pack, instance_id, step)

    def anchors(self, actor: Actor, leave_out: set[int] | None = None) -> dict[str, Any]:
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            return anchors.take(session, leave_out)

    def check_anchors(self, actor: Actor, document: Any) -> list[AnchorProblem]:
        self.policy.require_audit(actor)
        with self.db.snapshot() as session:
            return anchors.check(session, document)

    def chains(self, actor: Actor) -> list[int]:
        """The instance of every chain in the log and every instance row, for a pass over
        all chains (one whose instance row was deleted is among them)."""
        self.policy.require_audit(actor)
        with self.db.sessions() as session:
            return chain.logged_instances(session)

    # ---- register and readings ----------------------------------------------------------------

    def _scope(self, actor: Actor) -> Any:
        """None for who may read every record; else the records `actor` takes part in."""
        return None if self.policy.may_read_all(actor) else register.readable_by(actor)

    def records(self, actor: Actor, chosen: RegisterFilter | None = None) -> list[dict[str, Any]]:
        return self.records_page(actor, chosen)[0]

    def records_page(
        self, actor: Actor, chosen: RegisterFilter | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """The register as the API shows it (one page of it) and how many the filter finds."""
        with self.db.sessions() as session:
            return register.records(
                session,
                self.dictionary.record_fields,
                chosen,
                utcnow(),
                self._scope(actor),
            )

    def register_page(self, actor: Actor, chosen: RegisterFilter) -> RegisterPage:
        with self.db.sessions() as session:
            return register.register_page(session, chosen, utcnow(), self._scope(actor))

    def register_years(self, actor: Actor) -> list[int]:
        with self.db.sessions() as session:
            return register.years(session, self._scope(actor))

    def register_labels(self) -> register_document.Labels:
        main = self.pack.main_process
        models = self.process_models()
        model = models.get(main) if main else next(iter(models.values()), None)
        return register_document.Labels(
            model.record_statuses if model is not None else {}, self.dictionary.variables
        )

    def register_xlsx(
        self,
        actor: Actor,
        chosen: RegisterFilter,
        out: IO[bytes],
        locale: str = "zh-CN",
    ) -> int:
        """Write the register workbook of what `chosen` finds into `out` (see
        engine.documents.register); the number of records."""
        labels = self.register_labels()
        with self.db.snapshot() as session:
            return register_document.register_xlsx(
                session, chosen, utcnow(), labels, out, locale, self._scope(actor)
            )

    def may_see_dashboard(self, actor: Actor) -> bool:
        """The dashboard and the period report count every improvement: only for who
        may read them all (a figure over some would read as the whole picture)."""
        return self.policy.may_read_all(actor)

    def _dashboard_reader(self, actor: Actor) -> None:
        if not self.may_see_dashboard(actor):
            raise Forbidden(
                "the dashboard is for those who may read every improvement",
                reason="dashboard",
            )

    def dashboard(self, actor: Actor) -> figures.Dashboard:
        self._dashboard_reader(actor)
        with self.db.snapshot() as session:
            return figures.dashboard(session, utcnow())

    def period_report(self, actor: Actor, quarter: str) -> figures.PeriodReport:
        """周期报告 of `quarter` (`2026-Q4`)."""
        self._dashboard_reader(actor)
        parsed = figures.parse_quarter(quarter)
        if parsed is None:
            raise NotFound(f"no quarter {quarter}")
        with self.db.snapshot() as session:
            return figures.period_report(session, *parsed, utcnow())

    def record_document(self, actor: Actor, number: str) -> RecordDocument:
        """The record numbered `number` as a document; told it does not exist to someone
        who may not read its instance."""
        with self.db.snapshot() as session:
            instance_id = register.instance_of(session, number)
            if instance_id is None:
                raise NotFound(f"no record {number}")
            try:
                self._require_read(session, actor, instance_id)
            except NotFound:
                raise NotFound(f"no record {number}") from None
            return record_document(session, self.pack, instance_id)

    def readings(self, actor: Actor, code: str | None = None) -> list[dict[str, Any]]:
        """Metric readings; a reading an instance reported is shown to those who may read
        that instance (readings without one, such as imported history, to everyone)."""
        with self.db.sessions() as session:
            found = register.readings(session, code)
            if self.policy.may_read_all(actor):
                return found
            ids = sorted({r["instance_id"] for r in found if r["instance_id"] is not None})
            readable = self._readable_ids(session, actor, ids)
            return [r for r in found if r["instance_id"] is None or r["instance_id"] in readable]

    # ---- the metric catalogue ---------------------------------------------------------------------

    def metrics(
        self, actor: Actor, active: bool | None = None, category: str | None = None
    ) -> list[catalogue.MetricRow]:
        """The catalogue, for everyone signed in."""
        with self.db.sessions() as session:
            return catalogue.catalogue(session, active, category)

    def metric(self, actor: Actor, code: str) -> catalogue.MetricRow:
        with self.db.sessions() as session:
            found = catalogue.metric(session, code)
        if found is None:
            raise NotFound(f"no metric {code}")
        return found

    def metric_history(self, actor: Actor, code: str) -> catalogue.MetricHistory:
        """A metric's readings and the improvements' baselines and targets, of those
        improvements the actor may read (imported readings are everyone's)."""
        with self.db.sessions() as session:
            found = catalogue.metric(session, code)
            if found is None:
                raise NotFound(f"no metric {code}")
            readings = catalogue.readings(session, code)
            bands = catalogue.bands(session, code)
            if not self.policy.may_read_all(actor):
                ids = {r.instance_id for r in readings if r.instance_id is not None}
                readable = self._readable_ids(
                    session, actor, sorted(ids | {b.instance_id for b in bands})
                )
                readings = [
                    r for r in readings if r.instance_id is None or r.instance_id in readable
                ]
                bands = [b for b in bands if b.instance_id in readable]
        return catalogue.MetricHistory(found, readings, bands)

    def preview_import(
        self, actor: Actor, content: bytes, filename: str, default_code: str | None
    ) -> importing.Preview:
        """The file's rows with their parsed values and errors; nothing recorded."""
        self.policy.require_manage_metrics(actor)
        try:
            rows = importing.read_table(content, filename)
        except importing.FileRefused as exc:
            return importing.refused(exc.problem)
        with self.db.sessions() as session:
            return catalogue.check_import(session, rows, default_code)

    # ---- users ------------------------------------------------------------------------------------

    def users(self, actor: Actor) -> list[UserRow]:
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            return users.users(session)

    def user(self, actor: Actor, user_id: int) -> UserRow:
        self.policy.require_administer(actor)
        with self.db.sessions() as session:
            return users.user(session, user_id)

    def signed_in(self, username: str, password: str) -> UserRow | None:
        with self.db.sessions() as session:
            return users.signed_in(session, username, password)

    def still_signed_in(
        self, user_id: int, generation: int, session_id: str | None = None
    ) -> UserRow | None:
        with self.db.sessions() as session:
            return users.still_signed_in(session, user_id, generation, session_id)

    def user_named(self, username: str) -> UserRow | None:
        """The user of this name (the command line's `--by`), active or not."""
        with self.db.sessions() as session:
            return users.named(session, username)
