"""Signing in to the JSON API: a bearer token per user."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "demo"


def bearer(client: Any, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """The Authorization header of `username`, from POST /api/v1/auth/token."""
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}
