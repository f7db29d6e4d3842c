"""The benchmark harness runs (its cheapest parts, on SQLite): no timing asserts."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _bench_files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSI_BENCH_WORK_DIR", str(tmp_path))


def test_raw_reference_runs_the_whole_cycle() -> None:
    from bench import raw

    out = raw.measure(cycles=1, warmup=0)
    assert out["raw_step_ms"] > 0
    assert out["details"]["user_steps_per_cycle"] == 27


def test_state_size_and_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.__main__ as main

    monkeypatch.setattr(main, "postgres_available", lambda: (False, "not used here"))
    run = main.Run(quick=True, only={"raw", "state_size"})
    run.run()
    assert not run.failures
    size = run.results["state_bytes_per_instance"]
    assert 0 < size["without_spec"] < size["with_spec"]

    doc = run.document()
    assert set(main.GOALS) <= set(doc)
    assert doc["persisted_step_ratio_postgres"] is None  # missing, never invented
    assert doc["goals"]["persisted_step_ratio_postgres"]["met"] is None
    table = run.table(doc)
    assert "raw_step_ms" in table
    assert "missing" in table


def test_the_register_figures_run_on_a_small_register() -> None:
    from bench import register_bench

    out = register_bench.measure_backend("sqlite", small=5, large=40, queries_n=2, memory=20)
    for kind in ("page", "json"):
        assert out[f"{kind}_p95_ms_large"] > 0
        assert out[f"{kind}_growth"] is not None
    assert out["large"]["records"] >= 40
    assert out["xlsx_large"]["records"] == out["large"]["records"]
    assert out["xlsx_memory"]["peak_mb_all"] > 0


def test_the_dashboard_figures_run_on_a_small_register() -> None:
    from bench import dashboard_bench

    out = dashboard_bench.measure_backend("sqlite", small=5, large=40, queries_n=2)
    for kind in ("page", "report"):
        assert out[f"{kind}_p95_ms_large"] > 0
        assert out[f"{kind}_growth"] is not None
    assert out["large"]["records"] >= 40
    assert out["large"]["open_tasks_added"] > 0
