"""`python -m bench` (`make bench`): run every figure, print the table and the profile,
write bench/results/latest.json and a dated copy. `--quick`: a small version for
development (bench/results/quick.json). `--only raw,inbox`: just those figures.

Every figure is a ratio against raw in-memory SpiffWorkflow measured in the same run
(the machine is small and noisy); PostgreSQL figures are null when PostgreSQL does not
answer at CSI_BENCH_DATABASE_URL, never estimated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime
from importlib.metadata import version
from typing import Any

from sqlalchemy.engine import make_url

from bench import (
    api,
    dashboard_bench,
    inbox,
    persisted,
    raw,
    register_bench,
    replay_bench,
    state_size,
    verify_bench,
)
from bench.common import RESULTS_DIR, postgres_available, postgres_url, rounded

FIGURES = (
    "raw",
    "state_size",
    "persisted",
    "growth",
    "replay",
    "verify",
    "inbox",
    "register",
    "dashboard",
    "api",
)

# key: (goal text, test, what it is)
GOALS: dict[str, tuple[str, Callable[[Any], bool] | None, str]] = {
    "raw_step_ms": ("reference", None, "raw SpiffWorkflow, one user-task step (ms)"),
    "persisted_step_ratio_sqlite": ("≤ 3", lambda v: v <= 3, "complete_task ÷ raw step, SQLite"),
    "persisted_step_ratio_postgres": (
        "≤ 5",
        lambda v: v <= 5,
        "complete_task ÷ raw step, PostgreSQL",
    ),
    "step_cost_growth": ("≤ 1.5", lambda v: v <= 1.5, "step at 200+ steps ÷ step 6-7 (SQLite)"),
    "inbox_p95_ms_10k": ("< 50", lambda v: v < 50, "inbox p95 ms, 10k open instances (worst db)"),
    "inbox_growth": ("≤ 1.5", lambda v: v <= 1.5, "inbox p95 10k ÷ 100 instances (worst db)"),
    "replay_ratio": ("≤ 2", lambda v: v <= 2, "replay 102 steps ÷ raw same steps (SQLite)"),
    "verify_10k_events_s": (
        "< 1",
        lambda v: v < 1,
        "verify a 10,000-event hash chain, s (worst db)",
    ),
    "register_p95_ms_10k": (
        "< 100",
        lambda v: v < 100,
        "register page p95 ms, first page, 10k records (worst db)",
    ),
    "register_growth": ("≤ 1.5", lambda v: v <= 1.5, "register page p95 10k ÷ 100 records"),
    "register_json_p95_ms_10k": (
        "< 100",
        lambda v: v < 100,
        "register JSON p95 ms, first page, 10k records (worst db)",
    ),
    "register_json_growth": ("≤ 1.5", lambda v: v <= 1.5, "register JSON p95 10k ÷ 100 records"),
    "register_xlsx_10k_s": ("< 10", lambda v: v < 10, "register xlsx of 10k records, s"),
    "dashboard_p95_ms_10k": (
        "< 100",
        lambda v: v < 100,
        "dashboard p95 ms, every figure, 10k improvements (worst db)",
    ),
    "dashboard_growth": ("≤ 1.5", lambda v: v <= 1.5, "dashboard p95 10k ÷ 100 improvements"),
    "report_p95_ms_10k": ("info", None, "period report p95 ms, this quarter, 10k improvements"),
    "api_throughput_ratio": (
        "≥ 0.20",
        lambda v: v >= 0.20,
        "HTTP completions/s ÷ raw steps/s (PostgreSQL)",
    ),
    "api_errors": ("0", lambda v: v == 0, "API answers other than 2xx/409"),
    "state_bytes_per_instance": (
        "info",
        None,
        "stored state after a full cycle, bytes: without / with the spec",
    ),
}


class Run:
    def __init__(self, quick: bool, only: set[str]) -> None:
        self.quick = quick
        self.only = only
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {key: None for key in GOALS}
        self.details: dict[str, Any] = {}
        self.profile: dict[str, Any] = {}
        self.failures: dict[str, str] = {}
        self.notes: list[str] = []
        self.postgres, self.postgres_reason = postgres_available()
        if not self.postgres:
            shown_url = make_url(postgres_url()).render_as_string(hide_password=True)
            self.notes.append(
                f"PostgreSQL not reachable at {shown_url} ({self.postgres_reason}): "
                "its figures are null."
            )

    def wanted(self, figure: str) -> bool:
        return not self.only or figure in self.only

    def figure(self, name: str, body: Callable[[], None]) -> None:
        if not self.wanted(name):
            return
        started = time.perf_counter()
        print(f"· {name} …", end=" ", flush=True, file=sys.stderr)
        try:
            body()
        except Exception as exc:
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            print("FAILED", file=sys.stderr)
            traceback.print_exc()
            return
        print(f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    # ---- the figures -----------------------------------------------------------------

    def run_raw(self) -> None:
        out = raw.measure(cycles=5 if self.quick else 30)
        self.results["raw_step_ms"] = out["raw_step_ms"]
        self.details["raw_step_ms"] = out["details"]

    def run_state_size(self) -> None:
        out = state_size.measure()
        self.results["state_bytes_per_instance"] = out["value"]
        self.details["state_bytes_per_instance"] = out["details"]

    def run_persisted(self) -> None:
        size = {"cycles": 2, "cold_cycles": 1, "profile_cycles": 1} if self.quick else {}
        for backend in ("sqlite", "postgres"):
            key = f"persisted_step_ratio_{backend}"
            if backend == "postgres" and not self.postgres:
                self.details[key] = {"missing": self.postgres_reason}
                continue
            out = persisted.measure_backend(backend, **size)
            self.results[key] = out["ratio"]
            self.details[key] = out["details"]
            self.profile[backend] = out["profile"]

    def run_growth(self) -> None:
        size = {"passes": 72, "early_cycles": 3} if self.quick else {}
        out = persisted.measure_growth("sqlite", **size)
        self.results["step_cost_growth"] = out["growth"]
        self.details["step_cost_growth"] = out["details"]
        if self.postgres and not self.quick:
            pg = persisted.measure_growth("postgres", early_cycles=8)
            self.details["step_cost_growth"]["postgres"] = {"growth": pg["growth"], **pg["details"]}

    def run_replay(self) -> None:
        size = {"repeats": 1, "raw_repeats": 2} if self.quick else {}
        out = replay_bench.measure("sqlite", **size)
        self.results["replay_ratio"] = out["ratio"]
        self.details["replay_ratio"] = out["details"]
        if self.postgres and not self.quick:
            pg = replay_bench.measure("postgres", repeats=2, raw_repeats=3)
            pg["details"].pop("profile_top10_ms_per_replay", None)
            self.details["replay_ratio"]["postgres"] = {"ratio": pg["ratio"], **pg["details"]}

    def run_verify(self) -> None:
        size = {"events": 2_000, "repeats": 1} if self.quick else {}
        per_backend = {"sqlite": verify_bench.measure("sqlite", **size)}
        if self.postgres:
            per_backend["postgres"] = verify_bench.measure("postgres", **size)
        self.results["verify_10k_events_s"] = max(v["seconds"] for v in per_backend.values())
        self.details["verify_10k_events_s"] = {k: v["details"] for k, v in per_backend.items()}

    def run_inbox(self) -> None:
        size = (
            {"small": 100, "large": 1_000, "queries_n": 20}
            if self.quick
            else {"small": 100, "large": 10_000, "queries_n": 60}
        )
        per_backend = {}
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and not self.postgres:
                per_backend[backend] = {"missing": self.postgres_reason}
                continue
            per_backend[backend] = inbox.measure_backend(backend, **size)
        measured = [v for v in per_backend.values() if "missing" not in v]
        worst_p95 = max(measured, key=lambda v: v["p95_ms_large"])
        worst_growth = max(measured, key=lambda v: v["growth"])
        self.results["inbox_p95_ms_10k"] = worst_p95["p95_ms_large"]
        self.results["inbox_growth"] = worst_growth["growth"]
        self.details["inbox"] = {
            "headline": "the worse of the measured backends, user 'owner' "
            f"(p95 from {worst_p95['backend']}, growth from {worst_growth['backend']})",
            "synthetic": "a few real instances (one full cycle, 3 started); the rest bulk-"
            "inserted instance + human_task rows copied from the real cycle's rows, "
            "each cut at one of its stages; ANALYZE after the insert",
            **per_backend,
        }
        if self.quick:
            self.notes.append("quick mode: the inbox's large size is 1,000 open instances.")

    def run_register(self) -> None:
        size = (
            {"small": 100, "large": 1_000, "queries_n": 20, "memory": 200}
            if self.quick
            else {"small": 100, "large": 10_000, "queries_n": 60, "memory": 1_000}
        )
        per_backend = {}
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and not self.postgres:
                per_backend[backend] = {"missing": self.postgres_reason}
                continue
            per_backend[backend] = register_bench.measure_backend(backend, **size)
        measured = [v for v in per_backend.values() if "missing" not in v]
        for kind, key in (("page", "register"), ("json", "register_json")):
            self.results[f"{key}_p95_ms_10k"] = max(v[f"{kind}_p95_ms_large"] for v in measured)
            self.results[f"{key}_growth"] = max(v[f"{kind}_growth"] for v in measured)
        self.results["register_xlsx_10k_s"] = max(v["xlsx_large"]["seconds"] for v in measured)
        self.details["register"] = {
            "headline": "the worse of the measured backends, user 'manager', through the "
            "Flask app (test client): GET /improvements and GET /api/v1/improvements",
            "synthetic": "a few real records (one full cycle, 2 started); the rest bulk-"
            "inserted instance + process_record + metric_value rows copied from the real "
            "cycle's, varied in number, year, source, stage; ANALYZE after the insert",
            **per_backend,
        }
        if self.quick:
            self.notes.append("quick mode: the register's large size is 1,000 records.")

    def run_dashboard(self) -> None:
        size = (
            {"small": 100, "large": 1_000, "queries_n": 20}
            if self.quick
            else {"small": 100, "large": 10_000, "queries_n": 60}
        )
        per_backend = {}
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and not self.postgres:
                per_backend[backend] = {"missing": self.postgres_reason}
                continue
            per_backend[backend] = dashboard_bench.measure_backend(backend, **size)
        measured = [v for v in per_backend.values() if "missing" not in v]
        self.results["dashboard_p95_ms_10k"] = max(v["page_p95_ms_large"] for v in measured)
        self.results["dashboard_growth"] = max(v["page_growth"] for v in measured)
        self.results["report_p95_ms_10k"] = max(v["report_p95_ms_large"] for v in measured)
        self.details["dashboard"] = {
            "headline": "the worse of the measured backends, user 'manager', through the "
            "Flask app (test client): GET /dashboard and GET /reports/<this quarter>",
            "synthetic": "as the register's, with the dashboard's columns varied per record "
            "and an open task for every open record (a quarter of them overdue)",
            **per_backend,
        }
        if self.quick:
            self.notes.append("quick mode: the dashboard's large size is 1,000 improvements.")

    def run_api(self) -> None:
        if not self.postgres:
            self.details["api_throughput_ratio"] = {"missing": self.postgres_reason}
            return
        out = api.measure(seconds=5.0 if self.quick else 20.0)
        self.results["api_throughput_ratio"] = out["ratio"]
        self.results["api_errors"] = out["errors"]
        self.details["api_throughput_ratio"] = out["details"]

    def run(self) -> None:
        self.figure("raw", self.run_raw)
        self.figure("state_size", self.run_state_size)
        self.figure("persisted", self.run_persisted)
        self.figure("growth", self.run_growth)
        self.figure("replay", self.run_replay)
        self.figure("verify", self.run_verify)
        self.figure("inbox", self.run_inbox)
        self.figure("register", self.run_register)
        self.figure("dashboard", self.run_dashboard)
        self.figure("api", self.run_api)

    # ---- output ----------------------------------------------------------------------

    def verdicts(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key, (goal, test, what) in GOALS.items():
            value = self.results.get(key)
            if test is None or value is None or (isinstance(value, float) and math.isnan(value)):
                met = None
            else:
                met = bool(test(value))
            out[key] = {"goal": goal, "met": met, "what": what}
        return out

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "date": datetime.now().astimezone().isoformat(timespec="seconds"),
            "quick": self.quick,
            "duration_s": time.perf_counter() - self.started,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "SpiffWorkflow": version("SpiffWorkflow"),
                "SQLAlchemy": version("SQLAlchemy"),
            },
            **self.results,
            "goals": self.verdicts(),
            "profile": self.profile,
            "details": self.details,
            "notes": [
                *self.notes,
                "Each ratio divides by raw cycles run interleaved with that measurement "
                "(details: raw_step_ms_interleaved); raw_step_ms is the dedicated run.",
                "Timers: the worker's fire_due_timers command is handed a time past the "
                "re-check, so no run waits for a timer to come due.",
            ],
            "failures": self.failures,
        }
        return rounded(doc, 4)

    def table(self, doc: dict[str, Any]) -> str:
        lines = [f"{'figure':30} {'value':>12}  {'goal':>9}  {'':9}  what"]
        lines.append("-" * 112)
        for key, verdict in doc["goals"].items():
            value = doc.get(key)
            if isinstance(value, dict):
                shown = " / ".join(str(v) for v in value.values())
            elif value is None:
                shown = "missing"
            else:
                shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            met = {True: "met", False: "NOT MET", None: "-"}[verdict["met"]]
            if value is None and verdict["goal"] not in ("reference", "info"):
                met = "missing"
            lines.append(f"{key:30} {shown:>12}  {verdict['goal']:>9}  {met:9}  {verdict['what']}")
        return "\n".join(lines)

    def profile_text(self, doc: dict[str, Any]) -> str:
        parts = []
        for backend, prof in doc["profile"].items():
            parts.append(
                f"\ncProfile of complete_task on {backend}: {prof['steps']} steps, "
                f"{prof['per_step_ms_under_profiler']:.2f} ms a step under the profiler "
                "(figures in ms per step; top 20 by cumulative time)"
            )
            parts.append(f"{'cum ms':>8} {'own ms':>8} {'calls':>7}  function")
            for e in prof["top"]:
                parts.append(
                    f"{e['cumtime_ms_per_step']:8.3f} {e['tottime_ms_per_step']:8.3f} "
                    f"{e['calls_per_step']:7.1f}  {e['function']}"
                )
            parts.append("  … engine/ functions only:")
            for e in prof["top_engine"]:
                parts.append(
                    f"{e['cumtime_ms_per_step']:8.3f} {e['tottime_ms_per_step']:8.3f} "
                    f"{e['calls_per_step']:7.1f}  {e['function']}"
                )
        return "\n".join(parts)

    def write(self, doc: dict[str, Any]) -> list[str]:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        names = (
            ["quick.json"] if self.quick else ["latest.json", f"{date.today().isoformat()}.json"]
        )
        if self.only:
            names = ["partial.json"]
        for name in names:
            (RESULTS_DIR / name).write_text(text, encoding="utf-8")
        return [str(RESULTS_DIR / n) for n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (< 60 s)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(FIGURES)}")
    args = parser.parse_args(argv)
    only = {f.strip() for f in args.only.split(",") if f.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    run = Run(args.quick, only)
    run.run()
    doc = run.document()
    print(run.table(doc))
    print(run.profile_text(doc))
    for note in doc["notes"]:
        print(f"note: {note}")
    for name, failure in doc["failures"].items():
        print(f"FAILED {name}: {failure}")
    written = run.write(doc)
    print(f"\nwritten: {', '.join(written)}  ({doc['duration_s']:.0f} s)")
    return 1 if doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
