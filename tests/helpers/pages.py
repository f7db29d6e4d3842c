"""Server-rendered pages through the Flask test client, CSRF on, as a browser uses them."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers import html

# The task a page links or redirects to.
TASK_LINK = re.compile(r"/tasks/([0-9a-f-]{36})")


def csrf_token(client: Any, url: str = "/login") -> str:
    """The CSRF token of the first form on the page at `url`."""
    fields = html.select(html.page(client.get(url)), 'input[name="csrf_token"]')
    assert fields, f"no csrf_token on {url}"
    assert fields[0].get("value"), f"an empty csrf_token on {url}"
    return str(fields[0].get("value"))


def login(client: Any, username: str, password: str = "demo") -> Any:
    """Post the log-in form; the response is returned as it is (302 on success)."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def client_for(app: Any, username: str, password: str = "demo") -> Any:
    """A new test client of `app`, logged in as `username` (with the demo password)."""
    client = app.test_client()
    response = login(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
