"""Training progress as run events: FLAML's per-trial log turned into the "trial" events the live view reads.

Shared by the app (reading a local worker's log) and the Snowflake stored procedure (reading its own log
as FLAML starts each iteration, in the training thread, and writing the events into Flurry's events table).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.metrics import METRICS
from backend.training.config import TrainConfig
from backend.training.dispatch import train_run
from backend.training.job_files import read_complete_lines
from backend.training.results import TrainingResult

Emit = Callable[[str, list[dict[str, Any]]], None]


def trial_payloads(records: list[dict[str, Any]], metric_name: str, known: int) -> list[dict[str, Any]]:
    """The "trial" events for FLAML log records past the first `known` (trial number, family, score, best so far)."""
    metric = METRICS[metric_name]
    trials = [r for r in records if r.get("validation_loss") is not None]
    best = None
    payloads: list[dict[str, Any]] = []
    for i, record in enumerate(trials):
        score = metric.score_from_loss(float(record["validation_loss"]))
        if best is None or (score > best if metric.greater_is_better else score < best):
            best = score
        if i >= known:
            payloads.append({"trial": i + 1, "estimator": str(record.get("learner")), "score": score,
                             "best_score": best, "elapsed": float(record.get("wall_clock_time", 0.0)),
                             "config": record.get("config"), "loss": float(record["validation_loss"])})
    return payloads


class LogTail:
    """Emits "trial" events for the lines a FLAML log gained since the last call, at most every `interval`
    seconds (and always on `flush(force=True)`). Called from the training thread itself: a Snowflake
    procedure may not run queries from a second thread."""

    def __init__(self, log_path: Path, metric: str, emit: Emit, interval: float = 1.0) -> None:
        self._path, self._metric, self._emit, self._interval = log_path, metric, emit, interval
        self._sent = 0
        self._last = 0.0

    def flush(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self._interval:
            return
        self._last = time.monotonic()
        try:
            payloads = trial_payloads(read_complete_lines(self._path), self._metric, self._sent)
            if payloads:
                self._emit("trial", payloads)
                self._sent += len(payloads)
        except Exception:  # progress is best effort; the training itself must go on
            if force:
                raise


def best_trial_log(trials: list[dict[str, Any]]) -> str:
    """A one-trial FLAML log holding the best of `trials` (trial events with config and loss), which FLAML's
    `retrain_from_log` reads: how a run stopped where its log is out of reach keeps its best model."""
    usable = [t for t in trials if t.get("config") is not None and t.get("loss") is not None]
    if not usable:
        raise ValueError("no trial with a configuration to keep")
    best = min(usable, key=lambda t: float(t["loss"]))
    record = {"record_id": 0, "iter_per_learner": 1, "logged_metric": {}, "trial_time": 0.0,
              "wall_clock_time": float(best.get("elapsed", 0.0)), "validation_loss": float(best["loss"]),
              "config": best["config"], "learner": best["estimator"], "sample_size": None}
    return json.dumps(record) + "\n" + json.dumps({"curr_best_record_id": 0}) + "\n"


def train_with_events(frame: Any, config: TrainConfig, log_path: Path, emit: Emit, *, interval: float = 1.0,
                      between: Callable[[], None] | None = None) -> TrainingResult:
    """`train`, emitting "trial" events as FLAML logs each trial (what a stored procedure runs). Every event is
    emitted from the calling thread: as each search iteration starts, and once more at the end. `between` is
    called after each iteration's events (the procedure's heartbeat and stop check); whatever it raises ends
    the search, the trials so far emitted first."""
    tail = LogTail(log_path, config.metric, emit, interval)

    def iteration() -> None:
        tail.flush()
        if between is not None:
            between()

    try:
        result = train_run(frame, config, log_path, on_iteration=iteration)
    except BaseException:
        with contextlib.suppress(Exception):  # the trials so far, for a stop that keeps the best of them
            tail.flush(force=True)
        raise
    tail.flush(force=True)  # the last trials, after FLAML finished writing
    return result
