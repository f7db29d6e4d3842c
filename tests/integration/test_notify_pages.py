"""The pages of schedules and notifications: administrators keep schedules and see
undelivered notices; everyone reads their notices, sets their e-mail, and sees their
open and overdue tasks in the header."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.database import Database
from engine.persistence.models import ReviewSchedule, User
from engine.runtime import Runtime
from tests.cycle import REGISTER
from tests.helpers import html
from tests.helpers.actors import actors_of
from tests.helpers.clock import FakeClock
from tests.helpers.pages import client_for, csrf_token


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(db: Database, tmp_path: Path, clock: FakeClock) -> Any:
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "WTF_CSRF_ENABLED": True,
            "CLOCK": clock,
        }
    )
    app.instance_path = str(tmp_path)
    return app


def _po1_task(rt: Runtime, db: Database) -> str:
    actors = actors_of(db)
    started = rt.start_instance(actors["owner"])
    register = rt.queries.inbox(actors["owner"], started.instance_id)[0]
    rt.complete_task(register.id, actors["owner"], REGISTER)
    return rt.queries.inbox(actors["po1"], started.instance_id)[0].id


def test_an_administrator_keeps_schedules_and_others_may_not(app: Any, db: Database) -> None:
    admin = client_for(app, "admin")
    url = "/admin/schedules/new"
    form = {
        "csrf_token": csrf_token(admin, url),
        "name": "季度服务改进评审",
        "process_id": "service_improvement",
        "period": "R/2027-01-01T00:00:00+08:00/PT1H",
        "owner": "owner",
        "process_owners": ["po1", "po2"],
        "active": "on",
    }
    refused = admin.post(url, data=form)
    assert refused.status_code == 422
    assert html.select(html.page(refused), "#f-period-errors li")
    saved = admin.post(url, data={**form, "period": "quarterly"})
    assert saved.status_code == 302
    with db.sessions() as session:
        schedule = session.scalar(select(ReviewSchedule))
        assert schedule is not None
        assert schedule.recurrence.endswith("/P3M")
        assert schedule.process_owners == ["po1", "po2"]
    listed = html.page(admin.get("/admin/schedules"))
    row = html.select_one(listed, f'tr[data-schedule="{schedule.id}"]')
    assert "季度服务改进评审" in html.text_of(row)
    off = admin.post(
        f"/admin/schedules/{schedule.id}/active",
        data={"csrf_token": csrf_token(admin, "/admin/schedules"), "active": "0"},
    )
    assert off.status_code == 302
    with db.sessions() as session:
        assert session.get(ReviewSchedule, schedule.id).active is False  # type: ignore[union-attr]
    edit = html.page(admin.get(f"/admin/schedules/{schedule.id}"))
    assert html.select_one(edit, "#f-period").get("value") == "quarterly"
    assert admin.get("/admin/notifications").status_code == 200

    owner = client_for(app, "owner")
    assert owner.get("/admin/schedules").status_code == 403
    assert owner.get("/admin/notifications").status_code == 403


def test_the_header_counts_my_open_and_overdue_tasks_and_lists_my_notices(
    app: Any, db: Database, clock: FakeClock
) -> None:
    rt: Runtime = app.extensions["csi"].runtime
    task_id = _po1_task(rt, db)
    po1 = client_for(app, "po1")
    page = html.page(po1.get("/"))
    assert html.select_one(page, "[data-open-tasks]").get("data-open-tasks") == "1"
    assert html.select(page, "[data-overdue-tasks]") == []
    assert html.select_one(page, "[data-unread]").get("data-unread") == "1"

    clock.advance(timedelta(days=6))  # propose_metrics is due in five days
    page = html.page(po1.get("/"))
    assert html.select_one(page, "[data-overdue-tasks]").get("data-overdue-tasks") == "1"
    rt.worker_pass(clock())  # the overdue notice
    notices = html.page(po1.get("/notifications"))
    rows = html.select(notices, "tr[data-notice]")
    assert sorted(r.get("data-kind") for r in rows) == ["overdue", "task_arrived"]
    assert {a.get("href") for a in html.select(notices, "tr[data-notice] a")} == {
        f"/tasks/{task_id}"
    }
    po1.post("/notifications/read", data={"csrf_token": csrf_token(po1, "/notifications")})
    assert html.select(html.page(po1.get("/")), "[data-unread]") == []


def test_everyone_sets_their_own_e_mail_and_administrators_anyone_s(app: Any, db: Database) -> None:
    po1 = client_for(app, "po1")
    bad = po1.post(
        "/settings",
        data={"csrf_token": csrf_token(po1, "/settings"), "email": "not an address"},
    )
    assert bad.status_code == 422
    saved = po1.post(
        "/settings",
        data={"csrf_token": csrf_token(po1, "/settings"), "email": "li.gong@example.org"},
    )
    assert saved.status_code == 302
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == "po1"))
        assert user is not None
        assert (user.email, user.email_notifications) == ("li.gong@example.org", False)
        po1_id = user.id

    admin = client_for(app, "admin")
    url = f"/admin/users/{po1_id}"
    form = html.page(admin.get(url))
    assert html.select_one(form, "#f-email").get("value") == "li.gong@example.org"
    admin.post(
        url,
        data={
            "csrf_token": csrf_token(admin, url),
            "display_name": "李工",
            "roles": ["ProcessOwner"],
            "active": "on",
            "email": "po1@example.net",
        },
    )
    with db.sessions() as session:
        user = session.get(User, po1_id)
        assert user is not None
        assert user.email == "po1@example.net"


def test_the_app_words_the_mail_in_the_recipient_s_language(
    app: Any, db: Database, clock: FakeClock
) -> None:
    from engine.settings import Delivery
    from tests.helpers.receivers import smtp_server

    rt: Runtime = app.extensions["csi"].runtime
    with db.transaction() as session:
        po2 = session.scalar(select(User).where(User.username == "po2"))
        assert po2 is not None
        po2.locale = "en"
    with smtp_server() as (mailbox, port):
        rt.ctx.delivery = Delivery(
            smtp_host="127.0.0.1", smtp_port=port, base_url="https://csi.example"
        )
        task_id = _po1_task(rt, db)
        rt.worker_pass(clock())
    [to_po1] = mailbox.to("po1@example.com")
    assert "提出度量指标" in to_po1["Subject"]
    assert f"https://csi.example/tasks/{task_id}" in to_po1.get_content()
    [to_po2] = mailbox.to("po2@example.com")
    assert to_po2["Subject"].startswith("New task: ")
    assert "提出度量指标" not in to_po2["Subject"]  # the form's English title
    assert "My settings" in to_po2.get_content()
