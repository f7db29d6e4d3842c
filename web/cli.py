"""`csi` command line: the same service layer the web app calls.

Reads DATABASE_URL (default: SQLite under instance/). Long runs show progress.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from engine import history, migrate, queries, replay, runtime, seed
from engine.errors import DomainError
from engine.runtime import Runtime
from engine.store import Database, Instance

DEFAULT_INSTANCE = Path.cwd() / "instance"


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = Path(os.environ.get("CSI_INSTANCE_PATH") or DEFAULT_INSTANCE)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'csi.sqlite3'}"


def open_db() -> Database:
    return Database(database_url())


def _fail(exc: DomainError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    if exc.details:
        for key, reasons in exc.details.items() if isinstance(exc.details, dict) else []:
            for reason in reasons if isinstance(reasons, list) else [reasons]:
                click.echo(f"  {key}: {reason}", err=True)
    sys.exit(2)


@click.group()
def main() -> None:
    """CSI Workflow: the service improvement procedure as executable BPMN."""


@main.command("init-db")
def init_db() -> None:
    """Create or upgrade the schema and deploy the bundled diagrams."""
    db = open_db()
    migrate.upgrade(db)
    with db.transaction() as session:
        deployed = runtime.seed_definitions(session)
        seed.seed_catalogue(session)
    for definition in deployed:
        click.echo(f"{definition.process_id} v{definition.version} {definition.content_hash[:12]}")
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Add the demo users (password 'demo'); never in production."""
    if os.environ.get("CSI_ENV") == "production":
        raise click.ClickException("demo users are refused when CSI_ENV=production")
    db = open_db()
    with db.transaction() as session:
        added = seed.seed_demo_users(session)
        seed.seed_catalogue(session)
    if added:
        click.echo(
            "demo users added: " + ", ".join(u.username for u in added) + " (password: demo)"
        )
    else:
        click.echo("demo users already there (kept as they are; password of new ones: demo)")


