"""Server-rendered pages through the Flask test client, CSRF on, as a browser uses them."""

from __future__ import annotations

import re
from typing import Any

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: Any, url: str = "/login") -> str:
    """The CSRF token of the first form on the page at `url`."""
    response = client.get(url)
    match = CSRF.search(response.get_data(as_text=True))
    assert match, f"no csrf_token on {url}"
    return match.group(1)


def login(client: Any, username: str, password: str = "demo") -> Any:
    """Post the log-in form; the response is returned as it is (302 on success)."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def client_for(app: Any, username: str) -> Any:
    """A new test client of `app`, logged in as `username` with the demo password."""
    client = app.test_client()
    response = login(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
