"""Who may do what (DESIGN section 7), as one table: every role against every command
and read. Two tests read it: one asks the engine (Runtime and its queries, which ask
engine.access.Policy), one the JSON API and the admin pages.

The world each cell runs in: an improvement started by the demo `owner`, its first
task done, so that it waits on `propose_metrics` assigned to one process owner (the
participant). Each row is one user holding only the roles listed, created for the
test; none of them started the improvement, so readers read by their role, not by
having taken part (except the participating process owner).

- start: start `service_improvement` (its start event lies in the ImprovementOwner lane);
- claim, complete: the open `propose_metrics` task, assigned to the participant;
- read, history: the improvement, its event log;
- verify, replay: its hash chain, its replay;
- migrate: onto a newer version of its diagram, deployed just before;
- deploy: a new diagram;
- admin: the user list (the API has no admin endpoint: the `/admin/users` page);
- models: the procedure's versions and drafts;
- draft: a draft of a change to the procedure;
- approve: a draft by `owner`, submitted just before, deployed as the next version;
- metrics: a new metric in the catalogue (editing, retiring and importing ask the same).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = (
    "start",
    "claim",
    "complete",
    "read",
    "history",
    "verify",
    "replay",
    "migrate",
    "deploy",
    "admin",
    "models",
    "draft",
    "approve",
    "metrics",
)

A = "allowed"
F = 403  # refused: the caller may know the instance exists, and may not do this
N = 404  # the instance is not the caller's to read: told it does not exist


@dataclass(frozen=True)
class Who:
    username: str
    roles: tuple[str, ...]
    takes_part: bool = False  # the process owner the open task is assigned to


WHO: dict[str, Who] = {
    "ImprovementOwner": Who("t_owner", ("ImprovementOwner",)),
    "ImprovementManager": Who("t_manager", ("ImprovementManager",)),
    "ProcessOwner-participant": Who("t_po_in", ("ProcessOwner",), takes_part=True),
    "ProcessOwner-other": Who("t_po_out", ("ProcessOwner",)),
    "ChangeManager": Who("t_change", ("ChangeManager",)),
    "ChangeAdvisoryBoard": Who("t_cab", ("ChangeAdvisoryBoard",)),
    "ChangeImplementer": Who("t_impl", ("ChangeImplementer",)),
    "Auditor": Who("t_auditor", ("Auditor",)),
    "Modeler": Who("t_modeler", ("Modeler",)),
    "Admin": Who("t_admin", ("Admin",)),
}

# fmt: off
TABLE: dict[str, tuple[str | int, ...]] = {
    #                          start claim complete read history verify replay migrate deploy admin models draft approve metrics
    "ImprovementOwner":         (A,   F,    F,       A,   A,      A,     A,     F,      F,     F,    A,     F,    F,     A),
    "ImprovementManager":       (F,   F,    F,       A,   A,      A,     A,     F,      F,     F,    A,     F,    A,     F),
    "ProcessOwner-participant": (F,   A,    A,       A,   A,      F,     F,     F,      F,     F,    F,     F,    F,     F),
    "ProcessOwner-other":       (F,   F,    F,       N,   N,      F,     F,     F,      F,     F,    F,     F,    F,     F),
    "ChangeManager":            (F,   F,    F,       N,   N,      F,     F,     F,      F,     F,    F,     F,    F,     F),
    "ChangeAdvisoryBoard":      (F,   F,    F,       N,   N,      F,     F,     F,      F,     F,    F,     F,    F,     F),
    "ChangeImplementer":        (F,   F,    F,       N,   N,      F,     F,     F,      F,     F,    F,     F,    F,     F),
    "Auditor":                  (F,   F,    F,       A,   A,      A,     A,     F,      F,     F,    A,     F,    F,     F),
    "Modeler":                  (F,   F,    F,       N,   N,      F,     F,     A,      F,     F,    A,     A,    F,     F),
    "Admin":                    (A,   F,    F,       A,   A,      A,     A,     A,      A,     A,    A,     A,    A,     A),
}
# fmt: on

assert set(TABLE) == set(WHO)
assert all(len(row) == len(ACTIONS) for row in TABLE.values())

CELLS: list[tuple[str, str, str | int]] = [
    (who, action, expected)
    for who, row in TABLE.items()
    for action, expected in zip(ACTIONS, row, strict=True)
]
CELL_IDS = [f"{who}-{action}" for who, action, _ in CELLS]
