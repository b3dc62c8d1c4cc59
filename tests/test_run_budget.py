"""A budget that holds: the worker keeps the user's clock (from Start, less any wait in the queue), the report's
time is set aside before the search, and the Train step says the whole wait. How close whole runs come to their
budget is measured by benchmarks/run_wall.py, not asserted here."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from backend.registry import Run, RunState
from backend.task_detection import Task
from backend.training import job_files as jf
from backend.training.config import TrainConfig
from backend.training.fit import fit_bundle, training_rows
from backend.training.holdout_report import REPORT_MAX_SHARE, report_reserve
from backend.training.local_runner import wait_began
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from components.training_view import wall_words
from tests.conftest import put_table, wait_for


def _run(created: datetime, updated: datetime, state: RunState) -> Run:
    return Run(run_id="r", state=state, table=TableRef("s", "t"), target="y", task=Task.BINARY, metric="roc_auc",
               time_budget=30, config={}, created_at=created, updated_at=updated, worker_pid=None, job_dir="",
               message="", rows_used=None, rows_dropped=None)


def test_the_deadline_is_the_budget_from_when_the_wait_began(tmp_path: Path) -> None:
    jf.write_clock(tmp_path, started_epoch=1_000.0, budget_s=30)
    # 10 s after Start, on a monotonic clock reading 500: 20 s are left, less what the app needs to collect
    assert jf.read_deadline(tmp_path, now_epoch=1_010.0, now_monotonic=500.0) == 500.0 + 20 - jf.COLLECT_MARGIN_S
    assert jf.read_deadline(tmp_path / "no-clock", 0.0, 0.0) is None


def test_a_wait_in_the_queue_is_not_spent_from_the_budget() -> None:
    created = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=100)
    run = _run(created, created, RunState.QUEUED)
    prepared = created.replace(tzinfo=UTC).timestamp() + 3  # its data was ready 3 s after Start
    began = wait_began(run, prepared)
    # launched now, 97 s after its data was ready: the clock starts 3 s ago, not 100 s ago
    assert abs((datetime.now(UTC).timestamp() - began) - 3) < 1


def test_the_report_is_given_time_in_proportion_to_its_rows_and_never_most_of_the_budget() -> None:
    small, large = report_reserve(1_400, 20, 30), report_reserve(40_000, 40, 30)
    assert 0 < small < large
    assert report_reserve(10_000_000, 200, 30) == REPORT_MAX_SHARE * 30


def test_a_search_given_a_near_deadline_ends_by_it_not_at_its_budget(tmp_path: Path) -> None:
    """The worker hands fit_bundle the user's deadline: a 60 s budget with 4 s left searches for about 4 s."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
    frame["y"] = np.where(frame["x"] + rng.normal(0, 0.5, 400) > 0, "a", "b")
    config = TrainConfig(table=TableRef("lab", "t"), target="y", target_sql_type="VARCHAR", task=Task.BINARY,
                         features=(("x", "DOUBLE"), ("z", "DOUBLE")), metric="roc_auc", time_budget_s=60)
    started = time.monotonic()
    fitted = fit_bundle(training_rows(frame, config), config, tmp_path / "log.jsonl", deadline=started + 4)
    spent = time.monotonic() - started
    assert fitted.bundle.threshold is not None  # the threshold still came from held-out rows
    # far below the 60 s budget: the deadline, not the budget, bounded the search, blend and threshold
    assert spent < 30, spent


def test_the_train_step_says_the_whole_wait_from_start(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    frame["y"] = np.where(frame["x"] > 0.3, "yes", "no")
    table = put_table(empty_workspace, "small", frame)
    config = empty_workspace.train_config(table, "y", Task.BINARY, ["x"], "roc_auc", 3)
    run_id = empty_workspace.jobs.start(config)
    clock = json.loads((Path(empty_workspace.registry.get_run(run_id).job_dir) / jf.CLOCK).read_text())
    created = empty_workspace.registry.get_run(run_id).created_at.replace(tzinfo=UTC).timestamp()
    assert clock["budget_s"] == 3 and abs(clock["started"] - created) < 5  # not queued: the clock is Start's
    progress = wait_for(empty_workspace, run_id)
    assert progress.run.state is RunState.SUCCEEDED and progress.model_id
    run = progress.run
    assert progress.wall_seconds == (run.updated_at - run.created_at).total_seconds() > 0
    words = wall_words(progress)
    assert words == f"Succeeded · {progress.wall_seconds:.0f} s from Start to the end, for a budget of 3 s"
    running = dataclasses.replace(progress, run=dataclasses.replace(run, state=RunState.RUNNING))
    assert wall_words(running).startswith("Running · ") and wall_words(running).endswith(" of 3 s")
