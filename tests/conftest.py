"""Shared fixtures: real DuckDB files in temporary directories, real FLAML fits on small budgets."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from backend.config import WarehouseConfig
from backend.metrics import default_metric
from backend.registry import RunState
from backend.training.jobs import RunProgress
from backend.warehouse.base import TableRef
from backend.workspace import Workspace, open_workspace

FAST_BUDGET_S = 2  # the least a run may have (MIN_TIME_BUDGET_S): tests judge behaviour, not model quality


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test does may touch the user's real Flurry data directory."""
    path = tmp_path_factory.mktemp("flurry-data")
    old = os.environ.get("FLURRY_DATA_DIR")
    os.environ["FLURRY_DATA_DIR"] = str(path)
    yield
    if old is None:
        os.environ.pop("FLURRY_DATA_DIR", None)
    else:
        os.environ["FLURRY_DATA_DIR"] = old


@pytest.fixture(autouse=True)
def _no_supervisor_outlives_its_test() -> Iterator[None]:
    """The app caches each warehouse's workspace for the process; once a test is over, its supervisor would tick
    on (and slow every later test) for nothing."""
    yield
    from backend.supervisor import stop_all

    stop_all()


@pytest.fixture
def warehouse_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app's warehouse (FLURRY_WAREHOUSE) as a fresh DuckDB file, for AppTest and browser suites."""
    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("FLURRY_WAREHOUSE", f"duckdb:///{path}")
    yield path


def make_workspace(path: Path, *, seed_demo: bool = True) -> Workspace:
    return open_workspace(WarehouseConfig("duckdb", str(path)), seed_demo=seed_demo)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = make_workspace(tmp_path / "w.duckdb")
    yield ws
    ws.close()


@pytest.fixture
def empty_workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = make_workspace(tmp_path / "e.duckdb", seed_demo=False)
    ws.warehouse.ensure_schema("lab")
    yield ws
    ws.close()


def put_table(ws: Workspace, name: str, frame: pd.DataFrame, schema: str = "lab") -> TableRef:
    ref = TableRef(schema, name)
    ws.warehouse.ensure_schema(schema)
    ws.warehouse.write_table(ref, frame)
    return ref


def wait_for(ws: Workspace, run_id: str, timeout: float = 120.0) -> RunProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = ws.jobs.progress(run_id)
        if progress.run.state.is_final:
            return progress
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def train_and_wait(ws: Workspace, table: TableRef, target: str, *, budget: int = FAST_BUDGET_S,
                   features: list[str] | None = None) -> RunProgress:
    summary, choices = ws.target_summary(table, target)
    chosen = features if features is not None else [c.name for c in choices if c.include]
    config = ws.train_config(table, target, summary.detected_task, chosen, default_metric(summary.detected_task),
                             budget)
    progress = wait_for(ws, ws.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    return progress


def _fakesnow_server_function() -> Callable[..., Any] | None:
    """fakesnow's server(): calling it rebinds `fakesnow.server` to its submodule, so the function is taken
    here, when conftest loads, for every fixture and test that starts a server."""
    try:
        import fakesnow
    except ImportError:
        return None
    return fakesnow.server if callable(fakesnow.server) else None


FAKESNOW_SERVER = _fakesnow_server_function()


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict]:
    """Connection parameters of a fakesnow server: Snowflake's wire protocol and SQL, run by DuckDB."""
    import logging
    import warnings

    if FAKESNOW_SERVER is None:
        pytest.skip("fakesnow is not installed")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FAKESNOW_SERVER() as kwargs:
            yield kwargs
            _forget_sessions_before_the_server_stops()


def _forget_sessions_before_the_server_stops() -> None:
    """Snowpark sessions and connector connections close themselves at exit, after the server has stopped:
    each closing query fails, and the timer the connector arms per query (fakesnow asks for a 1 s network
    timeout) then fires at the closed port and prints a thread's traceback. With the server gone there is
    nothing to close against, so their exit handlers are dropped, and any timer still armed cancelled."""
    import atexit
    import gc
    import threading

    from snowflake.connector._utils import _TrackedQueryCancellationTimer
    from snowflake.connector.connection import SnowflakeConnection
    from snowflake.snowpark import Session

    # by exact type: gc also holds lazy-module stand-ins (shap's) that raise on isinstance
    for held in gc.get_objects():
        if type(held) in (Session, SnowflakeConnection):
            atexit.unregister(held._close_at_exit)
    for thread in threading.enumerate():
        if isinstance(thread, _TrackedQueryCancellationTimer):
            thread.cancel()
