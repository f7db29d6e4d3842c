"""Generated input at every API endpoint: JSON of any shape (and bodies that are no JSON),
strings in paths and query strings, ids of any size, as different users. Whatever
arrives, the answer is never a 5xx, and an error has the JSON shape of DESIGN 7.

Bounded and deterministic: a fixed number of examples per endpoint, derandomized,
no example database. The app and its database (rolled back afterwards) are built once
per test, so the examples of one endpoint share them: Hypothesis' health check about
function-scoped fixtures is suppressed for that reason, and nothing in these tests
depends on an example leaving the database as it found it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.inputs import MAX_ID
from tests.helpers.doors import ApiDoor

EXAMPLES = 25
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
USERS = ("owner", "po1", "auditor", "admin", "cab")

# Values that broke something once, drawn about as often as all others together: NUL
# and lone surrogates (stores and encoders), LIKE wildcards, long text; ids beyond the
# 32- and 64-bit bounds. SPECIAL characters turn up inside generated text too.
SPECIAL = st.sampled_from(["\x00", "\udfff", "\ud800", "%", "_", "'", '"', "\\", "/", "#", "?"])
HOSTILE_TEXT = st.sampled_from(["\x00", "a\x00b", "\udfff", "%_", "x" * 300])
TEXT = HOSTILE_TEXT | st.text(st.characters() | SPECIAL, max_size=40)
HOSTILE_NUMBERS = st.sampled_from([0, -1, MAX_ID + 1, 2**63, 10**30])
FIELDS = [
    "process",
    "data",
    "version",
    "username",
    "password",
    "source",
    "reference",
    "description",
    "process_owners",
    "sorted",
    "set",
    "_x",
    "class",
]
NAMES = st.sampled_from(FIELDS)
NUMBERS = st.one_of(
    HOSTILE_NUMBERS,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES | TEXT, inner, max_size=4),
    max_leaves=12,
)


def encoded(value: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as its \u escape, as a hostile client would.
    return json.dumps(value).encode()


def deep(levels: int) -> bytes:
    return b'{"data": {"description": ' + b"[" * levels + b"]" * levels + b"}}"


RAW_BODIES = st.sampled_from(
    [b"", b"{", b"[1]", b"null", b"\xff\xfe", deep(40), deep(900), deep(10_000), b'"\\udfff"']
)


def shaped(*keys: str) -> st.SearchStrategy[bytes]:
    """Objects with the keys the endpoint reads (each with any value), sometimes more."""
    return st.fixed_dictionaries(
        {},
        optional={k: JSON for k in keys} | {"data": st.dictionaries(NAMES | TEXT, JSON)},
    ).map(encoded)


def body_for(*keys: str) -> st.SearchStrategy[bytes]:
    return st.one_of(shaped(*keys), JSON.map(encoded), RAW_BODIES)


def path_part(real: Any) -> st.SearchStrategy[str]:
    """A path segment: the real one, a number of any size, or any text (quoted)."""
    return st.one_of(
        st.just(str(real)),
        HOSTILE_NUMBERS.map(str),
        HOSTILE_TEXT.map(quoted),
        NUMBERS.map(str),
        TEXT.filter(bool).map(quoted),
    )


def quoted(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


def query(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    values = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBERS.map(str), NUMBERS.map(str), TEXT)
    return st.dictionaries(st.sampled_from(names), values, max_size=len(names)).map(
        lambda found: "&".join(f"{k}={quoted(v)}" for k, v in found.items())
    )


# Besides what Hypothesis draws, every endpoint gets each of these in its path
# segments and query parameters, with one of these bodies: what broke the API before.
HOSTILE_PARTS = [
    "0",
    str(MAX_ID + 1),
    str(2**63),
    quoted("a\x00b"),
    quoted("\udfff"),
    "%25_",
    "x" * 300,
]
HOSTILE_BODIES = [
    deep(10_000),
    b"[1]",
    encoded({"process": ["x"], "data": {"sorted": 1, "set": 2}}),
    encoded({"username": "a\x00", "password": "\udfff", "data": {"description": "\x00"}}),
    deep(900),
    encoded({"version": 2**63, "data": {"description": "x" * 100_000}}),
    b"\xff",
]

# (method, path with {instance} / {task}, its query parameters, the keys its body reads
# or None when it reads no body)
ENDPOINTS: list[tuple[str, str, tuple[str, ...], tuple[str, ...] | None]] = [
    ("POST", "/auth/token", ("x",), ("username", "password")),
    ("GET", "/tasks", ("instance",), None),
    ("GET", "/tasks/{task}", ("x",), None),
    ("POST", "/tasks/{task}/claim", ("x",), ()),
    ("POST", "/tasks/{task}/unclaim", ("x",), ()),
    ("POST", "/tasks/{task}/complete", ("x",), tuple(FIELDS)),
    ("POST", "/instances", ("x",), ("process", "data")),
    ("GET", "/instances/{instance}", ("x",), None),
    ("POST", "/instances/{instance}/migrate", ("x",), ("version",)),
    ("GET", "/instances/{instance}/history", ("x",), None),
    ("GET", "/instances/{instance}/verify", ("x",), None),
    ("GET", "/instances/{instance}/replay", ("step",), None),
    ("POST", "/models", ("filename",), ("file",)),
    ("GET", "/improvements", ("x",), None),
    ("GET", "/metrics", ("code",), None),
    ("GET", "/metrics/catalogue", ("status", "category"), None),
    ("POST", "/metrics/catalogue", ("x",), ("code", "name_zh", "unit", "owner", "data")),
    ("PUT", "/metrics/catalogue/AVAIL", ("x",), ("name_zh", "category", "owner")),
    ("POST", "/metrics/catalogue/{instance}/retire", ("x",), ()),
    ("GET", "/metrics/{instance}/history", ("x",), None),
    ("POST", "/metrics/import", ("dry_run", "code"), ("file", "code")),
    ("GET", "/openapi.json", ("x",), None),
]


@pytest.fixture
def world(client: FlaskClient, app: Any) -> dict[str, Any]:
    """An instance with an open task, and every user's token."""
    door = ApiDoor(client, app)
    instance = door.start("owner")
    return {
        "instance": instance,
        "task": door.tasks("owner", instance)[0]["id"],
        "headers": {user: door.headers(user) for user in USERS},
    }


