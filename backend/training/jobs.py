"""Training jobs on the embedded warehouse: start a worker process, collect its progress and results.

The app process owns the DuckDB file, so it is the one that persists what the worker leaves in its job
directory: progress events as they appear, then the model version once its artifacts are verified.
`sync` is idempotent and safe to call from several threads (UI fragments of many sessions).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.errors import ArtifactIntegrityError, FlurryError, InvalidTargetError
from backend.evaluation.report import HoldoutReport
from backend.metrics import METRICS
from backend.model_catalog import Catalog
from backend.monitoring import MonitoringBaseline
from backend.registry import ModelVersion, Registry, Run, RunState, new_id, now, sha256_bytes
from backend.training import job_files as jf
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.fit import feature_specs
from backend.training.progress import trial_payloads
from backend.warehouse.base import SampleInfo, SampleSpec, Warehouse

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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

    @property
    def elapsed(self) -> float:
        """Seconds since the worker started (wall clock while running; the last trial's time once over)."""
        if self.run.state is RunState.RUNNING and self.started_at is not None:
            return max(0.0, (now() - self.started_at).total_seconds())
        return self.trials[-1].elapsed if self.trials else 0.0

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


def data_fingerprint(spec: SampleSpec, sample: SampleInfo, total_rows: int, data_file: Path) -> dict[str, Any]:
    """What the run trained on, so it can be recognised and repeated: the table, its size, how the sample was
    drawn and the sha256 of the exact rows."""
    digest = hashlib.sha256()
    with open(data_file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"table": str(spec.table), "table_rows": total_rows, "rows_eligible": sample.rows_eligible,
            "rows": sample.rows_written, "sampled": sample.sampled,
            "sample": {"max_rows": spec.max_rows, "seed": spec.seed, "stratify": spec.stratify,
                       "distinct": spec.distinct, "exclude_target_values": list(spec.exclude_target_values)},
            "sha256": digest.hexdigest()}


def verified_model_files(files: dict[str, bytes], result: dict[str, Any], where: str) -> dict[str, bytes]:
    """`files` (the bundle and holdout a run produced), once each matches the sha256 its result reported.
    Raises ArtifactIntegrityError naming `where` the damaged file was found, KeyError for a result without one."""
    for name, content in files.items():
        if sha256_bytes(content) != result["sha256"][name]:
            raise ArtifactIntegrityError(f"The trained model file {name}{where} is damaged.")
    return files


STOPPED_EARLY_NOTE = "Stopped early by the user; this is the best model found before that."


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
        task=config.task.value, metric=config.metric, best_estimator=result["best_estimator"],
        features=feature_specs(config), metrics={**result["metrics"], "_rows": {
            "train": result["train_rows"], "holdout": result["holdout_rows"]}},
        leaderboard=result["leaderboard"], importance=result["importance"], versions=result["versions"],
        sha256=result["sha256"][jf.BUNDLE],
        report=HoldoutReport.from_dict(result["report"]) if result.get("report") else None,
        baseline=MonitoringBaseline.from_dict(result["baseline"]) if result.get("baseline") else None)
    with registry.wh.transaction():
        registry.add_model_version(version, {"bundle": bundle, "holdout": holdout})
        registry.set_run_state(run_id, RunState.SUCCEEDED, message=STOPPED_EARLY_NOTE if stopped_early else "",
                               at=ended)
    # numbered after the commit, under the catalog's lock, so two versions collected at once cannot read the
    # same highest number; a version left unnumbered by a crash here is numbered on the next read
    Catalog(registry).assign(version)
    return version.model_id


