"""What a changed procedure would do before it is published: which running
improvements could be migrated onto the draft, and how recorded histories would have
gone under it (what-if replay).

The what-if tests read one finished improvement per backend, run once for the module
and committed; each test works in `db`, whose outer transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from engine.access import Actor
from engine.errors import ValidationFailed
from engine.modeling.impact import MAX_WHAT_IF, impact
from engine.persistence.database import Database
from engine.persistence.models import Event
from engine.runtime import Runtime
from procedure import PACK
from tests.cycle import Driver
from tests.helpers.actors import actors_of
from tests.helpers.clock import FakeClock
from tests.helpers.databases import BACKENDS, delete_committed_rows, shared_database
from tests.helpers.diagrams import with_task_before, without_task
from tests.helpers.doors import RuntimeDoor

BPMN = (PACK.files / "service_improvement.bpmn").read_text(encoding="utf-8")
CHANGES = (PACK.files / "change_management.bpmn").read_text(encoding="utf-8")
# The review gateway with its conditions swapped: an approved plan goes back to planning.
REROUTED = BPMN.replace("decision == 'reject'", "decision == 'approve'")
# A user task put between recording the plan and reviewing it.
PREPARED = with_task_before(
    BPMN,
    "review_plan",
    "prepare_review",
    '<bpmn:userTask id="prepare_review" name="准备管理评审材料" />',
)


def _idle_step_before(element: str, xml: str) -> str:
    return with_task_before(
        xml,
        element,
        f"idle_before_{element}",
        f'<bpmn:scriptTask id="idle_before_{element}"><bpmn:script>phase = phase</bpmn:script>'
        "</bpmn:scriptTask>",
    )


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Module-wide here, so the tests of one backend run together around one cycle."""
    return str(request.param)


@pytest.fixture(scope="module")
def finished_cycle(backend: str, database_urls: dict[str, str | None]) -> Iterator[int]:
    """The full cycle, run and committed once per backend for this module."""
    base = shared_database(backend, database_urls)
    clock = FakeClock()
    door = RuntimeDoor(Runtime(base, clock=clock), base, actors_of(base))
    try:
        yield Driver(door, clock).run().instance_id
    finally:
        delete_committed_rows(base)


@pytest.fixture
def finished(finished_cycle: int, db: Database) -> int:
    """The finished improvement, for a test working in `db` (changes rolled back)."""
    return finished_cycle


def _impact(db: Database, xml: str, **options: Any) -> dict[str, Any]:
    with db.sessions() as session:
        found = impact(session, PACK, "service_improvement", xml.encode("utf-8"), **options)
    return found.as_json()


def _what_if(db: Database, xml: str, instance_id: int) -> dict[str, Any]:
    (entry,) = [w for w in _impact(db, xml)["what_if"] if w["instance_id"] == instance_id]
    return entry


def _seq(db: Database, instance_id: int, event_type: str, bpmn_id: str, nth: int = 0) -> int:
    """The seq of the `nth` event of that type at that element."""
    with db.sessions() as session:
        seqs = list(
            session.scalars(
                select(Event.seq)
                .where(
                    Event.instance_id == instance_id,
                    Event.type == event_type,
                    Event.bpmn_id == bpmn_id,
                )
                .order_by(Event.seq)
            )
        )
    return seqs[nth]


def test_a_draft_without_the_task_an_improvement_stands_on_names_it(
    db: Database, rt: Runtime, actors: dict[str, Actor], finished: int
) -> None:
    door = RuntimeDoor(rt, db, actors)
    at_review = door.start("owner")
    Driver(door).to_first_review(at_review)  # review_plan open
    at_start = door.start("owner")  # register_input open
    draft = without_task(BPMN, "review_plan")

    found = _impact(db, draft)

    assert found["migratable"] == [at_start]
    assert [(n["instance_id"], n["elements"]) for n in found["not_migratable"]] == [
        (at_review, ["review_plan"])
    ]
    assert found["versions"] == [{"version": 1, "running": 2, "finished": 1}]
    # What the migration itself says once the draft is deployed: the same.
    version = rt.deploy(actors["admin"], draft.encode("utf-8"), "service_improvement.bpmn")
    number = version.definitions[0].version
    with pytest.raises(ValidationFailed) as refused:
        rt.migrate_instance(at_review, actors["admin"], number)
    assert sorted(refused.value.details) == ["review_plan"]
    rt.migrate_instance(at_start, actors["admin"], number)
    assert _impact(db, draft)["versions"] == [
        {"version": 1, "running": 1, "finished": 1},
        {"version": 2, "running": 1, "finished": 0},
    ]


@pytest.mark.parametrize(
    "draft",
    [
        BPMN,
        BPMN.replace('name="填写服务改进记录"', 'name="编写服务改进记录"'),
        # Script steps that change nothing, before a task and before the timer: the
        # tasks and timers after them get other ids, and the history goes the same way.
        _idle_step_before("wait_recheck", _idle_step_before("review_plan", BPMN)),
    ],
    ids=["same", "relabelled", "idle-steps"],
)
def test_a_finished_improvement_replays_identically_on_an_equivalent_draft(
    db: Database, finished: int, draft: str
) -> None:
    assert _what_if(db, draft, finished) == {
        "instance_id": finished,
        "identical": True,
        "first_divergence": None,
    }


