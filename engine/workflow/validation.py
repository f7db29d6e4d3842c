"""Validation before deploy: refuse what the runtime could not run safely.

A gate over the modeler's lint (engine.modeling.lint), so that what a modeler sees on
the canvas and what deploy refuses are one set of rules: a diagram with any error
finding is refused, with the reasons keyed by the id of the element each concerns.
Warnings do not block.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.errors import ValidationFailed
from engine.modeling.lint import Finding, LintContext, bounded_forms, errors_of, lint_tree
from engine.workflow.safe_xml import NS


@dataclass(frozen=True)
class DiagramRules:
    """What a diagram may name, as the pack it is deployed into defines it: roles for
    its lanes, registered services, and (when checked) a form for each user task.

    With `forms` (form documents by task id, as a version holds them) the forms are
    checked too, against the pack's `prefills` and `check_functions`; with `deployed`
    each call activity must name a deployed process or one of the file's own (without
    it, deploy resolves the calls against the database when it parses the version)."""

    role_for_lane: Callable[[str | None], str | None]
    services: Container[str]
    has_form: Callable[[str], bool] | None = None
    forms: Mapping[str, Any] | None = None
    prefills: Mapping[str, Any] = field(default_factory=dict)
    check_functions: Container[str] | None = None
    deployed: Container[str] | None = None

    def context(self) -> LintContext:
        return LintContext(
            self.role_for_lane,
            self.services,
            self.deployed,
            self.prefills,
            self.check_functions,
        )


@dataclass
class DiagramReport:
    """What one BPMN file holds, once it passed validation."""

    processes: dict[str, str]  # process id -> name
    called: dict[str, list[str]]  # process id -> called process ids
    user_tasks: dict[str, list[str]] = field(default_factory=dict)  # process id -> task ids
    warnings: list[Finding] = field(default_factory=list)


def validate_tree(
    tree: etree._Element, rules: DiagramRules, filename: str = "diagram.bpmn"
) -> DiagramReport:
    """Check one diagram; raise ValidationFailed with reasons keyed by element id."""
    forms = bounded_forms(rules.forms) if rules.forms is not None else None
    findings = lint_tree(
        tree, rules.context(), forms=forms, has_form=rules.has_form, where=filename
    )
    errors = errors_of(findings)
    if errors:
        first = next(f for f in findings if f.severity == "error")
        raise ValidationFailed(f"the diagram was refused: {first.message}", errors)
    report = DiagramReport({}, {}, warnings=findings)
    for process in tree.findall("bpmn:process", NS):
        pid = process.get("id", "")
        report.processes[pid] = process.get("name", pid)
        report.user_tasks[pid] = [t.get("id", "") for t in process.iterfind(".//bpmn:userTask", NS)]
        report.called[pid] = sorted(
            {c.get("calledElement", "") for c in process.iterfind(".//bpmn:callActivity", NS)}
        )
    return report
