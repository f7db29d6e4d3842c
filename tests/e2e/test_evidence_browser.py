"""In Chromium: the owner attaches the audit finding to the input they register; the
auditor downloads the improvement's evidence pack from the audit console, and it holds
offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.evidence.verify_pack import verify_pack
from tests.helpers import files
from tests.helpers.browser import login, logout


def test_a_file_attached_in_the_form_reaches_the_evidence_pack(
    browser: Any, live_server: str, artifacts: Path, tmp_path: Path
) -> None:
    finding = tmp_path / "审核发现.pdf"
    finding.write_bytes(files.PDF)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    base = live_server

    login(page, base, "owner")
    page.goto(f"{base}/instances/new")
    page.click("form button[type=submit]")
    page.wait_for_url("**/tasks/**")
    page.select_option("select[name=source]", "internal_audit")
    page.fill("input[name=reference]", "IA-2026-07")
    page.fill("textarea[name=description]", "内审发现：备份未按期执行")
    page.check("input[name=process_owners][value=po1]")
    page.set_input_files("input[type=file][name=source_document]", str(finding))
    page.screenshot(path=str(artifacts / "attachment-form.png"), full_page=True)
    page.click("form.task-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    logout(page)

    login(page, base, "auditor")
    page.goto(f"{base}/audit")
    page.click("table a[href*='/audit/instances/']")
    page.wait_for_url("**/audit/instances/**")
    assert page.get_attribute("#check-chain", "data-ok") == "true"
    page.screenshot(path=str(artifacts / "audit-console-evidence-pack.png"), full_page=True)
    with page.expect_download() as download:
        page.click("a#evidence-pack")
    saved = artifacts / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith("-evidence.zip")
    result = verify_pack(saved)
    assert result.ok, result.problem
    assert "attachments: 1 files hash as their events recorded" in result.checked
    context.close()
