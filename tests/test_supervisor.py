"""The supervisor: runs are collected, and queued runs started, with nothing reading their progress; a run
collected late keeps the duration its worker took."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from backend.config import WarehouseConfig
from backend.experiments import summarize_runs
from backend.registry import RunState
from backend.task_detection import Task
from backend.training import job_files as jf
from backend.workspace import Workspace, open_workspace
from tests.conftest import put_table


def _small_table(ws: Workspace) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    put_table(ws, "small", pd.DataFrame({"x": x, "z": rng.normal(size=400), "y": np.where(x > 0, "up", "down")}))


def _config(ws: Workspace):  # type: ignore[no-untyped-def]
    from backend.warehouse.base import TableRef

    return ws.train_config(TableRef("lab", "small"), "y", Task.BINARY, ["x", "z"], "roc_auc", 2, ensemble=False,
                           estimators=("lgbm",))


def _state_at(ws: Workspace, run_id: str, state: str):  # type: ignore[no-untyped-def]
    return next(e.at for e in ws.registry.events(run_id, "state") if e.payload["state"] == state)


def test_runs_finish_and_the_queue_advances_with_no_page_open(tmp_path: Path) -> None:
    ws = open_workspace(WarehouseConfig("duckdb", str(tmp_path / "s.duckdb")), seed_demo=False, supervise=True)
    try:
        assert ws.supervisor is not None and ws.supervisor.running and ws.jobs.supervised
        _small_table(ws)
        first, second = ws.jobs.start(_config(ws)), ws.jobs.start(_config(ws))
        assert ws.registry.get_run(second).state is RunState.QUEUED  # one job at a time by default
        deadline = time.monotonic() + 120
        # nothing here syncs: only the registry is read, as a dashboard in another process would
        while time.monotonic() < deadline and not ws.registry.get_run(second).state.is_final:
            time.sleep(0.5)
        for run_id in (first, second):
            assert ws.registry.get_run(run_id).state is RunState.SUCCEEDED
            assert ws.registry.model_for_run(run_id) is not None
        assert _state_at(ws, second, "RUNNING") >= _state_at(ws, first, "SUCCEEDED")
        jobs_dir = tmp_path / "s.duckdb.jobs"
        while time.monotonic() < deadline and any(jobs_dir.iterdir()):  # removed just after the version is recorded
            time.sleep(0.2)
        assert not any(jobs_dir.iterdir())
    finally:
        ws.close()
    assert not ws.supervisor.running and not ws.jobs.supervised


def test_a_run_collected_late_keeps_its_workers_duration(tmp_path: Path) -> None:
    ws = open_workspace(WarehouseConfig("duckdb", str(tmp_path / "late.duckdb")), seed_demo=False)
    try:
        assert ws.supervisor is None
        _small_table(ws)
        run_id = ws.jobs.start(_config(ws))
        status = Path(ws.registry.get_run(run_id).job_dir) / jf.STATUS
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                s.get("state") == "SUCCEEDED" for s in jf.read_complete_lines(status)):
            time.sleep(0.2)
        statuses = jf.read_complete_lines(status)
        worker_s = statuses[-1]["at"] - statuses[0]["at"]
        time.sleep(3)  # nobody looks for a while (collected then, it would last its worker's time + 3 s + start-up)
        ws.jobs.sync(run_id)
        summary = next(s for s in summarize_runs(ws.registry) if s.run.run_id == run_id)
        assert summary.run.state is RunState.SUCCEEDED
        assert summary.duration_s is not None and summary.duration_s < worker_s + 2.5, (summary.duration_s, worker_s)
    finally:
        ws.close()
