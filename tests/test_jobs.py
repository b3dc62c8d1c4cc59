"""Training jobs: cancel, a killed worker, and an app restart in the middle of a run (workers killed at random
moments: tests/reliability/test_faults.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from backend.errors import RunAlreadyEndedError
from backend.metrics import default_metric
from backend.registry import RunState
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.jobs import record_model_version
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import make_workspace, put_table

DIAMONDS = TableRef("demo", "diamond_prices")


def start_long_run(ws: Workspace) -> str:
    config = ws.train_config(DIAMONDS, "price", Task.REGRESSION, ["carat", "cut", "color", "clarity"],
                             default_metric(Task.REGRESSION), 120)
    run_id = ws.jobs.start(config)
    deadline = time.monotonic() + 60
    while not ws.jobs.progress(run_id).trials and time.monotonic() < deadline:
        time.sleep(0.5)  # wait until the worker is really training
    return run_id


def test_cancel_stops_the_worker_and_keeps_no_model(workspace: Workspace) -> None:
    run_id = start_long_run(workspace)
    run = workspace.registry.get_run(run_id)
    started = time.monotonic()
    workspace.jobs.cancel(run_id)
    assert time.monotonic() - started < 5
    progress = workspace.jobs.progress(run_id)
    assert progress.run.state is RunState.CANCELLED and progress.model_id is None
    assert workspace.registry.list_model_versions() == []
    assert not Path(run.job_dir).exists()
    assert not _alive(run.worker_pid)


def test_a_killed_worker_fails_the_run_with_a_reason(workspace: Workspace) -> None:
    run_id = start_long_run(workspace)
    os.killpg(workspace.registry.get_run(run_id).worker_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not (progress := workspace.jobs.progress(run_id)).run.state.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
    assert progress.run.state is RunState.FAILED
    assert "stopped unexpectedly" in progress.run.message
    assert workspace.registry.list_model_versions() == []


def test_a_restart_mid_run_marks_it_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "restart.duckdb"
    ws = make_workspace(path)
    run_id = start_long_run(ws)
    run = ws.registry.get_run(run_id)
    ws.close()
    os.killpg(run.worker_pid, signal.SIGKILL)  # the app went down and took its worker with it
    time.sleep(0.5)
    jobs_root = Path(run.job_dir).parent
    (jobs_root / "job-ended-earlier").mkdir()  # an app stopped after recording a run's end, before releasing it
    (jobs_root / "notes.txt").write_text("not Flurry's", encoding="utf-8")
    reopened = make_workspace(path)
    try:
        after = reopened.registry.get_run(run_id)
        assert after.state is RunState.INTERRUPTED
        assert "stopped while this run was training" in after.message
        assert not Path(run.job_dir).exists()
        assert sorted(p.name for p in jobs_root.iterdir()) == ["notes.txt"]
        assert reopened.registry.list_model_versions() == []
    finally:
        reopened.close()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_rerun_repeats_the_configuration_and_records_the_data_fingerprint(workspace: Workspace) -> None:
    from tests.conftest import wait_for

    table = TableRef("demo", "penguins")
    # single models (ensemble=False): these tests are about the job's life, not the blend's
    config = workspace.train_config(table, "species", Task.MULTICLASS, ["island", "bill_length_mm"], "log_loss", 2,
                                    seed=7, validation="cv", cv_folds=3, ensemble=False)
    first = wait_for(workspace, workspace.jobs.start(config))
    second = wait_for(workspace, workspace.jobs.rerun(first.run.run_id))
    assert first.run.state is second.run.state is RunState.SUCCEEDED
    assert second.run.config == first.run.config and second.run.config["validation"] == "cv"
    prints = [workspace.registry.events(r.run.run_id, "fingerprint")[0].payload for r in (first, second)]
    assert prints[0]["sha256"] == prints[1]["sha256"] and prints[0]["rows"] == 344
    from backend.deployed_model import load_bundle

    assert load_bundle(workspace.registry, first.model_id).fingerprint["sha256"] == prints[0]["sha256"]


def test_delete_removes_the_run_its_model_and_its_functions(workspace: Workspace) -> None:
    from backend.deploy import deploy
    from tests.conftest import train_and_wait

    progress = train_and_wait(workspace, TableRef("demo", "penguins"), "species", budget=2)
    deploy(workspace.warehouse, workspace.registry, progress.model_id, "flurry_predict_doomed")
    assert workspace.warehouse.function_exists("flurry_predict_doomed")
    assert workspace.delete_run(progress.run.run_id) == ["flurry_predict_doomed"]
    assert workspace.registry.list_runs() == [] and workspace.registry.list_model_versions() == []
    assert workspace.registry.list_deployments() == []
    assert not workspace.warehouse.function_exists("flurry_predict_doomed")
    count = workspace.warehouse.query('SELECT count(*) AS n FROM "FLURRY".artifacts')["n"].iloc[0]
    assert count == 0


def test_a_running_job_cannot_be_deleted(workspace: Workspace) -> None:
    import pytest

    from backend.errors import TrainingFailedError

    run_id = start_long_run(workspace)
    with pytest.raises(TrainingFailedError, match="still training"):
        workspace.delete_run(run_id)
    workspace.jobs.cancel(run_id)


def test_runs_queue_in_order_behind_the_concurrency_limit(workspace: Workspace) -> None:
    from tests.conftest import wait_for

    table = TableRef("demo", "penguins")
    config = workspace.train_config(table, "species", Task.MULTICLASS, ["island", "bill_length_mm"], "log_loss", 2,
                                    ensemble=False)
    first, second, third, dropped = (workspace.jobs.start(config) for _ in range(4))
    assert workspace.registry.get_run(first).state is RunState.RUNNING
    assert [workspace.jobs.queue_position(r) for r in (first, second, third, dropped)] == [None, 1, 2, 3]
    workspace.jobs.cancel(dropped)  # a queued run can be cancelled before it starts
    assert workspace.registry.get_run(dropped).state is RunState.CANCELLED
    for run_id in (first, second, third):
        assert wait_for(workspace, run_id).run.state is RunState.SUCCEEDED
    starts = [next(e.at for e in workspace.registry.events(r, "state") if e.payload["state"] == "RUNNING")
              for r in (first, second, third)]
    assert starts == sorted(starts)
    # never two at once: each run started after the previous one ended
    ends = [next(e.at for e in workspace.registry.events(r, "state") if e.payload["state"] == "SUCCEEDED")
            for r in (first, second, third)]
    assert starts[1] >= ends[0] and starts[2] >= ends[1]


def test_cancel_can_keep_the_best_model_found_so_far(workspace: Workspace) -> None:
    from backend.deployed_model import load_bundle
    from tests.conftest import wait_for

    run_id = start_long_run(workspace)
    trials = len(workspace.jobs.progress(run_id).trials)
    started = time.monotonic()
    workspace.jobs.cancel(run_id, keep_best=True)
    assert time.monotonic() - started < 5  # the search itself stops at once
    progress = wait_for(workspace, run_id)
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    assert "Stopped early" in progress.run.message and progress.model_id
    assert len(progress.trials) >= trials
    version = workspace.registry.get_model_version(progress.model_id)
    assert version.leaderboard and version.best_estimator == version.leaderboard[0].estimator
    frame = workspace.warehouse.read_columns(DIAMONDS, version.feature_names, limit=10)
    assert load_bundle(workspace.registry, progress.model_id).predict(frame).shape == (10,)


def test_a_late_outcome_never_overwrites_how_a_run_ended(empty_workspace: Workspace) -> None:
    """The moves a run may make are one table (registry.TRANSITIONS): a model collected after its run was
    cancelled is not kept — no version appears and the run stays CANCELLED."""
    ws = empty_workspace
    table = put_table(ws, "tiny", pd.DataFrame({"x": range(20), "y": [0.5 * i for i in range(20)]}))
    config = TrainConfig(table=table, target="y", target_sql_type="DOUBLE", task=Task.REGRESSION,
                         features=(("x", "BIGINT"),), metric="r2")
    run_id = ws.registry.create_run(table=table, target="y", task="regression", metric="r2", time_budget=60,
                                    config=config.to_dict(), job_dir="nowhere")
    assert not ws.registry.set_run_state(run_id, RunState.SUCCEEDED)  # QUEUED cannot succeed without running
    assert ws.registry.set_run_state(run_id, RunState.RUNNING)
    assert ws.registry.set_run_state(run_id, RunState.CANCELLED)
    result = {"best_estimator": "lgbm", "metrics": {}, "train_rows": 16, "holdout_rows": 4, "leaderboard": [],
              "importance": [], "versions": {}, "sha256": {"bundle.pkl": "0" * 64}}
    with pytest.raises(RunAlreadyEndedError):
        record_model_version(ws.registry, run_id, config, result, b"model", b"holdout")
    assert ws.registry.list_model_versions() == []
    assert ws.registry.get_run(run_id).state is RunState.CANCELLED
    for later in (RunState.RUNNING, RunState.FAILED, RunState.INTERRUPTED):
        assert not ws.registry.set_run_state(run_id, later)
    assert [e.payload["state"] for e in ws.registry.events(run_id, "state")][-1] == "CANCELLED"


def test_a_run_still_being_prepared_is_not_launched_by_another_thread(workspace: Workspace) -> None:
    """start() queues a run, then draws its sample: a slot freed meanwhile (a run collected by the supervisor)
    must not launch it half-made. It was launched, and its missing config.json raised in the supervisor."""
    config = workspace.train_config(DIAMONDS, "price", Task.REGRESSION, ["carat", "cut"],
                                    default_metric(Task.REGRESSION), 2)
    location = workspace.jobs.runner.location()
    run_id = workspace.registry.create_run(  # what start() has written before the sample is drawn
        table=config.table, target=config.target, task=config.task.value, metric=config.metric,
        time_budget=config.time_budget_s, config=config.to_dict(), job_dir=location)
    workspace.jobs._launch_queued()  # what a collected run does to the queue
    assert workspace.registry.get_run(run_id).state is RunState.QUEUED
    workspace.jobs.runner.prepare(run_id, config, location)
    assert (Path(location) / "config.json").is_file() and (Path(location) / "fingerprint.json").is_file()
    workspace.jobs._launch_queued()
    assert workspace.registry.get_run(run_id).state is not RunState.QUEUED
    workspace.jobs.cancel(run_id)
