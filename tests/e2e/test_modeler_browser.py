"""The process owner edits the procedure in the browser: bpmn-js with the CSI
properties, lint on the elements from the server, drafts that survive a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.browser import login, refused_by_csp


def test_explore(browser: Any, live_server: str, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 950}, locale="zh-CN")
    page = context.new_page()
    refused = refused_by_csp(page)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    login(page, live_server, "owner")
    page.goto(f"{live_server}/models/service_improvement/edit")
    page.wait_for_selector("#modeler[data-lint-runs]", timeout=20000)
    page.screenshot(path=str(artifacts / "modeler-explore.png"))
    print("\n".join(errors))
    print("CSP", refused)
    print(page.inner_text("#findings-list")[:2000])
    context.close()
