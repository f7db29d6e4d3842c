"""Flask app factory: one blueprint per area, the engine's services on `app.extensions`."""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, g, request, session
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from engine.runtime import Runtime
from engine.store import Database, utcnow

LOCALES = ("zh_CN", "en")


@dataclass
class Services:
    """What a request needs from the engine; built once per app."""

    db: Database
    runtime: Runtime


def services() -> Services:
    from flask import current_app

    return current_app.extensions["csi"]


def _secret_key(app: Flask) -> str:
    configured = os.environ.get("SECRET_KEY")
    if configured:
        return configured
    if app.config.get("ENV_PRODUCTION"):
        raise RuntimeError("SECRET_KEY must be set outside development")
    # Development: one random key kept beside the SQLite file, so sessions survive restarts.
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def default_database_url(app: Flask) -> str:
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(app.instance_path) / 'csi.sqlite3'}"


def select_locale() -> str:
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    if current_user and getattr(current_user, "is_authenticated", False):
        locale = getattr(current_user, "locale", None)
        if locale in LOCALES:
            return locale
    from flask import current_app

    return current_app.config["CSI_LOCALE"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("CSI_INSTANCE_PATH") or None)
    app.config.update(
        ENV_PRODUCTION=os.environ.get("CSI_ENV") == "production",
        CSI_LOCALE=os.environ.get("CSI_LOCALE", "zh_CN"),
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_DEFAULT_TIMEZONE=os.environ.get("CSI_TIMEZONE", "Asia/Shanghai"),
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        API_TOKEN_MAX_AGE=12 * 3600,
        EMBEDDED_WORKER=False,
        WORKER_INTERVAL=5.0,
    )
    if config:
        app.config.update(config)
    app.config.setdefault(
        "DATABASE_URL", os.environ.get("DATABASE_URL") or default_database_url(app)
    )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)

    db = app.config.get("DATABASE") or Database(app.config["DATABASE_URL"])
    clock = app.config.get("CLOCK") or utcnow
    app.extensions["csi"] = Services(db=db, runtime=Runtime(db, clock=clock))

    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    login = LoginManager(app)
    login.login_view = "auth.login"

    from web import admin, api, audit, auth, errors, inbox, instances, tasks

    login.user_loader(auth.load_user)
    app.register_blueprint(auth.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(instances.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    errors.register(app)

    @app.before_request
    def _remember_locale_choice() -> None:
        chosen = request.args.get("lang")
        if chosen in LOCALES:
            session["locale"] = chosen
        g.locale = select_locale()

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        return {"current_locale": g.get("locale", app.config["CSI_LOCALE"])}

    if app.config["EMBEDDED_WORKER"]:
        start_embedded_worker(app)
    return app


def start_embedded_worker(app: Flask) -> threading.Thread:
    """`make run` serves and fires timers from one command: a daemon thread polls."""
    runtime: Runtime = app.extensions["csi"].runtime
    interval = float(app.config["WORKER_INTERVAL"])
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                runtime.fire_due_timers()
            except Exception:  # keep polling: one bad instance must not stop timers
                app.logger.exception("timer pass failed")

    thread = threading.Thread(target=loop, name="csi-timers", daemon=True)
    thread.start()
    app.extensions["csi_worker_stop"] = stop
    return thread
