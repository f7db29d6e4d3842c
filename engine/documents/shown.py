"""Values as a document shows them, in both languages at once: a `Label` for a scalar,
a `Table` for a list of rows. Formatting follows the value's JSON Schema (enum titles,
yes/no for booleans, columns of a row's properties in the order the form declares)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LOCALES = ("zh-CN", "en")


@dataclass(frozen=True)
class Label:
    zh: str
    en: str

    def of(self, locale: str) -> str:
        return self.zh if locale.startswith("zh") else self.en

    @classmethod
    def same(cls, text: str) -> Label:
        return cls(text, text)

    @classmethod
    def of_mapping(cls, labels: Mapping[str, str] | None, fallback: str) -> Label:
        labels = labels or {}
        zh = labels.get("zh-CN") or labels.get("en") or fallback
        return cls(zh, labels.get("en") or zh)


@dataclass(frozen=True)
class Table:
    columns: tuple[Label, ...]
    rows: tuple[tuple[Label, ...], ...]


Shown = Label | Table

EMPTY = Label("", "")


def title_of(schema: Mapping[str, Any], name: str) -> Label:
    zh = str(schema.get("title") or name)
    return Label(zh, str(schema.get("x-title-en") or zh))


def number_text(value: float | int) -> str:
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return str(value)


def scalar(value: Any, schema: Mapping[str, Any]) -> Label:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return Label("是", "Yes") if value else Label("否", "No")
    enum = schema.get("enum")
    titles = schema.get("x-enum-titles") or {}
    if isinstance(enum, list) and value in enum:
        index = enum.index(value)
        zh_titles = titles.get("zh-CN") or []
        en_titles = titles.get("en") or []
        zh = zh_titles[index] if index < len(zh_titles) else str(value)
        en = en_titles[index] if index < len(en_titles) else str(value)
        return Label(str(zh), str(en))
    if isinstance(value, int | float):
        return Label.same(number_text(value))
    if isinstance(value, str):
        return Label.same(value)
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        parts = [scalar(v, items or {}) for v in value]
        return Label("、".join(p.zh for p in parts), ", ".join(p.en for p in parts))
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        pairs = [
            (title_of(properties.get(k) or {}, k), scalar(v, properties.get(k) or {}))
            for k, v in value.items()
        ]
        return Label(
            "；".join(f"{k.zh}：{v.zh}" for k, v in pairs),
            "; ".join(f"{k.en}: {v.en}" for k, v in pairs),
        )
    return Label.same(json.dumps(value, ensure_ascii=False, sort_keys=True))


def table(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> Table:
    """Rows of objects as a table: the columns the item schema declares (in its order)
    that some row holds; working columns a service adds and no schema names are left
    out (all keys, sorted, when the schema declares none)."""
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    properties: Mapping[str, Any] = (items or {}).get("properties") or {}
    present = {key for row in rows for key in row}
    keys = [k for k in properties if k in present]
    if not keys:  # nothing declared: every key the rows hold
        keys = sorted(present)
    return Table(
        tuple(title_of(properties.get(k) or {}, k) for k in keys),
        tuple(tuple(scalar(row.get(k), properties.get(k) or {}) for k in keys) for row in rows),
    )


def shown(value: Any, schema: Mapping[str, Any]) -> Shown:
    if isinstance(value, list) and value and all(isinstance(row, Mapping) for row in value):
        return table(value, schema)
    return scalar(value, schema)
