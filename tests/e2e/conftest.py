"""A live server on a fresh SQLite file and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine.persistence.database import Database
from tests.helpers.databases import prepared_database

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CSI_REQUIRE_BROWSER"):
            pytest.fail("CSI_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """A served app and its database, so a test can prepare data the pages then show."""
    from web import create_app

    db = prepared_database(f"sqlite:///{tmp_path / 'e2e.sqlite3'}")
    app = create_app(
        {
            "SECRET_KEY": "e2e",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", db
    finally:
        server.shutdown()
        db.dispose()


@pytest.fixture
def live_server(live_app: tuple[str, Database]) -> str:
    return live_app[0]


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
