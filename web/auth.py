"""Log-in for pages (session cookie) and for the API (bearer token).

A session names its user, the user's session generation and a random session id
(`get_id()` = "<id>:<generation>:<session id>"); a token names the user and the
generation. Logging out ends the one session (its id is refused from then on);
"log out everywhere", a new password or deactivation bump the generation, which ends
every session and token issued before (engine.commands.users).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine import passwords
from engine.access import Actor
from engine.errors import DomainError
from engine.queries.views import UserRow
from web.redirects import safe_next

bp = Blueprint("auth", __name__)


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


@dataclass
class SignedInUser(UserMixin):
    """What a request knows of its user: a detached copy, no database session behind it."""

    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    locale: str | None
    generation: int
    session_id: str = ""  # of the browser session; none for an API token

    def get_id(self) -> str:
        return f"{self.id}:{self.generation}:{self.session_id}"

    @property
    def actor(self) -> Actor:
        return Actor(self.username, frozenset(self.roles))

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def role_names(self, locale: str) -> list[str]:
        from web import backend

        book = backend().pack.roles
        return [book.label(r, locale) for r in self.roles if r in book]


def _signed_in(user: UserRow, session_id: str = "") -> SignedInUser:
    return SignedInUser(
        user.id,
        user.username,
        user.display_name,
        user.roles,
        user.locale,
        user.generation,
        session_id,
    )


# What a session stores (get_id); anything else (an older cookie, say) signs nobody in.
SESSION_KEY = re.compile(r"^(\d{1,18}):(\d{1,18}):([A-Za-z0-9_-]{16,64})$")


def load_user(user_id: str) -> SignedInUser | None:
    from web import backend

    parts = SESSION_KEY.match(user_id)
    if parts is None:
        return None
    uid, generation, session_id = int(parts[1]), int(parts[2]), parts[3]
    user = backend().queries.still_signed_in(uid, generation, session_id)
    return _signed_in(user, session_id) if user is not None else None


def check_password(username: str, password: str) -> SignedInUser | None:
    """The user these credentials sign in, else None (the page and the API both ask)."""
    from web import backend

    if passwords.refused_at_sign_in(password, current_app.config["ENV_PRODUCTION"]):
        current_app.logger.warning(
            "sign-in with the demo password refused (production); give %r a new password",
            username[:64],
        )
        return None
    user = backend().queries.signed_in(username, password)
    return _signed_in(user) if user is not None else None


def _tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="csi-api-token")


def issue_token(user: SignedInUser) -> str:
    return _tokens().dumps({"uid": user.id, "gen": user.generation})


def user_from_token(token: str) -> SignedInUser:
    from web import backend

    try:
        payload: Any = _tokens().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except SignatureExpired as exc:
        raise Unauthorized("the token has expired") from exc
    except BadSignature as exc:
        raise Unauthorized("the token is not valid") from exc
    uid, generation = (
        (payload.get("uid"), payload.get("gen")) if isinstance(payload, dict) else (None, None)
    )
    if not isinstance(uid, int) or not isinstance(generation, int):
        raise Unauthorized("the token is not valid")
    user = backend().queries.still_signed_in(uid, generation)
    if user is None:
        raise Unauthorized("the token is no longer valid: sign in again")
    return _signed_in(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        user = check_password(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash(_("Wrong username or password."), "error")
            return login_page(), 401
        user.session_id = secrets.token_urlsafe(24)
        login_user(user)
        return redirect(safe_next(request.args.get("next"), landing(user)))
    if current_user.is_authenticated:
        return redirect(url_for(landing(current_user)))
    return login_page()


def landing(user: Any) -> str:
    """Where signing in leads: the dashboard for roles declared to land there, else
    the inbox."""
    from web import backend

    return "dashboard.index" if backend().policy.lands_on_dashboard(user.actor) else "inbox.index"


def login_page() -> str:
    """The log-in form; in development and tests, with the pack's demo users."""
    from web import backend

    return render_template("login.html", demo_users=backend().pack.demo_users)


@bp.post("/logout")
@login_required
def logout() -> Any:
    """This session ends: a copy of its cookie signs nobody in any more."""
    from web import backend

    backend().runtime.end_session(
        current_user.id, current_user.session_id, current_app.permanent_session_lifetime
    )
    logout_user()
    return redirect(url_for("auth.login"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere() -> Any:
    """Every session and API token of this user ends, on every device."""
    from web import backend

    backend().runtime.log_out_everywhere(current_user.id)
    logout_user()
    flash(_("You are logged out on every device, and your API tokens no longer work."), "success")
    return redirect(url_for("auth.login"))
