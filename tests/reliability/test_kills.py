"""Faults, many times over: the training worker, the app collecting what a worker left, and the app running a
scheduled score, each SIGKILLed at random moments. After every kill the warehouse is reopened as the app
would be and held to the same promises: no run or score left running, every finished model collected once
and verified, version numbers unique and unbroken, no temporary file or job directory left behind, and the
previous output whole.

The processes are forked from a server that has already imported Flurry (multiprocessing's forkserver), so a
kill costs the work it interrupts rather than a second of imports each. `make test` kills
FLURRY_KILLS (default 12) times; `make reliability` 30 times.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend.deploy import deploy, score_table
from backend.deployed_model import load_bundle
from backend.model_catalog import Catalog
from backend.registry import Registry, Run, RunState
from backend.scoring_jobs import OutputMode, ScoringState
from backend.task_detection import Task
from backend.training import job_files as jf
from backend.training.config import TrainConfig
from backend.training.jobs import WAITING_FOR_ROOM
from backend.training.local_runner import LocalWorkerRunner
from backend.training.worker import run_job
from backend.warehouse.base import TableRef
from backend.warehouse.duckdb_warehouse import DuckDBWarehouse
from backend.workspace import Workspace
from tests.conftest import make_workspace, put_table, wait_for
from tests.reliability.conftest import Observed

KILLS = max(3, int(os.environ.get("FLURRY_KILLS", "12")))
WORKER_KILLS, COLLECTOR_KILLS = KILLS // 2, KILLS * 3 // 10
SCHEDULE_KILLS = KILLS - WORKER_KILLS - COLLECTOR_KILLS
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["backend.workspace", "backend.training.worker", "backend.training.dispatch",
                              "backend.deploy", "flaml", "lightgbm", "sklearn.ensemble"])
TABLE = TableRef("demo", "penguins")
FUNCTION = "penguin_species"


def _work(job_dir: str, scratch: str, file_limit: int | None) -> None:
    """The worker's job, in a forked process whose temporary files go to `scratch` (checked empty after) and
    whose output goes to the job's log, as the app's worker does. With `file_limit`, no file it writes may grow
    past that many bytes: a write beyond fails (EFBIG) as one on a full disk does (ENOSPC)."""
    import resource
    import signal
    from multiprocessing import resource_tracker

    if file_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the failing write raises instead of ending the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    log = os.open(Path(job_dir) / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    # A tracker of its own, as a worker the app starts has: the semaphores its libraries open, which a SIGKILL
    # leaves, are then reported in the job's log, not at the end of the test run by the tracker it was forked with.
    resource_tracker._resource_tracker = resource_tracker.ResourceTracker()
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    run_job(Path(job_dir))


class ForkedWorkerRunner(LocalWorkerRunner):
    """The local runner with each worker forked, already imported, instead of started as `python -m`. Everything
    else (preparing the job, reading its outcome, collecting and releasing it) is the app's own."""

    def __init__(self, ws: Workspace, scratch: Path, *, file_limit: int | None = None) -> None:
        super().__init__(ws.warehouse, ws.registry, ws.jobs.jobs_root)
        self.scratch, self.file_limit = scratch, file_limit
        self.children: dict[str, tuple[BaseProcess, float]] = {}

    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        child = FORKS.Process(target=_work, args=(run.job_dir, str(self.scratch), self.file_limit))
        child.start()
        self.children[run.run_id] = (child, time.time())
        return child.pid

    def working(self, run: Run) -> bool:
        child = self.children.get(run.run_id)
        return child is not None and child[0].is_alive()

    def release(self, run: Run) -> None:
        child = self.children.pop(run.run_id, None)
        if child is not None:
            child[0].join(10)
        shutil.rmtree(run.job_dir, ignore_errors=True)


class ReplayRunner(LocalWorkerRunner):
    """A worker that had already finished when the app came to collect it: its job directory holds what a real
    worker left (copied from one), so many collections can be interrupted without training each time."""

    def __init__(self, ws: Workspace, finished: Path) -> None:
        super().__init__(ws.warehouse, ws.registry, ws.jobs.jobs_root)
        self.finished = finished

    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        for name in (jf.FLAML_LOG, jf.STATUS, jf.BUNDLE, jf.HOLDOUT, jf.RESULT):
            shutil.copy(self.finished / name, Path(run.job_dir) / name)
        return None


@dataclass(frozen=True)
class Trained:
    """A warehouse file with one collected, deployed model, the job directory its worker left, and when (seconds
    after the worker was started) that worker finished."""

    db: Path
    finished_job: Path
    config: TrainConfig
    done_s: float