@main.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="role key, repeatable")
@click.option("--name", default="", help="display name")
@click.password_option()
def create_user(username: str, roles: tuple[str, ...], name: str, password: str) -> None:
    """Create a user or reset its password and roles."""
    db = open_db()
    try:
        with db.transaction() as session:
            seed.upsert_user(session, username, password, roles, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {username}: {', '.join(roles)}")


@main.command()
@click.option("--port", type=int, default=None, help="default 5000 or $PORT")
@click.option("--host", default="127.0.0.1")
@click.option("--no-worker", is_flag=True, help="do not fire timers from this process")
def serve(port: int | None, host: str, no_worker: bool) -> None:
    """Serve the web app (development server) and fire timers in the background."""
    from web import create_app

    port = port or int(os.environ.get("PORT", "5000"))
    app = create_app({"DATABASE_URL": database_url(), "EMBEDDED_WORKER": not no_worker})
    click.echo(f"CSI Workflow on http://{host}:{port}")
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


@main.command()
@click.option("--once", is_flag=True, help="one pass, then exit")
@click.option("--interval", type=float, default=5.0, show_default=True)
@click.option(
    "--now",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="fire what is due at this time (UTC unless it names a zone) instead of the clock's",
)
def worker(once: bool, interval: float, as_of: datetime | None) -> None:
    """Fire due timers (several workers may run against one PostgreSQL)."""
    rt = Runtime(open_db())
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    while True:
        moved = rt.fire_due_timers(as_of)
        if moved or once:
            click.echo(f"timers fired in {len(moved)} instance(s): {moved}")
        if once:
            return
        time.sleep(interval)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", default="cli", help="recorded as the deployer")
def deploy(file: Path, by: str) -> None:
    """Validate and deploy a BPMN file as a new version."""
    actor = runtime.Actor(by, runtime.CLI.roles)
    try:
        result = Runtime(open_db()).deploy(actor, file.read_bytes(), file.name)
    except DomainError as exc:
        _fail(exc)
    for definition in result.definitions:
        state = "deployed" if result.created else "unchanged"
        click.echo(f"{state}: {definition.process_id} v{definition.version}")


@main.command("migrate")
@click.argument("instance_id", type=int)
@click.option("--version", type=int, default=None, help="target version (default: the latest)")
@click.option("--by", default="cli", help="recorded as the one who migrated it")
def migrate_instance(instance_id: int, version: int | None, by: str) -> None:
    """Move a running instance onto another deployed version of its process."""
    actor = runtime.Actor(by, runtime.CLI.roles)
    try:
        result = Runtime(open_db()).migrate_instance(instance_id, actor, version)
    except DomainError as exc:
        _fail(exc)
        return
    click.echo(
        f"instance {instance_id} migrated (event {result.events[0]}); open tasks: {len(result.open_tasks)}"
    )


@main.command("verify-audit")
@click.option("--instance", "instance_id", type=int, default=None)
@click.option(
    "--write-anchors",
    type=click.File("w", encoding="utf-8"),
    default=None,
    help="also write every chain's head to this file, to keep outside the database",
)
@click.option(
    "--anchors",
    "anchors_file",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="check that the heads in this file (from --write-anchors) still stand",
)
def verify_audit(instance_id: int | None, write_anchors: Any, anchors_file: Any) -> None:
    """Recompute the hash chain of one or every instance."""
    db = open_db()
    if anchors_file is not None:
        try:
            document = json.load(anchors_file)
        except ValueError as exc:
            raise click.ClickException(f"not an anchors file: {exc}") from exc
        with db.snapshot() as session:
            try:
                problems = history.check_anchors(session, document)
            except DomainError as exc:
                _fail(exc)
                return
        count = len(document.get("heads") or [])
        for problem in problems:
            click.echo(f"instance {problem.instance_id} at seq {problem.seq}: {problem.message}")
        click.echo(f"{count - len(problems)} of {count} anchored heads still stand")
        if problems:
            sys.exit(1)
        return
    with db.snapshot() as session:
        ids = (
            [instance_id]
            if instance_id is not None
            else list(session.scalars(select(Instance.id).order_by(Instance.id)))
        )
        broken: set[int] = set()
        with click.progressbar(ids, label="verifying", file=sys.stderr) as bar:
            for iid in bar:
                try:
                    result = history.verify(session, iid)
                except DomainError as exc:
                    _fail(exc)
                    return
                if not result.ok:
                    broken.add(iid)
                    click.echo(
                        f"\ninstance {iid}: broken at seq {result.broken_at}: {result.message}"
                    )
    click.echo(f"{len(ids) - len(broken)} of {len(ids)} instances verified")
    if write_anchors is not None:
        with db.snapshot() as session:
            document = history.anchors(session, leave_out=broken)
        json.dump(document, write_anchors, indent=1)
        click.echo(f"anchors of {len(document['heads'])} chains written to {write_anchors.name}")
        if broken:
            click.echo(f"left out, broken: {', '.join(map(str, sorted(broken)))}")
    if broken:
        sys.exit(1)


@main.command("replay")
@click.argument("instance_id", type=int)
@click.option("--step", type=int, default=None, help="show the state at this event seq")
def replay_command(instance_id: int, step: int | None) -> None:
    """Rebuild an instance from its events and compare with the record at every step."""
    db = open_db()
    with db.snapshot() as session:
        try:
            result = replay.replay(session, instance_id, step)
        except DomainError as exc:
            _fail(exc)
            return
    click.echo(f"instance {instance_id}: {result.steps} events replayed")
    if result.state is not None and step is not None:
        state = result.state
        click.echo(f"at seq {state.seq} ({state.type} {state.bpmn_id or ''} by {state.actor})")
        click.echo(f"  done:   {', '.join(state.completed_elements)}")
        click.echo(f"  active: {', '.join(state.active_elements)}")
        click.echo(f"  changed: {', '.join(state.changed) or '-'}")
    if result.ok:
        click.echo("replay matches the record")
        return
    mismatch = result.mismatch
    assert mismatch is not None
    click.echo(f"MISMATCH at seq {mismatch.seq} ({mismatch.element or '-'}): {mismatch.message}")
    if mismatch.expected is not None or mismatch.actual is not None:
        click.echo(f"  recorded: {json.dumps(mismatch.expected, ensure_ascii=False)[:500]}")
        click.echo(f"  replayed: {json.dumps(mismatch.actual, ensure_ascii=False)[:500]}")
    sys.exit(1)


@main.command()
@click.argument("instance_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-")
def export(instance_id: int, fmt: str, output: Any) -> None:
    """Export an instance's history (every event with its hashes) as JSON or CSV."""
    db = open_db()
    with db.snapshot() as session:
        try:
            rows = queries.event_dicts(session, instance_id)
        except DomainError as exc:
            _fail(exc)
            return
    output.write(history.export(rows, fmt))
