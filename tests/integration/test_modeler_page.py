"""The modeler page (GET /models/<process>/edit): who may open it, what it hands its
script, and the notice of someone else's open draft."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.helpers import html
from tests.helpers.api import bearer
from tests.helpers.pages import client_for

EDIT = "/models/service_improvement/edit"
STATIC = Path(__file__).resolve().parents[2] / "web" / "static"


def _setup(response: Any) -> dict[str, Any]:
    [block] = html.select(html.page(response), "script#modeler-setup")
    assert block.get("type") == "application/json"
    found: dict[str, Any] = json.loads(block.text_content())
    return found


def test_the_owner_gets_the_modeler_with_what_its_script_needs(app: Any) -> None:
    owner = client_for(app, "owner")
    response = owner.get(EDIT)
    assert response.status_code == 200
    page = html.page(response)
    assert html.select(page, "#canvas")
    assert html.select(page, "#properties-panel")
    assert html.select(page, "#form-editor")
    for tab in ("properties", "form", "findings", "xml", "changes"):
        assert html.select(page, f"#tab-{tab}"), tab
    # The CSP runs no inline script: every script is a file or a JSON block.
    for script in html.select(page, "script"):
        assert script.get("src") or script.get("type") == "application/json"
    sources = [s.get("src") for s in html.select(page, "script[src]")]
    assert any(s.endswith("/static/vendor/modeler/modeler.js") for s in sources)
    assert any(s.endswith("/static/js/modeler.js") for s in sources)
    editor_exists = (STATIC / "js" / "form-editor.js").is_file()
    assert any(s.endswith("/static/js/form-editor.js") for s in sources) == editor_exists

    setup = _setup(response)
    assert setup["processId"] == "service_improvement"
    assert setup["draftId"] is None
    assert setup["user"] == "owner"
    assert setup["csrfToken"]
    latest = setup["latestVersion"]
    assert setup["urls"]["version"] == f"/api/v1/models/service_improvement/versions/{latest}"
    assert setup["urls"]["lint"] == "/api/v1/models/service_improvement/lint"
    assert setup["urls"]["drafts"] == "/api/v1/models/service_improvement/drafts"
    assert setup["urls"]["draftApi"] == "/api/v1/drafts/"
    assert setup["strings"]["Save failed: {reason}"]
    # what the script then asks for answers the signed-in page
    assert owner.get(setup["urls"]["version"]).status_code == 200
    assert owner.get(setup["urls"]["context"]).status_code == 200


def test_the_vendored_modeler_is_served(client: FlaskClient) -> None:
    for path in ("vendor/modeler/modeler.js", "vendor/modeler/modeler.css"):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path
        response.close()


def test_those_who_may_not_model_are_refused(app: Any) -> None:
    # an approver without the modeler role, an auditor, a process owner
    for user in ("manager", "auditor", "po1"):
        assert client_for(app, user).get(EDIT).status_code == 403, user


def test_an_unknown_process_or_draft_is_404(app: Any) -> None:
    owner = client_for(app, "owner")
    assert owner.get("/models/no_such_process/edit").status_code == 404
    assert owner.get(f"{EDIT}?draft=999999").status_code == 404
    assert owner.get(f"{EDIT}?draft=abc").status_code == 422


def test_a_draft_opens_with_its_id_and_another_modelers_draft_is_announced(
    app: Any, client: FlaskClient
) -> None:
    made = client.post(
        "/api/v1/models/service_improvement/drafts", json={}, headers=bearer(client, "admin")
    )
    assert made.status_code == 201
    draft_id = made.json["id"]

    owner = client_for(app, "owner")
    page = html.page(owner.get(EDIT))
    [notice] = html.select(page, ".other-draft")
    assert "admin" in notice.text_content()
    assert [a.get("href") for a in html.select(notice, "a")] == [f"/models/drafts/{draft_id}"]

    response = owner.get(f"{EDIT}?draft={draft_id}")
    assert response.status_code == 200
    setup = _setup(response)
    assert setup["draftId"] == draft_id
    assert setup["draftAuthor"] == "admin"
    # the draft it opens is not announced as someone else's besides
    assert not html.select(html.page(response), ".other-draft")

    # one's own open draft is offered when the page is opened afresh
    mine = owner.post(
        "/api/v1/models/service_improvement/drafts",
        json={},
        headers={"X-CSRFToken": setup["csrfToken"]},
    )
    assert mine.status_code == 201
    [offer] = html.select(html.page(owner.get(EDIT)), ".own-draft")
    assert [a.get("href") for a in html.select(offer, "a")] == [f"{EDIT}?draft={mine.json['id']}"]
    assert not html.select(html.page(owner.get(f"{EDIT}?draft={mine.json['id']}")), ".own-draft")

    # a draft of another process is not this page's
    other = client.post(
        "/api/v1/models/change_management/drafts", json={}, headers=bearer(client, "admin")
    )
    assert other.status_code == 201
    assert owner.get(f"{EDIT}?draft={other.json['id']}").status_code == 404