def _config(ws: Workspace) -> TrainConfig:
    return ws.train_config(TABLE, "species", Task.MULTICLASS, ["island", "bill_length_mm", "flipper_length_mm"],
                           # 3 s: the whole run, report included, keeps to its budget, so at 2 s the search
                           # itself is too short for random kills to land in it often
                           "log_loss", 3, ensemble=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    base = tmp_path_factory.mktemp("kills")
    db = base / "trained.duckdb"
    ws = make_workspace(db)
    runner = ForkedWorkerRunner(ws, base)
    ws.jobs.runner = runner
    config = _config(ws)
    run_id = ws.jobs.start(config)
    child, started = runner.children[run_id]
    child.join(120)
    job_dir = Path(ws.registry.get_run(run_id).job_dir)
    finished_job = base / "finished-job"
    shutil.copytree(job_dir, finished_job)
    done = jf.read_complete_lines(job_dir / jf.STATUS)[-1]["at"]
    progress = wait_for(ws, run_id)
    assert progress.model_id is not None, progress.run.message
    deploy(ws.warehouse, ws.registry, progress.model_id, FUNCTION)
    ws.close()
    yield Trained(db, finished_job, config, done - started)


def _copy(trained: Trained, tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    shutil.copy(trained.db, db)
    return db


ARTIFACT_FILES = (jf.BUNDLE + ".tmp", jf.HOLDOUT + ".tmp", jf.RESULT + ".tmp", jf.RESULT)


def _wait_for_file(child: BaseProcess, path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.0002)


def _where_it_stopped(job_dir: Path) -> str:
    """Which part of its work a killed worker was in, from what it left."""
    statuses = [s.get("state") for s in jf.read_complete_lines(job_dir / jf.STATUS)]
    if "SUCCEEDED" in statuses:
        return "after finishing"
    if any((job_dir / name).exists() for name in (jf.BUNDLE, jf.BUNDLE + ".tmp", jf.HOLDOUT + ".tmp")):
        return "writing artifacts"
    if jf.read_complete_lines(job_dir / jf.FLAML_LOG):
        return "fitting"
    return "starting"


def _assert_registry_whole(ws: Workspace, runs_started: int) -> None:
    """No run left active; each succeeded run has one verified version and no other run has any; the versions
    are numbered 1..n with no number twice; no job directory is left behind."""
    runs = ws.registry.list_runs()
    assert len(runs) == runs_started
    assert not [r for r in runs if not r.state.is_final], [(r.run_id, r.state) for r in runs]
    versions = ws.registry.list_model_versions()
    by_run = Counter(v.run_id for v in versions)
    succeeded = {r.run_id for r in runs if r.state is RunState.SUCCEEDED}
    assert set(by_run) == succeeded and set(by_run.values()) <= {1}
    frame = ws.warehouse.read_columns(TABLE, ["island", "bill_length_mm", "flipper_length_mm"], limit=3)
    for version in versions:
        assert load_bundle(ws.registry, version.model_id).predict(frame).shape == (3,)
    catalog = Catalog(ws.registry)
    (model,) = catalog.models()
    numbers = sorted(v.number for v in catalog.versions(model.key))
    assert numbers == list(range(1, len(versions) + 1))
    left = list(ws.jobs.jobs_root.iterdir()) if ws.jobs.jobs_root.exists() else []
    assert not left, f"job directories left behind: {left}"


def test_the_worker_killed_while_fitting_or_writing_its_model(trained: Trained, tmp_path: Path,
                                                              observed: Observed) -> None:
    """Half the kills land at a random moment of the worker's life; the other half the moment one of its files
    starts to appear (the model, the holdout rows, the results: a window of milliseconds no clock would hit)."""
    ws = make_workspace(_copy(trained, tmp_path), seed_demo=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    runner = ForkedWorkerRunner(ws, scratch)
    ws.jobs.runner = runner
    chance = random.Random(20261202)
    stopped: Counter[str] = Counter()
    try:
        for i in range(WORKER_KILLS):
            run_id = ws.jobs.start(trained.config)
            child, started = runner.children[run_id]
            job_dir = Path(ws.registry.get_run(run_id).job_dir)
            if i % 2:
                time.sleep(max(0.0, started + chance.uniform(0.0, trained.done_s) - time.time()))
            else:
                _wait_for_file(child, job_dir / chance.choice(ARTIFACT_FILES))
            child.kill()
            child.join(10)
            stopped[_where_it_stopped(job_dir)] += 1
            progress = wait_for(ws, run_id)
            assert progress.run.state in (RunState.FAILED, RunState.SUCCEEDED)
            assert not list(scratch.iterdir()), "the killed worker left temporary files"
            observed.case()
        _assert_registry_whole(ws, runs_started=1 + WORKER_KILLS)
    finally:
        ws.close()
    print(f"worker kills by where they landed: {dict(stopped)}")
    assert stopped["fitting"] >= 1 and stopped["writing artifacts"] >= 1, stopped


def _open_and_collect(db: str) -> None:
    """The app starting again: opening the warehouse collects the runs that finished while it was away."""
    make_workspace(Path(db), seed_demo=False).close()


def _runs_left_running(db: Path) -> int:
    """Read straight from the file, before the app's start-up would collect the rest."""
    raw = DuckDBWarehouse(db)
    try:
        return len(Registry(raw).list_runs(states=[RunState.RUNNING]))
    finally:
        raw.close()


def test_the_app_killed_while_recording_finished_runs(trained: Trained, tmp_path: Path, observed: Observed) -> None:
    """Three finished runs wait to be collected; the app that opens to collect them is killed at a random moment,
    then opened again: every run is collected exactly once, whatever the moment was."""
    db = _copy(trained, tmp_path)
    chance = random.Random(7)
    runs_started, midway, lifetime = 1, 0, None
    for i in range(COLLECTOR_KILLS + 1):
        ws = make_workspace(db, seed_demo=False)
        ws.jobs.runner = ReplayRunner(ws, trained.finished_job)
        ws.jobs.max_concurrent = 3  # all three finished, none waiting in the queue
        for _ in range(3):
            ws.jobs.start(trained.config)
        runs_started += 3
        ws.close()
        app = FORKS.Process(target=_open_and_collect, args=(str(db),))
        begun = time.monotonic()
        app.start()
        if i == 0:  # the first, left alone, says how long collecting takes
            app.join(60)
            lifetime = time.monotonic() - begun
            assert app.exitcode == 0
        else:
            assert lifetime is not None
            time.sleep(chance.uniform(0.1, 1.0) * lifetime)
            app.kill()
            app.join(10)
            left = _runs_left_running(db)
            midway += 0 < left < 3
            observed.case()
        ws = make_workspace(db, seed_demo=False)
        try:
            _assert_registry_whole(ws, runs_started)
            succeeded = [r for r in ws.registry.list_runs() if r.state is RunState.SUCCEEDED]
            observed.rows_lost(runs_started - len(succeeded))  # a finished model not kept is lost work
            assert len(succeeded) == runs_started
        finally:
            ws.close()
    print(f"collections killed part-way: {midway} of {COLLECTOR_KILLS}")


def _app_with_its_supervisor(db: str, scoring: EventType) -> None:
    """The app left open: its supervisor fires the schedule that is due and scores the table, setting `scoring`
    as the scoring itself begins (so a kill can be aimed at it)."""
    import backend.scoring_jobs as scoring_jobs
    from backend.config import WarehouseConfig
    from backend.workspace import open_workspace

    real = scoring_jobs.score_table

    def announced(*args: Any, **kwargs: Any) -> Any:
        scoring.set()
        return real(*args, **kwargs)

    scoring_jobs.score_table = announced  # the real scoring, which says when it starts
    open_workspace(WarehouseConfig("duckdb", db), seed_demo=False, supervise=True)
    time.sleep(120)


def test_the_app_killed_while_a_scheduled_score_runs(trained: Trained, tmp_path: Path, observed: Observed) -> None:
    """A schedule replaces a table of scores; the app running it is killed at random moments: the table is
    always the old scores or the new ones whole, never part of either, and nothing is left running."""
    db = _copy(trained, tmp_path)
    ws = make_workspace(db, seed_demo=False)
    rng = np.random.default_rng(5)
    many = 250_000
    source = put_table(ws, "penguins_many", pd.DataFrame({
        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], many), "bill_length_mm": rng.normal(44, 5, many),
        "flipper_length_mm": rng.normal(200, 14, many)}))
    output = TableRef("lab", "species_scores")
    score_table(ws.warehouse, ws.registry, FUNCTION, TableRef("demo", "penguins"), output)
    kept = ws.warehouse.query(f"SELECT * FROM {ws.warehouse.qualify(output)} ORDER BY ALL")
    schedule = ws.schedules.create(FUNCTION, source, output, OutputMode.REPLACE, every_seconds=1)
    tables = ws.warehouse.list_tables("lab")
    ws.close()
    chance = random.Random(11)
    midway = 0
    for kill in range(SCHEDULE_KILLS):
        time.sleep(1.0)  # the schedule is due again
        scoring = FORKS.Event()
        app = FORKS.Process(target=_app_with_its_supervisor, args=(str(db), scoring))
        app.start()
        if kill % 2:  # half of the kills aimed at the scoring (a slow start must not make them all miss it)
            assert scoring.wait(60), "the schedule never started scoring"
            time.sleep(chance.uniform(0.0, 0.2))
        else:
            time.sleep(chance.uniform(0.3, 2.0))
        app.kill()
        app.join(10)
        ws = make_workspace(db, seed_demo=False)
        try:
            assert ws.scoring is not None
            runs = ws.scoring.recent(50, schedule_id=schedule.schedule_id)
            assert all(r.state is not ScoringState.RUNNING for r in runs)
            midway += any(r.state is ScoringState.FAILED for r in runs)
            now = ws.warehouse.query(f"SELECT * FROM {ws.warehouse.qualify(output)} ORDER BY ALL")
            if len(now) != many:
                observed.rows_lost(len(kept) - len(now))
                pd.testing.assert_frame_equal(now, kept)
            assert ws.warehouse.list_tables("lab") == tables
            assert ws.schedules.get(schedule.schedule_id).enabled
            observed.case()
        finally:
            ws.close()
    assert midway >= 1  # at least one kill landed while it scored


def test_a_disk_that_fills_while_the_model_is_written(trained: Trained, tmp_path: Path, observed: Observed) -> None:
    """The worker's disk has room for its log but not for its model: the run fails saying so and what to do, no
    half-written file is left, nothing is recorded, and the models made before still load."""
    model_bytes = (trained.finished_job / jf.BUNDLE).stat().st_size
    log_bytes = max((trained.finished_job / name).stat().st_size for name in (jf.FLAML_LOG, jf.STATUS))
    assert log_bytes * 4 < model_bytes // 2  # room enough to train, not to save
    ws = make_workspace(_copy(trained, tmp_path), seed_demo=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    runner = ForkedWorkerRunner(ws, scratch, file_limit=model_bytes // 2)
    ws.jobs.runner = runner
    try:
        before = ws.registry.list_model_versions()
        run_id = ws.jobs.start(trained.config)
        child, _ = runner.children[run_id]
        child.join(120)
        job_dir = Path(ws.registry.get_run(run_id).job_dir)
        assert not list(job_dir.glob("*.tmp")) and not (job_dir / jf.BUNDLE).exists()
        progress = wait_for(ws, run_id)
        observed.tracebacks(progress.run.message.count("Traceback"))
        assert progress.run.state is RunState.FAILED
        assert "no room left on the disk to write the training's results" in progress.run.message
        assert "Free some space on that disk" in progress.run.message
        assert progress.model_id is None and not job_dir.exists()
        assert ws.registry.list_model_versions() == before
        _assert_registry_whole(ws, runs_started=2)
    finally:
        ws.close()


def _open_and_collect_on_a_full_disk(db: str, file_limit: int) -> None:
    """The app starting on a disk with room for small writes only: it must open all the same."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    make_workspace(Path(db), seed_demo=False).close()


def test_a_disk_that_fills_while_the_registry_records_a_finished_run(trained: Trained, tmp_path: Path,
                                                                     observed: Observed) -> None:
    """A run finished while the app was away; the app opens on a disk with no room for the model: the warehouse
    keeps none of the version (not its artifacts, not its number), the app opens anyway and the run waits, and
    once there is room it is collected, exactly once."""
    db = _copy(trained, tmp_path)
    ws = make_workspace(db, seed_demo=False)
    ws.jobs.runner = ReplayRunner(ws, trained.finished_job)
    run_id = ws.jobs.start(trained.config)
    versions = len(ws.registry.list_model_versions())
    ws.close()
    model_bytes = (trained.finished_job / jf.BUNDLE).stat().st_size
    app = FORKS.Process(target=_open_and_collect_on_a_full_disk, args=(str(db), model_bytes // 2))
    app.start()
    app.join(120)
    assert app.exitcode == 0  # no traceback at start-up: the run is left to wait
    assert _runs_left_running(db) == 1
    raw = DuckDBWarehouse(db)
    try:
        registry = Registry(raw)
        assert registry.get_run(run_id).message in ("", WAITING_FOR_ROOM)  # said, where even that found room
        assert len(registry.list_model_versions()) == versions
        stored = raw.query(f"SELECT count(DISTINCT model_id) AS n FROM {registry.t('artifacts')}")["n"].iloc[0]
        assert stored == versions  # no artifact of a version that was not kept
    finally:
        raw.close()
    ws = make_workspace(db, seed_demo=False)  # room again: the next start collects it
    try:
        assert ws.registry.get_run(run_id).state is RunState.SUCCEEDED
        assert len(ws.registry.list_model_versions()) == versions + 1
        _assert_registry_whole(ws, runs_started=2)
    finally:
        ws.close()

