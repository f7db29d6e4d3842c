"""replay_ratio: an auditor's replay (engine.audit.replay.replay) of an instance with 100+
user-task steps, divided by raw in-memory SpiffWorkflow executing the same steps.

The instance: the full cycle with 25 extra monitoring passes (102 user-task steps and
26 timer commands). The raw side runs the very same script on a bare BpmnWorkflow and
counts only the engine work (start, each step, each timer), not finding the tasks.
"""

from __future__ import annotations

import cProfile
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    RuntimeDoor,
    backend_url,
    median,
    ms,
    now,
    parsed_process,
    prepared_database,
    ratio,
    run_cycle,
)
from bench.persisted import profile_entries
from bench.raw import raw_cycle
from engine.audit.replay import replay
from engine.persistence.models import Event
from engine.runtime import Runtime
from procedure import PACK
from tests.helpers.actors import actors_of

PASSES = 25  # 22 + 3 × 25 + 5 = 102 user-task steps


def measure(
    backend: str = "sqlite", passes: int = PASSES, repeats: int = 3, raw_repeats: int = 5
) -> dict[str, Any]:
    db = prepared_database(backend_url(backend, "replay"))
    try:
        actors, parsed = actors_of(db), parsed_process(db)
        rt = Runtime(db)
        door = RuntimeDoor(rt, db, actors)
        run_cycle(door, passes)
        iid = door.last_instance
        assert iid is not None
        with db.sessions() as session:
            events = session.scalar(
                select(func.count()).select_from(Event).where(Event.instance_id == iid)
            )
        raw_cycle(parsed, actors, passes)  # warm-up
        replays: list[float] = []
        raws: list[float] = []
        ok = True
        mismatch = None
        for i in range(max(repeats, raw_repeats)):
            if i < raw_repeats:
                raws.append(raw_cycle(parsed, actors, passes).samples.total())
            if i < repeats:
                with db.sessions() as session:
                    started = now()
                    result = replay(session, PACK, iid)
                    replays.append(now() - started)
                ok = ok and result.ok
                if result.mismatch is not None:
                    mismatch = result.mismatch.as_dict()
        profiler = cProfile.Profile()
        with db.sessions() as session:
            profiler.enable()
            replay(session, PACK, iid)
            profiler.disable()
        return {
            "ratio": ratio(median(replays), median(raws)),
            "details": {
                "backend": backend,
                "user_steps": len(door.samples.steps()),
                "timer_commands": sum(1 for s in door.samples.items if s.kind == "timer"),
                "events": events,
                "replay_ms_median": ms(median(replays)),
                "raw_same_steps_ms_median": ms(median(raws)),
                "replay_ok": ok,
                "mismatch": mismatch,
                "profile_top10_ms_per_replay": profile_entries(profiler, 1, top=10),
            },
        }
    finally:
        db.dispose()
