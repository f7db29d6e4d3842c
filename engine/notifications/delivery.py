"""Delivering the outbox: e-mail over SMTP and a JSON POST to a webhook.

Each channel of each row is claimed, sent and marked in one transaction, one row at a
time: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers share the work
without ever holding the same row; on SQLite writers take turns. A row is marked
sent in the transaction that held it while it was sent, so a second pass (or worker)
never sends it again. A send that fails is tried again after 1, 2, 4, 8 … minutes
(`next_at` on the row) until `max_attempts`, then marked failed for administrators
to see. A channel that is not configured, a person who switched e-mail off or has no
address: the channel is `off` for that row, which stays listed in the app."""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.persistence.models import HumanTask, Notification, Record, User
from engine.settings import Delivery

log = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)
PER_PASS = 200


@dataclass(frozen=True)
class Notice:
    """One notification as a message is composed from it."""

    id: int
    kind: str
    recipient: str
    display_name: str
    email: str | None
    locale: str | None
    url: str  # absolute: the base URL and the row's link
    task_id: str | None
    task_name: str
    task_label: str
    bpmn_id: str | None
    due_at: datetime | None
    instance_id: int | None
    record_number: str | None
    created_at: datetime


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


Composer = Callable[[Notice], Message]


def plain_composer(notice: Notice) -> Message:
    """Words of the engine's own, when no front end gives its translated ones."""
    what = {
        "task_arrived": "New task",
        "due_tomorrow": "Task due tomorrow",
        "overdue": "Task overdue",
    }.get(notice.kind, notice.kind)
    case = " · ".join(p for p in (notice.record_number, notice.task_label) if p)
    subject = f"{what}: {notice.task_name}" + (f" ({case})" if case else "")
    due = f"Due: {notice.due_at:%Y-%m-%d %H:%M} UTC\n" if notice.due_at else ""
    return Message(subject, f"{subject}\n\n{due}{notice.url}\n")


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 1, 2, 4, 8 … minutes, at most 6 h."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


