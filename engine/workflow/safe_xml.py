"""Untrusted BPMN XML, read safely: defusedxml vets every document first (no DTDs,
no entities, no external references), then lxml builds the tree with entity
resolution and network access off."""

from __future__ import annotations

import hashlib

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from lxml import etree

from engine.errors import ValidationFailed

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
MAX_DIAGRAM_BYTES = 2_000_000


def content_hash(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


def safe_tree(xml: bytes, filename: str = "diagram.bpmn") -> etree._Element:
    """Parse untrusted XML: defusedxml vets it, then lxml builds the tree without entities."""
    if not xml or not xml.strip():
        raise ValidationFailed("the file is empty", {filename: ["empty file"]})
    if len(xml) > MAX_DIAGRAM_BYTES:
        raise ValidationFailed(
            f"the file is larger than {MAX_DIAGRAM_BYTES} bytes", {filename: ["too large"]}
        )
    try:
        SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValidationFailed(
            "the XML uses DTDs or entities, which are refused", {filename: [type(exc).__name__]}
        ) from exc
    except SafeET.ParseError as exc:
        raise ValidationFailed(f"not well-formed XML: {exc}", {filename: [str(exc)]}) from exc
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    return etree.fromstring(xml, parser=parser)
