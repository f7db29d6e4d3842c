"""Guessing passwords is throttled: failed sign-ins on the page and the API count
together per username and per client address; once a limit is used up even the right
password waits (429: the log-in page, or the API's JSON error). And a sign-in costs the
same one hash check of the production method whether the user exists or not."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.security import check_password_hash

from engine import passwords
from engine.access import Actor
from engine.runtime import Runtime
from tests.helpers import html
from tests.helpers.pages import login


@pytest.fixture
def limited(app: Any) -> Any:
    """The app with limits low enough to reach in a few requests."""
    app.config.update(LOGIN_LIMIT_USER="3 per hour", LOGIN_LIMIT_ADDRESS="100 per hour")
    return app


def token(client: Any, username: str, password: str, address: str = "127.0.0.1") -> Any:
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_sign_ins_per_user_lock_that_user_out_for_a_while(limited: Any) -> None:
    client = limited.test_client()
    assert login(client, "po1", "wrong-1").status_code == 401
    assert token(client, "po1", "wrong-2").status_code == 401  # the API counts too
    assert login(client, "po1", "wrong-3").status_code == 401

    page = login(client, "po1", "demo")
    assert page.status_code == 429
    doc = html.page(page)
    assert "登录失败次数过多" in html.text_of(html.select_one(doc, ".flashes .alert-error"))
    assert html.select(doc, 'form[action^="/login"] input[name="password"]')
    assert int(page.headers["Retry-After"]) > 0

    api = token(client, "po1", "demo")
    assert api.status_code == 429
    assert api.json["error"] == "too_many_requests"
    assert set(api.json) == {"error", "message", "details"}

    # another user, from the same address, is not held up
    assert login(limited.test_client(), "po2", "demo").status_code == 302


def test_successful_sign_ins_do_not_count(limited: Any) -> None:
    for _ in range(5):
        assert token(limited.test_client(), "po1", "demo").status_code == 200


def test_failed_sign_ins_per_address_hold_up_that_address(app: Any) -> None:
    app.config.update(LOGIN_LIMIT_USER="100 per hour", LOGIN_LIMIT_ADDRESS="3 per hour")
    client = app.test_client()
    for name in ("po1", "po2", "nobody"):
        assert token(client, name, "wrong", address="10.0.0.7").status_code == 401
    assert token(client, "owner", "demo", address="10.0.0.7").status_code == 429
    assert token(client, "owner", "demo", address="10.0.0.8").status_code == 200


def test_unknown_deactivated_and_known_users_cost_one_production_hash_each(
    app: Any, rt: Runtime, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing without a stopwatch: each failed sign-in checks exactly one hash, and the
    stand-in for a missing user is made the way real passwords are."""
    admin = actors["admin"]
    for name, active in (("alice", True), ("bob", False)):
        rt.create_user(
            admin, username=name, display_name=name, roles=[], active=active, password="pw-" * 4
        )
    checked: list[str] = []

    def counting(stored: str, password: str) -> bool:
        checked.append(stored.split("$")[0])  # the method and its cost parameters
        return check_password_hash(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting)
    method = passwords.hash_password("anything").split("$")[0]
    client = app.test_client()
    for name, password in (("nobody", "pw-pw-pw-pw-"), ("bob", "pw-pw-pw-pw-"), ("alice", "x" * 8)):
        checked.clear()
        assert token(client, name, password).status_code == 401
        assert checked == [method], name
