"""raw_step_ms: one user-task step of the full improvement cycle in raw, in-memory
SpiffWorkflow (parse once; SpiffWorkflow's PythonScriptEngine whose environment stubs
call_service; no persistence). The reference every other figure is divided by.

Other figures interleave their own raw cycles with what they measure (`RawClock`), so
a ratio compares two things measured side by side on this noisy machine; this module's
figure is the headline reference, from its own dedicated cycles.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from bench.common import (
    RawDoor,
    median,
    ms,
    now,
    p95,
    parsed_process,
    prepared_database,
    quantiles,
    run_cycle,
    sqlite_url,
)
from engine.access import Actor
from engine.persistence.database import Database
from engine.workflow import parsing, safe_xml
from procedure import PACK
from tests.helpers.actors import actors_of


def raw_cycle(parsed: parsing.ParsedSpecs, actors: dict[str, Actor], passes: int = 0) -> RawDoor:
    door = RawDoor(parsed, actors)
    run_cycle(door, passes)
    return door


class RawClock:
    """Raw cycles run next to a measurement; their user-task steps pooled."""

    def __init__(self, parsed: parsing.ParsedSpecs, actors: dict[str, Actor]) -> None:
        self.parsed, self.actors = parsed, actors
        self.steps: list[float] = []

    def tick(self, cycles: int = 1) -> None:
        for _ in range(cycles):
            self.steps += raw_cycle(self.parsed, self.actors).samples.steps()

    @property
    def step_seconds(self) -> float:
        return median(self.steps)


def parse_seconds() -> float:
    """Parsing the bundled diagrams once (what `parse once` saves every step)."""
    started = now()
    parser = SpiffBpmnParser()
    for resource in PACK.diagram_files():
        parser.add_bpmn_xml(safe_xml.safe_tree(resource.read_bytes(), resource.name), resource.name)
    parser.get_spec("service_improvement")
    parser.get_subprocess_specs("service_improvement")
    return now() - started


def measure(cycles: int = 30, warmup: int = 3, db: Database | None = None) -> dict[str, Any]:
    own = db is None
    db = db or prepared_database(sqlite_url("raw"))
    try:
        parsed, actors = parsed_process(db), actors_of(db)
    finally:
        if own:
            db.dispose()
    for _ in range(warmup):
        raw_cycle(parsed, actors)
    steps: list[float] = []
    per_cycle: list[float] = []
    by_kind: dict[str, list[float]] = {}
    steps_per_cycle = 0
    for _ in range(cycles):
        door = raw_cycle(parsed, actors)
        steps += door.samples.steps()
        steps_per_cycle = len(door.samples.steps())
        per_cycle.append(door.samples.total())
        for sample in door.samples.items:
            by_kind.setdefault(sample.kind, []).append(sample.seconds)
    return {
        "raw_step_ms": ms(median(steps)),
        "details": {
            "step_p95_ms": ms(p95(steps)),
            "cycles": cycles,
            "user_steps_per_cycle": steps_per_cycle,
            "cycle_ms_median": ms(median(per_cycle)),
            "parse_ms": ms(parse_seconds()),
            "by_kind_median_ms": {k: ms(median(v)) for k, v in sorted(by_kind.items())},
            "steps": quantiles(steps),
        },
    }
