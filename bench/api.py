"""api_throughput_ratio: task completions per second through the JSON API, divided by
raw in-memory steps per second.

gunicorn serves `web:create_app()` with 2 (sync) workers on 127.0.0.1 and a free
port, on PostgreSQL (DATABASE_URL) with a SECRET_KEY set. 8 client threads
(http.client over loopback) each loop for a bounded time: start an instance
(POST /api/v1/instances), then complete register_input (owner) and the two
propose_metrics tasks (po1, po2): GET /api/v1/tasks?instance=ID, then
POST /api/v1/tasks/<id>/complete with {"data": ...}, the data of tests.cycle.
Only completions answered inside the window count. Any answer other than the
expected (2xx, or a 409) is an error. gunicorn is always stopped at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    ROOT,
    cycle_script,
    median,
    ms,
    p95,
    parsed_process,
    postgres_url,
    prepared_database,
    ratio,
    work_dir,
)
from bench.raw import RawClock
from engine.commands.setup import DEMO_PASSWORD
from tests.helpers.actors import actors_of

WORKERS = 2
CLIENTS = 8
USERS = ("owner", "po1", "po2")
STEPS = ("register_input", "propose_metrics", "propose_metrics")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tally:
    completions: int = 0
    conflicts: int = 0
    instances: int = 0
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    complete_latency: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next request reconnects
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:200].decode("utf-8", "replace")

    def close(self) -> None:
        self.conn.close()


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            status, _ = Client(port).call(
                "POST", "/api/v1/auth/token", {"username": "owner", "password": DEMO_PASSWORD}
            )
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def start_gunicorn(port: int, url: str, log_path: Any) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret-not-for-production",
        "CSI_INSTANCE_PATH": str(work_dir() / "api-instance"),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "web:create_app()",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed after it
    try:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master (it stops its workers); SIGKILL its own group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group gunicorn was started in
            process.wait(timeout=10)


class _Caller:
    """One client's requests, each counted in the tally (errors and conflicts by kind)."""

    def __init__(self, port: int, tokens: dict[str, str], tally: Tally) -> None:
        self.client, self.tokens, self.tally = Client(port), tokens, tally

    def __call__(self, method: str, path: str, body: Any, user: str) -> tuple[int, Any] | None:
        tally = self.tally
        try:
            status, answer = self.client.call(method, path, body, self.tokens[user])
        except (OSError, http.client.HTTPException) as exc:
            with tally.lock:
                tally.errors[f"{method} {path.split('?')[0]}: {type(exc).__name__}"] += 1
            return None
        with tally.lock:
            tally.requests += 1
            if status == 409:
                tally.conflicts += 1
            elif status >= 300:
                key = f"{method} {path.split('?')[0].rsplit('/', 2)[0]}/...: {status}"
                tally.errors[key] += 1
        return status, answer


def _one_cycle(
    call: _Caller, script: list[tuple[str, str, dict[str, Any]]], end: float, tally: Tally
) -> bool:
    """Start one instance and complete its script's tasks; False once the window closed."""
    started = call("POST", "/api/v1/instances", {"process": "service_improvement"}, "owner")
    if started is None or started[0] != 201:
        return True
    iid = started[1]["id"]
    with tally.lock:
        tally.instances += 1
    for user, bpmn_id, data in script:
        listed = call("GET", f"/api/v1/tasks?instance={iid}", None, user)
        if listed is None or listed[0] != 200:
            return True
        mine = [t for t in listed[1] if t["bpmn_id"] == bpmn_id]
        if not mine:
            with tally.lock:
                tally.errors[f"no open {bpmn_id} for {user}"] += 1
            return True
        sent = time.perf_counter()
        done = call("POST", f"/api/v1/tasks/{mine[0]['id']}/complete", {"data": data}, user)
        answered = time.perf_counter()
        if done is None or done[0] != 200:
            return True
        if answered > end:
            return False
        with tally.lock:
            tally.completions += 1
            tally.complete_latency.append(answered - sent)
    return True


def client_loop(
    port: int,
    tokens: dict[str, str],
    script: list[tuple[str, str, dict[str, Any]]],
    window: tuple[float, float],
    tally: Tally,
) -> None:
    start, end = window
    call = _Caller(port, tokens, tally)
    while time.perf_counter() < start:
        time.sleep(0.001)
    try:
        while time.perf_counter() < end and _one_cycle(call, script, end, tally):
            pass
    finally:
        call.client.close()


def measure(seconds: float = 20.0) -> dict[str, Any]:
    url = postgres_url()
    db = prepared_database(url)
    try:
        actors, parsed = actors_of(db), parsed_process(db)
    finally:
        db.dispose()
    steps = cycle_script(parsed, actors)
    script = []
    for user, bpmn_id in zip(USERS, STEPS, strict=True):
        script.append(next(s for s in steps if s[0] == user and s[1] == bpmn_id))
    clock = RawClock(parsed, actors)
    clock.tick(5)

    port = free_port()
    log_path = work_dir() / "gunicorn.log"
    process = start_gunicorn(port, url, log_path)
    tally = Tally()
    try:
        wait_ready(port, process)
        tokens = {}
        for user in USERS:
            status, answer = Client(port).call(
                "POST", "/api/v1/auth/token", {"username": user, "password": DEMO_PASSWORD}
            )
            if status != 200:
                raise RuntimeError(f"no token for {user}: {status} {answer}")
            tokens[user] = answer["token"]
        start = time.perf_counter() + 0.5
        window = (start, start + seconds)
        threads = [
            threading.Thread(target=client_loop, args=(port, tokens, script, window, tally))
            for _ in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        alive = process.poll() is None
    finally:
        stop_gunicorn(process)
    clock.tick(5)
    per_second = tally.completions / seconds
    raw_per_second = 1.0 / clock.step_seconds
    log_tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    return {
        "ratio": ratio(per_second, raw_per_second),
        "errors": sum(tally.errors.values()),
        "details": {
            "completions_per_s": per_second,
            "raw_steps_per_s_interleaved": raw_per_second,
            "window_s": seconds,
            "workers": WORKERS,
            "clients": CLIENTS,
            "completions": tally.completions,
            "instances_started": tally.instances,
            "requests": tally.requests,
            "requests_per_s": tally.requests / seconds,
            "conflicts_409": tally.conflicts,
            "errors_by_kind": dict(tally.errors),
            "complete_latency_ms_median": ms(median(tally.complete_latency)),
            "complete_latency_ms_p95": ms(p95(tally.complete_latency)),
            "gunicorn_alive_until_the_end": alive,
            "gunicorn_stopped": process.poll() is not None,
            "gunicorn_log_tail": log_tail if tally.errors else "",
        },
    }
