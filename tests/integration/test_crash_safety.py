"""A worker killed in the middle of commands loses nothing it acknowledged: every
acknowledged completion is in the log once, every chain verifies, every replay
reproduces, and the next command on each instance goes on from where the log ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.access import SYSTEM
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask
from engine.runtime import Runtime
from tests.cycle import METRICS, REGISTER
from tests.helpers.actors import actors_of
from tests.helpers.crash_worker import PROPOSAL
from tests.helpers.databases import POSTGRES

ROOT = Path(__file__).resolve().parents[2]
# What each task the worker leaves open is completed with afterwards.
NEXT = {
    "register_input": REGISTER,
    "propose_metrics": PROPOSAL,
    "define_metrics": {"metrics": METRICS},
}
ACKNOWLEDGED_BEFORE_THE_KILL = 24
PATIENCE_SECONDS = 60


def _acks(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _run_and_kill(url: str, ack_file: Path) -> list[str]:
    """Start the worker, let it acknowledge some commands, kill it with SIGKILL."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.crash_worker", url, str(ack_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while len(_acks(ack_file)) < ACKNOWLEDGED_BEFORE_THE_KILL:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker acknowledged too little in time"
            time.sleep(0.02)  # polling another process, not waiting for a timer
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    return _acks(ack_file)


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_killed_worker_loses_no_acknowledged_command(
    committed_db: Database, tmp_path: Path
) -> None:
    acks = _run_and_kill(committed_db.url, tmp_path / "acks.txt")
    completed = [line.split()[1:] for line in acks if line.startswith("completed")]
    started = {int(line.split()[1]) for line in acks if line.startswith("started")}
    assert completed

    with committed_db.sessions() as session:
        recorded = {
            (str(instance_id), str(task_id)): count
            for instance_id, task_id, count in session.execute(
                select(Event.instance_id, Event.task_id, func.count())
                .where(Event.type == "task_completed")
                .group_by(Event.instance_id, Event.task_id)
            )
        }
    for instance_id, task_id in completed:
        assert recorded.get((instance_id, task_id)) == 1, (instance_id, task_id)

    # Every instance, the one cut off mid-command included, verifies and replays.
    rt = Runtime(committed_db)
    instance_ids = rt.queries.chains(SYSTEM)
    assert started <= set(instance_ids)
    for instance_id in instance_ids:
        assert rt.queries.verify(SYSTEM, instance_id).ok, instance_id
        replayed = rt.queries.replay(SYSTEM, instance_id)
        assert replayed.ok, (instance_id, replayed.mismatch and replayed.mismatch.as_dict())

    # A new worker takes each instance up where its log ends: its open tasks complete.
    actors = actors_of(committed_db)
    with committed_db.sessions() as session:
        open_tasks = session.execute(
            select(HumanTask.id, HumanTask.bpmn_id, HumanTask.assignee).where(
                HumanTask.status == "open"
            )
        ).all()
    assert {bpmn_id for _, bpmn_id, _ in open_tasks} <= set(NEXT)
    for task_id, bpmn_id, assignee in open_tasks:
        rt.complete_task(task_id, actors[assignee or "owner"], NEXT[bpmn_id])
    for instance_id in instance_ids:
        assert rt.queries.verify(SYSTEM, instance_id).ok