@pytest.mark.parametrize(
    ("method", "path", "names", "keys"),
    ENDPOINTS,
    ids=[f"{method} {path}" for method, path, _, _ in ENDPOINTS],
)
def test_no_generated_request_is_answered_with_a_server_error(
    client: FlaskClient,
    world: dict[str, Any],
    method: str,
    path: str,
    names: tuple[str, ...],
    keys: tuple[str, ...] | None,
) -> None:
    def attempt(instance: str, task: str, text: str, user: str, body: bytes | None) -> None:
        response = client.open(
            "/api/v1" + path.format(instance=instance, task=task) + ("?" + text if text else ""),
            method=method,
            data=body,
            content_type="application/json" if body is not None else None,
            headers=world["headers"][user],
        )
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        if response.status_code >= 400:
            assert set(response.json or {}) == {"error", "message", "details"}

    run = given(
        instance=path_part(world["instance"]),
        task=path_part(world["task"]),
        text=query(names),
        # Mostly the administrator, who holds every role and so gets furthest.
        user=st.just("admin") | st.sampled_from(USERS),
        body=st.none() if keys is None else body_for(*keys),
    )(attempt)
    for part, hostile_body in zip(HOSTILE_PARTS, HOSTILE_BODIES, strict=True):
        text = "&".join(f"{name}={part}" for name in names)
        body = None if keys is None else hostile_body
        run = example(instance=part, task=part, text=text, user="admin", body=body)(run)
    # A wrong password costs a password hash (on purpose): fewer tries there.
    settings(FUZZ, max_examples=EXAMPLES // 3 if path == "/auth/token" else EXAMPLES)(run)()
