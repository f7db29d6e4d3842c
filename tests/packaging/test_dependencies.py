"""Every distribution the product's code imports is declared in pyproject.toml, not left
to arrive as a requirement of another one (which may drop it in any release)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "web", "procedure", "bpmn")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules() -> dict[str, set[str]]:
    """The top-level modules the product's code imports, each with the files that do."""
    found: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found[name.split(".")[0]].add(path.relative_to(REPO).as_posix())
    return found


def test_every_imported_distribution_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {canonical(Requirement(line).name) for line in project["dependencies"]}
    providers = packages_distributions()
    undeclared = {}
    for module, files in imported_modules().items():
        if module in PACKAGES or module in sys.stdlib_module_names or module == "__future__":
            continue
        distributions = {canonical(name) for name in providers.get(module, [])}
        assert distributions, f"{module} (imported by {sorted(files)}) is not installed"
        if not distributions & declared:
            undeclared[module] = sorted(files)
    assert undeclared == {}, "imported but not in [project] dependencies"
