"""Roles of the procedure and the one place that maps BPMN lane names to them.

SpiffWorkflow reports a task's lane by the lane's *name*, so a lane may be named by
the role's key, its zh name or its en name; everything else uses the key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    key: str
    zh: str
    en: str
    process: str  # the process whose lanes use it


ROLES: tuple[Role, ...] = (
    Role("ImprovementOwner", "服务改进负责人", "Improvement owner", "service_improvement"),
    Role("ImprovementManager", "服务改进经理", "Improvement manager", "service_improvement"),
    Role("ProcessOwner", "各流程负责人", "Process owner", "service_improvement"),
    Role("ChangeManager", "变更经理", "Change manager", "change_management"),
    Role("ChangeAdvisoryBoard", "变更咨询委员会", "Change advisory board", "change_management"),
    Role("ChangeImplementer", "变更实施人", "Change implementer", "change_management"),
)

# Not lanes: capabilities outside the diagrams.
AUDITOR = "Auditor"
MODELER = "Modeler"
ADMIN = "Admin"
SYSTEM_ROLES: tuple[Role, ...] = (
    Role(AUDITOR, "审计员", "Auditor", ""),
    Role(MODELER, "流程建模员", "Process modeler", ""),
    Role(ADMIN, "系统管理员", "Administrator", ""),
)

ALL_ROLES: dict[str, Role] = {r.key: r for r in ROLES + SYSTEM_ROLES}
LANE_ROLES: dict[str, Role] = {r.key: r for r in ROLES}

_BY_ANY_NAME: dict[str, str] = {}
for _role in ROLES:
    for _name in (_role.key, _role.zh, _role.en):
        _BY_ANY_NAME[_name] = _role.key


def role_for_lane(lane_name: str | None) -> str | None:
    """Role key of a lane name (key, zh or en), None when unknown or absent."""
    if not lane_name:
        return None
    return _BY_ANY_NAME.get(lane_name.strip())
