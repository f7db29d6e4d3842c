"""What every response carries (security headers), and how often sign-in may fail.

Headers: a Content-Security-Policy that lets only our own files run and style the
pages (no inline script or style attribute anywhere in the templates; bpmn-js is
vendored under /static and its stylesheet's data: images are allowed), no framing,
no MIME sniffing, no referrer beyond our own pages, and HSTS in production.

Sign-in (`POST /login` and `POST /api/v1/auth/token`, counted together) is limited
per username and per client address (Flask-Limiter). Only failures count, so
someone who signs in often is never throttled; once a limit is used up, even the
right password is refused until the window passes. The limits and the store are
settings (engine.settings); with several worker processes the store must be shared
(`CSI_RATELIMIT_STORAGE`), else each process counts on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # bpmn-js.css draws some markers as data: SVG images
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000"  # a year; production only, where the app is served over HTTPS

# The views where a password is checked.
SIGN_IN_ENDPOINTS = ("auth.login", "api.token")
# A username longer than any allowed (64) still counts as one key, not as many.
_KEY_LENGTH = 65


def install(app: Flask) -> None:
    if app.config["PROXIES"]:
        proxies = int(app.config["PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    production = bool(app.config["ENV_PRODUCTION"])

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    _limit_sign_in(app)


def _address() -> str:
    return request.remote_addr or "unknown"


def _username() -> str:
    """The username a sign-in names (form field, or JSON body of the API)."""
    name: Any = None
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested too deep to read: then it names nobody
            body = None
        if isinstance(body, dict):
            name = body.get("username")
    else:
        name = request.form.get("username")
    text = name if isinstance(name, str) else ""
    return "user:" + text.strip().lower()[:_KEY_LENGTH]


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _configured(key: str) -> Callable[[], str]:
    return lambda: str(current_app.config[key])


def _limit_sign_in(app: Flask) -> None:
    """One limiter per app (its own counts), wrapped around the sign-in views."""
    limiter = Limiter(
        key_func=_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        headers_enabled=True,
        # A shared store that goes away must not take sign-in with it: count in memory.
        in_memory_fallback_enabled=True,
    )
    per_user = limiter.shared_limit(
        _configured("LOGIN_LIMIT_USER"),
        scope="sign-in-user",
        key_func=_username,
        methods=["POST"],
        deduct_when=_failed,
    )
    per_address = limiter.shared_limit(
        _configured("LOGIN_LIMIT_ADDRESS"),
        scope="sign-in-address",
        methods=["POST"],
        deduct_when=_failed,
    )
    views: dict[str, Callable[..., Any]] = app.view_functions
    for endpoint in SIGN_IN_ENDPOINTS:
        views[endpoint] = per_user(per_address(views[endpoint]))
    app.extensions["csi_limiter"] = limiter
