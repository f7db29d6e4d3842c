"""User administration pages: Admin only, CSRF on, validation as 422."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.database import Database
from engine.persistence.models import User
from tests.helpers import html
from tests.helpers.pages import client_for, csrf_token, login


@pytest.fixture
def admin(app: Any) -> Any:
    return client_for(app, "admin")


def user_id(db: Database, username: str) -> int:
    with db.sessions() as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


def role_badges(row: Any) -> list[tuple[str, str]]:
    """(zh, en) of each role badge in a user row."""
    return [
        (
            html.text_of(html.select_one(b, '[lang="zh-CN"]')),
            html.text_of(html.select_one(b, '[lang="en"]')),
        )
        for b in html.select(row, ".role-badge")
    ]


def test_user_list_shows_roles_in_both_languages(admin: Any) -> None:
    response = admin.get("/admin/users")
    doc = html.page(response)
    assert response.status_code == 200
    assert role_badges(html.select_one(doc, 'tr[data-username="auditor"]')) == [
        ("审计员", "Auditor")
    ]
    owner = html.select_one(doc, 'tr[data-username="owner"]')
    assert ("服务改进负责人", "Improvement owner") in role_badges(owner)


def test_admin_creates_a_user_who_can_log_in(app: Any, admin: Any, db: Database) -> None:
    response = admin.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_token(admin, "/admin/users/new"),
            "username": "po3",
            "display_name": "孙工 (流程负责人)",
            "roles": ["ProcessOwner", "ChangeImplementer"],
            "active": "on",
            "password": "s3cret-pass",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/admin/users"
    row = html.select_one(html.page(admin.get("/admin/users")), 'tr[data-username="po3"]')
    assert "孙工 (流程负责人)" in html.texts(row, "td")
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == "po3"))
        assert user is not None
        assert user.roles == ["ProcessOwner", "ChangeImplementer"]

    client = app.test_client()
    assert login(client, "po3", "s3cret-pass").status_code == 302
    assert "孙工" in html.text_of(
        html.select_one(html.page(client.get("/")), ".topbar .user strong")
    )
    assert client.get("/admin/users").status_code == 403


def test_invalid_new_user_is_422_with_errors(admin: Any) -> None:
    token = csrf_token(admin, "/admin/users/new")
    response = admin.post(
        "/admin/users/new",
        data={"csrf_token": token, "username": "owner", "roles": ["Nope"], "password": "short"},
    )
    doc = html.page(response)
    assert response.status_code == 422
    assert "该用户名已被占用" in html.text_of(html.select_one(doc, "#f-username-errors"))
    assert "密码至少需要 8 个字符" in html.text_of(html.select_one(doc, "#f-password-errors"))


def test_post_without_csrf_is_400(admin: Any) -> None:
    response = admin.post("/admin/users/new", data={"username": "x1", "password": "12345678"})
    assert response.status_code == 400


def test_admin_edits_a_user_and_deactivation_stops_log_in(
    app: Any, admin: Any, db: Database
) -> None:
    uid = user_id(db, "po2")
    form = html.page(admin.get(f"/admin/users/{uid}"))
    assert (
        html.select_one(form, 'input[name="roles"][value="ProcessOwner"]').get("checked")
        is not None
    )
    response = admin.post(
        f"/admin/users/{uid}",
        data={
            "csrf_token": csrf_token(admin, f"/admin/users/{uid}"),
            "display_name": "赵工",
            "roles": ["ProcessOwner"],
            "password": "",
        },
    )
    assert response.status_code == 302
    with db.sessions() as session:
        user = session.get(User, uid)
        assert user.display_name == "赵工"
        assert user.active is False
    assert login(app.test_client(), "po2").status_code == 401


def test_new_password_is_optional_but_at_least_8(app: Any, admin: Any, db: Database) -> None:
    uid = user_id(db, "po1")
    url = f"/admin/users/{uid}"
    base = {"display_name": "张工", "roles": ["ProcessOwner"], "active": "on"}
    short = admin.post(url, data={**base, "csrf_token": csrf_token(admin, url), "password": "1234"})
    assert short.status_code == 422
    ok = admin.post(
        url, data={**base, "csrf_token": csrf_token(admin, url), "password": "new-pass-1"}
    )
    assert ok.status_code == 302
    assert login(app.test_client(), "po1", "new-pass-1").status_code == 302


def test_admin_cannot_demote_or_deactivate_self(admin: Any, db: Database) -> None:
    uid = user_id(db, "admin")
    url = f"/admin/users/{uid}"
    response = admin.post(
        url,
        data={
            "csrf_token": csrf_token(admin, url),
            "display_name": "系统管理员",
            "roles": ["Auditor"],
            "password": "",
        },
    )
    errors = html.texts(html.page(response), ".field-errors li")
    assert response.status_code == 422
    assert any("不能移除自己的系统管理员角色" in e for e in errors)
    assert any("不能停用自己" in e for e in errors)
    with db.sessions() as session:
        user = session.get(User, uid)
        assert "Admin" in user.roles
        assert user.active
    assert admin.get("/admin/users").status_code == 200


@pytest.mark.parametrize("username", ["owner", "auditor", "manager"])
def test_non_admins_get_403(app: Any, db: Database, username: str) -> None:
    client = client_for(app, username)
    uid = user_id(db, "po1")
    for url in ("/admin/users", "/admin/users/new", f"/admin/users/{uid}"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client, "/")
    assert client.post("/admin/users/new", data={"csrf_token": token}).status_code == 403
    assert not any("/admin/users" in url for url in html.urls(html.page(client.get("/"))))


def test_unauthenticated_is_sent_to_log_in(client: Any) -> None:
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
