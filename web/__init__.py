"""Flask app factory: one blueprint per area; the engine's front door on `app.extensions`.

Routes parse input, call one engine function (a command of `Runtime` or a read of
`Runtime.queries`), and render. They never open a database session: the engine's
read side answers with plain view objects, and the access policy decides.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from engine import passwords
from engine.access import Policy
from engine.attachments.store import AttachmentStore
from engine.pack import Pack, load
from engine.queries.reader import Queries
from engine.runtime import Runtime
from engine.settings import LOCALES, Settings, secret_key_problem


@dataclass
class Backend:
    """What a request needs of the engine; built once per app."""

    runtime: Runtime

    @property
    def queries(self) -> Queries:
        return self.runtime.queries

    @property
    def policy(self) -> Policy:
        return self.runtime.policy

    @property
    def pack(self) -> Pack:
        return self.runtime.pack


def backend() -> Backend:
    found: Backend = current_app.extensions["csi"]
    return found


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    if settings.production:
        raise RuntimeError("SECRET_KEY must be set outside development")
    # Development: one random key kept beside the SQLite file, so sessions survive restarts.
    path = settings.ensure_instance_path() / "secret_key"
    if not path.exists():
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


def select_locale() -> str:
    chosen = session.get("locale")
    if chosen in LOCALES:
        return str(chosen)
    if current_user and getattr(current_user, "is_authenticated", False):
        locale = getattr(current_user, "locale", None)
        if locale in LOCALES:
            return str(locale)
    return str(current_app.config["CSI_LOCALE"])


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per process and shared by every app it makes (the
    embedded worker's, a test's): compiling them is most of a first page's cost."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._compiled[bucket.key] = code


_COMPILED_TEMPLATES = _CompiledTemplates()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = Settings.from_env()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.jinja_options = {**app.jinja_options, "bytecode_cache": _COMPILED_TEMPLATES}
    app.config.update(
        ENV_PRODUCTION=settings.production,
        CSI_LOCALE=settings.locale,
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Production is served over HTTPS: the cookies never travel in clear.
        SESSION_COOKIE_SECURE=settings.production,
        REMEMBER_COOKIE_SECURE=settings.production,
        REMEMBER_COOKIE_HTTPONLY=True,
        # A form's CSRF token is good for a working day after the page was shown.
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        API_TOKEN_MAX_AGE=12 * 3600,
        LOGIN_LIMIT_USER=settings.login_limit_user,
        LOGIN_LIMIT_ADDRESS=settings.login_limit_address,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage,
        PROXIES=settings.proxies,
        EMBEDDED_WORKER=False,
        WORKER_INTERVAL=5.0,
        DATABASE_URL=settings.database_url,
        PACK=settings.pack,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings)
    if app.config["ENV_PRODUCTION"] and (problem := secret_key_problem(app.config["SECRET_KEY"])):
        raise RuntimeError(problem)
    passwords.prepare()
    configured = app.config["PACK"]
    pack = configured if isinstance(configured, Pack) else load(configured)
    options: dict[str, Any] = {"clock": app.config["CLOCK"]} if app.config.get("CLOCK") else {}
    # Tests (and embedders) may hand in a folder and limits of their own.
    store = settings.attachment_store()
    options["attachments"] = AttachmentStore(
        Path(app.config.get("ATTACHMENTS_DIR") or store.root),
        app.config.get("ATTACHMENT_LIMITS") or store.limits,
    )
    if app.config.get("DATABASE") is not None:  # tests hand in theirs
        runtime = Runtime(app.config["DATABASE"], pack, **options)
    else:
        runtime = Runtime.from_settings(
            replace(settings, database_url=app.config["DATABASE_URL"]), pack, **options
        )
    app.extensions["csi"] = Backend(runtime)
    from web.notifications import composer

    runtime.composer = composer(app)

    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    login = LoginManager(app)
    login.login_view = "auth.login"

    from web import (
        admin,
        api,
        attachments,
        audit,
        auth,
        dashboard,
        errors,
        form_preview,
        improvements,
        inbox,
        inputs,
        instances,
        metrics,
        modeler,
        models,
        notifications,
        schedules,
        security,
        tasks,
        ui,
    )

    inputs.install(app)
    login.user_loader(auth.load_user)
    for blueprint in (
        auth.bp,
        inbox.bp,
        tasks.bp,
        instances.bp,
        improvements.bp,
        audit.bp,
        admin.bp,
        api.bp,
        models.bp,
        form_preview.bp,
        modeler.bp,
        attachments.bp,
        dashboard.bp,
        metrics.bp,
        schedules.bp,
        notifications.bp,
    ):
        app.register_blueprint(blueprint)
    errors.register(app)
    ui.install(app)
    security.install(app)

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
    """`make run` serves and runs the worker from one command: a daemon thread runs its
    pass (engine.commands.worker) every interval."""
    runtime = app.extensions["csi"].runtime
    interval = float(app.config["WORKER_INTERVAL"])
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                runtime.worker_pass()
            except Exception:  # keep polling: one bad instance must not stop the worker
                app.logger.exception("worker pass failed")

    thread = threading.Thread(target=loop, name="csi-worker", daemon=True)
    thread.start()
    app.extensions["csi_worker_stop"] = stop
    return thread
