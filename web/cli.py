"""`csi` command line: the same engine front door the web app calls.

Reads its settings from the environment (engine.settings). Long runs show progress.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from engine.access import Actor, operator
from engine.audit import exports
from engine.errors import DomainError
from engine.inputs import MAX_ID
from engine.runtime import Runtime
from engine.settings import Settings

# Ids and steps as the database can hold them: a larger number names nothing there.
ID = click.IntRange(1, MAX_ID)


def settings() -> Settings:
    return Settings.from_env()


def runtime() -> Runtime:
    return Runtime.from_settings(settings())


def os_user() -> str:
    """The account running this process, from the system's user database rather than
    $USER or $LOGNAME, which anyone can set."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except ImportError:  # not a POSIX system
        return getpass.getuser()
    except KeyError:  # a uid without a name (containers)
        return f"uid{os.geteuid()}"


def cli_actor(rt: Runtime, by: str | None = None) -> Actor:
    """Who a command acts as (engine.access.operator): `--by` must name an existing,
    active user, whose roles then apply."""
    stated = None
    if by is not None:
        user = rt.queries.user_named(by)
        if user is None:
            raise click.ClickException(f"--by {by}: there is no such user")
        if not user.active:
            raise click.ClickException(f"--by {by}: the user is deactivated")
        stated = Actor(user.username, frozenset(user.roles))
    try:
        return operator(os_user(), stated)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


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
    rt = runtime()
    deployed = rt.init_database()
    for definition in deployed:
        click.echo(f"{definition.process_id} v{definition.version} {definition.content_hash[:12]}")
    if not deployed:
        raise click.ClickException(f"the pack {rt.pack.name} holds no diagram")
    click.echo(f"database ready: {rt.db.engine.url.render_as_string(hide_password=True)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Add the demo users (password 'demo'); never in production."""
    if settings().production:
        raise click.ClickException("demo users are refused when CSI_ENV=production")
    added = runtime().seed_demo()
    if added:
        click.echo("demo users added: " + ", ".join(added) + " (password: demo)")
    else:
        click.echo("demo users already there (kept as they are; password of new ones: demo)")


@main.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="role key, repeatable")
@click.option("--name", default="", help="display name")
@click.password_option()
def create_user(username: str, roles: tuple[str, ...], name: str, password: str) -> None:
    """Create a user or reset its password and roles."""
    try:
        runtime().upsert_user(username, password, list(roles), name)
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

    port = port or settings().port
    app = create_app({"EMBEDDED_WORKER": not no_worker})
    click.echo(f"CSI Workflow on http://{host}:{port}")
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


@main.command()
@click.option("--once", is_flag=True, help="one pass, then exit")
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="seconds between passes"
)
@click.option(
    "--now",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="run the pass as at this time (UTC unless it names a zone) instead of the clock's",
)
def worker(once: bool, interval: float, as_of: datetime | None) -> None:
    """Run the worker: a pass every --interval seconds (or one with --once).

    \b
    Each pass, in this order:
    1. fires the timers that are due (re-checks, waits in the diagrams);
    2. starts due periodic reviews: one improvement per period of each active
       schedule (Periodic reviews page), exactly once even with several workers;
    3. adds notifications of tasks due tomorrow and of tasks overdue (once each);
    4. delivers pending notifications by e-mail (SMTP_HOST …) and webhook
       (CSI_WEBHOOK_URL), retrying failures with growing waits.

    Several workers may run against one PostgreSQL database: they share the work
    through row locks and unique keys."""
    from web import create_app

    # The app words the messages (its translations); it serves no request here, so a
    # key of its own signs nothing anyone holds.
    app = create_app({"EMBEDDED_WORKER": False, "SECRET_KEY": secrets.token_hex(32)})
    rt = app.extensions["csi"].runtime
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    while True:
        result = rt.worker_pass(as_of)
        if result.busy or result.failed_steps or once:
            click.echo(result.summary())
        if once:
            if result.failed_steps:
                sys.exit(1)
            return
        time.sleep(interval)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--by",
    default=None,
    help="an existing user on whose behalf (and with whose roles) to deploy; the history "
    "records '<user> via cli:<os user>'",
)
def deploy(file: Path, by: str | None) -> None:
    """Validate and deploy a BPMN file as a new version."""
    try:
        rt = runtime()
        result = rt.deploy(cli_actor(rt, by), file.read_bytes(), file.name)
    except DomainError as exc:
        _fail(exc)
    for definition in result.definitions:
        state = "deployed" if result.created else "unchanged"
        click.echo(f"{state}: {definition.process_id} v{definition.version}")


@main.command("migrate")
@click.argument("instance_id", type=ID)
@click.option("--version", type=ID, default=None, help="target version (default: the latest)")
@click.option(
    "--by",
    default=None,
    help="an existing user on whose behalf (and with whose roles) to migrate; the history "
    "records '<user> via cli:<os user>'",
)
def migrate_instance(instance_id: int, version: int | None, by: str | None) -> None:
    """Move a running instance onto another deployed version of its process."""
    try:
        rt = runtime()
        result = rt.migrate_instance(instance_id, cli_actor(rt, by), version)
    except DomainError as exc:
        _fail(exc)
        return
    click.echo(
        f"instance {instance_id} migrated (event {result.events[0]}); open tasks: {len(result.open_tasks)}"
    )


