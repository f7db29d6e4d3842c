"""The one password policy, and how passwords are hashed and checked.

Every way a password is set (the user administration page, `csi create-user`) asks
`problems()`; the only password that does not pass is the documented demo password,
which `seed_demo_users` sets in development and sign-in refuses in production.

Sign-in costs one hash check of the production method whether the user exists,
is deactivated or gave a wrong password: the answer's timing tells nobody which
usernames exist.
"""

from __future__ import annotations

import functools
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

# werkzeug's default, named so that the stand-in hash below always costs what a real one does.
METHOD = "scrypt"
MIN_LENGTH = 8
# A bound on what is hashed: a long password costs time in the key derivation.
MAX_LENGTH = 1024
DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of demo users, refused in production

# Error codes (ValidationFailed.details of the user commands; the web layer words them)
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
SAME_AS_USERNAME = "same_as_username"


def problems(password: str, username: str = "") -> list[str]:
    """What keeps `password` from being set (empty: nothing)."""
    if len(password) < MIN_LENGTH:
        return [TOO_SHORT]
    if len(password) > MAX_LENGTH:
        return [TOO_LONG]
    if username and password.strip().lower() == username.strip().lower():
        return [SAME_AS_USERNAME]
    return []


def describe(codes: list[str]) -> str:
    """The problems in words, for the command line."""
    said = {
        TOO_SHORT: f"the password needs at least {MIN_LENGTH} characters",
        TOO_LONG: f"the password may have at most {MAX_LENGTH} characters",
        SAME_AS_USERNAME: "the password may not be the username",
    }
    return "; ".join(said.get(code, code) for code in codes)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=METHOD)


@functools.cache
def _stand_in_hash() -> str:
    """A hash of a password nobody knows, made the production way once per process."""
    return hash_password(secrets.token_urlsafe(24))


def prepare() -> None:
    """Make the stand-in hash now (a web worker at start), so the first sign-in with an
    unknown name does not cost two hashes."""
    _stand_in_hash()


def matches(stored_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `stored_hash` was made from; with no hash (no such
    user) the same work is done against a stand-in and the answer is no."""
    if stored_hash is None:
        check_password_hash(_stand_in_hash(), password)
        return False
    return check_password_hash(stored_hash, password)


def refused_at_sign_in(password: str, production: bool) -> bool:
    """In production the demo password never signs anyone in, whatever a database
    brought along from development."""
    return production and password == DEMO_PASSWORD