class Sender:
    """The two channels, as configured."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def email(self, notice: Notice, message: Message) -> None:
        d = self.delivery
        if d.smtp_host is None or not notice.email:
            raise RuntimeError("no SMTP server or no address")
        mail = EmailMessage()
        mail["From"] = d.smtp_from
        mail["To"] = formataddr((notice.display_name, notice.email))
        mail["Subject"] = message.subject
        # One id per notification: a receiving server can tell a resend of it.
        mail["Message-ID"] = make_msgid(f"csi-notification-{notice.id}")
        mail.set_content(message.body)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if d.smtp_ssl:
            smtp = smtplib.SMTP_SSL(
                d.smtp_host, d.smtp_port, timeout=d.smtp_timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(d.smtp_host, d.smtp_port, timeout=d.smtp_timeout)
        with smtp:
            if d.smtp_starttls:
                smtp.starttls(context=context)
            if d.smtp_user:
                smtp.login(d.smtp_user, d.smtp_password or "")
            smtp.send_message(mail)

    def webhook(self, notice: Notice, message: Message) -> None:
        d = self.delivery
        if d.webhook_url is None:
            raise RuntimeError("no webhook configured")
        body = {
            "id": notice.id,
            "kind": notice.kind,
            "recipient": notice.recipient,
            "recipient_name": notice.display_name,
            "subject": message.subject,
            "url": notice.url,
            "task": {
                "id": notice.task_id,
                "name": notice.task_name,
                "label": notice.task_label,
                "instance_id": notice.instance_id,
                "record_number": notice.record_number,
                "due_at": notice.due_at.isoformat() if notice.due_at else None,
            },
            # The shape enterprise chat robots read (WeCom, DingTalk): a text message.
            "msgtype": "text",
            "text": {"content": f"{message.subject}\n{notice.url}"},
        }
        request = urllib.request.Request(  # noqa: S310 (the URL is checked to be http(s) in settings)
            d.webhook_url,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=d.webhook_timeout) as answer:  # noqa: S310
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"the webhook answered {answer.status}")


@dataclass
class Delivered:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    off: int = 0


def _columns(channel: str) -> tuple[Any, Any, Any, Any, Any]:
    n = Notification
    if channel == EMAIL:
        return n.email_status, n.email_attempts, n.email_next_at, n.email_sent_at, n.email_error
    return (
        n.webhook_status,
        n.webhook_attempts,
        n.webhook_next_at,
        n.webhook_sent_at,
        n.webhook_error,
    )


def _switch_off(session: Session, channel: str, reason: str) -> int:
    status, *_, error = _columns(channel)
    result = session.execute(
        update(Notification).where(status == "pending").values({status: "off", error: reason})
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def _notice(session: Session, row: Notification, base_url: str) -> tuple[Notice, User | None, bool]:
    user = session.scalar(select(User).where(User.username == row.recipient))
    task = session.get(HumanTask, row.task_id) if row.task_id else None
    number = (
        session.scalar(select(Record.number).where(Record.instance_id == row.instance_id))
        if row.instance_id is not None
        else None
    )
    notice = Notice(
        id=row.id,
        kind=row.kind,
        recipient=row.recipient,
        display_name=(user.display_name if user else "") or row.recipient,
        email=user.email if user else None,
        locale=user.locale if user else None,
        url=base_url + row.link,
        task_id=row.task_id,
        task_name=task.name if task else "",
        task_label=task.label if task else "",
        bpmn_id=task.bpmn_id if task else None,
        due_at=task.due_at if task else None,
        instance_id=row.instance_id,
        record_number=number,
        created_at=row.created_at,
    )
    return notice, user, row.task_id is None or (task is not None and task.status == "open")


def _why_not_email(user: User | None) -> str | None:
    if user is None or not user.active:
        return "the recipient is not an active user"
    if not user.email_notifications:
        return "the recipient switched e-mail notifications off"
    if not user.email:
        return "the recipient has no e-mail address"
    return None


def deliver_one(
    session: Session,
    channel: str,
    now: datetime,
    delivery: Delivery,
    sender: Sender,
    compose: Composer,
    tally: Delivered,
) -> bool:
    """Claim, send and mark one due row of `channel`; False when none is due."""
    status, attempts, next_at, sent_at, error = _columns(channel)
    row = session.scalar(
        select(Notification)
        .where(status == "pending", next_at <= now)
        .order_by(next_at, Notification.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return False
    notice, user, task_open = _notice(session, row, delivery.base_url)
    values: dict[Any, Any]
    # A task done or gone before its notice could go out needs no one any more.
    reason = None if task_open else "the task is no longer open"
    if reason is None and channel == EMAIL:
        reason = _why_not_email(user)
    if reason is not None:
        values = {status: "off", error: reason}
        tally.off += 1
    else:
        tries = (getattr(row, attempts.key) or 0) + 1
        try:
            message = compose(notice)
            (sender.email if channel == EMAIL else sender.webhook)(notice, message)
        except Exception as exc:  # any failure of the far side: tried again later
            log.warning("%s of notification %s failed: %s", channel, row.id, exc)
            gave_up = tries >= delivery.max_attempts
            values = {
                attempts: tries,
                error: f"{type(exc).__name__}: {exc}"[:2000],
                status: "failed" if gave_up else "pending",
                next_at: now + backoff(tries),
            }
            if gave_up:
                tally.failed += 1
            else:
                tally.retrying += 1
        else:
            values = {attempts: tries, status: "sent", sent_at: now, error: None}
            tally.sent += 1
    session.execute(update(Notification).where(Notification.id == row.id).values(values))
    return True


def deliver(
    transaction: Callable[[], Any],
    now: datetime,
    delivery: Delivery,
    compose: Composer,
    sender: Sender | None = None,
) -> Delivered:
    """Deliver what is due at `now` on every configured channel; a channel that is not
    configured is switched off on the pending rows."""
    sender = sender or Sender(delivery)
    tally = Delivered()
    with transaction() as session:
        if delivery.smtp_host is None:
            tally.off += _switch_off(session, EMAIL, "no SMTP server is configured")
        if delivery.webhook_url is None:
            tally.off += _switch_off(session, WEBHOOK, "no webhook is configured")
    for channel, configured in ((EMAIL, delivery.smtp_host), (WEBHOOK, delivery.webhook_url)):
        if configured is None:
            continue
        for _ in range(PER_PASS):
            with transaction() as session:
                if not deliver_one(session, channel, now, delivery, sender, compose, tally):
                    break
    return tally
