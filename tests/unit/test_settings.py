"""Settings.from_env: the one reader of the environment, its defaults and overrides, and
the web app and the CLI opening the same database from the same environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Delivery, Settings

VARIABLES = (
    "DATABASE_URL",
    "CSI_INSTANCE_PATH",
    "SECRET_KEY",
    "CSI_ENV",
    "CSI_LOCALE",
    "CSI_TIMEZONE",
    "PORT",
    "CSI_PACK",
    "CSI_LOGIN_LIMIT_USER",
    "CSI_LOGIN_LIMIT_ADDRESS",
    "CSI_RATELIMIT_STORAGE",
    "CSI_PROXIES",
    "CSI_MAX_REQUEST_BYTES",
)
STRONG_KEY = "9f2c0e7d41b8a35c6e0f9d2a7b14c8e3"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own and an environment without any setting."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def test_defaults(elsewhere: Path) -> None:
    settings = Settings.from_env({})
    assert settings == Settings(
        instance_path=elsewhere / "instance",
        database_url=f"sqlite:///{elsewhere / 'instance' / 'csi.sqlite3'}",
        secret_key=None,
        production=False,
        locale="zh_CN",
        timezone="Asia/Shanghai",
        port=5000,
        pack="procedure",
        login_limit_user="5 per minute; 20 per hour",
        login_limit_address="20 per minute; 100 per hour",
        ratelimit_storage="memory://",
        proxies=0,
    )
    assert settings.sqlite_file == elsewhere / "instance" / "csi.sqlite3"


def test_every_variable_overrides_its_default(elsewhere: Path) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://csi@db.example/csi",
            "CSI_INSTANCE_PATH": "/srv/csi",
            "SECRET_KEY": STRONG_KEY,
            "CSI_ENV": "production",
            "CSI_LOCALE": "en",
            "CSI_TIMEZONE": "Europe/Berlin",
            "PORT": "8080",
            "CSI_PACK": "/srv/csi/pack",
            "CSI_LOGIN_LIMIT_USER": "3/minute",
            "CSI_LOGIN_LIMIT_ADDRESS": "50 per 15 minutes; 200 per day",
            "CSI_RATELIMIT_STORAGE": "redis://cache.example:6379",
            "CSI_PROXIES": "1",
            "CSI_MAX_REQUEST_BYTES": "65536",
            "SMTP_HOST": "mail.example",
            "SMTP_PORT": "2525",
            "SMTP_STARTTLS": "1",
            "SMTP_USER": "csi",
            "SMTP_PASSWORD": "mail-secret",
            "SMTP_FROM": "csi@example.com",
            "SMTP_TIMEOUT": "3",
            "CSI_BASE_URL": "https://csi.example/",
            "CSI_WEBHOOK_URL": "https://chat.example/robot?key=k",
            "CSI_WEBHOOK_TIMEOUT": "4",
            "CSI_NOTIFY_MAX_ATTEMPTS": "7",
        }
    )
    assert settings == Settings(
        instance_path=Path("/srv/csi"),
        database_url="postgresql+psycopg://csi@db.example/csi",
        secret_key=STRONG_KEY,
        production=True,
        locale="en",
        timezone="Europe/Berlin",
        port=8080,
        pack="/srv/csi/pack",
        login_limit_user="3/minute",
        login_limit_address="50 per 15 minutes; 200 per day",
        ratelimit_storage="redis://cache.example:6379",
        proxies=1,
        max_request_bytes=65536,
        delivery=Delivery(
            smtp_host="mail.example",
            smtp_port=2525,
            smtp_starttls=True,
            smtp_user="csi",
            smtp_password="mail-secret",
            smtp_from="csi@example.com",
            smtp_timeout=3.0,
            base_url="https://csi.example",
            webhook_url="https://chat.example/robot?key=k",
            webhook_timeout=4.0,
            max_attempts=7,
        ),
    )
    assert settings.sqlite_file is None


def test_the_default_database_lies_in_the_instance_folder(elsewhere: Path) -> None:
    relative = Settings.from_env({"CSI_INSTANCE_PATH": "var/csi"})
    assert relative.instance_path == elsewhere / "var" / "csi"
    assert relative.database_url == f"sqlite:///{elsewhere / 'var' / 'csi' / 'csi.sqlite3'}"
    chosen = Settings.from_env({"DATABASE_URL": "sqlite:///data/x.sqlite3"})
    assert chosen.instance_path == elsewhere / "instance"
    assert chosen.sqlite_file == elsewhere / "data" / "x.sqlite3"
    assert Settings.from_env({"DATABASE_URL": "sqlite://"}).sqlite_file is None


def test_empty_values_count_as_unset(elsewhere: Path) -> None:
    assert Settings.from_env(dict.fromkeys(VARIABLES, "")) == Settings.from_env({})


def test_from_env_reads_the_process_environment(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSI_LOCALE", "en")
    monkeypatch.setenv("PORT", "5001")
    settings = Settings.from_env()
    assert (settings.locale, settings.port) == ("en", 5001)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CSI_LOCALE", "fr"),
        ("CSI_LOCALE", "zh"),
        ("PORT", "http"),
        ("CSI_LOGIN_LIMIT_USER", "many"),
        ("CSI_LOGIN_LIMIT_ADDRESS", "5 per fortnight"),
        ("CSI_PROXIES", "all"),
        ("CSI_MAX_REQUEST_BYTES", "4MB"),
        ("CSI_MAX_REQUEST_BYTES", "10"),
    ],
)
def test_a_setting_out_of_range_is_refused_by_name(elsewhere: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_the_web_app_and_the_cli_open_the_same_default_database(elsewhere: Path) -> None:
    from web import cli, create_app

    app = create_app()
    default = f"sqlite:///{elsewhere / 'instance' / 'csi.sqlite3'}"
    assert app.extensions["csi"].runtime.db.url == default
    assert cli.runtime().db.url == default
    assert (elsewhere / "instance" / "secret_key").is_file()


def test_a_database_elsewhere_leaves_the_instance_folder_alone(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere / 'data' / 'csi.sqlite3'}")
    assert cli.runtime().db.url.endswith("/data/csi.sqlite3")
    assert (elsewhere / "data").is_dir()
    assert not (elsewhere / "instance").exists()
