"""Production mode (`CSI_ENV=production`) and what holds everywhere: the demo password
signs nobody in, a weak secret key is refused, one password policy, Secure cookies,
security headers on every response, and a new SQLite file only its owner can read."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.access import Actor
from engine.errors import ValidationFailed
from engine.persistence.database import Database
from engine.runtime import Runtime
from engine.settings import Settings
from tests.helpers.pages import login

STRONG_KEY = "4c1f9e0b7a2d58e63b9c0f1a7d2e4b86"
TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


@pytest.fixture
def production(db: Database, monkeypatch: pytest.MonkeyPatch) -> Any:
    from web import create_app

    monkeypatch.setenv("CSI_ENV", "production")
    return create_app({"SECRET_KEY": STRONG_KEY, "DATABASE": db, "DATABASE_URL": db.url})


def test_the_demo_password_signs_nobody_in_in_production(
    production: Any, rt: Runtime, actors: dict[str, Actor]
) -> None:
    client = production.test_client()
    assert login(client, "owner", "demo").status_code == 401
    refused = client.post("/api/v1/auth/token", json={"username": "owner", "password": "demo"})
    assert refused.status_code == 401

    rt.update_user(
        actors["admin"],
        next(u.id for u in rt.queries.users(actors["admin"]) if u.username == "owner"),
        display_name="owner",
        roles=["ImprovementOwner"],
        active=True,
        password="owner-pass-1",
    )
    assert login(client, "owner", "owner-pass-1").status_code == 302


def test_production_cookies_are_secure_and_hsts_is_sent(app: Any, production: Any) -> None:
    # `app` (development) is made first, before `production` sets CSI_ENV
    signed_in = login(production.test_client(), "admin", "admin-pass-1")  # refused, but a page
    assert signed_in.headers["Strict-Transport-Security"].startswith("max-age=")
    cookies = signed_in.headers.getlist("Set-Cookie")
    assert cookies
    assert all(re.search(r";\s*Secure", c) for c in cookies), cookies

    development = login(app.test_client(), "admin", "demo")
    assert "Strict-Transport-Security" not in development.headers
    assert not any("Secure" in c for c in development.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("key", ["x", "s3cret", "a" * 64, "abababababababababababababababab"])
def test_a_weak_secret_key_is_refused_in_production(
    db: Database, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    from web import create_app

    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings.from_env({"CSI_ENV": "production", "SECRET_KEY": key})
    monkeypatch.setenv("CSI_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SECRET_KEY": key, "DATABASE": db, "DATABASE_URL": db.url})
    assert Settings.from_env({"CSI_ENV": "production", "SECRET_KEY": STRONG_KEY}).production


def test_one_password_policy_for_every_way_a_password_is_set(
    rt: Runtime, actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    with pytest.raises(ValidationFailed) as short:
        rt.create_user(
            admin, username="carol", display_name="", roles=[], active=True, password="a"
        )
    assert short.value.details == {"password": ["too_short"]}
    with pytest.raises(ValidationFailed) as same:
        rt.create_user(
            admin, username="carol123", display_name="", roles=[], active=True, password="carol123"
        )
    assert same.value.details == {"password": ["same_as_username"]}
    po1 = next(u.id for u in rt.queries.users(admin) if u.username == "po1")
    with pytest.raises(ValidationFailed):
        rt.update_user(
            admin, po1, display_name="", roles=["ProcessOwner"], active=True, password="a"
        )
    with pytest.raises(ValueError, match="at least 8 characters"):
        rt.upsert_user("carol", "a", ["ProcessOwner"], "")


def test_every_response_carries_the_security_headers(client: Any) -> None:
    responses = {
        "page": client.get("/login"),
        "static file": client.get("/static/css/app.css"),
        "API error": client.get("/api/v1/tasks"),
        "not found": client.get("/no-such-page"),
        "redirect": client.get("/"),
    }
    for what, response in responses.items():
        headers = response.headers
        policy = headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy, what
        assert "frame-ancestors 'none'" in policy, what
        assert "unsafe-inline" not in policy, what
        assert headers.get("X-Frame-Options") == "DENY", what
        assert headers.get("X-Content-Type-Options") == "nosniff", what
        assert headers.get("Referrer-Policy") == "same-origin", what
        assert "Strict-Transport-Security" not in headers, what  # development: plain HTTP


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_need_no_inline_script_or_style(template: str) -> None:
    """The CSP allows only our own files: a template with an inline script, a style
    attribute or an event handler attribute would break under it."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"<style\b", text), "<style> element"
    assert not re.search(r"\sstyle\s*=", text), "style attribute"
    assert not re.search(r"\son[a-z]+\s*=", text), "event handler attribute"
    assert "javascript:" not in text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_instance_folder_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web import create_app

    monkeypatch.setenv("CSI_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("DATABASE_URL", "SECRET_KEY", "CSI_ENV"):
        monkeypatch.delenv(name, raising=False)
    runtime = Runtime.from_settings(Settings.from_env())
    runtime.init_database()
    runtime.db.dispose()
    database = tmp_path / "instance" / "csi.sqlite3"
    assert mode(database) == 0o600
    assert mode(database.parent) == 0o700
    for journal in database.parent.glob("csi.sqlite3-*"):  # SQLite's WAL files follow
        assert mode(journal) & 0o077 == 0, journal.name

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'x.db'}")
    Runtime.from_settings(Settings.from_env()).db.dispose()
    assert mode(tmp_path / "data" / "x.db") == 0o600
    assert mode(tmp_path / "data") == 0o700

    create_app()  # in development it makes a secret key beside the database
    assert mode(tmp_path / "instance" / "secret_key") == 0o600
