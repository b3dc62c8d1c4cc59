"""Training jobs: one state machine for every place a run can train, and the interface to those places.

A run is QUEUED, then RUNNING when a slot is free, then SUCCEEDED / FAILED / CANCELLED / INTERRUPTED. The
JobManager owns those moves, the queue, cancelling and recovery at start-up; a Runner does the part that
differs — prepare the run's data, launch the work, report what it left, stop it, release what it held:
`LocalWorkerRunner` (a worker process beside the app, backend.training.local_runner) and `ProcedureRunner`
(Flurry's stored procedure on Snowflake's compute, backend.procedure_jobs).
`sync` is idempotent and safe to call from several threads (UI fragments of many sessions).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.errors import ArtifactIntegrityError, FlurryError, RunAlreadyEndedError, no_room, storage_full
from backend.evaluation.report import HoldoutReport
from backend.metrics import METRICS
from backend.model_catalog import Catalog
from backend.monitoring import MonitoringBaseline
from backend.registry import ModelVersion, Registry, Run, RunState, new_id, now, sha256_bytes
from backend.training import job_files as jf
from backend.training.config import TrainConfig
from backend.training.fit import feature_specs
from backend.training.local_runner import LocalWorkerRunner
from backend.training.runner import LEFT_OUT_EVENT, TRACEBACK_EVENT, Ending, Outcome, Runner
from backend.version_records import VersionMetrics, leaderboard_from_dicts
from backend.warehouse.base import LeftOut, Warehouse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialEvent:
    trial: int
    estimator: str
    score: float
    best_score: float
    elapsed: float
    config: dict[str, Any] | None = None  # the trial's hyperparameters (runs recorded before had none)
    loss: float | None = None  # FLAML's validation loss, as logged


@dataclass(frozen=True)
class RunProgress:
    run: Run
    trials: list[TrialEvent]
    model_id: str | None
    started_at: datetime | None = None
    left_out: LeftOut | None = None  # why rows of the table were not learned from (None: none were, or not known)
    failure_details: str | None = None  # a failed run's traceback, where its work recorded one

    @property
    def elapsed(self) -> float:
        """Seconds since the worker started (wall clock while running; the last trial's time once over)."""
        if self.run.state is RunState.RUNNING and self.started_at is not None:
            return max(0.0, (now() - self.started_at).total_seconds())
        return self.trials[-1].elapsed if self.trials else 0.0

    @property
    def wall_seconds(self) -> float:
        """Seconds from Start to now, or to the run's end (its model version recorded): what the user waited."""
        end = self.run.updated_at if self.run.state.is_final else now()
        return max(0.0, (end - self.run.created_at).total_seconds())

    @property
    def best_score(self) -> float | None:
        return self.trials[-1].best_score if self.trials else None

    @property
    def current_estimator(self) -> str | None:
        return self.trials[-1].estimator if self.trials else None

    def best_per_estimator(self) -> dict[str, float]:
        metric = METRICS[self.run.metric]
        best: dict[str, float] = {}
        for t in self.trials:
            old = best.get(t.estimator)
            if old is None or (t.score > old if metric.greater_is_better else t.score < old):
                best[t.estimator] = t.score
        return best


ROOM_RETRY_S = 30.0  # how soon a model that found no room on the disk is tried again
WAITING_FOR_ROOM = ("Training finished, but there is no room left on the disk to save the model. Free some space "
                    "on the warehouse's disk: the model is saved as soon as there is room.")
STOPPED_EARLY_NOTE = "Stopped early by the user; this is the best model found before that."
STOPPING_NOTE = "Stopping: the search ends at its next step and the best model found so far is kept."


def verified_model_files(files: dict[str, bytes], result: dict[str, Any], where: str) -> dict[str, bytes]:
    """`files` (the bundle and holdout a run produced), once each matches the sha256 its result reported.
    Raises ArtifactIntegrityError naming `where` the damaged file was found, KeyError for a result without one."""
    for name, content in files.items():
        if sha256_bytes(content) != result["sha256"][name]:
            raise ArtifactIntegrityError(f"The trained model file {name}{where} is damaged.")
    return files


def record_model_version(registry: Registry, run_id: str, config: TrainConfig, result: dict[str, Any],
                         bundle: bytes, holdout: bytes, *, stopped_early: bool = False,
                         ended: datetime | None = None) -> str:
    """Write the verified model version of a finished run and mark the run SUCCEEDED, in one transaction;
    returns the model id. `ended` is when the worker finished (the run's duration ends there, not whenever it was
    collected). Where the run was trained does not matter: the app does this for a local worker, the
    Snowflake training procedure for itself (so a run is usable with no app session open)."""
    version = ModelVersion(
        model_id=new_id("m"), run_id=run_id, created_at=now(),
        name=f"{config.target} from {config.table.name}", table=config.table, target=config.target,
        task=config.task, metric=config.metric, best_estimator=result["best_estimator"],
        features=feature_specs(config), metrics=_metrics_of(result),
        leaderboard=leaderboard_from_dicts(result["leaderboard"]), importance=result["importance"],
        versions=result["versions"],
        sha256=result["sha256"][jf.BUNDLE],
        report=HoldoutReport.from_dict(result["report"]) if result.get("report") else None,
        baseline=MonitoringBaseline.from_dict(result["baseline"]) if result.get("baseline") else None)
    with registry.wh.transaction():
        registry.add_model_version(version, {"bundle": bundle, "holdout": holdout})
        if not registry.set_run_state(run_id, RunState.SUCCEEDED, message=STOPPED_EARLY_NOTE if stopped_early
                                      else "", at=ended):  # rolls the version back with it
            raise RunAlreadyEndedError(f"The run {run_id} had already ended; its late model was not kept.")
    # numbered after the commit, under the catalog's lock, so two versions collected at once cannot read the
    # same highest number; a version left unnumbered by a crash here is numbered on the next read
    Catalog(registry).assign(version)
    return version.model_id


def _metrics_of(result: dict[str, Any]) -> VersionMetrics:
    metrics = VersionMetrics.from_dict(result["metrics"])
    if metrics.train_rows is None and "train_rows" in result:  # a run an earlier Flurry finished: rows beside
        metrics = replace(metrics, train_rows=int(result["train_rows"]), holdout_rows=int(result["holdout_rows"]),
                          forecast_report=result.get("forecast"))
    return metrics


class JobManager:
    """Queues runs, starts them on its runner when a slot is free, and folds their outcome into the registry."""

    def __init__(self, warehouse: Warehouse, registry: Registry, jobs_root: Path, *, max_concurrent: int = 1,
                 runner: Runner | None = None) -> None:
        self.wh = warehouse
        self.registry = registry
        self.jobs_root = jobs_root
        self.max_concurrent = max(1, max_concurrent)
        self.runner: Runner = runner if runner is not None else LocalWorkerRunner(warehouse, registry, jobs_root)
        self._lock = threading.RLock()
        self._room_retry_at: dict[str, float] = {}  # finished runs whose model found no room: when to try again
        # Set while a Supervisor advances the jobs: reading progress then only reads.
        self.supervised = False

    # --- start -----------------------------------------------------------------------------------
    def start(self, config: TrainConfig) -> str:
        """Validate, prepare the run's data, queue the run and launch it when a slot is free; return the run id.

        Raises FlurryError subclasses for bad options or a vanished table (no run is left half-made:
        a run that cannot be prepared is marked FAILED with the reason)."""
        config.validate()
        self.wh.describe(config.table)  # raises TableNotFoundError before anything is written
        location = self.runner.location()
        run_id = self.registry.create_run(
            table=config.table, target=config.target, task=config.task.value, metric=config.metric,
            time_budget=config.time_budget_s, config=config.to_dict(), job_dir=location)
        try:
            self.runner.prepare(run_id, config, location)
        except FlurryError as exc:
            self.registry.set_run_state(run_id, RunState.FAILED, message=str(exc))
            self.runner.discard(location)
            raise
        except Exception as exc:
            full = storage_full("the training data", location) if no_room(exc) else None
            self.registry.set_run_state(run_id, RunState.FAILED,
                                        message=str(full) if full else f"Could not start training: {exc}")
            self.runner.discard(location)
            if full:
                raise full from exc
            raise
        self._launch_queued()
        return run_id

    # --- queue -----------------------------------------------------------------------------------
    def queued(self) -> list[Run]:
        """Queued runs, first in line first."""
        return sorted(self.registry.list_runs(states=[RunState.QUEUED]), key=lambda r: r.created_at)

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start, None when the run is not waiting."""
        ids = [r.run_id for r in self.queued()]
        return ids.index(run_id) + 1 if run_id in ids else None

    def _launch_queued(self) -> None:
        with self._lock:
            running = len(self.registry.list_runs(states=[RunState.RUNNING]))
            # a run still being prepared (its sample drawn in another thread) waits: its start() launches it
            prepared = [run for run in self.queued() if self.runner.ready(run)]
            for run in prepared[: max(0, self.max_concurrent - running)]:
                self._launch(run)

    def _launch(self, run: Run, *, finalize: bool = False) -> None:
        try:
            pid = self.runner.launch(run, finalize=finalize)
        except FlurryError as exc:
            self._finish(run, RunState.FAILED, exc.message)
            return
        self.registry.set_run_state(run.run_id, RunState.RUNNING, worker_pid=pid)

    # --- observe ---------------------------------------------------------------------------------
    def progress(self, run_id: str) -> RunProgress:
        """The run's state and trials (synced first unless a supervisor does that)."""
        if not self.supervised:
            self.sync(run_id)
        run = self.registry.get_run(run_id)
        trials = [TrialEvent(**e.payload) for e in self.registry.events(run_id, "trial")]
        version = self.registry.model_for_run(run_id)
        started = next((e.at for e in self.registry.events(run_id, "state") if e.payload.get("state") == "RUNNING"),
                       None)
        left_out = next((LeftOut.from_dict(e.payload) for e in self.registry.events(run_id, LEFT_OUT_EVENT)), None)
        details = (next((str(e.payload.get("traceback")) for e in self.registry.events(run_id, TRACEBACK_EVENT)), None)
                   if run.state is RunState.FAILED else None)
        return RunProgress(run=run, trials=trials, model_id=version.model_id if version else None, started_at=started,
                           left_out=left_out, failure_details=details)

    def active_runs(self) -> list[Run]:
        return self.registry.list_runs(states=[RunState.QUEUED, RunState.RUNNING])

    def sync_all(self) -> None:
        for run in self.active_runs():
            self.sync(run.run_id)

    def advance(self) -> None:
        """What the supervisor does on every tick: fold each active run's news into the registry (collecting a
        finished one), then start queued runs while slots are free."""
        self.sync_all()
        self._launch_queued()

    def sync(self, run_id: str, *, lost: RunState = RunState.FAILED) -> None:
        """Fold the run's news into the registry; work gone without a word ends the run in `lost`."""
        with self._lock:
            run = self.registry.get_run(run_id)
            if run.state.is_final:
                return
            if run.state is RunState.QUEUED:
                self._launch_queued()
                return
            if time.monotonic() < self._room_retry_at.get(run_id, 0.0):
                return  # its model waits for room on the disk; not retried on every tick
            self._record_trials(run)
            outcome = self.runner.outcome(run)
            if outcome is not None:
                self._conclude(run, outcome, lost)

    def _record_trials(self, run: Run) -> None:
        payloads = self.runner.new_trials(run, len(self.registry.events(run.run_id, "trial")))
        if payloads:
            self.registry.add_events(run.run_id, "trial", payloads)

    def _conclude(self, run: Run, outcome: Outcome, lost: RunState) -> None:
        if outcome.ending is Ending.FINISHED:
            self._collect(run, outcome)
        elif outcome.ending is Ending.FAILED:
            self._finish(run, RunState.FAILED, outcome.message or "Training failed.", at=outcome.ended)
        elif outcome.ending is Ending.LOST:
            self._finish(run, lost, outcome.message if lost is RunState.FAILED
                         else "The app stopped while this run was training.", at=outcome.ended)
        else:  # RECORDED: the registry already says how it ended
            self.runner.release(run)
            self._launch_queued()

    def _collect(self, run: Run, outcome: Outcome) -> None:
        try:
            files = verified_model_files(outcome.files, outcome.result, "")
            record_model_version(self.registry, run.run_id, TrainConfig.from_dict(run.config), outcome.result,
                                 files[jf.BUNDLE], files[jf.HOLDOUT], stopped_early=outcome.stopped_early,
                                 ended=outcome.ended)
        except RunAlreadyEndedError:
            logger.info("run %s ended before its model was collected; the model is dropped", run.run_id)
        except (KeyError, ValueError, ArtifactIntegrityError) as exc:
            self._finish(run, RunState.FAILED, f"The trained model could not be collected: {exc}", at=outcome.ended)
            return
        except Exception as exc:
            if not no_room(exc):
                raise
            if self.registry.model_for_run(run.run_id) is None:  # the version rolled back whole
                self._wait_for_room(run, exc)
                return
            # recorded; only its number found no room, and the next read of the catalogue assigns it
        self._room_retry_at.pop(run.run_id, None)
        self.runner.release(run)
        self._launch_queued()  # a slot is free

    def _wait_for_room(self, run: Run, exc: BaseException) -> None:
        """A finished run whose model the warehouse had no room for: the worker's files stay, another try comes
        a little later, and the run says why it is not done yet (if even that small write finds room)."""
        first = run.run_id not in self._room_retry_at
        self._room_retry_at[run.run_id] = time.monotonic() + ROOM_RETRY_S
        if not first:
            return
        logger.warning("run %s finished, but the disk had no room to record its model (%s); it waits, and is "
                       "collected once there is room", run.run_id, exc)
        with contextlib.suppress(Exception):  # the disk may not even have room for this
            self.registry.set_run_state(run.run_id, RunState.RUNNING, message=WAITING_FOR_ROOM)

    def _finish(self, run: Run, state: RunState, message: str, *, at: datetime | None = None) -> None:
        self.registry.set_run_state(run.run_id, state, message=message, at=at)
        self.runner.release(run)
        self._launch_queued()  # a slot is free

    # --- control ---------------------------------------------------------------------------------
    def cancel(self, run_id: str, *, keep_best: bool = False) -> None:
        """Stop a job within seconds. Without `keep_best` the run ends CANCELLED and no model is kept; with
        it, the best configuration found so far is retrained (the run then ends SUCCEEDED), or CANCELLED when
        no trial had finished yet."""
        with self._lock:
            run = self.registry.get_run(run_id)
            if run.state.is_final:
                return
            if run.state is RunState.QUEUED:
                self._finish(run, RunState.CANCELLED, "Cancelled by the user before it started.")
                return
            if self.runner.stops_cooperatively:
                self._ask_to_stop(run, keep_best=keep_best)
                return
            outcome = self.runner.outcome(run) if keep_best else None
            if outcome is not None and outcome.ending is Ending.FINISHED:  # done (its model waiting for room):
                self._collect(run, outcome)  # that model is the best there is
                return
            self.runner.stop(run)
            self._record_trials(run)
            if self.registry.get_run(run_id).state.is_final:  # it recorded its outcome before the stop arrived
                return
            trials = self.registry.events(run_id, "trial")
            if keep_best and any(t.payload.get("config") is not None for t in trials):
                self._launch(run, finalize=True)  # the run ends SUCCEEDED with the best model found so far
                return
            self._finish(run, RunState.CANCELLED, "Cancelled by the user.")

    def _ask_to_stop(self, run: Run, *, keep_best: bool) -> None:
        """Work that ends its run itself (the Snowflake procedure): keeping the best, the run says it is
        stopping until the work records its model; discarding, the run ends CANCELLED now (the work, reading
        that, keeps nothing) and says so honestly when the work could not be cancelled at once."""
        if keep_best:
            self.runner.stop(run, keep_best=True)
            self.registry.set_run_state(run.run_id, RunState.RUNNING, message=STOPPING_NOTE)
            return
        if not self.registry.set_run_state(run.run_id, RunState.CANCELLED, message="Cancelled by the user."):
            return  # it ended on its own meanwhile: that ending stands
        refusal = self.runner.stop(run)
        if refusal:  # the run's message says what the stop could not do
            self.registry.set_run_message(run.run_id, f"Cancelled by the user. {refusal}")
        self._launch_queued()  # a slot is free; what the work held is released once it has stopped (sweep)

    def rerun(self, run_id: str) -> str:
        """Start a new run with the same configuration (table, columns, options and seed)."""
        return self.start(TrainConfig.from_dict(self.registry.get_run(run_id).config))

    def recover(self) -> list[str]:
        """At start-up: runs whose work goes on carry on; finished ones are collected; the rest become
        INTERRUPTED."""
        interrupted = []
        for run in self.active_runs():
            if run.state is RunState.QUEUED:
                if self.runner.ready(run):
                    continue  # it starts when a slot is free
                self._finish(run, RunState.INTERRUPTED, "The app stopped while this run was being prepared.")
                interrupted.append(run.run_id)
                continue
            if self.runner.working(run):
                continue
            self.sync(run.run_id, lost=RunState.INTERRUPTED)
            if self.registry.get_run(run.run_id).state is RunState.INTERRUPTED:
                interrupted.append(run.run_id)
            elif not self.registry.get_run(run.run_id).state.is_final:
                outcome = self.runner.outcome(run)
                if outcome is not None and outcome.ending is Ending.FINISHED:
                    continue  # its model could not be recorded yet (no room): a later tick collects it
                self._finish(run, RunState.INTERRUPTED, "The app stopped while this run was training.")
                interrupted.append(run.run_id)
        for left in self.runner.sweep(self.active_runs()):
            logger.info("removed %s, left by a run that ended as the app stopped", left)
        self._launch_queued()
        return interrupted
