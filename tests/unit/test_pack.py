"""A pack as data: loading it, its diagrams in deploy order, its roles and the data
dictionary its forms and variables.json make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.dictionary import DataDictionary
from engine.errors import ValidationFailed
from engine.forms.library import FormLibrary
from engine.pack import Pack, load
from engine.roles import Role, RoleBook, role_book

# -- roles --------------------------------------------------------------------------------------

BOOK = role_book(
    [
        {"key": "Owner", "zh-CN": "负责人", "en": "Owner of it", "process": "p", "may": ["audit"]},
        {"key": "Manager", "zh-CN": "经理", "may": ["read_all", "audit"]},
        {"key": "Plain"},
        {"key": "Shadow", "zh-CN": "负责人", "en": "Shadow"},  # a zh name Owner has already
    ]
)


def test_role_book_from_a_manifest() -> None:
    assert BOOK.lane_roles["Owner"] == Role(
        "Owner", "负责人", "Owner of it", "p", frozenset({"audit"})
    )
    assert BOOK.lane_roles["Manager"] == Role(
        "Manager", "经理", "Manager", "", frozenset({"read_all", "audit"})
    )
    assert BOOK.lane_roles["Plain"] == Role("Plain", "Plain", "Plain")
    assert list(BOOK.all) == ["Owner", "Manager", "Plain", "Shadow", "Auditor", "Modeler", "Admin"]


@pytest.mark.parametrize(
    ("lane", "key"),
    [
        ("Owner", "Owner"),
        ("负责人", "Owner"),  # the first role to use a name keeps it
        ("Owner of it", "Owner"),
        (" 经理 ", "Manager"),
        ("Shadow", "Shadow"),
        ("Auditor", None),  # a system role is no lane
        ("owner", None),
        ("", None),
        (None, None),
    ],
)
def test_for_lane(lane: str | None, key: str | None) -> None:
    assert BOOK.for_lane(lane) == key


@pytest.mark.parametrize(
    ("key", "locale", "label"),
    [
        ("Owner", "zh-CN", "负责人"),
        ("Owner", "zh_CN", "负责人"),
        ("Owner", "en", "Owner of it"),
        ("Auditor", "zh-CN", "审计员"),
        ("Admin", "en", "Administrator"),
        ("Unknown", "en", "Unknown"),
        (None, "en", ""),
        ("", "zh-CN", ""),
    ],
)
def test_label(key: str | None, locale: str, label: str) -> None:
    assert BOOK.label(key, locale) == label


def test_with_power_and_membership() -> None:
    assert BOOK.with_power("audit") == {"Owner", "Manager"}
    assert BOOK.with_power("read_all") == {"Manager"}
    assert BOOK.with_power("fly") == frozenset()
    assert "Plain" in BOOK
    assert "Admin" in BOOK
    assert "Nobody" not in BOOK


@pytest.mark.parametrize("key", ["Auditor", "Modeler", "Admin"])
def test_a_pack_may_not_redefine_a_system_role(key: str) -> None:
    with pytest.raises(ValueError, match=f"may not redefine the system roles \\['{key}'\\]"):
        RoleBook([Role(key, "x", "x")])


# -- pack files ---------------------------------------------------------------------------------


def bpmn(process_id: str, *called: str) -> str:
    calls = "".join(f'<bpmn:callActivity id="call_{c}" calledElement="{c}" />' for c in called)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        f'id="d" targetNamespace="x"><bpmn:process id="{process_id}">{calls}</bpmn:process>'
        "</bpmn:definitions>"
    )


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "order"),
    [
        (
            {
                "a_main.bpmn": bpmn("main", "middle", "elsewhere"),
                "b_middle.bpmn": bpmn("middle", "leaf"),
                "c_leaf.bpmn": bpmn("leaf"),
                "d_caller.bpmn": bpmn("caller", "main"),
            },
            ["c_leaf.bpmn", "b_middle.bpmn", "a_main.bpmn", "d_caller.bpmn"],
        ),
        (  # a file calling a process it defines itself waits for nothing
            {"a.bpmn": bpmn("a", "b"), "b.bpmn": bpmn("b", "b")},
            ["b.bpmn", "a.bpmn"],
        ),
        (  # a cycle: the rest by name, for deploy to refuse
            {"x.bpmn": bpmn("x", "y"), "y.bpmn": bpmn("y", "x"), "z.bpmn": bpmn("z")},
            ["z.bpmn", "x.bpmn", "y.bpmn"],
        ),
        (
            {"b.bpmn": bpmn("b"), "a.bpmn": bpmn("a"), "notes.txt": "", "x.json": "{}"},
            ["a.bpmn", "b.bpmn"],
        ),
    ],
)
def test_diagram_files_put_called_processes_first(
    tmp_path: Path, files: dict[str, str], order: list[str]
) -> None:
    (tmp_path / "folder.bpmn").mkdir()  # not a file: no diagram
    pack = load(folder(tmp_path, files))
    assert [f.name for f in pack.diagram_files()] == order


def test_a_folder_without_a_manifest_is_named_by_the_folder(tmp_path: Path) -> None:
    path = folder(tmp_path / "my-pack", {"p.bpmn": bpmn("p")})
    pack = load(path)
    assert (pack.name, pack.files) == ("my-pack", path)
    assert pack.manifest == {}
    assert pack.title == {"zh-CN": "my-pack", "en": "my-pack"}
    assert pack.main_process is None
    assert list(pack.roles.all) == ["Auditor", "Modeler", "Admin"]
    assert pack.variables == {}
    assert (pack.services, pack.prefills, pack.checks, pack.successor) == ({}, {}, {}, None)
    assert pack.forms_dir == path / "forms"
    assert load(str(path)).name == "my-pack"  # a path as text is a folder too


def test_a_folder_with_a_manifest(tmp_path: Path) -> None:
    manifest = {
        "name": "mine",
        "title": {"zh-CN": "我的", "en": "Mine"},
        "main_process": "p",
        "roles": [{"key": "Doer", "en": "Doer", "may": ["read_all"]}],
    }
    pack = load(folder(tmp_path, {"pack.json": json.dumps(manifest)}))
    assert (pack.name, pack.title, pack.main_process) == (
        "mine",
        {"zh-CN": "我的", "en": "Mine"},
        "p",
    )
    assert pack.roles.with_power("read_all") == {"Doer"}
    assert pack.diagram_files() == []


def test_a_module_name_loads_the_modules_pack() -> None:
    pack = load("procedure")
    assert pack.name == "service_improvement"
    assert pack.services
    assert pack.prefills
    assert [f.name for f in pack.diagram_files()] == [
        "change_management.bpmn",
        "service_improvement.bpmn",
    ]


@pytest.mark.parametrize(
    ("spec", "error", "reason"),
    [
        ("engine.pack", ValueError, "module engine.pack has no PACK"),
        ("no_such_module_here", ModuleNotFoundError, "no_such_module_here"),
    ],
)
def test_modules_that_are_no_pack(spec: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        load(spec)


def test_folders_that_are_no_pack(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no pack"):
        load(tmp_path)
    with pytest.raises(ValueError, match="holds no pack"):
        load(tmp_path / "missing")
    folder(tmp_path, {"pack.json": "{not json"})
    with pytest.raises(ValidationFailed, match=r"pack\.json is not valid JSON"):
        load(tmp_path)


# -- data dictionary ----------------------------------------------------------------------------


def form(*properties: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"schema": closed(dict(properties))})


def closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


VARIABLES = {
    "order": ["tags", "unknown", "source"],
    "variables": {
        "rows": {
            "x-record": True,
            "items": {"properties": {"code": {"x-display": "code"}, "gap": {"type": "number"}}},
        },
        "group": {"properties": {"a": {"title": "A"}}, "title": "Group"},
        "source": {"x-display": "badge", "enum": ["only", "these"]},
        "gaps": {"type": "array", "x-record": True, "items": {"type": "object"}},
        "work": {"x-internal": True},
    },
}


@pytest.fixture
def dictionary(tmp_path: Path) -> DataDictionary:
    files = {
        "forms/a_first.json": form(
            ("source", {"type": "string", "enum": ["x", "y"], "title": "来源", "x-record": True}),
            (
                "rows",
                {
                    "type": "array",
                    "maxItems": 9,
                    "items": closed({"code": {"type": "string", "maxLength": 9}}),
                },
            ),
            ("group", closed({"a": {"type": "string", "maxLength": 9}, "b": {"type": "null"}})),
        ),
        "forms/b_second.json": form(
            ("source", {"type": "string", "maxLength": 9, "title": "a later form does not count"}),
            (
                "tags",
                {"type": "array", "maxItems": 2, "x-record": True, "items": {"enum": ["t1", "t2"]}},
            ),
        ),
        "forms/c_unknown_prefill.json": form(("lost", {"x-prefill": {"function": "nope"}})),
        "forms/d_unknown_options.json": form(("lost", {"x-options": "nope"})),
        "forms/e_not_json.json": "{",
        "variables.json": json.dumps(VARIABLES),
    }
    pack = Pack("t", folder(tmp_path, files))
    return DataDictionary(pack, FormLibrary(pack.forms_dir, pack.prefills))


def test_variables_from_forms_then_variables_json(dictionary: DataDictionary) -> None:
    assert dictionary.variables == {
        "source": {
            "type": "string",
            "enum": ["only", "these"],
            "title": "来源",
            "x-record": True,
            "x-display": "badge",
        },
        "rows": {
            "type": "array",
            "maxItems": 9,
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "maxLength": 9, "x-display": "code"},
                    "gap": {"type": "number"},
                },
                "additionalProperties": False,
            },
            "x-record": True,
        },
        "group": {
            "type": "object",
            "properties": {
                "a": {"type": "string", "maxLength": 9, "title": "A"},
                "b": {"type": "null"},
            },
            "additionalProperties": False,
            "title": "Group",
        },
        "tags": {
            "type": "array",
            "maxItems": 2,
            "x-record": True,
            "items": {"enum": ["t1", "t2"]},
        },
        "gaps": {"type": "array", "x-record": True, "items": {"type": "object"}},
        "work": {"x-internal": True},
    }
    assert dictionary.pack.variables == VARIABLES  # the overlay did not change its source


def test_record_fields_in_declared_order_then_the_rest(dictionary: DataDictionary) -> None:
    assert dictionary.order == ["tags", "unknown", "source"]
    assert dictionary.record_fields == ["tags", "source", "rows", "gaps"]


@pytest.mark.parametrize(
    ("name", "values", "internal"),
    [
        ("source", ["only", "these"], False),
        ("tags", ["t1", "t2"], False),
        ("rows", [], False),
        ("work", [], True),
        ("nothing", [], False),
    ],
)
def test_enum_values_and_internal(
    dictionary: DataDictionary, name: str, values: list[str], internal: bool
) -> None:
    assert dictionary.enum_values(name) == values
    assert dictionary.is_internal(name) is internal
    assert dictionary.schema("nothing") == {}
