"""Attached files and evidence packs: downloads for those who may read the improvement,
and room in the request for the files a task's form may carry.

A download is always `Content-Disposition: attachment` with the media type sniffed
when the file was attached and `X-Content-Type-Options: nosniff`: a browser saves it,
never renders it as one of our pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, send_file
from flask_login import current_user, login_required

from engine.access import Actor
from web import backend

bp = Blueprint("attachments", __name__)

# The requests that may carry files: completing a task, on a page or through the API.
CARRYING_FILES = frozenset({"tasks.complete", "api.complete"})
_ROOM_FOR_FIELDS = 1024 * 1024  # the form's other fields beside its files


def download(actor: Actor, number: str, sha256: str) -> Response:
    found = backend().queries.evidence.attachment(actor, number, sha256)
    response = send_file(
        found.path,
        mimetype=found.type,
        as_attachment=True,
        download_name=found.name,
        conditional=False,
        etag=found.sha256,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def pack_response(actor: Actor, number: str) -> Response:
    """The improvement's evidence pack as a download; its sha256 in a header, to quote."""
    found = backend().queries.evidence.pack(actor, number)
    response = Response(found.content, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{found.name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Pack-SHA256"] = found.sha256
    return response


@bp.get("/improvements/<number>/pack")
@login_required
def pack(number: str) -> Any:
    return pack_response(current_user.actor, number)


@bp.get("/improvements/<number>/attachments/<sha256>")
@login_required
def file(number: str, sha256: str) -> Any:
    return download(current_user.actor, number, sha256)


@bp.before_app_request
def _room_for_files() -> None:
    """A task's submission may be as large as the files it may carry (base64 in JSON
    takes a third more), beyond the body limit every other request keeps."""
    if request.endpoint not in CARRYING_FILES:
        return
    limits = backend().runtime.attachments.limits
    room = limits.max_total_bytes * 4 // 3 + _ROOM_FOR_FIELDS
    request.max_content_length = max(int(current_app.config["MAX_CONTENT_LENGTH"] or 0), room)
