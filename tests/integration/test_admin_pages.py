"""User administration pages: Admin only, CSRF on, validation as 422."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.store import Database, User
from tests.helpers.pages import client_for, csrf_token, login


@pytest.fixture
def admin(app: Any) -> Any:
    return client_for(app, "admin")


def user_id(db: Database, username: str) -> int:
    with db.sessions() as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


def test_user_list_shows_roles_in_both_languages(admin: Any) -> None:
    response = admin.get("/admin/users")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-username="auditor"' in html
    assert "审计员" in html and "Auditor" in html
    assert "服务改进负责人" in html and "Improvement owner" in html


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
    html = admin.get("/admin/users").get_data(as_text=True)
    assert 'data-username="po3"' in html and "孙工 (流程负责人)" in html
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == "po3"))
        assert user is not None and user.roles == ["ProcessOwner", "ChangeImplementer"]

    client = app.test_client()
    assert login(client, "po3", "s3cret-pass").status_code == 302
    assert "孙工" in client.get("/").get_data(as_text=True)
    assert client.get("/admin/users").status_code == 403


def test_invalid_new_user_is_422_with_errors(admin: Any) -> None:
    token = csrf_token(admin, "/admin/users/new")
    response = admin.post(
        "/admin/users/new",
        data={"csrf_token": token, "username": "owner", "roles": ["Nope"], "password": "short"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "该用户名已被占用" in html
    assert "密码至少需要 8 个字符" in html
    assert 'id="f-username-errors"' in html and 'id="f-password-errors"' in html


def test_post_without_csrf_is_400(admin: Any) -> None:
    response = admin.post("/admin/users/new", data={"username": "x1", "password": "12345678"})
    assert response.status_code == 400


def test_admin_edits_a_user_and_deactivation_stops_log_in(
    app: Any, admin: Any, db: Database
) -> None:
    uid = user_id(db, "po2")
    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert 'value="ProcessOwner" checked' in page
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
        assert user.display_name == "赵工" and user.active is False
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
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "不能移除自己的系统管理员角色" in html
    assert "不能停用自己" in html
    with db.sessions() as session:
        user = session.get(User, uid)
        assert "Admin" in user.roles and user.active
    assert admin.get("/admin/users").status_code == 200


@pytest.mark.parametrize("username", ["owner", "auditor", "manager"])
def test_non_admins_get_403(app: Any, db: Database, username: str) -> None:
    client = client_for(app, username)
    uid = user_id(db, "po1")
    for url in ("/admin/users", "/admin/users/new", f"/admin/users/{uid}"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client, "/")
    assert client.post("/admin/users/new", data={"csrf_token": token}).status_code == 403
    assert "/admin/users" not in client.get("/").get_data(as_text=True)


def test_unauthenticated_is_sent_to_log_in(client: Any) -> None:
    response = client.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
