"""Untrusted BPMN XML, read safely: it must be UTF-8 (the database keeps diagrams as
text, and one encoding means one content hash per diagram), defusedxml vets every
document (no DTDs, no entities, no external references), then lxml builds the tree
with entity resolution and network access off, and the tree may nest only so deep."""

from __future__ import annotations

import hashlib
import re

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from lxml import etree

from engine.errors import ValidationFailed

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
MAX_DIAGRAM_BYTES = 2_000_000
# Modelers nest a dozen levels; every later walk over the tree (SpiffWorkflow's parser,
# the validators) may recurse once per level. libxml2 refuses more than 256 itself.
MAX_DIAGRAM_DEPTH = 64

_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_BOM = b"\xef\xbb\xbf"


def content_hash(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


def utf8_text(xml: bytes, filename: str = "diagram.bpmn") -> str:
    """The file as text: UTF-8 (a byte-order mark allowed), declaring no other encoding."""
    body = xml.removeprefix(_UTF8_BOM)
    declared = _DECLARED_ENCODING.match(body)
    if declared and declared.group(1).decode("ascii").lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
    ):
        raise ValidationFailed(
            "the file must be encoded in UTF-8", {filename: ["declares another encoding"]}
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "the file must be encoded in UTF-8", {filename: ["not UTF-8"]}
        ) from exc


def safe_tree(xml: bytes, filename: str = "diagram.bpmn") -> etree._Element:
    """Parse untrusted XML: UTF-8 only, vetted by defusedxml, built by lxml without
    entities, at most MAX_DIAGRAM_DEPTH elements deep."""
    if not xml or not xml.strip():
        raise ValidationFailed("the file is empty", {filename: ["empty file"]})
    if len(xml) > MAX_DIAGRAM_BYTES:
        raise ValidationFailed(
            f"the file is larger than {MAX_DIAGRAM_BYTES} bytes", {filename: ["too large"]}
        )
    utf8_text(xml, filename)
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
    try:
        tree = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as exc:  # what expat accepted but libxml2 will not
        raise ValidationFailed(f"not well-formed XML: {exc}", {filename: [str(exc)]}) from exc
    if _depth(tree) > MAX_DIAGRAM_DEPTH:
        raise ValidationFailed(
            f"the XML nests more than {MAX_DIAGRAM_DEPTH} levels deep",
            {filename: ["nested too deeply"]},
        )
    return tree


def _depth(root: etree._Element) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest
