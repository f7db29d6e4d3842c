"""One place that turns domain errors into HTTP: JSON under /api, a page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine.errors import DomainError


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, details: Any = None) -> Any:
    if wants_json():
        return jsonify({"error": code, "message": message, "details": details}), status
    return (
        render_template("error.html", status=status, code=code, message=message, details=details),
        status,
    )


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        if exc.status >= 500:
            app.logger.error("command failed: %s", exc.message, exc_info=exc)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return error_response(400, "csrf", exc.description or "CSRF token missing or invalid")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        return error_response(
            exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or ""
        )
