"""The improvement register in a real browser: `manager` filters it by source, opens a
finished record, and prints it (the print view saved as a PDF and a screenshot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.cycle import REGISTER, Driver
from tests.helpers.actors import actors_of
from tests.helpers.browser import login, refused_by_csp
from tests.helpers.doors import RuntimeDoor


@pytest.fixture
def register(live_app: tuple[str, Database]) -> tuple[str, str, str]:
    """The live server's base URL; a finished record from customer feedback and a just
    registered one from an internal audit (their numbers)."""
    base, db = live_app
    runtime = Runtime(db)
    door = RuntimeDoor(runtime, db, actors_of(db))
    driver = Driver(door)
    finished = driver.run().instance_id
    audit = door.start("owner")
    driver.do(
        "owner",
        audit,
        "register_input",
        {**REGISTER, "source": "internal_audit", "reference": "NS-2026-07"},
    )
    numbers = runtime.queries.record_numbers({finished, audit})
    return base, numbers[finished], numbers[audit]


def test_the_register_filters_by_source_and_the_record_prints(
    browser: Any, register: tuple[str, str, str], artifacts: Path
) -> None:
    base, finished, audit = register
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused = refused_by_csp(page)
    login(page, base, "manager")

    page.click("nav.mainnav a[href='/improvements']")
    page.wait_for_selector(f'table.register tr[data-number="{finished}"]')
    assert page.locator("table.register tbody tr").count() == 2

    page.select_option("select[name=source]", "internal_audit")
    page.click("form.register-filters button[type=submit]")
    page.wait_for_url("**/improvements?**source=internal_audit**")
    page.wait_for_selector(f'table.register tr[data-number="{audit}"]')
    assert page.locator("table.register tbody tr").count() == 1
    assert page.locator(f'table.register tr[data-number="{finished}"]').count() == 0
    page.screenshot(path=str(artifacts / "register-filtered.png"), full_page=True)

    page.select_option("select[name=source]", "customer_feedback")
    page.click("form.register-filters button[type=submit]")
    page.click(f"table.register a.record-no:has-text('{finished}')")
    page.wait_for_url(f"**/improvements/{finished}")
    assert page.locator('table[data-log="reviews"] tr[data-round]').count() == 2
    assert page.locator('table[data-log="monitoring"] tr[data-round]').count() == 2
    page.screenshot(path=str(artifacts / "record-page.png"), full_page=True)

    with context.expect_page() as opened:
        page.click("a[data-print]")
    printed = opened.value
    printed.wait_for_load_state()
    assert printed.locator("[data-record-number]").inner_text() == finished
    assert "YNTD-ITSS-0409" in printed.locator("header.doc").inner_text()
    assert len(printed.locator("[data-chain-head]").inner_text().strip()) == 64
    assert printed.locator("[data-verified-at]").inner_text() == "2026-11-25"
    # the inline style applies under the page's own policy (A4 layout, bordered tables)
    border = printed.eval_on_selector("table.log td", "el => getComputedStyle(el).borderTopStyle")
    assert border == "solid"
    printed.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    printed.emulate_media(media="print")
    printed.screenshot(path=str(artifacts / "record-print.png"), full_page=True)
    pdf = printed.pdf(path=str(artifacts / "record.pdf"), format="A4", print_background=True)
    assert pdf[:4] == b"%PDF"
    assert errors == []
    assert refused == []
    context.close()
