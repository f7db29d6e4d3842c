"""Cutting a workflow's task tree back to the part that can still matter.

SpiffWorkflow keeps every task it ever ran, and a loop does not revisit old tasks:
it appends new ones below them. One monitoring pass (timer, two readings, gaps,
decision) adds about eight levels and ten tasks. Every engine pass walks the whole
tree, and so does every search for ready tasks and every join, so a step after 100
passes costs ten times the first one; and SpiffWorkflow's task iterator stops
descending at depth 1000, so after about 120 passes the next task is never found and
the instance is stuck for good. Finished call activities keep their whole
sub-workflow as well.

The history does not need the tree: it lives in the event log, and the elements a
run has been through are kept on the workflow (`CsiWorkflow.dropped_elements`).
So after each command the tree is cut to the subtree under the nearest common
ancestor of every unfinished task, plus a few ancestors above it (a task about to
become ready inherits its parent's data, and the instance's data is read from the
newest finished task). Everything else is finished, cannot be reached again, and is
dropped with the sub-workflows it ran. Live commands and replay both run through
`engine.stepping`, which calls this after every command, so both cut the same tree
and task ids stay deterministic.

What it cannot cut: while parallel branches are open, or one has ended and waits at
the process end for the others, their split is the common ancestor, so a loop inside
one branch of a parallel gateway grows as before. The bundled diagrams run their
parallel work as multi-instance tasks, which finish before the loop goes round.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

# Ancestors kept above the nearest common ancestor of the unfinished tasks.
KEEP_ANCESTORS = 3
# Cut only when it frees at least this many tasks: a cut costs a pass over the tree.
MIN_DROPPED = 8


class CsiWorkflow(BpmnWorkflow):
    """A BpmnWorkflow that remembers the elements of the tasks compaction dropped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Element ids (top-level process) of finished tasks no longer in the tree,
        # in the order they were first dropped, and the flows ("source>target")
        # that led into them.
        self.dropped_elements: list[str] = []
        self.dropped_flows: list[str] = []


def _element(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def flow_into(task: Task) -> str | None:
    """The sequence flow that led to `task`, as "source>target" element ids: from the
    nearest ancestor that is another element (SpiffWorkflow's own helper tasks and a
    multi-instance task's instances are skipped)."""
    target = _element(task)
    if target is None:
        return None
    parent = task.parent
    while parent is not None:
        source = _element(parent)
        if source is not None and source != target:
            return f"{source}>{target}"
        parent = parent.parent
    return None


def _path_from_root(task: Task) -> list[Task]:
    path = [task]
    parent = task.parent
    while parent is not None:
        path.append(parent)
        parent = parent.parent
    path.reverse()
    return path


def _subtree_ids(top: Task) -> set[Any]:
    kept = set()
    stack = [top]
    while stack:
        task = stack.pop()
        kept.add(task.id)
        stack.extend(task.children)
    return kept


def _lowest_common_position(path: list[Task], unfinished: list[Task]) -> int | None:
    """The deepest position on `path` that every unfinished task lies under (None: they
    do not all hang off one tree)."""
    position = {task.id: i for i, task in enumerate(path)}
    lowest = len(path) - 1
    for task in unfinished[1:]:
        node: Task | None = task
        while node is not None and node.id not in position:
            node = node.parent
        if node is None:
            return None
        lowest = min(lowest, position[node.id])
    return lowest


def compact(
    workflow: BpmnWorkflow, keep: int = KEEP_ANCESTORS, min_dropped: int = MIN_DROPPED
) -> int:
    """Drop the finished part of the top-level task tree; returns how many tasks went."""
    unfinished = [t for t in workflow.tasks.values() if t.has_state(TaskState.DEFINITE_MASK)]
    if not unfinished:
        return 0  # a finished workflow never steps again: keep it whole
    path = _path_from_root(unfinished[0])
    lowest = _lowest_common_position(path, unfinished)
    if lowest is None:
        return 0  # not one tree: leave it to SpiffWorkflow to complain
    cut = lowest - keep
    # path[0] is the root; path[1] the first task under it: nothing to cut above it.
    if cut <= 1:
        return 0
    root, top = path[0], path[cut]
    kept = _subtree_ids(top)
    kept.add(root.id)
    dropped = [t for t in workflow.tasks.values() if t.id not in kept]
    if len(dropped) < min_dropped:
        return 0
    _remember_what_was_done(workflow, dropped, top)
    for task in dropped:
        if task.id in workflow.subprocesses:
            workflow.delete_subprocess(task)
    for task in dropped:
        del workflow.tasks[task.id]
    root._children = [top.id]
    top._parent = root.id
    return len(dropped)


def _remember_what_was_done(workflow: BpmnWorkflow, dropped: list[Task], top: Task) -> None:
    """Keep, in order, the elements the dropped tasks completed and the flows taken into
    them: the diagram and the audit trail still show them."""
    remembered = getattr(workflow, "dropped_elements", None)
    flows = getattr(workflow, "dropped_flows", None)
    if flows is not None:
        for task in [*dropped, top]:
            flow = flow_into(task) if task.has_state(TaskState.COMPLETED) else None
            if flow is not None and flow not in flows:
                flows.append(flow)
    if remembered is not None:
        for task in dropped:
            element = _element(task) if task.has_state(TaskState.COMPLETED) else None
            if element is not None and element not in remembered:
                remembered.append(element)
