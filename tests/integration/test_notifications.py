"""Notifications through the outbox, delivered to a real SMTP server and a real HTTP
receiver started by the test: once each, never lost when the mail server is down, and
never in the way of the command that wrote them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import HumanTask, Notification
from engine.runtime import Runtime
from engine.settings import Delivery
from tests.cycle import REGISTER
from tests.helpers.actors import actors_of
from tests.helpers.clock import FakeClock
from tests.helpers.receivers import Hook, Mailbox, free_port, smtp_server, webhook_receiver

BASE = "http://csi.example.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def actors(db: Database) -> dict[str, Actor]:
    return actors_of(db)


@pytest.fixture
def mail() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    with webhook_receiver() as running:
        yield running


def _runtime(
    db: Database, clock: FakeClock, smtp_port: int, webhook: str | None = None, **more: int
) -> Runtime:
    delivery = Delivery(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="csi@example.com",
        smtp_timeout=5,
        base_url=BASE,
        webhook_url=webhook,
        webhook_timeout=5,
        **more,
    )
    return Runtime(db, clock=clock, delivery=delivery)


def _po1_task(rt: Runtime, actors: dict[str, Actor]) -> str:
    """Start an improvement and register its input: po1 gets a propose_metrics task."""
    started = rt.start_instance(actors["owner"])
    register = rt.queries.inbox(actors["owner"], started.instance_id)[0]
    rt.complete_task(register.id, actors["owner"], REGISTER)
    mine = rt.queries.inbox(actors["po1"], started.instance_id)
    assert [t.bpmn_id for t in mine] == ["propose_metrics"]
    return mine[0].id


def test_a_new_task_mails_its_person_once_with_a_link_and_posts_the_webhook(
    db: Database,
    clock: FakeClock,
    actors: dict[str, Actor],
    mail: tuple[Mailbox, int],
    hook: tuple[Hook, str],
) -> None:
    mailbox, port = mail
    received, url = hook
    rt = _runtime(db, clock, port, url)
    task_id = _po1_task(rt, actors)

    rt.worker_pass(clock())
    to_po1 = mailbox.to("po1@example.com")
    assert len(to_po1) == 1
    message = to_po1[0]
    assert message["To"].addresses[0].addr_spec == "po1@example.com"
    assert f"{BASE}/tasks/{task_id}" in message.get_content()
    assert "提出度量指标" in message["Subject"]
    posted = [b for b in received.bodies if b["recipient"] == "po1"]
    assert len(posted) == 1
    assert posted[0]["kind"] == "task_arrived"
    assert posted[0]["url"] == f"{BASE}/tasks/{task_id}"
    assert posted[0]["task"]["id"] == task_id
    # The owner did the step that opened it: they are not told of their own work.
    assert mailbox.to("owner@example.com") == []

    sent, posts = len(mailbox.messages), len(received.bodies)
    rt.worker_pass(clock())
    rt.worker_pass(clock.advance(timedelta(minutes=5)))
    assert len(mailbox.messages) == sent
    assert len(received.bodies) == posts


def test_with_the_mail_server_down_the_command_succeeds_and_a_later_pass_delivers(
    db: Database, clock: FakeClock, actors: dict[str, Actor]
) -> None:
    port = free_port()  # nothing listens there yet
    rt = _runtime(db, clock, port)
    task_id = _po1_task(rt, actors)

    first = rt.worker_pass(clock())
    assert first.delivered.sent == 0
    assert first.delivered.retrying > 0
    with db.sessions() as session:
        row = session.scalar(
            select(Notification).where(
                Notification.task_id == task_id, Notification.recipient == "po1"
            )
        )
        assert row is not None
        assert row.email_status == "pending"
        assert row.email_attempts == 1
        assert row.email_next_at > clock()

    with smtp_server(port) as (mailbox, _):
        rt.worker_pass(clock())  # not yet due again
        assert mailbox.messages == []
        rt.worker_pass(clock.advance(timedelta(minutes=2)))
        assert len(mailbox.to("po1@example.com")) == 1
        rt.worker_pass(clock.advance(timedelta(minutes=30)))
        assert len(mailbox.to("po1@example.com")) == 1


def test_due_tomorrow_and_overdue_come_once_each(
    db: Database, clock: FakeClock, actors: dict[str, Actor], mail: tuple[Mailbox, int]
) -> None:
    mailbox, port = mail
    rt = _runtime(db, clock, port)
    task_id = _po1_task(rt, actors)
    with db.sessions() as session:
        task = session.get(HumanTask, task_id)
        assert task is not None
        assert task.due_at is not None
        due = task.due_at
    rt.worker_pass(clock())
    arrived = len(mailbox.to("po1@example.com"))

    clock.advance(due - clock() - timedelta(hours=2))  # two hours before it is due
    rt.worker_pass(clock())
    rt.worker_pass(clock.advance(timedelta(minutes=10)))
    clock.advance(timedelta(hours=3))  # an hour past due
    rt.worker_pass(clock())
    rt.worker_pass(clock.advance(timedelta(days=1)))

    subjects = [m["Subject"] for m in mailbox.to("po1@example.com")[arrived:]]
    assert len(subjects) == 2
    with db.sessions() as session:
        kinds = sorted(
            session.scalars(
                select(Notification.kind).where(
                    Notification.task_id == task_id, Notification.recipient == "po1"
                )
            )
        )
    assert kinds == ["due_tomorrow", "overdue", "task_arrived"]


def test_a_person_who_switched_mail_off_gets_none_but_sees_the_notice(
    db: Database, clock: FakeClock, actors: dict[str, Actor], mail: tuple[Mailbox, int]
) -> None:
    mailbox, port = mail
    rt = _runtime(db, clock, port)
    rt.set_my_email(actors["po1"], "po1@example.com", False)
    task_id = _po1_task(rt, actors)
    rt.worker_pass(clock())
    assert mailbox.to("po1@example.com") == []
    assert len(mailbox.to("po2@example.com")) == 1
    notices = rt.queries.notifications.mine(actors["po1"])
    assert [(n.kind, n.task_id, n.email_status) for n in notices] == [
        ("task_arrived", task_id, "off")
    ]
    assert rt.queries.notifications.task_counts(actors["po1"], clock()) == (1, 0)


def test_a_webhook_that_keeps_failing_is_given_up_and_shown_to_administrators(
    db: Database,
    clock: FakeClock,
    actors: dict[str, Actor],
    mail: tuple[Mailbox, int],
    hook: tuple[Hook, str],
) -> None:
    _, port = mail
    received, url = hook
    received.status = 500
    rt = _runtime(db, clock, port, url, max_attempts=2)
    task_id = _po1_task(rt, actors)
    rt.worker_pass(clock())
    rt.worker_pass(clock.advance(timedelta(minutes=1, seconds=1)))
    rt.worker_pass(clock.advance(timedelta(hours=1)))
    tries = [b for b in received.bodies if b["recipient"] == "po1"]
    assert len(tries) == 2
    failed = rt.queries.notifications.failures(actors["admin"])
    mine = [f for f in failed if f.task_id == task_id and f.recipient == "po1"]
    assert len(mine) == 1
    assert mine[0].webhook_status == "failed"
    assert mine[0].email_status == "sent"
    assert "500" in (mine[0].webhook_error or "")


def test_without_an_smtp_host_notices_stay_in_the_app(
    db: Database, clock: FakeClock, actors: dict[str, Actor]
) -> None:
    rt = Runtime(db, clock=clock)
    task_id = _po1_task(rt, actors)
    result = rt.worker_pass(clock())
    assert result.delivered.sent == 0
    notices = rt.queries.notifications.mine(actors["po1"])
    assert [(n.task_id, n.email_status, n.webhook_status) for n in notices] == [
        (task_id, "off", "off")
    ]
    assert rt.queries.notifications.unread(actors["po1"]) == 1
    rt.mark_notifications_read(actors["po1"])
    assert rt.queries.notifications.unread(actors["po1"]) == 0


def test_a_task_done_before_its_notice_went_out_is_not_mailed(
    db: Database, clock: FakeClock, actors: dict[str, Actor], mail: tuple[Mailbox, int]
) -> None:
    mailbox, port = mail
    rt = _runtime(db, clock, port)
    task_id = _po1_task(rt, actors)
    metrics = [{"name": "可用率", "unit": "%", "direction": "higher_better", "method": "监控"}]
    rt.complete_task(task_id, actors["po1"], {"metrics": metrics})
    rt.worker_pass(clock())
    assert mailbox.to("po1@example.com") == []
    assert len(mailbox.to("po2@example.com")) == 1  # po2's task is still open
    notices = rt.queries.notifications.mine(actors["po1"])
    assert [(n.task_id, n.email_status, n.email_error) for n in notices] == [
        (task_id, "off", "the task is no longer open")
    ]


def test_two_workers_delivering_at_the_same_moment_send_each_notice_once(
    committed_db: Database, mail: tuple[Mailbox, int]
) -> None:
    mailbox, port = mail
    clock = FakeClock()
    actors = actors_of(committed_db)
    _po1_task(_runtime(committed_db, clock, port), actors)
    with committed_db.sessions() as session:
        notices = session.scalars(select(Notification.id)).all()
    assert len(notices) >= 3  # po1's and po2's tasks; the first task's to the others

    workers = [_runtime(Database(committed_db.url), clock, port) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(worker: Runtime) -> None:
        try:
            barrier.wait()
            worker.worker_pass(clock())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.db.dispose()
    assert errors == []
    with committed_db.sessions() as session:
        states = session.execute(
            select(Notification.email_status, Notification.email_sent_at)
        ).all()
    assert all(status in ("sent", "off") for status, _ in states)  # none left, none failed
    assert len(mailbox.messages) == sum(status == "sent" for status, _ in states) >= 2
    ids = [m["Message-ID"].split("@")[0] for m in mailbox.messages]
    assert len(set(ids)) == len(ids)
    assert len(mailbox.to("po1@example.com")) == 1
