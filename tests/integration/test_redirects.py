"""After a form the browser goes back only to a path on this site: `?next=` of the
log-in page and the inbox's claim/unclaim share one check (web.redirects), tried here
with values a browser would read as another site or a script."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from engine.access import Actor
from engine.runtime import Runtime
from tests.helpers.pages import csrf_token, login
from web.redirects import local_target

HOSTILE = [
    "/\t/evil.example/",  # a browser drops the tab: //evil.example/
    "/\n/evil.example/",
    "/\r/evil.example/",
    "/\x00/evil.example/",
    "/%09/evil.example/",  # the same, still encoded
    "/%0a/evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",  # a backslash reads as a slash
    "\\\\evil.example/",
    "/%5Cevil.example/",
    "/%2F/evil.example/",
    "/%2f%2fevil.example",
    "https://evil.example/",
    "http:/evil.example",
    "https:evil.example",
    "//evil.example@ours/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " /tasks",
    "/tasks /x",
    "/\u3000/evil.example/",  # an ideographic space
    "/\u0085/evil.example/",  # a C1 control (next line)
    "evil.example",
    "",
    "/" + "a" * 3000,
]
LOCAL = ["/", "/tasks/abc?x=1", "/instances/3#diagram", "/audit?person=po1&number=SI-2026-0001"]


@pytest.mark.parametrize("target", HOSTILE)
def test_a_hostile_target_is_refused(target: str) -> None:
    assert local_target(target) is None


@pytest.mark.parametrize("target", LOCAL)
def test_a_local_path_is_kept(target: str) -> None:
    assert local_target(target) == target


@pytest.mark.parametrize("target", ["/%09/evil.example/", "//evil.example/", "/\\evil.example"])
def test_the_login_page_never_sends_the_browser_elsewhere(client: Any, target: str) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        f"/login?next={quote(target, safe='')}",
        data={"username": "po1", "password": "demo", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_the_login_page_follows_a_local_next(client: Any) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login?next=/instances", data={"username": "po1", "password": "demo", "csrf_token": token}
    )
    assert response.headers["Location"] == "/instances"


def test_claiming_never_sends_the_browser_elsewhere(
    app: Any, rt: Runtime, actors: dict[str, Actor]
) -> None:
    started = rt.start_instance(actors["owner"])
    [task] = started.open_tasks
    client = app.test_client()
    assert login(client, "owner").status_code == 302
    token = csrf_token(client, "/")
    claimed = client.post(
        f"/tasks/{task}/claim", data={"csrf_token": token, "next": "/\t/evil.example/"}
    )
    assert claimed.headers["Location"] == "/"
    released = client.post(
        f"/tasks/{task}/unclaim?next=%2F%09%2Fevil.example%2F", data={"csrf_token": token}
    )
    assert released.headers["Location"] == "/"
