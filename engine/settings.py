"""The settings of one installation, read once from the environment: the web app, the
CLI and the worker all take them from here. Nothing else in engine, web or procedure
reads os.environ for its configuration.

- `DATABASE_URL`: default a SQLite file `csi.sqlite3` in the instance folder;
- `CSI_INSTANCE_PATH`: the instance folder (default `./instance`), which holds the
  SQLite file and, in development, the generated secret key;
- `SECRET_KEY`: required when `CSI_ENV=production`, and strong there (see
  `secret_key_problem`);
- `CSI_ENV`: `production` refuses demo users and the demo password, requires a strong
  secret key, marks cookies Secure and sends HSTS;
- `CSI_LOCALE` (`zh_CN` or `en`), `CSI_TIMEZONE` (default Asia/Shanghai), `PORT`;
- `CSI_PACK`: the procedure pack to run (a module name or a folder; `procedure`);
- `CSI_LOGIN_LIMIT_USER`, `CSI_LOGIN_LIMIT_ADDRESS`: how many failed sign-ins (page and
  API together) one username, and one client address, may make (limits' notation,
  e.g. `5 per minute; 20 per hour`);
- `CSI_RATELIMIT_STORAGE`: where those counts live: `memory://` (default, one worker
  process) or a store every worker shares, e.g. `redis://host:6379`;
- `CSI_PROXIES`: how many reverse proxies in front of the app to trust for the
  client's address and scheme (`X-Forwarded-For`/`-Proto`; default 0).
- `CSI_MAX_REQUEST_BYTES`: the largest request body the web app reads (default 4 MiB,
  room for the largest diagram an upload may carry); a larger one is answered 413
  before it is read.
- `CSI_ATTACHMENTS_DIR`: where attached files are kept, by the sha256 of their content
  (default `attachments` in the instance folder);
- `CSI_ATTACHMENT_MAX_BYTES` (default 8 MiB), `CSI_ATTACHMENTS_PER_TASK` (default 5),
  `CSI_ATTACHMENTS_MAX_TOTAL` (default 16 MiB): the largest file, the most files and
  the most bytes of files one task's submission may carry. A request carrying files
  may be as large as their total allows (base64 in JSON: a third more), whatever
  `CSI_MAX_REQUEST_BYTES` says.

Notifications (the worker delivers them; see engine.notifications):
- `SMTP_HOST` (none: no e-mail, notifications are shown in the app only), `SMTP_PORT`
  (default 587 with STARTTLS, 465 with SSL, else 25), `SMTP_STARTTLS` / `SMTP_SSL`
  (`1`/`true` to use it), `SMTP_USER`, `SMTP_PASSWORD`, `SMTP_FROM` (default
  `csi@<host>`), `SMTP_TIMEOUT` (seconds, default 10);
- `CSI_BASE_URL`: how people reach the app, for the links in messages (default
  `http://127.0.0.1:<PORT>`);
- `CSI_WEBHOOK_URL`: a JSON POST per notification (e.g. a chat robot), none by
  default; `CSI_WEBHOOK_TIMEOUT` (seconds, default 10);
- `CSI_NOTIFY_MAX_ATTEMPTS`: tries per channel before giving up (default 5), with
  waits of 1, 2, 4, 8 … minutes between them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.attachments.store import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_TOTAL_BYTES,
    AttachmentStore,
    Limits,
)
from engine.pack import DEFAULT_PACK

# The languages the pages come in (web/translations holds zh_CN; msgids are English).
LOCALES = ("zh_CN", "en")
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

DEFAULT_LOGIN_LIMIT_USER = "5 per minute; 20 per hour"
DEFAULT_LOGIN_LIMIT_ADDRESS = "20 per minute; 100 per hour"
# Sessions and tokens are signed with the secret key: whoever guesses it signs in as anyone.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
# "5 per minute", "5/minute", "100 per 15 minutes", several joined by ";" or ","
_LIMIT = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$")


def secret_key_problem(key: str | None) -> str | None:
    """Why `key` is too weak to sign sessions in production (None: strong enough)."""
    if not key:
        return "SECRET_KEY must be set in production"
    if len(key) < MIN_SECRET_LENGTH:
        return f"SECRET_KEY must have at least {MIN_SECRET_LENGTH} characters in production"
    if len(set(key)) < MIN_SECRET_DISTINCT:
        return "SECRET_KEY is too regular (too few distinct characters) for production"
    return None


_TRUE = {"1", "true", "yes", "on"}


def _number(env: Mapping[str, str], name: str, default: float, least: float) -> float:
    text = env.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name} must be a number of at least {least:g}, not {text!r}")
    return value


@dataclass(frozen=True)
class Delivery:
    """Where and how notifications go out; without an SMTP host and a webhook URL they
    stay in the app."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "csi@localhost"
    smtp_timeout: float = 10.0
    base_url: str = "http://127.0.0.1:5000"
    webhook_url: str | None = None
    webhook_timeout: float = 10.0
    max_attempts: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str], port: int) -> Delivery:
        host = env.get("SMTP_HOST") or None
        starttls = (env.get("SMTP_STARTTLS") or "").lower() in _TRUE
        ssl = (env.get("SMTP_SSL") or "").lower() in _TRUE
        if starttls and ssl:
            raise ValueError("set SMTP_STARTTLS or SMTP_SSL, not both")
        smtp_port = env.get("SMTP_PORT") or ("465" if ssl else "587" if starttls else "25")
        if not smtp_port.isdigit():
            raise ValueError(f"SMTP_PORT must be a port number, not {smtp_port!r}")
        webhook = env.get("CSI_WEBHOOK_URL") or None
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise ValueError(f"CSI_WEBHOOK_URL must be an http(s) URL, not {webhook!r}")
        attempts = env.get("CSI_NOTIFY_MAX_ATTEMPTS") or "5"
        if not attempts.isdigit() or int(attempts) < 1:
            raise ValueError(f"CSI_NOTIFY_MAX_ATTEMPTS must be at least 1, not {attempts!r}")
        return cls(
            smtp_host=host,
            smtp_port=int(smtp_port),
            smtp_starttls=starttls,
            smtp_ssl=ssl,
            smtp_user=env.get("SMTP_USER") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_from=env.get("SMTP_FROM") or f"csi@{host or 'localhost'}",
            smtp_timeout=_number(env, "SMTP_TIMEOUT", 10.0, 0.1),
            base_url=(env.get("CSI_BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            webhook_url=webhook,
            webhook_timeout=_number(env, "CSI_WEBHOOK_TIMEOUT", 10.0, 0.1),
            max_attempts=int(attempts),
        )


def _limit(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not all(_LIMIT.match(part) for part in re.split(r"[;,]", value)):
        raise ValueError(f"{name} must be limits like '5 per minute; 20 per hour', not {value!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    secret_key: str | None
    production: bool
    locale: str
    timezone: str
    port: int
    pack: str
    login_limit_user: str = DEFAULT_LOGIN_LIMIT_USER
    login_limit_address: str = DEFAULT_LOGIN_LIMIT_ADDRESS
    ratelimit_storage: str = "memory://"
    proxies: int = 0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    attachments_dir: Path | None = None  # None: `attachments` in the instance folder
    attachment_limits: Limits = field(default_factory=Limits)
    delivery: Delivery = Delivery()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        instance_path = Path(env.get("CSI_INSTANCE_PATH") or Path.cwd() / "instance").resolve()
        locale = env.get("CSI_LOCALE") or "zh_CN"
        if locale not in LOCALES:
            raise ValueError(f"CSI_LOCALE must be one of {', '.join(LOCALES)}, not {locale!r}")
        port = env.get("PORT") or "5000"
        if not port.isdigit():
            raise ValueError(f"PORT must be a port number, not {port!r}")
        proxies = env.get("CSI_PROXIES") or "0"
        if not proxies.isdigit():
            raise ValueError(f"CSI_PROXIES must be a number of proxies, not {proxies!r}")
        production = env.get("CSI_ENV") == "production"
        secret_key = env.get("SECRET_KEY") or None
        if production and secret_key is not None and (problem := secret_key_problem(secret_key)):
            raise ValueError(problem)
        max_request = env.get("CSI_MAX_REQUEST_BYTES") or str(DEFAULT_MAX_REQUEST_BYTES)
        if not max_request.isdigit() or int(max_request) < 1024:
            raise ValueError(
                f"CSI_MAX_REQUEST_BYTES must be a number of bytes (at least 1024), "
                f"not {max_request!r}"
            )
        attachments_dir = env.get("CSI_ATTACHMENTS_DIR")
        limits = Limits(
            max_file_bytes=_count(env, "CSI_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_FILE_BYTES),
            max_files=_count(env, "CSI_ATTACHMENTS_PER_TASK", DEFAULT_MAX_FILES),
            max_total_bytes=_count(env, "CSI_ATTACHMENTS_MAX_TOTAL", DEFAULT_MAX_TOTAL_BYTES),
        )
        return cls(
            attachments_dir=Path(attachments_dir).resolve() if attachments_dir else None,
            attachment_limits=limits,
            instance_path=instance_path,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'csi.sqlite3'}",
            secret_key=secret_key,
            production=production,
            locale=locale,
            timezone=env.get("CSI_TIMEZONE") or "Asia/Shanghai",
            port=int(port),
            pack=env.get("CSI_PACK") or DEFAULT_PACK,
            login_limit_user=_limit(env, "CSI_LOGIN_LIMIT_USER", DEFAULT_LOGIN_LIMIT_USER),
            login_limit_address=_limit(env, "CSI_LOGIN_LIMIT_ADDRESS", DEFAULT_LOGIN_LIMIT_ADDRESS),
            ratelimit_storage=env.get("CSI_RATELIMIT_STORAGE") or "memory://",
            proxies=int(proxies),
            max_request_bytes=int(max_request),
            delivery=Delivery.from_env(env, int(port)),
        )

    def attachment_store(self) -> AttachmentStore:
        root = self.attachments_dir or self.instance_path / "attachments"
        return AttachmentStore(root, self.attachment_limits)

    @property
    def sqlite_file(self) -> Path | None:
        """The file of a SQLite database (None for another database, or one in memory)."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query.get("uri"):  # a file: URI, SQLite's business
            return None
        return Path(url.database).resolve()

    def ensure_instance_path(self) -> Path:
        """The instance folder; made readable by the app's account only when it is new
        (it holds the development secret key and, by default, the database)."""
        self.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.instance_path

    def prepare_sqlite_file(self) -> None:
        """Create the SQLite file's folder (0700) and the file (0600) when missing, before
        SQLite does with the umask's 0644: it holds password hashes. SQLite gives its
        journal files the database file's mode."""
        path = self.sqlite_file
        if path is None:
            return
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
