"""Roles: the lane roles a pack declares, the system's own, and lane names to keys.

SpiffWorkflow reports a task's lane by the lane's *name*, so a lane may be named by
the role's key, its zh name or its en name; everything else uses the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Role:
    key: str
    zh: str
    en: str
    process: str = ""  # the process whose lanes use it ("" for the system's roles)
    # What the role may beyond its own tasks: "read_all" (every instance), "audit"
    # (verify and replay), "approve_models" (approve a submitted version of the
    # procedure), "manage_metrics" (keep the metric catalogue and import its history),
    # "land_on_dashboard" (signing in opens the dashboard, not the inbox).
    # The system roles' powers are fixed in engine.access.
    may: frozenset[str] = field(default_factory=frozenset)

    def label(self, locale: str) -> str:
        return self.zh if locale.startswith("zh") else self.en


# Not lanes: capabilities outside the diagrams.
AUDITOR = "Auditor"
MODELER = "Modeler"
ADMIN = "Admin"
SYSTEM_ROLES: tuple[Role, ...] = (
    Role(AUDITOR, "审计员", "Auditor"),
    Role(MODELER, "流程建模员", "Process modeler"),
    Role(ADMIN, "系统管理员", "Administrator"),
)


class RoleBook:
    """Every role a user may hold: the pack's lane roles, then the system's."""

    def __init__(self, lane_roles: Iterable[Role]) -> None:
        self.lane_roles: dict[str, Role] = {r.key: r for r in lane_roles}
        clash = set(self.lane_roles) & {r.key for r in SYSTEM_ROLES}
        if clash:
            raise ValueError(f"a pack may not redefine the system roles {sorted(clash)}")
        self.all: dict[str, Role] = {**self.lane_roles, **{r.key: r for r in SYSTEM_ROLES}}
        self._by_any_name: dict[str, str] = {}
        for role in self.lane_roles.values():
            for name in (role.key, role.zh, role.en):
                self._by_any_name.setdefault(name, role.key)

    def for_lane(self, lane_name: str | None) -> str | None:
        """Role key of a lane name (key, zh or en), None when unknown or absent."""
        if not lane_name:
            return None
        return self._by_any_name.get(lane_name.strip())

    def label(self, key: str | None, locale: str) -> str:
        if not key:
            return ""
        role = self.all.get(key)
        return role.label(locale) if role is not None else key

    def with_power(self, power: str) -> frozenset[str]:
        return frozenset(k for k, r in self.lane_roles.items() if power in r.may)

    def __contains__(self, key: object) -> bool:
        return key in self.all


def role_book(declared: Iterable[Mapping[str, Any]]) -> RoleBook:
    """The book of a pack's `roles` list (pack.json): key, zh-CN, en, process, may."""
    return RoleBook(
        Role(
            key=str(item["key"]),
            zh=str(item.get("zh-CN") or item["key"]),
            en=str(item.get("en") or item["key"]),
            process=str(item.get("process") or ""),
            may=frozenset(item.get("may") or ()),
        )
        for item in declared
    )
