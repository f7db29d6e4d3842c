"""Run-time option lists (`x-options`) and the schemas they resolve into.

An option list is named by a short spec:

- `users` / `users:<Role>`: active users, or those holding the role;
- `data:<variable>`: the instance variable's values (a list of strings or numbers);
- `rows:<variable>:<value key>[:<label key>]`: one option per row of a list of
  objects in the instance (e.g. `rows:metrics:code:name`, this cycle's metrics);
- `catalogue`: the metric catalogue.

Before a schema is shown or used, every `x-options` becomes a plain `enum` with
`x-enum-titles`, so the browser and the server check against the very same list.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Option = tuple[str, str]  # (value, label)

KINDS = ("users", "data", "rows", "catalogue")


class OptionLists(Protocol):
    def options(self, spec: str) -> list[Option]: ...


def _parts(spec: str) -> list[str]:
    parts = spec.split(":")
    if parts[0] not in KINDS:
        raise ValueError(f"unknown option list {spec!r}")
    if parts[0] in ("data", "rows") and (len(parts) < 2 or not parts[1]):
        raise ValueError(f"option list {spec!r} names no variable")
    if parts[0] == "rows" and len(parts) < 3:
        raise ValueError(f"option list {spec!r} names no value key")
    return parts


def variables_of_option_list(spec: str) -> set[str]:
    """The instance variables an option list reads."""
    parts = _parts(spec)
    return {parts[1]} if parts[0] in ("data", "rows") else set()


@dataclass
class OptionSource:
    """What option lists are made from: users by role, the metric catalogue (both read
    only if a form asks for them), and the instance's data."""

    users: Callable[[str | None], Sequence[Option]]
    data: Mapping[str, Any]
    catalogue: Callable[[], Sequence[Option]] = lambda: ()

    def options(self, spec: str) -> list[Option]:
        parts = _parts(spec)
        kind = parts[0]
        if kind == "users":
            return list(self.users(parts[1] if len(parts) > 1 and parts[1] else None))
        if kind == "catalogue":
            return list(self.catalogue())
        values = self.data.get(parts[1]) or []
        if not isinstance(values, list):
            return []
        if kind == "data":
            return [(str(v), str(v)) for v in values if isinstance(v, str | int)]
        value_key, label_key = parts[2], (parts[3] if len(parts) > 3 else None)
        return [
            (str(row[value_key]), f"{row[value_key]} {row.get(label_key) or ''}".strip())
            for row in values
            if isinstance(row, Mapping) and row.get(value_key) not in (None, "")
        ]


@dataclass
class KnownOptions:
    """Option lists already made, by spec."""

    lists: Mapping[str, Sequence[Option]]

    def options(self, spec: str) -> list[Option]:
        return list(self.lists[spec])


def option_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema node that names a run-time option list (`x-options`)."""
    if isinstance(node, dict):
        if isinstance(node.get("x-options"), str):
            yield node
        for value in node.values():
            yield from option_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from option_nodes(value)


def option_lists(schema: Any) -> set[str]:
    specs = {node["x-options"] for node in option_nodes(schema)}
    for spec in specs:
        _parts(spec)
    return specs


def resolve_schema(schema: Mapping[str, Any], source: OptionLists) -> dict[str, Any]:
    """A copy of `schema` where every `x-options` became an `enum` with titles."""
    resolved = copy.deepcopy(dict(schema))
    for node in list(option_nodes(resolved)):  # all found before any is changed
        options = source.options(node["x-options"])
        node["enum"] = [value for value, _ in options]
        labels = [label for _, label in options]
        node["x-enum-titles"] = {"zh-CN": labels, "en": labels}
    return resolved