def _stamp(epoch_s: Any) -> datetime | None:
    """A worker's `time.time()` as the registry's naive-UTC timestamp (None when absent)."""
    if not isinstance(epoch_s, int | float):
        return None
    return datetime.fromtimestamp(float(epoch_s), UTC).replace(tzinfo=None)


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        return state != "Z" and b"backend.training.worker" in cmdline
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class JobManager:
    """Starts training workers and folds their output into the registry."""

    def __init__(self, warehouse: Warehouse, registry: Registry, jobs_root: Path, *, max_concurrent: int = 1) -> None:
        self.wh = warehouse
        self.registry = registry
        self.jobs_root = jobs_root
        self.max_concurrent = max(1, max_concurrent)
        self._lock = threading.RLock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        # Set while a Supervisor advances the jobs: reading progress then only reads.
        self.supervised = False

    # --- start -----------------------------------------------------------------------------------
    def start(self, config: TrainConfig) -> str:
        """Validate, export the training sample, queue the run and launch it when a slot is free; return
        the run id.

        Raises FlurryError subclasses for bad options or a vanished table (no run is left half-made:
        a run whose export fails is marked FAILED with the reason)."""
        config.validate()
        self.wh.describe(config.table)  # raises TableNotFoundError before anything is written
        self.jobs_root.mkdir(parents=True, exist_ok=True)
        job_dir = self.jobs_root / new_id("job-")
        run_id = self.registry.create_run(
            table=config.table, target=config.target, task=config.task.value, metric=config.metric,
            time_budget=config.time_budget_s, config=config.to_dict(), job_dir=str(job_dir))
        try:
            job_dir.mkdir(parents=True)
            columns = config.exported_columns
            total = self.wh.row_count(config.table)
            spec = SampleSpec(table=config.table, columns=columns, target=config.target, max_rows=config.max_rows,
                              seed=config.seed, stratify=config.task.is_classification,
                              distinct=config.deduplicate, exclude_target_values=config.drop_classes)
            sample = self.wh.export_training_sample(spec, job_dir / jf.DATA)
            used, dropped = sample.rows_written, total - sample.rows_eligible
            if used < MIN_TRAINING_ROWS:
                which = "distinct rows (duplicates removed)" if config.deduplicate else "rows"
                raise InvalidTargetError(
                    f"Only {used} {which} have a value for {config.target!r}; Flurry needs at least "
                    f"{MIN_TRAINING_ROWS}.",
                    hint="Keep duplicate rows (undo that remedy on the Target step), include more columns, "
                         "or pick a table with more rows." if config.deduplicate else
                         "Pick a table with more rows, or a target with fewer missing values.")
            self.registry.set_run_rows(run_id, used=used, dropped=dropped, eligible=sample.rows_eligible)
            (job_dir / jf.CONFIG).write_text(json.dumps(config.to_dict()), encoding="utf-8")
            fingerprint = data_fingerprint(spec, sample, total, job_dir / jf.DATA)
            (job_dir / jf.FINGERPRINT).write_text(json.dumps(fingerprint), encoding="utf-8")
            self.registry.add_events(run_id, "fingerprint", [fingerprint])
        except FlurryError as exc:
            self.registry.set_run_state(run_id, RunState.FAILED, message=str(exc))
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        except Exception as exc:
            self.registry.set_run_state(run_id, RunState.FAILED, message=f"Could not start training: {exc}")
            shutil.rmtree(job_dir, ignore_errors=True)
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
            for run in self.queued()[: max(0, self.max_concurrent - running)]:
                self._launch(run)

    def _launch(self, run: Run, *, finalize: bool = False) -> None:
        job_dir = Path(run.job_dir)
        log = open(job_dir / "worker.log", "ab")  # noqa: SIM115 - handed to the child process
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "backend.training.worker", str(job_dir), *(["--finalize"] if finalize else [])],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        self._processes[run.run_id] = process
        self.registry.set_run_state(run.run_id, RunState.RUNNING, worker_pid=process.pid)

    # --- observe ---------------------------------------------------------------------------------
    def progress(self, run_id: str) -> RunProgress:
        """The run's state and trials (synced from its job directory first unless a supervisor does that)."""
        if not self.supervised:
            self.sync(run_id)
        run = self.registry.get_run(run_id)
        trials = [TrialEvent(**e.payload) for e in self.registry.events(run_id, "trial")]
        version = self.registry.model_for_run(run_id)
        started = next((e.at for e in self.registry.events(run_id, "state") if e.payload.get("state") == "RUNNING"),
                       None)
        return RunProgress(run=run, trials=trials, model_id=version.model_id if version else None, started_at=started)

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

    def sync(self, run_id: str) -> None:
        with self._lock:
            run = self.registry.get_run(run_id)
            if run.state.is_final:
                return
            if run.state is RunState.QUEUED:
                self._launch_queued()
                return
            self._sync_running(run)

    def _sync_running(self, run: Run) -> None:
        """Fold a running job's news into the registry: trials, then its result or its disappearance."""
        job_dir = Path(run.job_dir)
        self._sync_trials(run, job_dir)
        statuses = jf.read_complete_lines(job_dir / jf.STATUS)
        final = next((s for s in reversed(statuses) if s.get("state") in ("SUCCEEDED", "FAILED")), None)
        ended = _stamp(final.get("at")) if final is not None else None
        if final is not None and final["state"] == "SUCCEEDED":
            self._collect_model(run, job_dir, stopped_early=bool(final.get("stopped_early")), ended=ended)
        elif final is not None:
            self._finish(run, RunState.FAILED, final.get("message") or "Training failed.", at=ended)
        elif not self._alive(run):
            self._finish(run, RunState.FAILED, "The training process stopped unexpectedly before finishing.")

    def _alive(self, run: Run) -> bool:
        process = self._processes.get(run.run_id)
        if process is not None:
            return process.poll() is None
        return _process_alive(run.worker_pid)

    def _sync_trials(self, run: Run, job_dir: Path) -> None:
        known = len(self.registry.events(run.run_id, "trial"))
        payloads = trial_payloads(jf.read_complete_lines(job_dir / jf.FLAML_LOG), run.metric, known)
        if payloads:
            self.registry.add_events(run.run_id, "trial", payloads)

    def _collect_model(self, run: Run, job_dir: Path, *, stopped_early: bool = False,
                       ended: datetime | None = None) -> None:
        try:
            result = json.loads((job_dir / jf.RESULT).read_text(encoding="utf-8"))
            artifacts = verified_model_files({name: (job_dir / name).read_bytes() for name in (jf.BUNDLE, jf.HOLDOUT)},
                                             result, "")
        except (OSError, KeyError, ValueError, ArtifactIntegrityError) as exc:
            self._finish(run, RunState.FAILED, f"The trained model could not be collected: {exc}", at=ended)
            return
        self._record_model(run, result, artifacts[jf.BUNDLE], artifacts[jf.HOLDOUT], stopped_early=stopped_early,
                           ended=ended)
        self._cleanup(run.run_id, job_dir)

    def _record_model(self, run: Run, result: dict[str, Any], bundle: bytes, holdout: bytes, *,
                      stopped_early: bool = False, ended: datetime | None = None) -> None:
        record_model_version(self.registry, run.run_id, TrainConfig.from_dict(run.config), result, bundle, holdout,
                             stopped_early=stopped_early, ended=ended)

    def _finish(self, run: Run, state: RunState, message: str, *, at: datetime | None = None) -> None:
        self.registry.set_run_state(run.run_id, state, message=message, at=at)
        self._cleanup(run.run_id, Path(run.job_dir))

    def _cleanup(self, run_id: str, job_dir: Path) -> None:
        process = self._processes.pop(run_id, None)
        if process is not None and process.poll() is None:
            process.wait(timeout=10)
        shutil.rmtree(job_dir, ignore_errors=True)
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
            self._stop(run, keep_best=keep_best)

    def _stop(self, run: Run, *, keep_best: bool) -> None:
        """Stop a running job (its worker process), keeping the best model so far when asked and possible."""
        run_id = run.run_id
        process = self._processes.get(run_id)
        pid = process.pid if process is not None else run.worker_pid
        if pid and (process is not None or _process_alive(pid)):
            with contextlib.suppress(OSError):
                os.killpg(pid, 15)
            if process is not None:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(pid, 9)
                    process.wait(timeout=5)
        self._processes.pop(run_id, None)
        job_dir = Path(run.job_dir)
        self._sync_trials(run, job_dir)
        if keep_best and self.registry.events(run_id, "trial"):
            self._launch(run, finalize=True)
            return
        self._finish(run, RunState.CANCELLED, "Cancelled by the user.")

    def rerun(self, run_id: str) -> str:
        """Start a new run with the same configuration (table, columns, options and seed)."""
        return self.start(TrainConfig.from_dict(self.registry.get_run(run_id).config))

    def recover(self) -> list[str]:
        """At start-up: collect runs that finished while the app was away, mark the rest INTERRUPTED."""
        interrupted = []
        for run in self.active_runs():
            if run.state is RunState.QUEUED and (Path(run.job_dir) / jf.CONFIG).exists():
                continue  # its data is ready; it starts when a slot is free
            if _process_alive(run.worker_pid):
                continue
            statuses = jf.read_complete_lines(Path(run.job_dir) / jf.STATUS)
            if any(s.get("state") in ("SUCCEEDED", "FAILED") for s in statuses):
                self.sync(run.run_id)
                continue
            self._finish(run, RunState.INTERRUPTED, "The app stopped while this run was training.")
            interrupted.append(run.run_id)
        self._launch_queued()
        return interrupted

