"""Faults: a worker killed at random moments, the warehouse file held by another program, a batch score killed
midway. After each: no run or score stuck running, no version without a verified artifact, no temporary
files or staging tables left, and every earlier output intact.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend.deploy import deploy, score_table
from backend.deployed_model import load_bundle
from backend.registry import RunState
from backend.scoring_jobs import ScoringState
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import FAKESNOW_SERVER, make_workspace, put_table, train_and_wait, wait_for
from tests.reliability.conftest import Observed

ROOT = Path(__file__).resolve().parents[2]


def test_killing_the_worker_process_the_app_starts_never_leaves_a_broken_registry(workspace: Workspace,
                                                                                  observed: Observed) -> None:
    """The `python -m backend.training.worker` process itself, killed with its process group while it imports
    and while it fits (test_kills kills forked workers many more times, at random moments): each run ends
    FAILED or SUCCEEDED, and every model version's artifacts verify."""
    table = TableRef("demo", "penguins")
    config = workspace.train_config(table, "species", Task.MULTICLASS, ["island", "bill_length_mm"], "log_loss", 4,
                                    ensemble=False)
    outcomes = []
    for fitting in (False, True):
        run_id = workspace.jobs.start(config)
        if fitting:  # killed once its first trial is logged: mid-search, whatever the machine's speed
            deadline = time.monotonic() + 30
            while not workspace.jobs.progress(run_id).trials and time.monotonic() < deadline:
                time.sleep(0.05)
        else:  # killed while it imports
            time.sleep(0.3)
        pid = workspace.registry.get_run(run_id).worker_pid
        with contextlib.suppress(ProcessLookupError, TypeError):  # it may have finished already
            os.killpg(pid, signal.SIGKILL)
        progress = wait_for(workspace, run_id)
        outcomes.append(progress.run.state)
        assert progress.run.state in (RunState.FAILED, RunState.SUCCEEDED)
        assert (progress.model_id is not None) == (progress.run.state is RunState.SUCCEEDED)
        assert not Path(progress.run.job_dir).exists()
        observed.case()
    for version in workspace.registry.list_model_versions():
        assert load_bundle(workspace.registry, version.model_id).predict(
            workspace.warehouse.read_columns(table, version.feature_names, limit=5)).shape == (5,)
    assert outcomes == [RunState.FAILED, RunState.FAILED]  # both kills really did interrupt training


