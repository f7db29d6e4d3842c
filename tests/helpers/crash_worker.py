"""A worker that runs commands until it is killed, writing down each one the engine
acknowledged (returned from, so committed) before it starts the next.

Run as `python -m tests.helpers.crash_worker DATABASE_URL ACK_FILE`. Two threads drive
improvements through their first steps on the same database, as two requests of a web
worker would; the test kills the process with SIGKILL at an arbitrary moment, most
likely in the middle of a command.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from sqlalchemy import select

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import HumanTask
from engine.runtime import Runtime
from tests.cycle import REGISTER
from tests.helpers.actors import actors_of

PROPOSAL = {"metrics": [{"name": "可用率", "method": "监控"}]}


class Acks:
    """Acknowledged commands, one line each, on disk before the next command starts."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the kill
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())


def open_task(rt: Runtime, instance_id: int, bpmn_id: str, assignee: str | None) -> str:
    with rt.db.sessions() as session:
        query = select(HumanTask.id).where(
            HumanTask.instance_id == instance_id,
            HumanTask.bpmn_id == bpmn_id,
            HumanTask.status == "open",
        )
        if assignee is not None:
            query = query.where(HumanTask.assignee == assignee)
        found = session.scalar(query)
    assert found is not None, (instance_id, bpmn_id, assignee)
    return str(found)


def drive(rt: Runtime, actors: dict[str, Actor], acks: Acks) -> None:
    """Start improvements and take each through registration and both proposals."""
    steps: list[tuple[str, str, str | None, dict[str, Any]]] = [
        ("owner", "register_input", None, REGISTER),
        ("po1", "propose_metrics", "po1", PROPOSAL),
        ("po2", "propose_metrics", "po2", PROPOSAL),
    ]
    while True:
        instance_id = rt.start_instance(actors["owner"]).instance_id
        acks.write(f"started {instance_id}")
        for username, bpmn_id, assignee, data in steps:
            task_id = open_task(rt, instance_id, bpmn_id, assignee)
            rt.complete_task(task_id, actors[username], data)
            acks.write(f"completed {instance_id} {task_id}")


def main() -> None:
    url, path = sys.argv[1], sys.argv[2]
    db = Database(url)
    rt = Runtime(db)
    actors = actors_of(db)
    acks = Acks(path)
    for _ in range(2):
        threading.Thread(target=drive, args=(rt, actors, acks), daemon=True).start()
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
