"""The process owner edits the procedure in the browser: a user task from the palette
into a lane, the server's lint on it, a draft that survives a reload, and a submit the
server refuses while errors remain."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.helpers.browser import login, logout, refused_by_csp

TASK_NAME = "准备管理评审材料"

# Where on the screen a new task fits inside a lane without touching any shape or flow:
# the palette's create tool then drops it there (bpmn-js would otherwise split a flow
# it is dropped on). Returns the centre in page coordinates.
FREE_SPOT_IN_LANE = """(laneId) => {
  const modeler = window.csiModeler.modeler;
  const registry = modeler.get('elementRegistry');
  const canvas = modeler.get('canvas');
  const lane = registry.get(laneId);
  const w = 130, h = 110;
  const others = registry.filter((e) => e !== lane && e.type !== 'bpmn:Lane'
    && e.type !== 'bpmn:Participant' && e.type !== 'label' && e.parent);
  const overlaps = (x, y) => others.some((e) => {
    if (e.waypoints) {
      return e.waypoints.some((p, i) => {
        const q = e.waypoints[i + 1];
        if (!q) { return false; }
        const minX = Math.min(p.x, q.x), maxX = Math.max(p.x, q.x);
        const minY = Math.min(p.y, q.y), maxY = Math.max(p.y, q.y);
        return maxX >= x && minX <= x + w && maxY >= y && minY <= y + h;
      });
    }
    return e.x < x + w && e.x + e.width > x && e.y < y + h && e.y + e.height > y;
  });
  const viewbox = canvas.viewbox();
  const box = canvas.getContainer().getBoundingClientRect();
  // not under the palette
  const palette = document.querySelector('.djs-palette').getBoundingClientRect();
  const left = viewbox.x + (palette.right + 10 - box.left) / viewbox.scale;
  for (let y = lane.y + 5; y + h < lane.y + lane.height; y += 10) {
    for (let x = Math.max(lane.x + 60, left); x + w < lane.x + lane.width; x += 10) {
      if (!overlaps(x, y)) {
        return {
          x: box.left + (x + w / 2 - viewbox.x) * viewbox.scale,
          y: box.top + (y + h / 2 - viewbox.y) * viewbox.scale
        };
      }
    }
  }
  return null;
}"""

TASKS_NAMED = """(name) => window.csiModeler.modeler.get('elementRegistry')
  .filter((e) => e.businessObject && e.businessObject.name === name)
  .map((e) => ({ id: e.id, type: e.type, lane: (e.businessObject.lanes || []).map((l) => l.id) }))"""


def _open_modeler(page: Any, url: str) -> None:
    page.goto(url)
    expect(page.locator("#modeler[data-ready=true]")).to_be_attached()
    expect(page.locator("#modeler[data-lint-runs]")).to_be_attached()


@dataclass
class Opened:
    """`owner` in the modeler of service_improvement, with what the page refused or
    threw kept for the test's end."""

    context: Any
    page: Any
    refused: list[str]
    failures: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.failures, self.failures
        assert not self.refused, self.refused


def _owner_in_modeler(browser: Any, live_server: str, locale: str = "zh-CN") -> Opened:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, locale=locale)
    page = context.new_page()
    opened = Opened(context, page, refused_by_csp(page))
    page.on("pageerror", lambda error: opened.failures.append(str(error)))
    login(page, live_server, "owner")
    _open_modeler(page, f"{live_server}/models/service_improvement/edit")
    return opened


