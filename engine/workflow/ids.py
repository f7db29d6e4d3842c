"""Deterministic task ids, so that replaying an instance's events rebuilds the very
same task tree (same ids) and recorded task ids can be checked one by one.

SpiffWorkflow draws every new task's id from `uuid4()` in its task module. Inside
`deterministic(...)` that call is answered with uuid5(instance namespace, "base:n")
instead, `base` being the instance's event seq when the command began and `n`
counting ids within the command. Outside it, ids stay random.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import count

import SpiffWorkflow.task as spiff_task

_NAMESPACE = uuid.UUID("6f1c2f7e-7a53-4d5e-9b1f-3c2d8e0a5b41")
_factory: ContextVar[Callable[[], uuid.UUID] | None] = ContextVar("csi_task_ids", default=None)
_install_lock = threading.Lock()
_installed = False


def _next_id() -> uuid.UUID:
    factory = _factory.get()
    return factory() if factory is not None else uuid.uuid4()


def install() -> None:
    """Route SpiffWorkflow's task ids through `_next_id` (idempotent, on first use)."""
    global _installed
    with _install_lock:
        if not _installed:
            spiff_task.uuid4 = _next_id
            _installed = True


def instance_namespace(instance_id: int) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"instance:{instance_id}")


@contextmanager
def deterministic(instance_id: int, base: int) -> Iterator[None]:
    install()
    namespace = instance_namespace(instance_id)
    counter = count()
    token = _factory.set(lambda: uuid.uuid5(namespace, f"{base}:{next(counter)}"))
    try:
        yield
    finally:
        _factory.reset(token)
