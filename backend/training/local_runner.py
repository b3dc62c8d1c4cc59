"""Training beside the app: a worker process per run (`python -m backend.training.worker JOB_DIR`).

DuckDB lets one process open its file, so the app exports the training sample as Parquet into a job
directory and the worker never opens the warehouse; it leaves its trials, status and verified-by-checksum
model files there, and the app (the JobManager) folds them into the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.errors import InvalidTargetError
from backend.registry import Registry, Run, new_id
from backend.training import job_files as jf
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.progress import trial_payloads
from backend.training.runner import Ending, Outcome, record_left_out
from backend.warehouse.base import SampleInfo, SampleSpec, Warehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


class LocalWorkerRunner:
    """Runs each training job in a worker process of its own, with the job directory as its only link."""

    def __init__(self, warehouse: Warehouse, registry: Registry, jobs_root: Path) -> None:
        self.wh = warehouse
        self.registry = registry
        self.jobs_root = jobs_root
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def location(self) -> str:
        return str(self.jobs_root / new_id("job-"))

    def prepare(self, run_id: str, config: TrainConfig, location: str) -> None:
        job_dir = Path(location)
        job_dir.mkdir(parents=True)
        total = self.wh.row_count(config.table)
        spec = config.sample_spec()
        sample = self.wh.export_training_sample(spec, job_dir / jf.DATA)
        used = sample.rows_written
        if used < MIN_TRAINING_ROWS:
            which = "distinct rows (duplicates removed)" if config.deduplicate else "rows"
            raise InvalidTargetError(
                f"Only {used} {which} have a value for {config.target!r}; Flurry needs at least {MIN_TRAINING_ROWS}.",
                hint="Keep duplicate rows (undo that remedy on the Target step), include more columns, "
                     "or pick a table with more rows." if config.deduplicate else
                     "Pick a table with more rows, or a target with fewer missing values.")
        self.registry.set_run_rows(run_id, used=used, dropped=total - sample.rows_eligible,
                                   eligible=sample.rows_eligible)
        record_left_out(self.wh, self.registry, run_id, config, total, sample.rows_eligible)
        fingerprint = data_fingerprint(spec, sample, total, job_dir / jf.DATA)
        (job_dir / jf.FINGERPRINT).write_text(json.dumps(fingerprint), encoding="utf-8")
        self.registry.add_events(run_id, "fingerprint", [fingerprint])
        # last and whole: its presence is what says the run is prepared (ready), to every thread and process
        jf.write_atomic(job_dir / jf.CONFIG, json.dumps(config.to_dict()).encode("utf-8"))

    def discard(self, location: str) -> None:
        shutil.rmtree(location, ignore_errors=True)

    def ready(self, run: Run) -> bool:
        return (Path(run.job_dir) / jf.CONFIG).exists()

    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        job_dir = Path(run.job_dir)
        if not finalize:  # a run kept as it is only refits what it found: no budget to keep
            jf.write_clock(job_dir, wait_began(run, (job_dir / jf.CONFIG).stat().st_mtime), run.time_budget)
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
        return process.pid

    def new_trials(self, run: Run, known: int) -> list[dict[str, Any]]:
        return trial_payloads(jf.read_complete_lines(Path(run.job_dir) / jf.FLAML_LOG), run.metric, known)

    def outcome(self, run: Run) -> Outcome | None:
        job_dir = Path(run.job_dir)
        statuses = jf.read_complete_lines(job_dir / jf.STATUS)
        final = next((s for s in reversed(statuses) if s.get("state") in ("SUCCEEDED", "FAILED")), None)
        if final is None:
            if self.working(run):
                return None
            return Outcome(Ending.LOST, "The training process stopped unexpectedly before finishing.")
        ended = _stamp(final.get("at"))
        if final["state"] == "FAILED":
            return Outcome(Ending.FAILED, final.get("message") or "Training failed.", ended)
        try:
            result = json.loads((job_dir / jf.RESULT).read_text(encoding="utf-8"))
            files = {name: (job_dir / name).read_bytes() for name in (jf.BUNDLE, jf.HOLDOUT)}
        except (OSError, ValueError) as exc:
            return Outcome(Ending.FAILED, f"The trained model could not be collected: {exc}", ended)
        return Outcome(Ending.FINISHED, ended=ended, result=result, files=files,
                       stopped_early=bool(final.get("stopped_early")))

    def working(self, run: Run) -> bool:
        process = self._processes.get(run.run_id)
        if process is not None:
            return process.poll() is None
        return _process_alive(run.worker_pid)

    stops_cooperatively = False  # the worker is killed; the manager ends the run or refits its best trial

    def stop(self, run: Run, *, keep_best: bool = False) -> str | None:
        process = self._processes.pop(run.run_id, None)
        pid = process.pid if process is not None else run.worker_pid
        if not pid or (process is None and not _process_alive(pid)):
            return None
        with contextlib.suppress(OSError):
            os.killpg(pid, 15)
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(pid, 9)
                process.wait(timeout=5)
        return None

    def release(self, run: Run) -> None:
        process = self._processes.pop(run.run_id, None)
        if process is not None and process.poll() is None:
            process.wait(timeout=10)
        shutil.rmtree(run.job_dir, ignore_errors=True)

    def sweep(self, active: list[Run]) -> list[str]:
        # Only directories named as `location` names them: the jobs root may sit beside other files.
        keep = {Path(run.job_dir).resolve() for run in active}
        left = [p for p in self.jobs_root.glob("job-*") if p.is_dir() and p.resolve() not in keep]
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
        return [str(p) for p in left]


def wait_began(run: Run, prepared_epoch: float) -> float:
    """When the user's wait for `run` began, on the wall clock: Start, less any time it then waited in the queue
    for another run (its data was ready at `prepared_epoch`)."""
    created = run.created_at.replace(tzinfo=UTC).timestamp()
    return time.time() - max(0.0, prepared_epoch - created)


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
