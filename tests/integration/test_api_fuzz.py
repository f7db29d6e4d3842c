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
from hypothesis import HealthCheck, given, settings
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

# Characters that broke something once or are special somewhere: NUL and lone surrogates
# (stores and encoders), LIKE wildcards, quotes, a path separator.
SPECIAL = st.sampled_from(["\x00", "\udfff", "\ud800", "%", "_", "'", '"', "\\", "/", "#", "?"])
TEXT = st.text(st.characters() | SPECIAL, max_size=40)
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
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, 2**63, 2**64]),
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
        NUMBERS.map(str),
        TEXT.filter(bool).map(lambda t: quote(t, safe="", errors="surrogatepass")),
    )


def query(*names: str) -> st.SearchStrategy[str]:
    values = st.one_of(NUMBERS.map(str), TEXT)
    return st.dictionaries(st.sampled_from(names), values, max_size=len(names)).map(
        lambda found: "&".join(
            f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in found.items()
        )
    )


# (method, path with {instance} / {task}, strategy of the query string, of the body)
ENDPOINTS: list[tuple[str, str, st.SearchStrategy[str], st.SearchStrategy[bytes] | None]] = [
    ("POST", "/auth/token", query("x"), body_for("username", "password")),
    ("GET", "/tasks", query("instance"), None),
    ("GET", "/tasks/{task}", query("x"), None),
    ("POST", "/tasks/{task}/claim", query("x"), body_for()),
    ("POST", "/tasks/{task}/unclaim", query("x"), body_for()),
    ("POST", "/tasks/{task}/complete", query("x"), body_for(*FIELDS)),
    ("POST", "/instances", query("x"), body_for("process", "data")),
    ("GET", "/instances/{instance}", query("x"), None),
    ("POST", "/instances/{instance}/migrate", query("x"), body_for("version")),
    ("GET", "/instances/{instance}/history", query("x"), None),
    ("GET", "/instances/{instance}/verify", query("x"), None),
    ("GET", "/instances/{instance}/replay", query("step"), None),
    ("POST", "/models", query("filename"), body_for("file")),
    ("GET", "/improvements", query("x"), None),
    ("GET", "/metrics", query("code"), None),
    ("GET", "/openapi.json", query("x"), None),
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
    ("method", "path", "queries", "bodies"),
    ENDPOINTS,
    ids=[f"{method} {path}" for method, path, _, _ in ENDPOINTS],
)
def test_no_generated_request_is_answered_with_a_server_error(
    client: FlaskClient,
    world: dict[str, Any],
    method: str,
    path: str,
    queries: st.SearchStrategy[str],
    bodies: st.SearchStrategy[bytes] | None,
) -> None:
    # A wrong password costs a password hash (on purpose): fewer tries there.
    @settings(FUZZ, max_examples=EXAMPLES // 3 if path == "/auth/token" else EXAMPLES)
    @given(data=st.data())
    def attempt(data: st.DataObject) -> None:
        url = "/api/v1" + path.format(
            instance=data.draw(path_part(world["instance"]), "instance"),
            task=data.draw(path_part(world["task"]), "task"),
        )
        text = data.draw(queries, "query")
        user = data.draw(st.sampled_from(USERS), "user")
        body = data.draw(bodies, "body") if bodies is not None else None
        response = client.open(
            url + ("?" + text if text else ""),
            method=method,
            data=body,
            content_type="application/json" if body is not None else None,
            headers=world["headers"][user],
        )
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        if response.status_code >= 400:
            assert set(response.json or {}) == {"error", "message", "details"}

    attempt()