def test_owner_adds_a_user_task_lints_saves_and_cannot_submit_with_errors(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    opened = _owner_in_modeler(browser, live_server)
    context, page = opened.context, opened.page
    # The deployed version passes the server's checks.
    expect(page.locator("#findings-list li[data-source=server]")).to_have_count(0)

    # A task from the palette, dropped into the improvement owner's lane.
    spot = page.evaluate(FREE_SPOT_IN_LANE, "ImprovementOwner")
    assert spot is not None, "no free room in the lane"
    page.click(".djs-palette [data-action='create.task']")
    page.mouse.move(spot["x"] - 20, spot["y"] - 20)
    page.mouse.move(spot["x"], spot["y"])
    page.mouse.click(spot["x"], spot["y"])
    # bpmn-js opens the new task's label for typing.
    expect(page.locator(".djs-direct-editing-parent")).to_be_attached()
    page.keyboard.type(TASK_NAME)
    page.keyboard.press("Enter")  # ends the editing; the task stays selected

    created = page.evaluate(TASKS_NAMED, TASK_NAME)
    assert [t["type"] for t in created] == ["bpmn:Task"]
    assert created[0]["lane"] == ["ImprovementOwner"]

    # Make it a user task through the context pad's "change element" menu.
    page.click(".djs-context-pad [data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    tasks = page.evaluate(TASKS_NAMED, TASK_NAME)
    assert [t["type"] for t in tasks] == ["bpmn:UserTask"]
    task_id = tasks[0]["id"]

    # Its due duration in the CSI group of the properties panel.
    due = page.locator("#bio-properties-panel-csi-due-in")
    expect(due).to_be_visible()
    due.fill("P3D")

    # The server's lint: the new user task has no form, shown on the element and listed.
    page.click("#tab-findings")
    finding = page.locator(
        f"#findings-list li[data-source=server][data-rule=form-required][data-element='{task_id}']"
    )
    expect(finding).to_be_visible()
    expect(page.locator(f".csi-lint-badge[data-element='{task_id}']")).to_be_visible()
    expect(page.locator(f"#canvas [data-element-id='{task_id}'].csi-lint-error")).to_be_attached()
    expect(
        page.locator(f"#findings-list li[data-rule=task-in-lane][data-element='{task_id}']")
    ).to_have_count(0)
    page.screenshot(path=str(artifacts / "modeler-lint-form-required.png"))
    # A click on the finding selects the element (its properties are shown).
    finding.locator("button").click()
    page.click("#tab-properties")
    expect(page.locator("#bio-properties-panel-csi-due-in")).to_have_value("P3D")

    # Save: the draft gets an id, the address names it.
    page.click("#save-draft")
    expect(page.locator("#modeler[data-draft]")).to_be_attached()
    draft_id = page.locator("#modeler").get_attribute("data-draft")
    assert page.url.endswith(f"?draft={draft_id}")
    expect(page.locator("#review-link")).to_be_visible()

    # After a reload the task is still there, with its due duration.
    page.reload()
    expect(page.locator("#modeler[data-ready=true]")).to_be_attached()
    tasks = page.evaluate(TASKS_NAMED, TASK_NAME)
    assert [(t["id"], t["type"]) for t in tasks] == [(task_id, "bpmn:UserTask")]
    xml = page.evaluate("window.csiModeler.modeler.saveXML().then((r) => r.xml)")
    assert 'name="due_in" value="P3D"' in xml

    # Submitting is refused while the lint has errors; the error is shown on the task.
    page.click("#submit-draft")
    page.fill("#submit-note", "增加管理评审材料准备任务")
    page.click("#submit-confirm")
    expect(page.locator("#modeler-message")).to_be_visible()
    expect(page.locator("#tab-findings")).to_have_attribute("aria-selected", "true")
    expect(
        page.locator(f"#findings-list li[data-rule=form-required][data-element='{task_id}']")
    ).to_be_visible()
    assert page.locator("#modeler").get_attribute("data-submitted") is None
    page.screenshot(path=str(artifacts / "modeler-submit-refused.png"))

    # The changes against the deployed version: the new task, coloured and listed.
    page.click("#tab-changes")
    expect(page.locator(f"#changes-list .change-added[data-element='{task_id}']")).to_be_visible()
    expect(page.locator(f"#canvas [data-element-id='{task_id}'].csi-added")).to_be_attached()
    page.screenshot(path=str(artifacts / "modeler-changes.png"))

    # The draft outlives the session: another modeler is told of it, and its author,
    # back after logging out, is offered it and finds the task there.
    page.on("dialog", lambda dialog: dialog.accept())
    logout(page)
    login(page, live_server, "admin")
    page.goto(f"{live_server}/models/service_improvement/edit")
    expect(page.locator(".other-draft")).to_contain_text("owner")
    expect(page.locator(f".other-draft a[href$='/models/drafts/{draft_id}']")).to_be_visible()
    logout(page)
    login(page, live_server, "owner")
    page.goto(f"{live_server}/models/service_improvement/edit")
    page.click(f".own-draft a[href$='?draft={draft_id}']")
    expect(page.locator("#modeler[data-ready=true]")).to_be_attached()
    tasks = page.evaluate(TASKS_NAMED, TASK_NAME)
    assert [(t["id"], t["type"]) for t in tasks] == [(task_id, "bpmn:UserTask")]

    opened.assert_clean()
    context.close()


def test_condition_help_offers_the_variables_known_at_a_flow(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    opened = _owner_in_modeler(browser, live_server, locale="en")
    context, page = opened.context, opened.page
    flow = "Flow_gw_phase_to_monitor_progress"
    centre = page.evaluate(
        """(id) => {
          const modeler = window.csiModeler.modeler;
          const e = modeler.get('elementRegistry').get(id);
          const [p, q] = e.waypoints;
          const viewbox = modeler.get('canvas').viewbox();
          const box = modeler.get('canvas').getContainer().getBoundingClientRect();
          return { x: box.left + ((p.x + q.x) / 2 - viewbox.x) * viewbox.scale,
                   y: box.top + ((p.y + q.y) / 2 - viewbox.y) * viewbox.scale };
        }""",
        flow,
    )
    page.mouse.click(centre["x"], centre["y"])
    condition = page.locator("#bio-properties-panel-csi-condition")
    expect(condition).to_have_value("phase == 'monitoring'")
    chip = page.locator(f".csi-variables[data-flow='{flow}'] .csi-variable[data-name='phase']")
    expect(chip).to_be_visible()
    page.screenshot(path=str(artifacts / "modeler-condition-help.png"))
    chip.click()
    expect(condition).to_have_value("phase == 'monitoring' phase")

    # The other CSI fields show what the deployed diagram says.
    page.evaluate(
        """(id) => { const m = window.csiModeler.modeler;
                    m.get('selection').select(m.get('elementRegistry').get(id)); }""",
        "compute_gaps",
    )
    expect(page.locator("#bio-properties-panel-csi-operation")).to_have_value("csi/compute_gaps")
    page.evaluate(
        """(id) => { const m = window.csiModeler.modeler;
                    m.get('selection').select(m.get('elementRegistry').get(id)); }""",
        "ImprovementOwner",
    )
    expect(page.locator("#bio-properties-panel-csi-role")).to_have_value("ImprovementOwner")

    # The raw XML keeps the product's extension elements through the import.
    page.click("#tab-xml")
    xml = page.locator("#xml-text")
    expect(xml).to_have_value(
        re.compile('<spiffworkflow:serviceTaskOperator id="csi/compute_gaps"')
    )
    text = xml.input_value()
    assert 'name="record_status:registered"' in text
    assert '<spiffworkflow:parameter id="metrics" type="any" value="metrics" />' in text
    # An expert's edit applied from the XML tab is the diagram then.
    page.fill("#xml-text", text.replace('name="搜集数据"', 'name="搜集度量数据"'))
    page.click("#xml-apply")
    expect(page.locator("#modeler-message")).to_have_class("alert alert-success")
    names = page.evaluate(
        "window.csiModeler.modeler.get('elementRegistry').get('collect_data').businessObject.name"
    )
    assert names == "搜集度量数据"
    context.close()


# The middle of a sequence flow's first segment, in page coordinates.
FLOW_MIDDLE = """(id) => {
  const modeler = window.csiModeler.modeler;
  const [p, q] = modeler.get('elementRegistry').get(id).waypoints;
  const viewbox = modeler.get('canvas').viewbox();
  const box = modeler.get('canvas').getContainer().getBoundingClientRect();
  return { x: box.left + ((p.x + q.x) / 2 - viewbox.x) * viewbox.scale,
           y: box.top + ((p.y + q.y) / 2 - viewbox.y) * viewbox.scale };
}"""


def test_owner_adds_a_task_with_its_form_and_manager_approves_it(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    opened = _owner_in_modeler(browser, live_server)
    context, page = opened.context, opened.page

    # Dropped on the flow from the start event, the new task splits it: it comes first.
    spot = page.evaluate(FLOW_MIDDLE, "Flow_start_to_register_input")
    page.click(".djs-palette [data-action='create.task']")
    page.mouse.move(spot["x"] - 20, spot["y"] - 20)
    page.mouse.move(spot["x"], spot["y"])
    page.mouse.click(spot["x"], spot["y"])
    expect(page.locator(".djs-direct-editing-parent")).to_be_attached()
    page.keyboard.type(TASK_NAME)
    # Enter ends the editing; the new task stays selected, its context pad open (it lies
    # over the start event and the next task, where a click could pick either).
    page.keyboard.press("Enter")
    page.click(".djs-context-pad [data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    [task] = page.evaluate(TASKS_NAMED, TASK_NAME)
    assert task["type"] == "bpmn:UserTask"
    assert task["lane"] == ["ImprovementOwner"]
    task_id = task["id"]

    # Without a form the server finds it; it is reachable, so that is all it finds.
    page.click("#tab-findings")
    missing = page.locator(
        f"#findings-list li[data-source=server][data-rule=form-required][data-element='{task_id}']"
    )
    expect(missing).to_be_visible()
    expect(page.locator("#findings-list li[data-source=server]")).to_have_count(1)

    # The CSI group says the task has no form and leads to the form editor beside the
    # diagram: a form with one required field.
    page.click("#tab-properties")
    expect(page.locator(".csi-form-link .csi-form-missing")).to_be_visible()
    page.click(".csi-form-link .csi-form-open")
    expect(page.locator("#tab-form")).to_have_attribute("aria-selected", "true")
    editor = page.locator("#form-editor")
    editor.get_by_role("button", name="创建表单").click()
    editor.get_by_label("标题（英文）").fill("Prepare management review materials")
    editor.get_by_role("button", name="添加字段").click()
    field = editor.locator("[data-fe=field]").first
    field.get_by_label("字段名").fill("materials")
    field.get_by_label("标签（中文）").fill("材料清单")
    field.get_by_label("标签（英文）").fill("Materials")
    field.get_by_label("必填").check()
    expect(editor.locator("[data-fe=editor]")).to_have_attribute("data-fe-preview", "ready")
    form = page.evaluate(f"window.csiModeler.forms['{task_id}']")
    assert form["schema"]["required"] == ["materials"]
    page.screenshot(path=str(artifacts / "modeler-form-editor.png"))

    # The lint error is gone once the form exists.
    page.click("#tab-properties")
    expect(page.locator(".csi-form-link .csi-form-state")).not_to_have_class(
        "csi-form-state csi-form-missing"
    )
    page.click("#tab-findings")
    expect(missing).to_have_count(0)
    expect(page.locator("#findings-list li[data-source=server]")).to_have_count(0)

    page.click("#save-draft")
    expect(page.locator("#modeler[data-draft]")).to_be_attached()
    draft_id = page.locator("#modeler").get_attribute("data-draft")
    page.click("#submit-draft")
    page.fill("#submit-note", "增加管理评审材料准备任务")
    page.click("#submit-confirm")
    expect(page.locator("#modeler[data-submitted]")).to_be_attached()
    expect(page.locator("#modeler-message")).to_have_class("alert alert-success")
    page.screenshot(path=str(artifacts / "modeler-submitted.png"))
    logout(page)

    # Another person approves it; the version list shows the new version.
    login(page, live_server, "manager")
    page.goto(f"{live_server}/models/drafts/{draft_id}")
    page.click("form[action$='/approve'] button")
    page.wait_for_url("**/history")
    page.goto(f"{live_server}/models")
    versions = page.locator("#process-service_improvement table.versions tbody tr")
    expect(versions.first).to_contain_text("v2")
    expect(versions.first).to_contain_text("增加管理评审材料准备任务")
    page.screenshot(path=str(artifacts / "modeler-approved-versions.png"), full_page=True)

    opened.assert_clean()
    context.close()


BROKEN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
  id="Definitions_broken" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="service_improvement" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="loose_task" name="无泳道任务">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="split" name="分支">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end_a" name="甲"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_b" name="乙"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="loose_task" />
    <bpmn:sequenceFlow id="f2" sourceRef="loose_task" targetRef="split" />
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="end_a" />
    <bpmn:sequenceFlow id="f4" sourceRef="split" targetRef="end_b" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="service_improvement">
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="100" y="100" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="loose_task_di" bpmnElement="loose_task"><dc:Bounds x="200" y="78" width="100" height="80" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="split_di" bpmnElement="split" isMarkerVisible="true"><dc:Bounds x="360" y="93" width="50" height="50" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="end_a_di" bpmnElement="end_a"><dc:Bounds x="480" y="40" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="end_b_di" bpmnElement="end_b"><dc:Bounds x="480" y="160" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="136" y="118" /><di:waypoint x="200" y="118" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="300" y="118" /><di:waypoint x="360" y="118" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="f3_di" bpmnElement="f3"><di:waypoint x="385" y="93" /><di:waypoint x="385" y="58" /><di:waypoint x="480" y="58" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="f4_di" bpmnElement="f4"><di:waypoint x="385" y="143" /><di:waypoint x="385" y="178" /><di:waypoint x="480" y="178" /></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_our_browser_rules_and_the_server_find_the_same_faults(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    """A user task in no lane and a gateway splitting without a default: bpmnlint's
    local rules say so as soon as the diagram changes, the server as well."""
    opened = _owner_in_modeler(browser, live_server)
    context, page = opened.context, opened.page
    runs = int(page.locator("#modeler").get_attribute("data-lint-runs") or "0")
    page.click("#tab-xml")
    page.fill("#xml-text", BROKEN)
    page.click("#xml-apply")
    expect(page.locator("#modeler")).not_to_have_attribute("data-lint-runs", str(runs))
    page.click("#tab-findings")
    findings = page.locator("#findings-list")
    for source, rule, element in (
        ("browser", "csi/task-in-lane", "loose_task"),
        ("browser", "csi/gateway-default", "split"),
        ("server", "task-in-lane", "loose_task"),
        ("server", "gateway-default", "split"),
    ):
        expect(
            findings.locator(
                f"li[data-source={source}][data-rule='{rule}'][data-element='{element}']"
            )
        ).to_have_count(1)
    page.screenshot(path=str(artifacts / "modeler-browser-and-server-rules.png"))
    context.close()