def _hold(path: Path) -> subprocess.Popen[str]:
    """Another program holding the DuckDB file open (as a second app or a notebook would)."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"con = duckdb.connect({str(path)!r})\nprint('holding', flush=True)\ntime.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_warehouse_file_held_by_another_program_is_said_plainly_when_the_app_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, observed: Observed) -> None:
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "held.duckdb"
    make_workspace(path, seed_demo=False).close()
    monkeypatch.setenv("FLURRY_WAREHOUSE", f"duckdb:///{path}")
    holder = _hold(path)
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.run()
        shown = " ".join(e.value for e in at.error).replace("\\", "")  # as drawn: Markdown escapes undone
        observed.tracebacks(int(bool(at.exception)) + shown.count("Traceback"))
        assert not at.exception, at.exception
        assert f"{path.name} is in use by another program" in shown and "Close the other" in shown
    finally:
        holder.kill()
        holder.wait()


def test_a_batch_score_killed_midway_leaves_the_previous_scores_intact(tmp_path: Path, observed: Observed) -> None:
    """The command-line scorer replacing last week's scores, killed at random moments: each time the old scores
    are all there, no staging table is left, and the score is not left RUNNING once the warehouse reopens."""
    path = tmp_path / "scores.duckdb"
    ws = make_workspace(path, seed_demo=False)
    rng = np.random.default_rng(2)
    many = 2_000_000  # ~6 s to score here, after the scorer's 1.5 s of imports: kills land midway
    frame = pd.DataFrame({"tenure": rng.normal(size=many), "spend": rng.gamma(2.0, 30.0, many)})
    frame["churned"] = np.where(frame["tenure"] + rng.normal(0, 1, many) > 0, "yes", "no")
    small = put_table(ws, "customers", frame.head(2000))
    source = put_table(ws, "customers_all", frame.drop(columns="churned"))
    progress = train_and_wait(ws, small, "churned", budget=2)
    deploy(ws.warehouse, ws.registry, progress.model_id, "churn")
    output = TableRef("lab", "weekly_scores")
    when = score_table(ws.warehouse, ws.registry, "churn", small, output).scored_at_column
    assert when is not None
    kept = ws.warehouse.query(f"SELECT * FROM {ws.warehouse.qualify(output)} ORDER BY ALL")
    ws.close()

    env = {**os.environ, "FLURRY_WAREHOUSE": f"duckdb:///{path}", "PYTHONPATH": str(ROOT)}
    chance = random.Random(7)
    midway = 0
    for _ in range(3):
        scorer = subprocess.Popen([sys.executable, "-m", "backend.score", "--function", "churn", "--source",
                                   str(source), "--output", str(output), "--replace"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(chance.uniform(1.0, 5.0))  # during its imports, opening, planning or scoring
        finished = scorer.poll() is not None
        scorer.send_signal(signal.SIGKILL)
        scorer.wait()
        midway += not finished
        reopened = make_workspace(path, seed_demo=False)
        try:
            now = reopened.warehouse.query(f"SELECT * FROM {reopened.warehouse.qualify(output)} ORDER BY ALL")
            # it beat the kill (perhaps in the moment between poll and kill): the new scores replaced the old whole
            if finished or (len(now) == many and now[when].nunique() == 1 and now[when].iloc[0] != kept[when].iloc[0]):
                assert len(now) == many and now[when].nunique() == 1
                kept = now
                continue
            observed.rows_lost(len(kept) - len(now))
            pd.testing.assert_frame_equal(now, kept)
            assert reopened.warehouse.list_tables("lab") == ["customers", "customers_all", "weekly_scores"]
            assert reopened.scoring is not None
            assert all(r.state is not ScoringState.RUNNING for r in reopened.scoring.recent(20))
        finally:
            reopened.close()
    assert midway >= 2  # the kills really did land while it worked




@contextlib.contextmanager
def _abort_timers_quiet() -> Iterator[None]:
    """A query to a server that has gone arms the connector's abort timer, which then fails at the closed port in
    its own thread: expected here, so those threads' errors are kept off the console (any other thread's are not)."""
    import threading

    from snowflake.connector._utils import _TrackedQueryCancellationTimer

    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.thread, _TrackedQueryCancellationTimer):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        for thread in threading.enumerate():
            if isinstance(thread, _TrackedQueryCancellationTimer):
                thread.cancel()
        threading.excepthook = previous


def test_a_snowflake_connection_that_drops_is_made_again_once_then_said_plainly(observed: Observed) -> None:
    """The service the session talks to goes away: the next statement opens a new session once (here, to where
    the service is now) and goes on; when it is gone for good, the page gets a plain sentence, not a traceback."""
    import atexit

    from backend.errors import WarehouseQueryError
    from backend.warehouse.snowflake_session import open_session
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    if FAKESNOW_SERVER is None:
        pytest.skip("fakesnow is not installed")
    where: dict[str, Any] = {}

    def connect() -> Any:
        session = open_session("unused", secrets=dict(where["server"], database="RECONNECT", schema="PUBLIC",
                                                      login_timeout=3))
        atexit.unregister(session._close_at_exit)  # closed with its server, not at exit against a closed port
        atexit.unregister(session._conn._conn._close_at_exit)
        return session

    with _abort_timers_quiet():
        with FAKESNOW_SERVER() as first:
            where["server"] = first
            warehouse = SnowflakeWarehouse(connect(), "RECONNECT", reopen=connect)
            assert int(warehouse.query("SELECT 1 AS n")["N"].iloc[0]) == 1
        with FAKESNOW_SERVER() as second:  # the first is gone; the service answers elsewhere now
            where["server"] = second
            assert int(warehouse.query("SELECT 2 AS n")["N"].iloc[0]) == 2  # one new session, the same call
        with pytest.raises(WarehouseQueryError) as lost:  # gone for good: one attempt, then a plain sentence
            warehouse.query("SELECT 3 AS n")
    observed.tracebacks(str(lost.value).count("Traceback"))
    assert "connection to Snowflake was lost and could not be made again" in lost.value.message
    assert lost.value.hint.startswith("Check the network")


def test_a_second_workspace_on_the_same_file_leaves_a_write_in_progress_alone(tmp_path: Path,
                                                                              observed: Observed) -> None:
    """Opening the warehouse drops staging tables a killed writer left behind, but not one this process is
    still writing (a second workspace on the same file: another allow-list, or a cleared cache)."""
    import pyarrow as pa

    path = tmp_path / "two.duckdb"
    first = make_workspace(path, seed_demo=False)
    opened: list[Workspace] = []

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"n": list(range(100))})
        opened.append(make_workspace(path, seed_demo=False))
        yield pa.record_batch({"n": list(range(100, 200))})

    table = TableRef("lab", "counts")
    first.warehouse.ensure_schema("lab")
    try:
        written = first.warehouse.replace_table_from_batches(table, batches())
        observed.rows_lost(200 - first.warehouse.row_count(table))
        assert written == 200 and first.warehouse.row_count(table) == 200 and len(opened) == 1
        assert first.warehouse.list_tables("lab") == ["counts"]
    finally:
        for ws in (first, *opened):
            ws.close()
