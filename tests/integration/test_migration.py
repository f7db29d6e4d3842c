"""Migrating a running instance to another version: explicit, audited, replayable."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from engine.access import Actor
from engine.audit import chain, replay
from engine.errors import Conflict, Forbidden, ValidationFailed
from engine.persistence.database import Database
from engine.persistence.instances import WorkflowCache
from engine.persistence.models import Event, Instance, ProcessDefinition
from engine.runtime import Runtime
from engine.workflow import safe_xml
from procedure import PACK
from tests.cycle import REGISTER, Driver
from tests.helpers import html
from tests.helpers.api import bearer
from tests.helpers.diagrams import without_task
from tests.helpers.doors import RuntimeDoor
from tests.helpers.pages import client_for, csrf_token

BPMN = (PACK.files / "service_improvement.bpmn").read_text(encoding="utf-8")


def _deploy(rt: Runtime, actors: dict[str, Actor], xml: str) -> int:
    deployed = rt.deploy(actors["admin"], xml.encode("utf-8"), "service_improvement.bpmn")
    return deployed.definitions[0].version


class MigratingDoor(RuntimeDoor):
    """The full cycle; right after the plan is first rejected, `xml` is deployed as a
    new version and the instance is migrated to it."""

    def __init__(self, rt: Runtime, db: Database, actors: dict[str, Actor], xml: str) -> None:
        super().__init__(rt, db, actors)
        self.xml = xml
        self.version: int | None = None
        self.migrated: int | None = None

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        super().complete(username, task_id, data)
        if self.migrated is None and data.get("decision") == "reject":
            with self.db.sessions() as session:
                iid = session.scalar(select(Instance.id).order_by(Instance.id.desc()))
            self.version = _deploy(self.rt, self.actors, self.xml)
            result = self.rt.migrate_instance(iid, self.actors["admin"], self.version)
            self.migrated = result.instance_id


@pytest.mark.parametrize("cached", [True, False], ids=["warm", "cold"])
def test_an_instance_finishes_on_the_version_it_was_moved_to(
    db: Database, actors: dict[str, Actor], cached: bool
) -> None:
    rt = Runtime(db) if cached else Runtime(db, cache=WorkflowCache(capacity=0))
    renamed = BPMN.replace('name="填写服务改进记录"', 'name="编写服务改进记录"')
    assert renamed != BPMN
    door = MigratingDoor(rt, db, actors, renamed)
    result = Driver(door).run()
    version = door.version
    assert door.migrated == result.instance_id
    assert result.final["status"] == "completed"
    with db.sessions() as session:
        instance = session.get(Instance, result.instance_id)
        assert session.get(ProcessDefinition, instance.definition_id).version == version
        migrated = session.scalar(
            select(Event).where(
                Event.instance_id == result.instance_id, Event.type == "instance_migrated"
            )
        )
        assert migrated is not None
        assert migrated.actor == "admin"
        assert migrated.payload["from"]["version"] == 1
        assert migrated.payload["definition"]["version"] == version
        assert chain.verify(session, result.instance_id).ok
        replayed = replay.replay(session, PACK, result.instance_id)
        assert replayed.ok, replayed.mismatch and replayed.mismatch.as_dict()


def test_migration_is_refused_when_the_instance_stands_on_a_removed_element(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    door = RuntimeDoor(rt, db, actors)
    iid = door.start("owner")  # waiting at register_input
    without = without_task(BPMN, "register_input")
    version = _deploy(rt, actors, without)
    with db.sessions() as session:
        before = session.get(Instance, iid).last_seq
    with pytest.raises(ValidationFailed) as refused:
        rt.migrate_instance(iid, actors["admin"], version)
    assert "register_input" in refused.value.details
    with db.sessions() as session:
        instance = session.get(Instance, iid)
        assert instance.last_seq == before
        assert session.get(ProcessDefinition, instance.definition_id).version == 1
    Driver(door).do("owner", iid, "register_input", REGISTER)  # still works on v1


def test_only_modelers_migrate_and_only_running_instances(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    iid = RuntimeDoor(rt, db, actors).start("owner")
    for user in ("po1", "auditor", "manager"):
        with pytest.raises(Forbidden):
            rt.migrate_instance(iid, actors[user])
    with pytest.raises(Conflict):  # already on the latest version
        rt.migrate_instance(iid, actors["admin"])


def test_migration_through_the_api(
    app: Any, client: Any, db: Database, actors: dict[str, Actor]
) -> None:
    rt: Runtime = app.extensions["csi"].runtime
    iid = RuntimeDoor(rt, db, actors).start("owner")
    version = _deploy(rt, actors, BPMN.replace("发起服务改进", "发起改进"))
    headers = partial(bearer, client)
    denied = client.post(f"/api/v1/instances/{iid}/migrate", json={}, headers=headers("manager"))
    assert denied.status_code == 403
    bad = client.post(
        f"/api/v1/instances/{iid}/migrate", json={"version": "two"}, headers=headers("admin")
    )
    assert bad.status_code == 422
    done = client.post(
        f"/api/v1/instances/{iid}/migrate", json={"version": version}, headers=headers("admin")
    )
    assert done.status_code == 200, done.json
    assert len(done.json["open_tasks"]) == 1
    history_rows = client.get(f"/api/v1/instances/{iid}/history", headers=headers("auditor")).json
    assert history_rows[-1]["type"] == "instance_migrated"


def test_a_modeler_moves_an_instance_from_its_page(
    app: Any, db: Database, actors: dict[str, Actor]
) -> None:
    rt: Runtime = app.extensions["csi"].runtime
    iid = RuntimeDoor(rt, db, actors).start("owner")
    version = _deploy(rt, actors, BPMN.replace("发起服务改进", "发起改进"))
    migrate = f"/instances/{iid}/migrate"

    def offers_migration(client: Any) -> bool:
        return any(migrate in url for url in html.urls(html.page(client.get(f"/instances/{iid}"))))

    assert not offers_migration(client_for(app, "manager"))  # reads it, but is no modeler
    admin = client_for(app, "admin")
    form = html.select_one(html.page(admin.get(f"/instances/{iid}")), f'form[action="{migrate}"]')
    assert html.texts(form, "button") == [f"迁移到第 {version} 版"]
    response = admin.post(
        f"/instances/{iid}/migrate",
        data={"csrf_token": csrf_token(admin, f"/instances/{iid}"), "version": version},
    )
    assert response.status_code == 302
    with db.sessions() as session:
        instance = session.get(Instance, iid)
        assert session.get(ProcessDefinition, instance.definition_id).version == version
    assert not offers_migration(admin)


def test_audit_steps_name_the_version_they_ran_on(
    app: Any, db: Database, actors: dict[str, Actor]
) -> None:
    rt: Runtime = app.extensions["csi"].runtime
    iid = RuntimeDoor(rt, db, actors).start("owner")
    version = _deploy(rt, actors, BPMN.replace("发起服务改进", "发起改进"))
    rt.migrate_instance(iid, actors["admin"], version)
    with db.sessions() as session:
        first = session.get(Instance, iid)
        new_id = first.definition_id
        old_id = session.scalar(
            select(ProcessDefinition.id).where(
                ProcessDefinition.process_id == "service_improvement",
                ProcessDefinition.version == 1,
            )
        )
        last = first.last_seq
    auditor = client_for(app, "auditor")
    before = auditor.get(f"/audit/instances/{iid}/steps/1").get_json()["state"]
    after = auditor.get(f"/audit/instances/{iid}/steps/{last}").get_json()["state"]
    assert (before["definition_id"], after["definition_id"]) == (old_id, new_id)
    old_xml = auditor.get(f"/instances/{iid}/diagram.bpmn?definition={old_id}").get_data(
        as_text=True
    )
    assert "发起服务改进" in old_xml
    assert "发起改进" not in old_xml
    assert auditor.get(f"/instances/{iid}/diagram.bpmn?definition=999999").status_code == 404


def _register_input_in_the_managers_lane(xml: str) -> str:
    ns = {"bpmn": safe_xml.BPMN_NS}
    tree = etree.fromstring(xml.encode("utf-8"))
    ref = next(r for r in tree.iterfind(".//bpmn:flowNodeRef", ns) if r.text == "register_input")
    ref.getparent().remove(ref)
    manager = tree.find(".//bpmn:lane[@id='ImprovementManager']", ns)
    added = etree.SubElement(manager, f"{{{safe_xml.BPMN_NS}}}flowNodeRef")
    added.text = "register_input"
    return etree.tostring(tree, encoding="unicode").replace("登记改进输入", "经理登记改进输入")


def test_an_open_task_moved_to_another_lane_follows_its_new_lane(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    door = RuntimeDoor(rt, db, actors)
    iid = door.start("owner")  # register_input open for 服务改进负责人
    version = _deploy(rt, actors, _register_input_in_the_managers_lane(BPMN))
    rt.migrate_instance(iid, actors["admin"], version)
    assert not door.tasks("owner", iid)
    [task] = door.tasks("manager", iid)
    assert task["bpmn_id"] == "register_input"
    assert task["name"] == "经理登记改进输入"
    assert task["lane"] == "ImprovementManager"
    with pytest.raises(Forbidden):
        rt.complete_task(task["id"], actors["owner"], REGISTER)
    rt.complete_task(task["id"], actors["manager"], REGISTER)
    with db.sessions() as session:
        replayed = replay.replay(session, PACK, iid)
    assert replayed.ok, replayed.mismatch and replayed.mismatch.as_dict()
