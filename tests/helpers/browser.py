"""A person at Chromium (driven by Playwright): logging in and out of the live app, and
what the browser refused to run under the app's Content-Security-Policy."""

from __future__ import annotations

import re
from typing import Any

DEMO_PASSWORD = "demo"


def login(
    page: Any, base: str, username: str, password: str = DEMO_PASSWORD, inbox: bool = True
) -> None:
    """Log in through the form at `base`/login and wait for the page it lands on (the
    dashboard for a role that lands there, else the inbox); then, unless told not to,
    open the inbox."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/(dashboard)?$"))
    if inbox and page.url != f"{base}/":
        page.goto(f"{base}/")


def logout(page: Any) -> None:
    """Press the top bar's log-out button and wait for the log-in page."""
    page.click("form[action$='/logout'] button")
    page.wait_for_url("**/login**")


def refused_by_csp(page: Any) -> list[str]:
    """A list that fills with every Content-Security-Policy violation Chromium reports
    on `page` from now on (a blocked script, style attribute, image, connection…)."""
    refused: list[str] = []

    def note(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(f"{page.url}: {message.text}")

    page.on("console", note)
    return refused
