"""The event chain's hashing and the checkpoint each command records of the data."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from engine.audit.chain import (
    GENESIS_HASH,
    EventLog,
    NewEvent,
    canonical_json,
    chain_hash,
    event_body,
    iso,
)
from engine.persistence.models import Event
from engine.workflow.stepping import Observation, data_changes, data_digest

AT = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": {"d": None, "c": True}}, '{"a":{"c":true,"d":null},"b":1}'),
        ([1, 1.5, "é", "中"], '[1,1.5,"é","中"]'),
        ({1: "x"}, '{"1":"x"}'),
        ((1, 2), "[1,2]"),
        (datetime(2026, 1, 1), '"2026-01-01 00:00:00"'),  # not JSON: its str()
        (Decimal("1.10"), '"1.10"'),
        ("", '""'),
    ],
)
def test_canonical_json(value: Any, text: str) -> None:
    assert canonical_json(value) == text


def test_chain_hash_covers_the_previous_hash_and_the_body() -> None:
    body = {"b": 1, "a": 2}
    expected = hashlib.sha256((GENESIS_HASH + '{"a":2,"b":1}').encode("utf-8")).hexdigest()
    assert chain_hash(GENESIS_HASH, body) == expected
    assert chain_hash(GENESIS_HASH, {"a": 2, "b": 1}) == expected  # key order does not count
    assert chain_hash("1" * 64, body) != expected
    assert chain_hash(GENESIS_HASH, {"a": 2, "b": 2}) != expected
    assert GENESIS_HASH == "0" * 64


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000000+00:00"),  # naive is UTC
        (AT, "2026-01-02T03:04:05.000600+00:00"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8))),
            "2026-01-01T19:04:05.000000+00:00",
        ),
    ],
)
def test_iso(at: datetime, text: str) -> None:
    assert iso(at) == text


class Head:
    def __init__(self, id: int = 7, last_seq: int = 0, last_hash: str = GENESIS_HASH) -> None:
        self.id = id
        self.last_seq = last_seq
        self.last_hash = last_hash


def test_appending_chains_each_event_to_the_previous_one() -> None:
    head = Head()
    log = EventLog(head, at=AT)
    payload: dict[str, Any] = {"data": {"x": [1]}, "when": datetime(2026, 1, 1)}
    first = log.append("started", "alice", payload, task_id="t1", bpmn_id="register")
    second = log.append("timer", None)
    body = {
        "instance_id": 7,
        "seq": 1,
        "type": "started",
        "at": "2026-01-02T03:04:05.000600+00:00",
        "actor": "alice",
        "task_id": "t1",
        "bpmn_id": "register",
        "payload": {"data": {"x": [1]}, "when": "2026-01-01 00:00:00"},
    }
    assert first == NewEvent(
        1,
        "started",
        AT,
        "alice",
        "t1",
        "register",
        body["payload"],
        GENESIS_HASH,
        chain_hash(GENESIS_HASH, body),
    )
    second_body = {
        **body,
        "seq": 2,
        "type": "timer",
        "actor": None,
        "task_id": None,
        "bpmn_id": None,
        "payload": {},
    }
    assert (second.seq, second.prev_hash, second.payload) == (2, first.hash, {})
    assert second.hash == chain_hash(first.hash, second_body)
    assert (head.last_seq, head.last_hash) == (2, second.hash)
    assert log.appended == [first, second]
    payload["data"]["x"].append(2)  # the caller's data changes later; the event does not
    assert first.payload == {"data": {"x": [1]}, "when": "2026-01-01 00:00:00"}


def test_appending_continues_the_chain_of_the_head() -> None:
    head = Head(id=3, last_seq=41, last_hash="a" * 64)
    event = EventLog(head, at=AT).append("completed", "bob", {"n": 1})
    assert (event.seq, event.prev_hash) == (42, "a" * 64)
    assert (head.last_seq, head.last_hash) == (42, event.hash)


def stored(event: NewEvent, instance_id: int = 7, **changes: Any) -> Event:
    """The row `event` is written as (SQLite gives its time back without a zone)."""
    values = {
        "instance_id": instance_id,
        "seq": event.seq,
        "type": event.type,
        "at": event.at.replace(tzinfo=None),
        "actor": event.actor,
        "task_id": event.task_id,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    return Event(**{**values, **changes})


def first_broken(rows: list[Event]) -> int | None:
    """What verify() checks of each link, over rows in hand."""
    prev = GENESIS_HASH
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq or row.prev_hash != prev:
            return expected_seq
        if chain_hash(prev, event_body(row)) != row.hash:
            return row.seq
        prev = row.hash
    return None


def chain() -> list[NewEvent]:
    log = EventLog(Head(), at=AT)
    log.append("started", "alice", {"data": {"source": "audit"}})
    log.append("completed", "alice", {"data": {"n": 1.5}}, task_id="t1", bpmn_id="register")
    log.append("completed", "bob", {"data": {"ok": True}}, task_id="t2", bpmn_id="review")
    return log.appended


def test_a_written_chain_verifies_from_its_rows() -> None:
    events = chain()
    rows = [stored(e) for e in events]
    assert [event_body(r)["at"] for r in rows] == [iso(AT)] * 3
    assert first_broken(rows) is None


@pytest.mark.parametrize(
    ("index", "changes", "broken_at"),
    [
        (1, {"payload": {"data": {"n": 2}}}, 2),
        (1, {"actor": "mallory"}, 2),
        (0, {"at": datetime(2026, 1, 2, 3, 4, 6)}, 1),
        (2, {"bpmn_id": "other"}, 3),
        (2, {"type": "started"}, 3),
        (1, {"instance_id": 8}, 2),
        (2, {"hash": "f" * 64}, 3),
    ],
)
def test_an_altered_row_breaks_the_chain_where_it_was_altered(
    index: int, changes: dict[str, Any], broken_at: int
) -> None:
    rows = [stored(e) for e in chain()]
    rows[index] = stored(chain()[index], **changes)
    assert first_broken(rows) == broken_at


def test_a_deleted_or_reordered_row_breaks_the_chain() -> None:
    rows = [stored(e) for e in chain()]
    assert first_broken([rows[0], rows[2]]) == 2
    assert first_broken([rows[1], rows[0], rows[2]]) == 1


# -- observation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "changed", "removed"),
    [
        ({}, {}, {}, []),
        ({"a": 1}, {"a": 1}, {}, []),
        ({"a": 1}, {"a": 2}, {"a": 2}, []),
        ({}, {"a": None}, {"a": None}, []),  # newly set to None is a change
        ({"a": None}, {}, {}, ["a"]),
        ({"b": 1, "a": 1}, {}, {}, ["a", "b"]),
        ({"a": [1]}, {"a": [1, 2]}, {"a": [1, 2]}, []),
        ({"a": {"x": 1}}, {"a": {"x": 1}}, {}, []),
        ({"a": 1}, {"a": 1.0}, {}, []),  # equal to Python; the digests tell them apart
        ({"a": 1, "gone": 0}, {"a": 1, "new": 2}, {"new": 2}, ["gone"]),
    ],
)
def test_data_changes(
    before: dict[str, Any], after: dict[str, Any], changed: dict[str, Any], removed: list[str]
) -> None:
    assert data_changes(before, after) == (changed, removed)


def test_data_digest_is_the_hash_of_the_canonical_json() -> None:
    data = {"b": [1, "é"], "a": None}
    expected = hashlib.sha256('{"a":null,"b":[1,"é"]}'.encode()).hexdigest()
    assert data_digest(data) == expected
    assert data_digest({"a": None, "b": [1, "é"]}) == expected
    assert data_digest({"a": 1}) != data_digest({"a": 1.0})
    assert data_digest({"a": True}) != data_digest({"a": 1})


def test_checkpoint() -> None:
    seen = Observation(
        data={"a": 2, "n": None, "same": 1},
        open_tasks=["t2", "t1"],
        completed=False,
        timers={"timer-task": "2026-01-09T00:00:00+00:00"},
    )
    assert seen.checkpoint({"a": 1, "same": 1, "gone": 0}) == {
        "open_tasks": ["t1", "t2"],
        "data_sha256": data_digest({"a": 2, "n": None, "same": 1}),
        "changed": {"a": 2, "n": None},
        "removed": ["gone"],
        "completed": False,
        "timers": {"timer-task": "2026-01-09T00:00:00+00:00"},
    }


def test_checkpoint_keeps_the_digest_the_observation_holds() -> None:
    seen = Observation(data={"a": 1}, data_sha256="digest made with the data", completed=True)
    assert seen.checkpoint({"a": 1}) == {
        "open_tasks": [],
        "data_sha256": "digest made with the data",
        "changed": {},
        "removed": [],
        "completed": True,
        "timers": {},
    }
