"""Demo users, one per role (password `demo`, `csi seed-demo`): never in production."""

from __future__ import annotations

from engine.pack import DemoUser

USERS: tuple[DemoUser, ...] = (
    DemoUser("owner", "王改进 (服务改进负责人)", ("ImprovementOwner", "Modeler")),
    DemoUser("manager", "李经理 (服务改进经理)", ("ImprovementManager", "ChangeManager")),
    DemoUser("po1", "张工 (流程负责人)", ("ProcessOwner",)),
    DemoUser("po2", "赵工 (流程负责人)", ("ProcessOwner",)),
    DemoUser("cab", "变更咨询委员会", ("ChangeAdvisoryBoard",)),
    DemoUser("impl", "陈工 (变更实施人)", ("ChangeImplementer",)),
    DemoUser("auditor", "审计员", ("Auditor",)),
    # "*": every role of the pack and of the system (the modeler's included)
    DemoUser("admin", "系统管理员", ("*",)),
)
