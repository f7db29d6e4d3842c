"""Parsed process specs straight from BPMN files, without a database."""

from __future__ import annotations

from engine.persistence.models import ProcessDefinition
from engine.workflow import parsing, safe_xml
from procedure import PACK


def parsed_from(process_id: str, files: list[tuple[str, bytes]]) -> parsing.ParsedSpecs:
    """Parsed specs of (process id, XML) files, without a database."""
    rows = [
        ProcessDefinition(
            id=n,
            process_id=name,
            version=1,
            content_hash=safe_xml.content_hash(xml),
            bpmn_xml=xml.decode("utf-8"),
            filename=f"{name}.bpmn",
        )
        for n, (name, xml) in enumerate(files, start=9000)
    ]
    return parsing.parsed_specs(process_id, rows)


def bundled_parsed(process_id: str = "service_improvement") -> parsing.ParsedSpecs:
    """Parsed specs of the diagrams shipped in bpmn/."""
    return parsed_from(process_id, [(f.name[:-5], f.read_bytes()) for f in PACK.diagram_files()])
