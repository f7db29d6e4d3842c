"""An auditor in a real browser steps through the replay of a finished improvement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.database import Database
from engine.persistence.models import Record
from engine.runtime import Runtime
from tests.cycle import Driver
from tests.helpers.actors import actors_of
from tests.helpers.browser import login, refused_by_csp
from tests.helpers.doors import RuntimeDoor


@pytest.fixture
def finished(live_app: tuple[str, Database]) -> tuple[str, int, str]:
    """The live server's base URL, and a finished improvement (id, record number) in it."""
    base, db = live_app
    result = Driver(RuntimeDoor(Runtime(db), db, actors_of(db))).run()
    with db.sessions() as session:
        number = session.scalar(
            select(Record.number).where(Record.instance_id == result.instance_id)
        )
    assert result.final["status"] == "completed"
    assert number
    return base, result.instance_id, number


def marked(page: Any, element: str, marker: str) -> bool:
    return bool(
        page.eval_on_selector(
            f'#audit-diagram [data-element-id="{element}"]',
            "(el, marker) => el.classList.contains(marker)",
            marker,
        )
    )


def test_auditor_moves_the_step_slider(
    browser: Any, finished: tuple[str, int, str], artifacts: Path
) -> None:
    base, iid, number = finished
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused = refused_by_csp(page)
    login(page, base, "auditor")

    page.click("nav.mainnav a[href='/audit']")
    page.fill("#q-number", number)
    page.click("form.search-form button[type=submit]")
    page.click(f"table.audit-results a:has-text('{number}')")
    page.wait_for_url(f"**/audit/instances/{iid}**")
    assert page.get_attribute("#check-chain", "data-ok") == "true"
    assert page.get_attribute("#check-replay", "data-ok") == "true"
    total = int(page.get_attribute("#step-slider", "max") or 0)
    assert total > 40

    # Opens at the last step: everything completed, gaps in the data.
    page.wait_for_selector(f'#audit-diagram[data-ready="true"][data-step="{total}"]')
    assert marked(page, "close_improvement", "csi-done")
    assert marked(page, "register_input", "csi-done")
    assert page.locator("#audit-diagram .djs-connection.csi-path").count() > 5
    assert page.locator('#step-data [data-key="gaps"]').count() == 1
    page.screenshot(path=str(artifacts / "audit-last.png"), full_page=True)

    # Home, then two steps right: step 3, register_input just completed.
    page.focus("#step-slider")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector('#audit-diagram[data-step="3"]')
    page.wait_for_selector('#step-data[data-step="3"]')
    assert page.input_value("#step-slider") == "3"
    assert not marked(page, "close_improvement", "csi-done")
    assert marked(page, "register_input", "csi-done")
    assert marked(page, "register_input", "csi-step")
    assert marked(page, "propose_metrics", "csi-active")
    assert page.locator('#step-data [data-key="gaps"]').count() == 0
    assert page.locator('#step-data [data-key="source"]').count() == 1
    assert page.locator('#step-changes [data-key="source"]').count() == 1
    assert page.locator('#timeline a[data-step="3"][aria-current="step"]').count() == 1
    assert "step=3" in page.url
    page.screenshot(path=str(artifacts / "audit-step.png"), full_page=True)

    # The timeline moves the slider too; so do the arrow keys anywhere on the page.
    page.click('#timeline a[data-step="1"]')
    page.wait_for_selector('#audit-diagram[data-step="1"]')
    assert page.input_value("#step-slider") == "1"
    assert not marked(page, "register_input", "csi-done")
    page.click("#steps h2")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector('#step-data[data-step="2"]')

    # Setting the value and dispatching input, as a script or a drag would.
    page.eval_on_selector(
        "#step-slider",
        "(el, k) => { el.value = String(k); el.dispatchEvent(new Event('input', {bubbles: true})); }",
        total,
    )
    page.wait_for_selector(f'#audit-diagram[data-step="{total}"]')
    assert marked(page, "close_improvement", "csi-done")
    assert page.locator('#step-data [data-key="gaps"]').count() == 1
    assert errors == []
    assert refused == []  # the diagram, slider and fetched fragments run under the CSP
    context.close()
