"""Who may do what: the one policy every command, page, endpoint, export and CLI
command asks.

- Start a process: a role of the lane its start event lies in (anyone when the start
  event lies in no lane), or Admin.
- Work on a task (claim, complete): the task's role, and the task is for anyone in
  that role or assigned to the actor.
- Read an instance (its page, data, history, attachments, exports): its participants
  (who started it, acted in it, is or was assigned a task of it, or may work on one
  of its open tasks), the pack's roles that may read all (the improvement owner and
  manager), Auditor and Admin. Anyone else is told it does not exist (404).
- Audit (verify, replay, the audit console, anchors): Auditor, Admin and the pack's
  roles that may audit.
- Model (draft and submit changes to a diagram and its forms, migrate instances):
  Modeler or Admin.
- Approve a submitted draft, which deploys it: the pack's roles that may approve
  models, and Admin; never the draft's author (four-eyes).
- Deploy a diagram without a draft (bootstrapping): Admin.
- Read versions, drafts, diffs, impact and the model log: modelers, approvers,
  auditors and the roles that may audit.
- Administer users: Admin.

An account holding only the Auditor role reads and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import Forbidden, NotFound
from engine.roles import ADMIN, AUDITOR, MODELER, RoleBook


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[str]

    @classmethod
    def of(cls, user: Any) -> Actor:
        return cls(user.username, frozenset(user.roles or []))

    @property
    def read_only(self) -> bool:
        """Auditors read everything and change nothing, unless also holding a working role."""
        return not (self.roles - {AUDITOR})


SYSTEM_ACTOR = "system"
SYSTEM = Actor(SYSTEM_ACTOR, frozenset({ADMIN}))


# The longest name a command records as its actor (the event table's actor column).
ACTOR_LENGTH = 64


def operator(os_user: str, stated: Actor | None = None) -> Actor:
    """Who the command line acts as, named for the history so an auditor can tell who
    ran it: the operating-system account always, as `cli:<os user>`.

    - No stated user: an administrator (whoever runs the command line holds the
      database anyway), recorded as `cli:<os user>`.
    - A stated user (`--by`, an existing account): recorded as
      `<username> via cli:<os user>`, with that user's roles, so the policy refuses
      what it would refuse that user on the web.

    A name that would not fit the history's actor column is refused (ValueError)
    rather than cut short."""
    via = f"cli:{os_user}"
    name = via if stated is None else f"{stated.username} via {via}"
    if len(name) > ACTOR_LENGTH:
        raise ValueError(
            f"the actor {name!r} is longer than the {ACTOR_LENGTH} characters history records"
        )
    return Actor(name, frozenset({ADMIN}) if stated is None else stated.roles)


class TaskLike(Protocol):
    @property
    def role(self) -> str | None: ...

    @property
    def assignee(self) -> str | None: ...


@dataclass(frozen=True)
class Participation:
    """What deciding who may read an instance needs to know of it."""

    people: frozenset[str]  # started it, acted in it, was assigned, claimed or did a task
    open_tasks: tuple[tuple[str | None, str | None], ...] = ()  # (role, assignee) of each


class Policy:
    def __init__(self, roles: RoleBook) -> None:
        self.roles = roles
        self.reading_all = roles.with_power("read_all") | {AUDITOR, ADMIN}
        self.auditing = roles.with_power("audit") | {AUDITOR, ADMIN}
        self.approving = roles.with_power("approve_models") | {ADMIN}
        self.reading_models = self.auditing | self.approving | {MODELER}
        self.dashboard_landing = roles.with_power("land_on_dashboard")
        self.managing_metrics = roles.with_power("manage_metrics") | {ADMIN}

    # ---- questions ----------------------------------------------------------------------

    def may_start(self, actor: Actor, starter_lanes: Iterable[str]) -> bool:
        starters = self.starter_roles(starter_lanes)
        if actor.read_only:
            return False
        return not starters or ADMIN in actor.roles or bool(starters & actor.roles)

    def starter_roles(self, starter_lanes: Iterable[str]) -> frozenset[str]:
        return frozenset(
            role for lane in starter_lanes if (role := self.roles.for_lane(lane)) is not None
        )

    def may_work_on(self, actor: Actor, task: TaskLike) -> bool:
        return (
            not actor.read_only
            and task.role is not None
            and task.role in actor.roles
            and (task.assignee is None or task.assignee == actor.username)
        )

    def may_read_all(self, actor: Actor) -> bool:
        return bool(self.reading_all & actor.roles)

    def lands_on_dashboard(self, actor: Actor) -> bool:
        """Whether signing in opens the dashboard (a role declared to land there, and
        allowed to see it) rather than the inbox."""
        return bool(self.dashboard_landing & actor.roles) and self.may_read_all(actor)

    def may_read(self, actor: Actor, participation: Participation) -> bool:
        if self.may_read_all(actor) or actor.username in participation.people:
            return True
        return any(
            role in actor.roles and assignee in (None, actor.username)
            for role, assignee in participation.open_tasks
        )

    def may_audit(self, actor: Actor) -> bool:
        return bool(self.auditing & actor.roles)

    def may_model(self, actor: Actor) -> bool:
        return bool({MODELER, ADMIN} & actor.roles)

    def may_approve_models(self, actor: Actor) -> bool:
        return bool(self.approving & actor.roles)

    def may_read_models(self, actor: Actor) -> bool:
        return bool(self.reading_models & actor.roles)

    def may_deploy(self, actor: Actor) -> bool:
        return ADMIN in actor.roles

    def may_administer(self, actor: Actor) -> bool:
        return ADMIN in actor.roles

    def may_manage_metrics(self, actor: Actor) -> bool:
        return not actor.read_only and bool(self.managing_metrics & actor.roles)

    # ---- the same questions, refusing -------------------------------------------------------

    def require_writer(self, actor: Actor) -> None:
        if actor.read_only:
            raise Forbidden("this account may read but not change anything", reason="read_only")

    def require_start(self, actor: Actor, process_id: str, starter_lanes: Iterable[str]) -> None:
        self.require_writer(actor)
        starters = self.starter_roles(starter_lanes)
        if not self.may_start(actor, starter_lanes):
            raise Forbidden(
                f"starting {process_id} needs the role {', '.join(sorted(starters))}",
                reason="needs_role",
                params={"role": ", ".join(sorted(starters))},
            )

    def require_work_on(self, actor: Actor, task: TaskLike, bpmn_id: str) -> None:
        self.require_writer(actor)
        if task.role is None or task.role not in actor.roles:
            raise Forbidden(
                f"task {bpmn_id} needs the role {task.role}",
                reason="needs_role",
                params={"role": task.role},
            )
        if task.assignee is not None and task.assignee != actor.username:
            raise Forbidden(
                f"task {bpmn_id} is assigned to {task.assignee}",
                reason="assigned_to_other",
                params={"user": task.assignee},
            )

    def require_read(self, actor: Actor, instance_id: int, participation: Participation) -> None:
        """Someone who may not read an instance is told it does not exist."""
        if not self.may_read(actor, participation):
            raise NotFound(f"no instance {instance_id}")

    def require_audit(self, actor: Actor) -> None:
        if not self.may_audit(actor):
            raise Forbidden(
                "verifying and replaying history is for auditors, administrators and the "
                "roles the pack lets audit",
                reason="needs_audit",
            )

    def require_model(self, actor: Actor, what: str) -> None:
        if not self.may_model(actor):
            raise Forbidden(f"{what} needs the modeler role", reason="needs_modeler")

    def require_approve_models(self, actor: Actor, author: str) -> None:
        if not self.may_approve_models(actor):
            raise Forbidden(
                "approving a version needs a role that may approve the procedure",
                reason="needs_approver",
            )
        if actor.username == author:
            raise Forbidden(
                "the author of a draft may not approve it (four-eyes)", reason="own_draft"
            )

    def require_read_models(self, actor: Actor) -> None:
        if not self.may_read_models(actor):
            raise Forbidden(
                "the procedure's versions and drafts are for modelers, approvers and auditors",
                reason="needs_model_reader",
            )

    def require_deploy(self, actor: Actor) -> None:
        if not self.may_deploy(actor):
            raise Forbidden(
                "deploying without a draft is for administrators; modelers submit a draft "
                "for approval",
                reason="needs_admin",
            )

    def require_manage_metrics(self, actor: Actor) -> None:
        if not self.may_manage_metrics(actor):
            raise Forbidden(
                "the metric catalogue and its history are kept by the roles the pack lets "
                "manage metrics, and administrators",
                reason="needs_metric_manager",
            )

    def require_administer(self, actor: Actor) -> None:
        if not self.may_administer(actor):
            raise Forbidden("only an administrator may manage users", reason="needs_admin")
