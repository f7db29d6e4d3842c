"""Front doors for `tests.cycle.Driver`: the same script runs through the service
layer (`RuntimeDoor`) and through the JSON API (`ApiDoor`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.testing import FlaskClient

from engine.access import SYSTEM, Actor
from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.helpers.api import bearer


class RuntimeDoor:
    """Commands straight to a `Runtime`, reads through the query layer."""

    def __init__(self, rt: Runtime, db: Database, actors: dict[str, Actor]) -> None:
        self.rt, self.db, self.actors = rt, db, actors

    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.rt.queries.inbox(self.actors[username], instance_id)]

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        self.rt.complete_task(task_id, self.actors[username], data)

    def start(self, username: str) -> int:
        return self.rt.start_instance(self.actors[username]).instance_id

    def instance(self, instance_id: int) -> dict[str, Any]:
        return self.rt.queries.instance(SYSTEM, instance_id, with_events=False).as_dict()

    def fire_timers(self, now: datetime) -> None:
        assert self.rt.fire_due_timers(now)


class ApiDoor:
    """Every step an HTTP request to /api/v1 with a bearer token per user."""

    def __init__(self, client: FlaskClient, app: Any) -> None:
        self.client = client
        self.app = app
        self.tokens: dict[str, dict[str, str]] = {}

    def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            self.tokens[username] = bearer(self.client, username)
        return self.tokens[username]

    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/tasks?instance={instance_id}", headers=self.headers(username)
        )
        assert response.status_code == 200
        return response.json

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        detail = self.client.get(f"/api/v1/tasks/{task_id}", headers=self.headers(username))
        assert detail.status_code == 200
        assert "schema" in detail.json
        assert "data" in detail.json
        response = self.client.post(
            f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=self.headers(username)
        )
        assert response.status_code == 200, response.json

    def start(self, username: str) -> int:
        response = self.client.post(
            "/api/v1/instances",
            json={"process": "service_improvement", "data": {}},
            headers=self.headers(username),
        )
        assert response.status_code == 201, response.json
        return response.json["id"]

    def instance(self, instance_id: int) -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/instances/{instance_id}", headers=self.headers("owner")
        )
        assert response.status_code == 200
        return response.json

    def fire_timers(self, now: datetime) -> None:
        assert self.app.extensions["csi"].runtime.fire_due_timers(now)