@main.command("verify-audit")
@click.option("--instance", "instance_id", type=ID, default=None)
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
    """Recompute the hash chain of one or every instance, and check its stored state."""
    rt = runtime()
    queries, actor = rt.queries, cli_actor(rt)
    if anchors_file is not None:
        _check_anchors(queries, actor, anchors_file)
        return
    # Every chain in the log, not only those whose instance row is still there.
    ids = [instance_id] if instance_id is not None else queries.chains(actor)
    broken: set[int] = set()
    with click.progressbar(ids, label="verifying", file=sys.stderr) as bar:
        for iid in bar:
            try:
                result = queries.verify(actor, iid)
            except DomainError as exc:
                if instance_id is not None:
                    _fail(exc)
                broken.add(iid)  # a finding like any other: the pass goes on
                click.echo(f"\ninstance {iid}: {exc.message}")
                continue
            if not result.ok:
                broken.add(iid)
                where = f"broken at seq {result.broken_at}: " if result.broken_at else ""
                click.echo(f"\ninstance {iid}: {where}{result.message}")
    click.echo(f"{len(ids) - len(broken)} of {len(ids)} instances verified")
    log_broken = False
    if instance_id is None:
        # The procedure's own history: who changed it, who approved it.
        log = queries.models.verify_log(actor)
        log_broken = not log.ok
        where = f"broken at entry {log.broken_at}: " if log.broken_at else ""
        click.echo(f"model log: {where}{log.message}")
    if write_anchors is not None:
        document = queries.anchors(actor, leave_out=broken)
        json.dump(document, write_anchors, indent=1)
        click.echo(f"anchors of {len(document['heads'])} chains written to {write_anchors.name}")
        if broken:
            click.echo(f"left out, broken: {', '.join(map(str, sorted(broken)))}")
    if broken or log_broken:
        sys.exit(1)


def _check_anchors(queries: Any, actor: Actor, anchors_file: Any) -> None:
    try:
        document = json.load(anchors_file)
    except ValueError as exc:
        raise click.ClickException(f"not an anchors file: {exc}") from exc
    try:
        problems = queries.check_anchors(actor, document)
    except DomainError as exc:
        _fail(exc)
        return
    count = len(document.get("heads") or [])
    for problem in problems:
        click.echo(f"instance {problem.instance_id} at seq {problem.seq}: {problem.message}")
    click.echo(f"{count - len(problems)} of {count} anchored heads still stand")
    if problems:
        sys.exit(1)


@main.command("replay")
@click.argument("instance_id", type=ID)
@click.option("--step", type=ID, default=None, help="show the state at this event seq")
@click.option(
    "--repair",
    is_flag=True,
    help="store the state rebuilt from the events in place of a damaged one (audited)",
)
def replay_command(instance_id: int, step: int | None, repair: bool) -> None:
    """Rebuild an instance from its events and compare with the record at every step."""
    if repair:
        _repair(instance_id)
        return
    try:
        rt = runtime()
        result = rt.queries.replay(cli_actor(rt), instance_id, step)
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
    if mismatch is None:
        return
    click.echo(f"MISMATCH at seq {mismatch.seq} ({mismatch.element or '-'}): {mismatch.message}")
    if mismatch.recorded is not None or mismatch.replayed is not None:
        click.echo(f"  recorded: {json.dumps(mismatch.recorded, ensure_ascii=False)[:500]}")
        click.echo(f"  replayed: {json.dumps(mismatch.replayed, ensure_ascii=False)[:500]}")
    sys.exit(1)


def _repair(instance_id: int) -> None:
    rt = runtime()
    try:
        result = rt.repair_state(instance_id, cli_actor(rt))
    except DomainError as exc:
        _fail(exc)
        return
    click.echo(
        f"instance {instance_id}: state rebuilt from its history and stored"
        f" (event {result.events[0]} state_repaired); open tasks: {len(result.open_tasks)}"
    )


@main.command()
@click.argument("instance_id", type=ID)
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "pack"]), default="json")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=str),
    default="-",
    help="the file to write (default: standard output)",
)
def export(instance_id: int, fmt: str, output: str) -> None:
    """Export an instance's history (every event with its hashes) as JSON or CSV, or its
    evidence pack (a zip: record, history, verify and replay, anchors, diagrams,
    attachments and a manifest; check it with `csi verify-pack`)."""
    try:
        rt = runtime()
        if fmt == "pack":
            found = rt.queries.evidence.pack_of_instance(cli_actor(rt), instance_id)
        else:
            rows = rt.queries.history(cli_actor(rt), instance_id)
    except DomainError as exc:
        _fail(exc)
        return
    if fmt == "pack":
        with click.open_file(output, "wb") as file:
            file.write(found.content)
        click.echo(f"{found.name}: sha256 {found.sha256}", err=True)
        return
    with click.open_file(output, "w", encoding="utf-8") as file:
        file.write(exports.render(rows, fmt))
    for row in rows:
        if not row["readable"]:
            click.echo(f"event {row['seq']} cannot be read: exported as stored", err=True)


@main.command("verify-pack")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_pack_command(file: Path) -> None:
    """Check an evidence pack offline (no server, no database): every file against the
    manifest, the hash chain from its history, each attachment against its event."""
    from engine.evidence.verify_pack import verify_pack

    result = verify_pack(file)
    for line in result.checked:
        click.echo(f"ok: {line}")
    if not result.ok:
        click.echo(f"FAILED: {result.problem}", err=True)
        sys.exit(1)
    click.echo(f"{file.name}: the evidence pack holds (sha256 {_sha256_of(file)})")


def _sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
