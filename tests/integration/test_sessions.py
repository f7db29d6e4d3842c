"""Sessions end when they should: logging out ends that session (a copy of its cookie
signs nobody in), "log out everywhere", a new password and deactivation end every
session and API token of the user, and a form's CSRF token expires."""

from __future__ import annotations

import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from engine.access import Actor
from engine.runtime import Runtime
from tests.helpers import html
from tests.helpers.api import bearer
from tests.helpers.pages import client_for, csrf_token


def cookie_of(client: Any) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)


def with_cookie(app: Any, value: str) -> Any:
    """A new client presenting a copied session cookie, as someone who stole it would."""
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def signed_in(client: Any) -> bool:
    response = client.get("/")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
        return False
    assert response.status_code == 200
    return True


def user_id(rt: Runtime, actors: dict[str, Actor], username: str) -> int:
    [found] = [u.id for u in rt.queries.users(actors["admin"]) if u.username == username]
    return found


def test_logout_ends_that_session_and_only_that_one(app: Any) -> None:
    laptop, phone = client_for(app, "po1"), client_for(app, "po1")
    copied = cookie_of(laptop)
    assert signed_in(with_cookie(app, copied))

    response = laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/")})
    assert response.status_code == 302

    assert not signed_in(laptop)
    assert not signed_in(with_cookie(app, copied))
    assert signed_in(phone)


@pytest.mark.parametrize("ending", ["log out everywhere", "new password", "deactivated"])
def test_every_session_and_token_ends(
    app: Any, rt: Runtime, actors: dict[str, Actor], ending: str
) -> None:
    laptop, phone = client_for(app, "po1"), client_for(app, "po1")
    copied = cookie_of(phone)
    api = app.test_client()
    token = bearer(api, "po1")
    assert api.get("/api/v1/tasks", headers=token).status_code == 200
    other = client_for(app, "po2")

    uid = user_id(rt, actors, "po1")
    if ending == "log out everywhere":
        # Offered on the user's own settings page.
        settings = html.page(laptop.get("/settings"))
        assert html.select(settings, 'form[action="/logout/everywhere"] button')
        response = laptop.post("/logout/everywhere", data={"csrf_token": csrf_token(laptop, "/")})
        assert response.status_code == 302
    else:
        rt.update_user(
            actors["admin"],
            uid,
            display_name="po1",
            roles=["ProcessOwner"],
            active=ending != "deactivated",
            password="a-new-pass-1" if ending == "new password" else None,
        )
    if ending == "deactivated":  # and back: what was issued before stays ended
        rt.update_user(
            actors["admin"], uid, display_name="po1", roles=["ProcessOwner"], active=True
        )

    assert not signed_in(laptop)
    assert not signed_in(phone)
    assert not signed_in(with_cookie(app, copied))
    refused = api.get("/api/v1/tasks", headers=token)
    assert refused.status_code == 401
    assert refused.json["error"] == "unauthorized"
    assert signed_in(other)  # someone else's sessions go on


def test_signing_in_again_after_log_out_everywhere_works(app: Any) -> None:
    client = client_for(app, "po1")
    client.post("/logout/everywhere", data={"csrf_token": csrf_token(client, "/")})
    assert signed_in(client_for(app, "po1"))


def test_a_csrf_token_expires(app: Any) -> None:
    client = client_for(app, "po1")
    csrf_token(client, "/")  # the page puts the session's raw token in place
    with client.session_transaction() as session:
        raw = session["csrf_token"]
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    assert isinstance(limit, int)

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - limit - 60

    stale = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=LongAgo).dumps(raw)
    refused = client.post("/logout", data={"csrf_token": stale})
    assert refused.status_code == 400
    assert signed_in(client)

    fresh = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)
    assert client.post("/logout", data={"csrf_token": fresh}).status_code == 302
    assert not signed_in(client)
