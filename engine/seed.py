"""Demo users and the metric catalogue (never part of a production configuration)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from engine.roles import ALL_ROLES, AUDITOR, MODELER
from engine.store import Database, Metric, User

DEMO_PASSWORD = "demo"

DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("owner", "王改进 (服务改进负责人)", ("ImprovementOwner",)),
    ("manager", "李经理 (服务改进经理)", ("ImprovementManager", "ChangeManager")),
    ("po1", "张工 (流程负责人)", ("ProcessOwner",)),
    ("po2", "赵工 (流程负责人)", ("ProcessOwner",)),
    ("cab", "变更咨询委员会", ("ChangeAdvisoryBoard",)),
    ("impl", "陈工 (变更实施人)", ("ChangeImplementer",)),
    ("auditor", "审计员", (AUDITOR,)),
    ("admin", "系统管理员", tuple(ALL_ROLES)),
)

# code, zh, en, category, unit, direction, collection method
CATALOGUE: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("AVAIL", "服务可用率", "Availability", "quality", "%", "higher_better", "监控系统按月统计"),
    (
        "MTTR",
        "平均修复时间",
        "Mean time to repair",
        "efficiency",
        "h",
        "lower_better",
        "事件管理系统统计",
    ),
    (
        "MTBF",
        "平均故障间隔",
        "Mean time between failures",
        "quality",
        "h",
        "higher_better",
        "事件管理系统统计",
    ),
    (
        "FRT",
        "首次响应时间",
        "First-response time",
        "efficiency",
        "min",
        "lower_better",
        "服务台工单统计",
    ),
    ("SLA", "SLA 达成率", "SLA compliance", "quality", "%", "higher_better", "服务级别报告"),
    (
        "FCR",
        "一次解决率",
        "First-contact resolution",
        "effect",
        "%",
        "higher_better",
        "服务台工单统计",
    ),
    ("CSAT", "客户满意度", "Customer satisfaction", "effect", "1-5", "higher_better", "满意度调查"),
    (
        "CHG_OK",
        "变更成功率",
        "Change success rate",
        "quality",
        "%",
        "higher_better",
        "变更管理记录",
    ),
    (
        "CHG_EMERG",
        "紧急变更占比",
        "Emergency-change ratio",
        "efficiency",
        "%",
        "lower_better",
        "变更管理记录",
    ),
    ("BACKLOG", "积压工单数", "Backlog", "efficiency", "count", "lower_better", "服务台工单统计"),
    (
        "REPEAT",
        "重复事件率",
        "Repeat-incident rate",
        "quality",
        "%",
        "lower_better",
        "问题管理记录",
    ),
    (
        "COST_TKT",
        "单张工单成本",
        "Cost per ticket",
        "cost",
        "CNY",
        "lower_better",
        "财务与工单数据",
    ),
)


def seed_catalogue(session: Session) -> int:
    existing = set(session.scalars(select(Metric.code)))
    added = 0
    for code, zh, en, category, unit, direction, method in CATALOGUE:
        if code in existing:
            continue
        session.add(
            Metric(
                code=code,
                name_zh=zh,
                name_en=en,
                category=category,
                unit=unit,
                direction=direction,
                method=method,
            )
        )
        added += 1
    return added


def upsert_user(
    session: Session,
    username: str,
    password: str,
    roles: tuple[str, ...] | list[str],
    display: str = "",
) -> User:
    unknown = [r for r in roles if r not in ALL_ROLES]
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(unknown)}")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username)
        session.add(user)
    user.display_name = display or user.display_name or username
    user.password_hash = generate_password_hash(password)
    user.roles = list(roles)
    user.active = True
    return user


def seed_demo_users(session: Session) -> list[User]:
    """Add the demo users that are missing; those already there keep what an
    administrator changed (password, roles, disabled), so `make run` can run again."""
    existing = set(session.scalars(select(User.username)))
    return [
        upsert_user(session, name, DEMO_PASSWORD, roles, display)
        for name, display, roles in DEMO_USERS
        if name not in existing
    ]


def fresh_demo_database(url: str) -> Database:
    """An empty, migrated database with the demo users, the catalogue and the bundled
    diagrams, for tests and benchmarks. On PostgreSQL the public schema is dropped
    first: never point this at a database whose data matters."""
    from engine import migrate, runtime

    db = Database(url)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(db)
    with db.transaction() as session:
        seed_demo_users(session)
        seed_catalogue(session)
        runtime.seed_definitions(session)
    return db


__all__ = ["MODELER", "fresh_demo_database", "seed_catalogue", "seed_demo_users", "upsert_user"]
