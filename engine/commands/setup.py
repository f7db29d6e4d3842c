"""Setting a database up: the schema, the pack's diagrams and metric catalogue, demo
users (never in production), users from the command line."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from engine import passwords
from engine.commands.deploy import deploy_pack
from engine.commands.users import USERNAME, end_every_session, ordered_roles
from engine.forms.library import FormLibrary
from engine.pack import Pack
from engine.persistence import schema
from engine.persistence.database import Database
from engine.persistence.models import Metric, ProcessDefinition, User

DEMO_PASSWORD = passwords.DEMO_PASSWORD


def init_database(db: Database, pack: Pack, forms: FormLibrary) -> list[ProcessDefinition]:
    """Create or upgrade the schema; deploy the pack's diagrams; seed its catalogue."""
    schema.upgrade(db)
    with db.transaction() as session:
        deployed = deploy_pack(session, pack, forms)
        seed_catalogue(session, pack)
        session.flush()
        session.expunge_all()
    return deployed


def seed_catalogue(session: Session, pack: Pack) -> int:
    """Add the pack's catalogue metrics that are missing (changed ones stay as they are)."""
    existing = set(session.scalars(select(Metric.code)))
    added = 0
    for seed in pack.catalogue:
        if seed.code in existing:
            continue
        session.add(
            Metric(
                code=seed.code,
                name_zh=seed.name_zh,
                name_en=seed.name_en,
                category=seed.category,
                unit=seed.unit,
                direction=seed.direction,
                method=seed.method,
            )
        )
        added += 1
    return added


def upsert_user(
    session: Session,
    pack: Pack,
    username: str,
    password: str,
    roles: Iterable[str],
    display: str = "",
) -> User:
    """Create a user or reset its password and roles (`csi create-user`). A role `*`
    stands for every role there is. The password must pass the policy
    (engine.passwords); a reset ends the user's sessions and tokens."""
    if not USERNAME.match(username):
        raise ValueError(
            f"{username!r} is not a username: 2 to 64 lowercase letters, digits, dots, "
            "hyphens or underscores"
        )
    found = passwords.problems(password, username)
    if found:
        raise ValueError(passwords.describe(found))
    return _put_user(session, pack, username, passwords.hash_password(password), roles, display)


def _put_user(
    session: Session,
    pack: Pack,
    username: str,
    password_hash: str,
    roles: Iterable[str],
    display: str = "",
) -> User:
    wanted = list(pack.roles.all) if "*" in roles else list(roles)
    errors: dict[str, list[str]] = {}
    ordered = ordered_roles(pack.roles, wanted, errors)
    if errors:
        unknown = sorted(set(wanted) - set(pack.roles.all))
        raise ValueError(f"unknown roles: {', '.join(unknown)}")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, session_generation=0)
        session.add(user)
    else:
        end_every_session(user)
    user.display_name = display or user.display_name or username
    user.password_hash = password_hash
    user.roles = ordered
    user.active = True
    return user


def seed_demo_users(session: Session, pack: Pack) -> list[str]:
    """Add the pack's demo users that are missing; those already there keep what an
    administrator changed (password, roles, disabled), so `make run` can run again.
    The demo password is the one that does not pass the policy: it is documented,
    development only, and refused at sign-in in production."""
    existing = set(session.scalars(select(User.username)))
    demo_hash = passwords.hash_password(DEMO_PASSWORD)
    added = []
    for demo in pack.demo_users:
        if demo.username in existing:
            continue
        user = _put_user(session, pack, demo.username, demo_hash, demo.roles, demo.display_name)
        # A reserved domain (RFC 2606): mail to it goes nowhere real.
        user.email = f"{demo.username}@example.com"
        added.append(user.username)
    return added


def fresh_demo_database(url: str, pack: Pack) -> Database:
    """An empty, migrated database with the demo users, the catalogue and the pack's
    diagrams, for tests and benchmarks. On PostgreSQL the public schema is dropped
    first: never point this at a database whose data matters."""
    db = Database(url)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    init_database(db, pack, FormLibrary.of(pack))
    with db.transaction() as session:
        seed_demo_users(session, pack)
    return db
