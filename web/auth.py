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
from sqlalchemy import select
from werkzeug.security import check_password_hash

from engine.errors import DomainError
from engine.roles import ALL_ROLES
from engine.runtime import Actor
from engine.store import User

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
        return [
            (ALL_ROLES[r].zh if locale.startswith("zh") else ALL_ROLES[r].en)
            for r in self.roles
            if r in ALL_ROLES
        ]


def _signed_in(user: User) -> SignedInUser:
    return SignedInUser(
        user.id, user.username, user.display_name, tuple(user.roles or []), user.locale
    )


def load_user(user_id: str) -> SignedInUser | None:
    from web import services

    if not user_id.isdigit():
        return None
    with services().db.sessions() as session:
        user = session.get(User, int(user_id))
        return _signed_in(user) if user is not None and user.active else None


def check_password(username: str, password: str) -> SignedInUser | None:
    from web import services

    with services().db.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active or not check_password_hash(user.password_hash, password):
            return None
        return _signed_in(user)


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


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("inbox.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        user = check_password(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash(_("Wrong username or password."), "error")
            return render_template("login.html"), 401
        login_user(user)
        return redirect(_safe_next(request.args.get("next")))
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    return render_template("login.html")


@bp.post("/logout")
@login_required
def logout() -> Any:
    logout_user()
    return redirect(url_for("auth.login"))
