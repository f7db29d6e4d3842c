"""Log-in for pages (session cookie) and for the API (bearer token)."""

from __future__ import annotations

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

    def get_id(self) -> str:
        return str(self.id)

    @property
    def actor(self) -> Actor:
        return Actor(self.username, frozenset(self.roles))

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def role_names(self, locale: str) -> list[str]:
        from web import backend

        book = backend().pack.roles
        return [book.label(r, locale) for r in self.roles if r in book]


def _signed_in(user: UserRow) -> SignedInUser:
    return SignedInUser(user.id, user.username, user.display_name, user.roles, user.locale)


def load_user(user_id: str) -> SignedInUser | None:
    from web import backend

    if not user_id.isdigit():
        return None
    user = backend().queries.active_user(int(user_id))
    return _signed_in(user) if user is not None else None


def check_password(username: str, password: str) -> SignedInUser | None:
    from web import backend

    user = backend().queries.signed_in(username, password)
    return _signed_in(user) if user is not None else None


def _tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="csi-api-token")


def issue_token(user: SignedInUser) -> str:
    return _tokens().dumps({"uid": user.id})


def user_from_token(token: str) -> SignedInUser:
    try:
        payload: Any = _tokens().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except SignatureExpired as exc:
        raise Unauthorized("the token has expired") from exc
    except BadSignature as exc:
        raise Unauthorized("the token is not valid") from exc
    user = load_user(str(payload.get("uid", "")))
    if user is None:
        raise Unauthorized("the token's user no longer exists")
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        user = check_password(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash(_("Wrong username or password."), "error")
            return _login_page(), 401
        login_user(user)
        return redirect(safe_next(request.args.get("next")))
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    return _login_page()


def _login_page() -> str:
    """The log-in form; in development and tests, with the pack's demo users."""
    from web import backend

    return render_template("login.html", demo_users=backend().pack.demo_users)


@bp.post("/logout")
@login_required
def logout() -> Any:
    logout_user()
    return redirect(url_for("auth.login"))
