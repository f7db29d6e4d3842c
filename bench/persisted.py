"""persisted_step_ratio_{sqlite,postgres}, step_cost_growth and the profile.

A persisted step is one `Runtime.complete_task` command, timed whole: lock and load
the instance, validate the form data, run the engine, save state + task projection +
events, commit. Raw cycles run interleaved with the persisted ones, so each ratio
compares two things measured side by side.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from typing import Any

from bench.common import (
    ROOT,
    RuntimeDoor,
    Samples,
    backend_url,
    median,
    monitoring_passes,
    ms,
    p95,
    parsed_process,
    prepared_database,
    ratio,
    run_cycle,
)
from bench.raw import RawClock, raw_cycle
from engine.persistence.instances import WorkflowCache
from engine.persistence.models import WorkflowState
from engine.runtime import Runtime
from tests.cycle import Driver
from tests.helpers.actors import actors_of


def _by_kind(samples: Samples) -> dict[str, float]:
    kinds: dict[str, list[float]] = {}
    for s in samples.items:
        kinds.setdefault(s.kind, []).append(s.seconds)
    return {k: ms(median(v)) for k, v in sorted(kinds.items())}


def _where(filename: str, line: int, function: str) -> str:
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif filename.startswith(str(ROOT)):
        filename = filename[len(str(ROOT)) + 1 :]
    if filename == "~":
        return function  # a builtin
    return f"{filename}:{line}({function})"


def profile_entries(
    profiler: cProfile.Profile, steps: int, top: int = 20, prefix: str = ""
) -> list[dict[str, Any]]:
    """cProfile's top entries by cumulative time, in ms per step; with `prefix`, only
    functions whose file starts with it (e.g. "engine/")."""
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    entries = []
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in rows:
        if "bench/" in filename:
            continue  # the harness's own wrapper around the command
        where = _where(filename, line, function)
        if prefix and not where.startswith(prefix):
            continue
        entries.append(
            {
                "function": where,
                "calls_per_step": calls / steps,
                "tottime_ms_per_step": ms(tottime) / steps,
                "cumtime_ms_per_step": ms(cumtime) / steps,
            }
        )
        if len(entries) == top:
            break
    return entries


def _profiled(profiler: cProfile.Profile) -> Callable[[Callable[[], Any]], Any]:
    def around(call: Callable[[], Any]) -> Any:
        profiler.enable()
        try:
            return call()
        finally:
            profiler.disable()

    return around


def measure_backend(
    backend: str, cycles: int = 6, cold_cycles: int = 2, profile_cycles: int = 2
) -> dict[str, Any]:
    """Full cycles through the service layer on one backend, raw cycles between them."""
    db = prepared_database(backend_url(backend, "persisted"))
    try:
        actors, parsed = actors_of(db), parsed_process(db)
        clock = RawClock(parsed, actors)
        rt = Runtime(db)
        run_cycle(RuntimeDoor(rt, db, actors))  # warm-up: parse, forms, connections
        clock.tick(2)
        clock.steps.clear()
        warm = Samples()
        for _ in range(cycles):
            clock.tick()
            door = RuntimeDoor(rt, db, actors)
            run_cycle(door)
            warm.items += door.samples.items
        clock.tick()

        # Another worker's request (or a restart): every command loads the state.
        cold_rt = Runtime(db, cache=WorkflowCache(capacity=0))
        cold = Samples()
        for _ in range(cold_cycles):
            door = RuntimeDoor(cold_rt, db, actors)
            run_cycle(door)
            cold.items += door.samples.items

        profiler = cProfile.Profile()
        profiled = RuntimeDoor(rt, db, actors, around_complete=_profiled(profiler))
        for _ in range(profile_cycles):
            run_cycle(profiled)
        profiled_steps = len(profiled.samples.steps())

        raw_s = clock.step_seconds
        step_s = median(warm.steps())
        cold_s = median(cold.steps())
        return {
            "ratio": ratio(step_s, raw_s),
            "details": {
                "step_ms_median": ms(step_s),
                "step_ms_p95": ms(p95(warm.steps())),
                "raw_step_ms_interleaved": ms(raw_s),
                "steps": len(warm.steps()),
                "cycles": cycles,
                "cold_load_step_ms_median": ms(cold_s),
                "cold_load_ratio": ratio(cold_s, raw_s),
                "start_instance_ms_median": ms(
                    median([s.seconds for s in warm.items if s.kind == "start"])
                ),
                "timer_command_ms_median": ms(
                    median([s.seconds for s in warm.items if s.kind == "timer"])
                ),
                "by_kind_median_ms": _by_kind(warm),
            },
            "profile": {
                "backend": backend,
                "steps": profiled_steps,
                "per_step_ms_under_profiler": ms(
                    sum(
                        s.seconds
                        for s in profiled.samples.items
                        if s.kind not in ("start", "timer")
                    )
                )
                / max(1, profiled_steps),
                "top": profile_entries(profiler, profiled_steps),
                "top_engine": profile_entries(profiler, profiled_steps, 15, "engine/"),
            },
        }
    finally:
        db.dispose()


# ---- growth --------------------------------------------------------------------------

GROWTH_KIND = "collect_data"
EARLY_POSITIONS = range(5, 7)  # steps 6 and 7 of a cycle: the first data collection
LATE_FROM = 200


def measure_growth(
    backend: str = "sqlite", passes: int = 80, early_cycles: int = 20
) -> dict[str, Any]:
    """The same kind of step (collect_data: both owners report, the second runs
    compute_gaps) early in an instance's life (steps 6-7, the nearest collect_data to
    step 10) and once the instance has 200+ completed user-task steps. History grows
    through the monitoring loop: timer → collect_data ×2 → monitor_progress 'continue'.

    Young and old are timed side by side: once the old instance is 200 steps deep,
    each of its monitoring passes is followed by a whole young cycle (up to
    `early_cycles` of them), so a burst of noise on this small machine falls on both."""
    db = prepared_database(backend_url(backend, "growth"))
    try:
        actors, parsed = actors_of(db), parsed_process(db)
        rt = Runtime(db)
        run_cycle(RuntimeDoor(rt, db, actors))  # warm-up
        early: list[float] = []
        young_cycles = 0
        long = RuntimeDoor(rt, db, actors)

        def young_beside(_pass: int) -> None:
            nonlocal young_cycles
            if long.position < LATE_FROM or young_cycles >= early_cycles:
                return
            door = RuntimeDoor(rt, db, actors)
            run_cycle(door)
            young_cycles += 1
            early.extend(
                s.seconds
                for s in door.samples.items
                if s.kind == GROWTH_KIND and s.position in EARLY_POSITIONS
            )

        Driver(long, before_timer=monitoring_passes(long, passes, young_beside)).run()
        late = [
            s.seconds
            for s in long.samples.items
            if s.kind == GROWTH_KIND and s.position >= LATE_FROM
        ]
        with db.sessions() as session:
            state = session.get(WorkflowState, long.last_instance)
            state_bytes = len(state.state.encode("utf-8")) if state is not None else None

        # The same script in raw SpiffWorkflow: how much of the growth is its own.
        raw_long = raw_cycle(parsed, actors, passes)
        raw_plain = [raw_cycle(parsed, actors) for _ in range(5)]
        raw_early = [
            s.seconds
            for door in [raw_long, *raw_plain]
            for s in door.samples.items
            if s.kind == GROWTH_KIND and s.position in EARLY_POSITIONS
        ]
        raw_late = [
            s.seconds
            for s in raw_long.samples.items
            if s.kind == GROWTH_KIND and s.position >= LATE_FROM
        ]
        every_step: list[dict[str, Any]] = [
            {"position": s.position, "kind": s.kind, "ms": ms(s.seconds)}
            for s in long.samples.items
        ]
        return {
            "growth": ratio(median(late), median(early)),
            "details": {
                "backend": backend,
                "kind": GROWTH_KIND,
                "early_ms_median": ms(median(early)),
                "early_samples": len(early),
                "young_cycles_beside": young_cycles,
                "late_ms_median": ms(median(late)),
                "late_samples": len(late),
                "user_steps_in_instance": len(long.samples.steps()),
                "timer_commands_in_instance": sum(
                    1 for s in long.samples.items if s.kind == "timer"
                ),
                "state_bytes_at_end": state_bytes,
                "raw_early_ms_median": ms(median(raw_early)),
                "raw_late_ms_median": ms(median(raw_late)),
                "raw_growth": ratio(median(raw_late), median(raw_early)),
                "late_ratio_to_raw_late": ratio(median(late), median(raw_late)),
                "step_ms_by_position_every_20": [
                    e for e in every_step if e["position"] % 20 == 0 and e["kind"] != "timer"
                ],
            },
        }
    finally:
        db.dispose()
