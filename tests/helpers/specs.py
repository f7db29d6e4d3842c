"""Parsed process specs straight from BPMN files, without a database."""

from __future__ import annotations

from engine import specs
from engine.store import ProcessDefinition


def parsed_from(process_id: str, files: list[tuple[str, bytes]]) -> specs.ParsedSpecs:
    """Parsed specs of (process id, XML) files, without a database."""
    rows = [
        ProcessDefinition(
            id=n,
            process_id=name,
            version=1,
            content_hash=specs.content_hash(xml),
            bpmn_xml=xml.decode("utf-8"),
            filename=f"{name}.bpmn",
        )
        for n, (name, xml) in enumerate(files, start=9000)
    ]
    return specs.parsed_specs(process_id, rows)


def bundled_parsed(process_id: str = "service_improvement") -> specs.ParsedSpecs:
    """Parsed specs of the diagrams shipped in bpmn/."""
    return parsed_from(process_id, [(p.stem, p.read_bytes()) for p in specs.bundled_files()])
