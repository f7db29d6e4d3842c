"""Files attached to form fields: taken in by content, kept by sha256, recorded in the
completing event, downloaded only by those who may read the improvement, checked by
verify."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.attachments.store import Limits
from engine.persistence.database import Database
from tests.cycle import METRICS, REGISTER, TARGETS, Driver, values_for
from tests.helpers import files, html
from tests.helpers.doors import ApiDoor
from tests.helpers.pages import client_for, csrf_token

LIMITS = Limits(max_file_bytes=64 * 1024, max_files=2, max_total_bytes=100 * 1024)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "attachments"


@pytest.fixture
def app(db: Database, tmp_path: Path, store_dir: Path):  # type: ignore[no-untyped-def]
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "WTF_CSRF_ENABLED": True,
            "ATTACHMENTS_DIR": str(store_dir),
            "ATTACHMENT_LIMITS": LIMITS,
        }
    )
    app.instance_path = str(tmp_path)
    return app


@pytest.fixture
def api(client: FlaskClient, app: Any) -> ApiDoor:
    return ApiDoor(client, app)


def stored(store_dir: Path) -> list[Path]:
    return sorted(p for p in store_dir.rglob("*") if p.is_file()) if store_dir.exists() else []


def started(api: ApiDoor) -> tuple[int, str, str]:
    """A new improvement: its id, number and the id of its register_input task."""
    iid = api.start("owner")
    task = next(t for t in api.tasks("owner", iid) if t["bpmn_id"] == "register_input")
    number = api.instance(iid)["record_number"]
    return iid, number, task["id"]


def complete(api: ApiDoor, user: str, task_id: str, data: dict[str, Any]) -> Any:
    return api.client.post(
        f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=api.headers(user)
    )


def test_a_file_sent_through_the_api_is_kept_by_hash_and_recorded_in_the_event(
    api: ApiDoor, store_dir: Path
) -> None:
    iid, number, task_id = started(api)
    response = complete(
        api,
        "owner",
        task_id,
        {**REGISTER, "source_document": files.upload("审核发现.pdf", files.PDF)},
    )
    assert response.status_code == 200, response.json
    sha = hashlib.sha256(files.PDF).hexdigest()
    assert stored(store_dir) == [store_dir / sha[:2] / sha]

    history = api.client.get(f"/api/v1/instances/{iid}/history", headers=api.headers("auditor"))
    completed = next(e for e in history.json if e["type"] == "task_completed")
    assert completed["payload"]["data"]["source_document"] == {
        "sha256": sha,
        "name": "审核发现.pdf",
        "size": len(files.PDF),
        "type": "application/pdf",
    }
    assert completed["payload"]["attachments"] == ["source_document"]
    assert api.instance(iid)["data"]["source_document"]["sha256"] == sha

    # po1 takes part now (an open task of theirs); cab does not.
    for who in ("owner", "po1", "auditor"):
        got = api.client.get(
            f"/api/v1/improvements/{number}/attachments/{sha}", headers=api.headers(who)
        )
        assert got.status_code == 200, who
        assert got.data == files.PDF
        assert got.mimetype == "application/pdf"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Disposition"].startswith("attachment;")
    refused = api.client.get(
        f"/api/v1/improvements/{number}/attachments/{sha}", headers=api.headers("cab")
    )
    assert refused.status_code == 404
    # A hash the improvement does not record is no file of it, even when it is kept.
    other = hashlib.sha256(b"other").hexdigest()
    assert (
        api.client.get(
            f"/api/v1/improvements/{number}/attachments/{other}", headers=api.headers("owner")
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("big.pdf", files.PDF + b"0" * (LIMITS.max_file_bytes), "attachment_too_large"),
        ("report.pdf", files.EXE, "attachment_type"),  # the name does not make it a PDF
        ("empty.pdf", b"", "attachment_empty"),
    ],
)
def test_a_refused_file_is_422_naming_its_field_and_nothing_is_stored(
    api: ApiDoor, store_dir: Path, name: str, content: bytes, code: str
) -> None:
    iid, _, task_id = started(api)
    data = {**REGISTER, "source_document": files.upload(name, content)}
    response = complete(api, "owner", task_id, data)
    assert response.status_code == 422, response.json
    assert "source_document" in response.json["details"]
    assert stored(store_dir) == []
    # The task is still open: nothing of the command happened.
    assert [t["id"] for t in api.tasks("owner", iid)] == [task_id]


def test_a_type_another_field_allows_is_refused_where_it_is_not(
    api: ApiDoor, store_dir: Path
) -> None:
    # collect_data takes CSV, text, xlsx and PDF: a picture is refused there.
    driver = Driver(api)
    iid = api.start("owner")
    driver.do("owner", iid, "register_input", REGISTER)
    mine = [t for t in api.tasks("po1", iid) if t["bpmn_id"] == "propose_metrics"]
    api.complete(
        "po1",
        mine[0]["id"],
        {
            "metrics": [
                {"name": "可用率", "unit": "%", "direction": "higher_better", "method": "监控"}
            ]
        },
    )
    mine = [t for t in api.tasks("po2", iid) if t["bpmn_id"] == "propose_metrics"]
    api.complete(
        "po2",
        mine[0]["id"],
        {"metrics": [{"name": "MTTR", "unit": "h", "direction": "lower_better", "method": "工单"}]},
    )
    driver.do("owner", iid, "define_metrics", {"metrics": METRICS})
    driver.do("owner", iid, "set_baseline_targets", {"targets": TARGETS})
    task = driver.one("po1", iid, "collect_data")
    data = {**values_for("po1", 99.3, 3.5), "data_file": files.upload("export.png", files.PNG)}
    response = complete(api, "po1", task["id"], data)
    assert response.status_code == 422
    assert list(response.json["details"]) == ["data_file"]
    assert stored(store_dir) == []
    response = complete(
        api, "po1", task["id"], {**data, "data_file": files.upload("export.csv", files.CSV)}
    )
    assert response.status_code == 200, response.json
    history = api.client.get(f"/api/v1/instances/{iid}/history", headers=api.headers("auditor"))
    (done,) = [
        e for e in history.json if e["type"] == "task_completed" and e["bpmn_id"] == "collect_data"
    ]
    kept = done["payload"]["data"]["data_file"]
    assert (kept["type"], kept["name"]) == ("text/csv", "export.csv")


def test_more_bytes_than_a_submission_may_carry_are_refused(api: ApiDoor, store_dir: Path) -> None:
    _, _, task_id = started(api)
    not_base64 = {**REGISTER, "source_document": {"name": "x.pdf", "content_base64": "%%%"}}
    response = complete(api, "owner", task_id, not_base64)
    assert response.status_code == 422
    assert "source_document" in response.json["details"]
    a_reference = {
        **REGISTER,
        "source_document": {"sha256": "0" * 64, "name": "x.pdf", "size": 1, "type": "text/plain"},
    }
    response = complete(api, "owner", task_id, a_reference)
    assert response.status_code == 422  # a file is sent, never named by a hash alone
    assert stored(store_dir) == []


def test_verify_names_the_event_whose_file_was_changed_or_removed(
    app: Any, api: ApiDoor, store_dir: Path
) -> None:
    iid, _, task_id = started(api)
    data = {**REGISTER, "source_document": files.upload("finding.csv", files.CSV)}
    assert complete(api, "owner", task_id, data).status_code == 200
    history = api.client.get(f"/api/v1/instances/{iid}/history", headers=api.headers("auditor"))
    seq = next(e["seq"] for e in history.json if e["type"] == "task_completed")
    verify = f"/api/v1/instances/{iid}/verify"
    assert api.client.get(verify, headers=api.headers("auditor")).json["ok"] is True

    (kept,) = stored(store_dir)
    kept.write_bytes(files.CSV + b"EXTRA,1,2026-12\n")
    result = api.client.get(verify, headers=api.headers("auditor")).json
    assert result["ok"] is False
    assert result["broken_at"] == seq
    assert f"event {seq}" in result["message"]
    assert "was changed" in result["message"]
    assert "source_document" in result["message"]

    console = client_for(app, "auditor").get(f"/audit/instances/{iid}")
    check = html.select_one(html.page(console), "#check-chain")
    assert (check.get("data-ok"), check.get("data-broken-at")) == ("false", str(seq))
    assert "source_document" in html.text_of(check)

    kept.unlink()
    result = api.client.get(verify, headers=api.headers("auditor")).json
    assert (result["ok"], result["broken_at"]) == (False, seq)
    assert "is missing" in result["message"]


def test_a_file_attached_on_the_task_page_is_downloaded_from_the_improvement(
    app: Any, api: ApiDoor, store_dir: Path
) -> None:
    iid, number, task_id = started(api)
    owner = client_for(app, "owner")
    page = html.page(owner.get(f"/tasks/{task_id}"))
    (form,) = html.select(page, "form.task-form")
    assert form.get("enctype") == "multipart/form-data"
    (field,) = html.select(page, 'input[type="file"][name="source_document"]')
    assert "application/pdf" in str(field.get("accept"))

    token = csrf_token(owner, f"/tasks/{task_id}")
    posted = {
        "csrf_token": token,
        "source": REGISTER["source"],
        "reference": REGISTER["reference"],
        "description": REGISTER["description"],
        "process_owners": REGISTER["process_owners"],
    }
    refused = owner.post(
        f"/tasks/{task_id}",
        data={**posted, "source_document": (io.BytesIO(files.EXE), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert html.select(html.page(refused), "#f-source_document-errors")
    assert stored(store_dir) == []

    done = owner.post(
        f"/tasks/{task_id}",
        data={**posted, "source_document": (io.BytesIO(files.xlsx()), "../../docs/finding.xlsx")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    reference = api.instance(iid)["data"]["source_document"]
    assert reference["name"] == "finding.xlsx"  # no folders of the sender's machine
    assert reference["type"].endswith("spreadsheetml.sheet")

    url = f"/improvements/{number}/attachments/{reference['sha256']}"
    listed = html.page(owner.get(f"/instances/{iid}"))
    (link,) = html.select(listed, "#attachments a[download][href*='/attachments/']")
    assert link.get("href") == url
    assert html.text_of(link) == "finding.xlsx"
    # The record page lists it too, beside the evidence pack.
    record = html.page(owner.get(f"/improvements/{number}"))
    (on_record,) = html.select(record, "#attachments a[download][href*='/attachments/']")
    assert on_record.get("href") == url
    (pack,) = html.select(record, "a[data-pack]")
    assert pack.get("href") == f"/improvements/{number}/pack"
    assert client_for(app, "po1").get(url).status_code == 200
    assert client_for(app, "cab").get(url).status_code == 404
    got = owner.get(url)
    assert got.status_code == 200
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in got.headers["Content-Disposition"]


def test_a_new_improvement_takes_no_file_reference_as_initial_data(api: ApiDoor) -> None:
    forged = {"sha256": "a" * 64, "name": "x.pdf", "size": 1, "type": "application/pdf"}
    response = api.client.post(
        "/api/v1/instances",
        json={"process": "service_improvement", "data": {"source_document": forged}},
        headers=api.headers("owner"),
    )
    assert response.status_code == 422
    assert "data/source_document" in response.json["details"]
