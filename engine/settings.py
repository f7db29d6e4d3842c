"""The settings of one installation, read once from the environment: the web app, the
CLI and the worker all take them from here. Nothing else in engine, web or procedure
reads os.environ for its configuration.

- `DATABASE_URL`: default a SQLite file `csi.sqlite3` in the instance folder;
- `CSI_INSTANCE_PATH`: the instance folder (default `./instance`), which holds the
  SQLite file and, in development, the generated secret key;
- `SECRET_KEY`: required when `CSI_ENV=production`;
- `CSI_ENV`: `production` refuses demo users and requires a secret key;
- `CSI_LOCALE` (`zh_CN` or `en`), `CSI_TIMEZONE` (default Asia/Shanghai), `PORT`;
- `CSI_PACK`: the procedure pack to run (a module name or a folder; `procedure`);
- `CSI_MAX_REQUEST_BYTES`: the largest request body the web app reads (default 4 MiB,
  room for the largest diagram an upload may carry); a larger one is answered 413
  before it is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.pack import DEFAULT_PACK

# The languages the pages come in (web/translations holds zh_CN; msgids are English).
LOCALES = ("zh_CN", "en")
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


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
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

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
        max_request = env.get("CSI_MAX_REQUEST_BYTES") or str(DEFAULT_MAX_REQUEST_BYTES)
        if not max_request.isdigit() or int(max_request) < 1024:
            raise ValueError(
                f"CSI_MAX_REQUEST_BYTES must be a number of bytes (at least 1024), "
                f"not {max_request!r}"
            )
        return cls(
            instance_path=instance_path,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'csi.sqlite3'}",
            secret_key=env.get("SECRET_KEY") or None,
            production=env.get("CSI_ENV") == "production",
            locale=locale,
            timezone=env.get("CSI_TIMEZONE") or "Asia/Shanghai",
            port=int(port),
            pack=env.get("CSI_PACK") or DEFAULT_PACK,
            max_request_bytes=int(max_request),
        )

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
        self.instance_path.mkdir(parents=True, exist_ok=True)
        return self.instance_path
