"""The full improvement cycle of the procedure, driven through any front door.

A `Door` knows how to list a user's open tasks, complete one and fire timers; the
same script then runs through the service layer and through the JSON API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tests.helpers.clock import RECHECK_AFTER, FakeClock


class Door(Protocol):
    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]: ...

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None: ...

    def start(self, username: str) -> int: ...

    def instance(self, instance_id: int) -> dict[str, Any]: ...

    def fire_timers(self, now: datetime) -> None:
        """Fire what is due at `now` (the clock moved past the re-check)."""


REGISTER = {
    "source": "customer_feedback",
    "reference": "KF-2026-118",
    "description": "客户投诉：月末结账期间核心系统多次中断，恢复慢。",
    "process_owners": ["po1", "po2"],
}
METRICS = [
    {
        "code": "AVAIL",
        "name": "服务可用率",
        "category": "quality",
        "unit": "%",
        "direction": "higher_better",
        "method": "监控系统按月统计",
        "owner": "po1",
    },
    {
        "code": "MTTR",
        "name": "平均修复时间",
        "category": "efficiency",
        "unit": "h",
        "direction": "lower_better",
        "method": "事件管理系统统计",
        "owner": "po2",
    },
]
TARGETS = [
    {"code": "AVAIL", "baseline": 99.0, "target": 99.9},
    {"code": "MTTR", "baseline": 4.0, "target": 2.0},
]
MEASURES = [
    {
        "title": "核心库主备自动切换",
        "description": "部署自动故障切换",
        "responsible": "manager",
        "due_date": "2026-12-31",
        "metric_codes": ["AVAIL"],
        "expected_effect": "可用率 ≥ 99.9%",
        "priority": "high",
    },
    {
        "title": "故障处理知识库",
        "description": "整理常见故障处置手册",
        "responsible": "po2",
        "due_date": "2026-12-15",
        "metric_codes": ["MTTR"],
        "expected_effect": "MTTR ≤ 2h",
        "priority": "medium",
    },
]


def values_for(owner: str, avail: float, mttr: float) -> dict[str, Any]:
    value = {"po1": [{"code": "AVAIL", "value": avail}], "po2": [{"code": "MTTR", "value": mttr}]}
    return {
        "period": "2026-11",
        "values": value[owner],
        "report": f"{owner} 本期数据报告",
        "suggestions": "加强监控",
    }


@dataclass
class CycleResult:
    instance_id: int
    gaps_first_round: list[dict[str, Any]]
    review_comment_seen: str | None
    final: dict[str, Any]


class Driver:
    """Runs the cycle through a door. `clock` is the one the door's engine reads (a new
    one when not given); `before_timer` runs where the cycle waits for its re-check,
    `before_monitoring` with the open monitor_progress task just before it is done."""

    def __init__(
        self,
        door: Door,
        clock: FakeClock | None = None,
        before_timer: Callable[[], None] | None = None,
        before_monitoring: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.door = door
        self.clock = clock or FakeClock()
        self.before_timer = before_timer or (lambda: None)
        self.before_monitoring = before_monitoring or (lambda task: None)

    def pass_the_recheck(self) -> None:
        """Move the clock past the re-check interval and let the door fire the timer."""
        self.door.fire_timers(self.clock.advance())

    def one(
        self, username: str, instance_id: int, bpmn_id: str, label: str | None = None
    ) -> dict[str, Any]:
        found = [
            t
            for t in self.door.tasks(username, instance_id)
            if t["bpmn_id"] == bpmn_id and (label is None or label in (t.get("label") or ""))
        ]
        assert found, f"{username} has no open {bpmn_id} ({label}) in {instance_id}"
        return found[0]

    def do(
        self,
        username: str,
        instance_id: int,
        bpmn_id: str,
        data: dict[str, Any],
        label: str | None = None,
    ) -> dict[str, Any]:
        task = self.one(username, instance_id, bpmn_id, label)
        self.door.complete(username, task["id"], data)
        return task

    def collect(self, iid: int, avail: float, mttr: float) -> None:
        # Each process owner sees only their own collect_data task.
        for owner in ("po1", "po2"):
            mine = [t for t in self.door.tasks(owner, iid) if t["bpmn_id"] == "collect_data"]
            assert len(mine) == 1, (owner, mine)
            self.door.complete(owner, mine[0]["id"], values_for(owner, avail, mttr))

    def to_first_review(self, iid: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """From the start to the plan's first review (open for the manager); the gaps
        of the first round and the plan."""
        self.do("owner", iid, "register_input", REGISTER)

        po1 = [t for t in self.door.tasks("po1", iid) if t["bpmn_id"] == "propose_metrics"]
        po2 = [t for t in self.door.tasks("po2", iid) if t["bpmn_id"] == "propose_metrics"]
        assert len(po1) == 1
        assert len(po2) == 1
        assert po1[0]["id"] != po2[0]["id"]
        self.door.complete(
            "po1",
            po1[0]["id"],
            {
                "metrics": [
                    {"name": "可用率", "unit": "%", "direction": "higher_better", "method": "监控"}
                ]
            },
        )
        self.door.complete(
            "po2",
            po2[0]["id"],
            {
                "metrics": [
                    {"name": "MTTR", "unit": "h", "direction": "lower_better", "method": "工单"}
                ]
            },
        )

        self.do("owner", iid, "define_metrics", {"metrics": METRICS})
        self.do("owner", iid, "set_baseline_targets", {"targets": TARGETS})
        self.collect(iid, avail=99.3, mttr=3.5)

        gaps = self.door.instance(iid)["data"]["gaps"]
        self.do("owner", iid, "analyse_gaps", {"impact": "结账期间业务中断，影响客户满意度"})
        plan = {
            "problem": "核心系统可用率不足、故障恢复慢",
            "root_cause": "单点数据库，缺少处置手册",
            "improvement_type": "corrective",
            "measures": MEASURES,
        }
        self.do("owner", iid, "record_improvement", plan)
        return gaps, plan

    def run(
        self,
        next_cycle: bool = False,
        verdict: str = "effective",
        verified_on: str = "2026-11-25",
    ) -> CycleResult:
        iid = self.door.start("owner")
        gaps, plan = self.to_first_review(iid)
        self.do("manager", iid, "review_plan", {"decision": "reject", "comment": "请补充回退方案"})
        seen = self.door.instance(iid)["data"].get("comment")
        revised = {**plan, "measures": [{**m, "rollback": "切回原主库"} for m in MEASURES]}
        self.do("owner", iid, "record_improvement", revised)
        self.do("manager", iid, "review_plan", {"decision": "approve", "comment": "同意"})

        assess = {
            "type": "normal",
            "risk": "medium",
            "impact": "短时切换",
            "implementation_plan": "夜间窗口实施",
            "rollback_plan": "切回原配置",
        }
        self.do("manager", iid, "assess_change", assess, label=MEASURES[0]["title"])
        self.do("manager", iid, "assess_change", assess, label=MEASURES[1]["title"])
        self.do(
            "cab",
            iid,
            "cab_approval",
            {"decision": "approve", "comment": "批准"},
            label=MEASURES[0]["title"],
        )
        self.do(
            "cab",
            iid,
            "cab_approval",
            {"decision": "reject", "comment": "资源不足"},
            label=MEASURES[1]["title"],
        )
        self.do(
            "impl",
            iid,
            "implement_change",
            {"result": "success", "implemented_on": "2026-11-20"},
            label=MEASURES[0]["title"],
        )
        self.do(
            "manager",
            iid,
            "post_implementation_review",
            {"review": "实施成功"},
            label=MEASURES[0]["title"],
        )

        self.do(
            "owner",
            iid,
            "rebaseline",
            {
                "targets": [
                    {"code": "AVAIL", "baseline": 99.3, "target": 99.9},
                    {"code": "MTTR", "baseline": 3.5, "target": 2.0},
                ]
            },
        )
        self.collect(iid, avail=99.6, mttr=3.0)
        self.before_monitoring(self.one("owner", iid, "monitor_progress"))
        self.do(
            "owner",
            iid,
            "monitor_progress",
            {"outcome": "continue", "recheck_after": RECHECK_AFTER, "note": "继续观察"},
        )
        assert not [t for t in self.door.tasks("po1", iid) if t["bpmn_id"] == "collect_data"]
        self.before_timer()
        self.pass_the_recheck()
        self.collect(iid, avail=99.95, mttr=1.8)
        self.do("owner", iid, "monitor_progress", {"outcome": "achieved", "note": "已达成"})
        self.do(
            "owner",
            iid,
            "record_verification",
            {
                "verified_on": verified_on,
                "method": "对比改进前后三个月的监控数据",
                "evidence": "可用率 99.95%，MTTR 1.8h",
                "result": verdict,
            },
        )
        closing = {"summary": "目标达成", "next_cycle": next_cycle}
        self.do("owner", iid, "close_improvement", closing)
        return CycleResult(iid, gaps, seen, self.door.instance(iid))
