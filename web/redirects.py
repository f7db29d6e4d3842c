"""Where a page may send the browser back to after a form (`?next=`, a hidden `next`):
only a path on this site. Browsers forgive a lot in a URL (they drop tabs and
newlines, read a backslash as a slash, take `//host` as another site), so anything
that is not plainly a local path is refused rather than cleaned up."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import url_for

# Longer than any page of ours; a bound on what goes back into a Location header.
MAX_TARGET = 2048


def local_target(target: object) -> str | None:
    """`target` if it is a path on this site, else None."""
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET:
        return None
    if not target.startswith("/") or any(_forbidden(c) for c in target):
        return None
    # Percent-decoding reveals what a lenient server or a second redirect might read.
    decoded = unquote(target)
    if any(_forbidden(c) for c in decoded) or decoded.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target


def _forbidden(char: str) -> bool:
    """Control characters, whitespace and backslashes: none belongs in a path we link to."""
    return char == "\\" or char.isspace() or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def safe_next(target: object, endpoint: str = "inbox.index") -> str:
    """`target` if it is a path on this site, else the page of `endpoint`."""
    return local_target(target) or url_for(endpoint)
