"""Pages read as documents: an assertion selects the element it means (CSS selectors)
and checks its text or attributes, so it cannot pass on the same words elsewhere in
the markup, and it fails when the page stops showing the thing."""

from __future__ import annotations

import re
from typing import Any

from lxml import html as lxml_html
from lxml.html import HtmlElement

# The attributes that hold a URL the page links, posts or loads.
URL_ATTRIBUTES = ("href", "action", "src", "data-url")


def page(response: Any) -> HtmlElement:
    """The parsed document of a test-client response (which must be HTML)."""
    assert response.mimetype == "text/html", f"not an HTML page: {response.mimetype}"
    return lxml_html.document_fromstring(response.get_data(as_text=True))


def fragment(markup: str) -> HtmlElement:
    """A piece of HTML (as the API hands out for a step), parsed inside one element."""
    return lxml_html.fragment_fromstring(markup, create_parent="div")


def select(root: HtmlElement, css: str) -> list[HtmlElement]:
    """Every element under `root` that matches `css`."""
    return list(root.cssselect(css))


def select_one(root: HtmlElement, css: str) -> HtmlElement:
    """The one element under `root` that matches `css` (fails on none or several)."""
    found = select(root, css)
    assert len(found) == 1, f"{len(found)} elements match {css!r}"
    return found[0]


def text_of(element: HtmlElement) -> str:
    """The element's text as a reader sees it: runs of white space made one space."""
    return re.sub(r"\s+", " ", element.text_content()).strip()


def texts(root: HtmlElement, css: str) -> list[str]:
    """The text of every element under `root` that matches `css`."""
    return [text_of(e) for e in select(root, css)]


def urls(root: HtmlElement) -> list[str]:
    """Every URL the page links to, posts to or loads (href, action, src, data-url)."""
    return [
        str(e.get(name))
        for e in root.iter()
        if isinstance(e.tag, str)
        for name in URL_ATTRIBUTES
        if e.get(name) is not None
    ]
