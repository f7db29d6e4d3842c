"""A diagram as SVG without a browser: the shapes and edges its BPMN DI lays out, drawn
plainly (lanes and pools as boxes, tasks as rounded boxes, events as circles,
gateways as diamonds, flows as polylines with arrowheads, names as text). It shows the
diagram as deployed for a reader of the evidence pack; the BPMN beside it is the
authority."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from engine.workflow.safe_xml import BPMN_NS, safe_tree

_DI = "http://www.omg.org/spec/BPMN/20100524/DI"
_DC = "http://www.omg.org/spec/DD/20100524/DC"
_DD_DI = "http://www.omg.org/spec/DD/20100524/DI"
_MARGIN = 20.0
_FONT = 11
_CHARS_PER_LINE = 16


def _kind(element: etree._Element | None) -> str:
    if element is None:
        return "shape"
    name = etree.QName(element).localname
    if name in ("participant", "lane"):
        return "lane"
    if name.endswith("Event"):
        return "event"
    if name.endswith("Gateway"):
        return "gateway"
    if name in ("dataObjectReference", "dataStoreReference", "textAnnotation", "group"):
        return "other"
    return "task"


def _lines(text: str) -> list[str]:
    words = text.split()
    if len(words) <= 1:  # no spaces (Chinese): cut by characters
        return [text[i : i + _CHARS_PER_LINE] for i in range(0, len(text), _CHARS_PER_LINE)][:4]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + len(word) + 1 <= _CHARS_PER_LINE:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines[:4]


def _text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    lines = _lines(text)
    top = y - (len(lines) - 1) * (_FONT + 2) / 2
    spans = "".join(
        f'<tspan x="{x:.1f}" y="{top + i * (_FONT + 2):.1f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text text-anchor="{anchor}" dominant-baseline="middle">{spans}</text>'


def _shape(
    kind: str, ident: str, name: str, x: float, y: float, w: float, h: float
) -> tuple[str, str | None]:
    """One shape drawn, and its label (None when it has no name)."""
    cx, cy = x + w / 2, y + h / 2
    if kind == "lane":
        label = (
            f'<g transform="translate({x + 15:.1f},{cy:.1f}) rotate(-90)">{_text(0, 0, name)}</g>'
        )
        box = f'<rect data-element={ident} class="lane" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
        return box, label if name else None
    if kind == "event":
        circle = f'<circle data-element={ident} class="event" cx="{cx:.1f}" cy="{cy:.1f}" r="{min(w, h) / 2:.1f}"/>'
        return circle, _text(cx, y + h + 14, name) if name else None
    if kind == "gateway":
        points = f"{cx:.1f},{y:.1f} {x + w:.1f},{cy:.1f} {cx:.1f},{y + h:.1f} {x:.1f},{cy:.1f}"
        diamond = f'<polygon data-element={ident} class="gateway" points="{points}"/>'
        return diamond, _text(cx, y + h + 14, name) if name else None
    box = f'<rect data-element={ident} class="task" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="8"/>'
    return box, _text(cx, cy, name) if name else None


def diagram_svg(xml: bytes) -> str:
    """The first diagram of a BPMN file as a standalone SVG document (no script, no
    link, nothing fetched)."""
    root = safe_tree(xml)
    by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
    shapes: list[str] = []
    labels: list[str] = []
    edges: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    for shape in root.iter(f"{{{_DI}}}BPMNShape"):
        bounds = shape.find(f"{{{_DC}}}Bounds")
        if bounds is None:
            continue
        x, y = float(bounds.get("x", 0)), float(bounds.get("y", 0))
        w, h = float(bounds.get("width", 0)), float(bounds.get("height", 0))
        xs += [x, x + w]
        ys += [y, y + h]
        element = by_id.get(shape.get("bpmnElement"))
        name = (element.get("name") or "") if element is not None else ""
        ident = quoteattr(str(shape.get("bpmnElement") or ""))
        drawn, label = _shape(_kind(element), ident, name, x, y, w, h)
        shapes.append(drawn)
        if label:
            labels.append(label)
    for edge in root.iter(f"{{{_DI}}}BPMNEdge"):
        points = [
            (float(p.get("x", 0)), float(p.get("y", 0))) for p in edge.iter(f"{{{_DD_DI}}}waypoint")
        ]
        if len(points) < 2:
            continue
        xs += [p[0] for p in points]
        ys += [p[1] for p in points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        ident = quoteattr(str(edge.get("bpmnElement") or ""))
        edges.append(f'<polyline data-element={ident} class="flow" points="{path}"/>')
        element = by_id.get(edge.get("bpmnElement"))
        name = (element.get("name") or "") if element is not None else ""
        if name:
            (x1, y1), (x2, y2) = points[0], points[1]
            labels.append(_text((x1 + x2) / 2, (y1 + y2) / 2 - 8, name))
    left, top = (min(xs) - _MARGIN, min(ys) - _MARGIN) if xs else (0.0, 0.0)
    width = (max(xs) - min(xs) + 2 * _MARGIN) if xs else 100.0
    height = (max(ys) - min(ys) + 2 * _MARGIN) if ys else 100.0
    processes = [p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process")]
    title = escape(", ".join(str(p) for p in processes if p))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left:.1f} {top:.1f} '
        f'{width:.1f} {height:.1f}" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="sans-serif" font-size="{_FONT}">\n'
        f"<title>{title}</title>\n"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>\n'
        "<style>.lane{fill:none;stroke:#999}.task{fill:#fff;stroke:#333;stroke-width:1.5}"
        ".event{fill:#fff;stroke:#333;stroke-width:2}.gateway{fill:#fff;stroke:#333;"
        "stroke-width:1.5}.flow{fill:none;stroke:#333;marker-end:url(#arrow)}</style>\n"
        + "\n".join(shapes)
        + "\n"
        + "\n".join(edges)
        + "\n"
        + "\n".join(labels)
        + "\n</svg>\n"
    )