def test_a_rerouted_gateway_diverges_at_the_review_that_went_the_other_way(
    db: Database, finished: int
) -> None:
    entry = _what_if(db, REROUTED, finished)
    assert entry["identical"] is False
    divergence = entry["first_divergence"]
    # The first review rejected the plan: recorded back to planning, the draft goes on.
    assert divergence["seq"] == _seq(db, finished, "task_completed", "review_plan")
    assert divergence["element"] == "gw_review"
    assert "recorded [record_improvement]" in divergence["description"]
    assert "draft [assess_change, assess_change]" in divergence["description"]


def test_a_task_put_in_the_middle_diverges_where_the_recorded_next_task_would_open(
    db: Database, finished: int
) -> None:
    divergence = _what_if(db, PREPARED, finished)["first_divergence"]
    assert divergence["seq"] == _seq(db, finished, "task_completed", "record_improvement")
    assert divergence["element"] == "record_improvement"
    assert "recorded [review_plan] vs draft [prepare_review]" in divergence["description"]


@pytest.mark.parametrize(
    ("draft", "element", "where", "said"),
    [
        # A service task that raises: compute_gaps handed a number for its metrics.
        (
            BPMN.replace(
                '<spiffworkflow:parameter id="metrics" type="any" value="metrics" />',
                '<spiffworkflow:parameter id="metrics" type="any" value="1" />',
            ),
            "compute_gaps",
            ("task_completed", "collect_data", 1),
            "not iterable",
        ),
        # A loop with no task in it: the engine's bound on one command's steps.
        (
            BPMN.replace(
                'sourceRef="gw_review" targetRef="gw_plan"',
                'sourceRef="gw_review" targetRef="gw_review"',
            ),
            "gw_review",
            ("task_completed", "review_plan", 0),
            "engine steps",
        ),
    ],
    ids=["service-raises", "endless-loop"],
)
def test_a_draft_that_breaks_diverges_where_it_breaks(
    db: Database, finished: int, draft: str, element: str, where: tuple[str, str, int], said: str
) -> None:
    assert draft != BPMN
    divergence = _what_if(db, draft, finished)["first_divergence"]
    assert divergence["seq"] == _seq(db, finished, *where)
    assert divergence["element"] == element
    assert said in divergence["description"]


def test_called_processes_keep_the_versions_the_history_pinned(
    db: Database, rt: Runtime, actors: dict[str, Actor], finished: int
) -> None:
    # A newer change process where the CAB's rejection approves: on it, the recorded
    # changes would go otherwise, but the history pinned the version it ran on.
    swapped = CHANGES.replace("decision == 'reject'", "decision == 'approve'")
    assert swapped != CHANGES
    rt.deploy(actors["admin"], swapped.encode("utf-8"), "change_management.bpmn")
    assert _what_if(db, BPMN, finished)["identical"] is True


def test_a_record_that_does_not_replay_on_its_own_version_says_so(
    db: Database, finished: int
) -> None:
    with db.transaction() as session:
        event = session.scalar(
            select(Event).where(
                Event.instance_id == finished,
                Event.bpmn_id == "analyse_gaps",
                Event.type == "task_completed",
            )
        )
        event.payload = {**event.payload, "after": {**event.payload["after"], "completed": True}}
        seq = event.seq
    divergence = _what_if(db, BPMN, finished)["first_divergence"]
    assert divergence["seq"] == seq
    assert divergence["description"].startswith("the record does not replay on its own version")


def test_the_newest_histories_first_up_to_the_limit_with_progress(
    db: Database, rt: Runtime, actors: dict[str, Actor], finished: int
) -> None:
    door = RuntimeDoor(rt, db, actors)
    started = [door.start("owner") for _ in range(3)]
    heard: list[tuple[int, int]] = []

    found = _impact(db, BPMN, limit=2, progress=lambda done, total: heard.append((done, total)))

    assert [w["instance_id"] for w in found["what_if"]] == started[:0:-1]
    assert found["limited"] is True
    assert heard == [(done, 5) for done in range(6)]  # three running, two replayed
    everything = _impact(db, BPMN, limit=MAX_WHAT_IF * 10)
    assert [w["instance_id"] for w in everything["what_if"]] == [*started[::-1], finished]
    assert everything["limited"] is False
    assert all(w["identical"] for w in everything["what_if"])
    assert _impact(db, BPMN, limit=0)["what_if"] == []
    with pytest.raises(ValidationFailed):
        _impact(db, BPMN, limit=-1)


@pytest.mark.parametrize(
    "draft",
    [
        "not a diagram",
        CHANGES,  # a diagram, of another process
        BPMN.replace('targetRef="review_plan"', 'targetRef="no_such_element"'),
        BPMN.replace(  # the process twice, which the parser finds before it looks further
            "</bpmn:definitions>",
            '<bpmn:process id="service_improvement" isExecutable="true">'
            '<bpmn:startEvent id="again" /></bpmn:process></bpmn:definitions>',
        ),
        BPMN.replace("<bpmn:definitions", '<!DOCTYPE d [<!ENTITY e "e">]><bpmn:definitions', 1),
    ],
    ids=["not-xml", "other-process", "dangling-flow", "twice", "entity"],
)
def test_a_draft_that_cannot_run_as_the_process_is_invalid_input(db: Database, draft: str) -> None:
    with pytest.raises(ValidationFailed):
        _impact(db, draft)
