"""Training progress as run events: FLAML's per-trial log turned into the "trial" events the live view reads.

Shared by the app (reading a local worker's log) and the Snowflake stored procedure (tailing its own log
while FLAML runs and writing the events straight into Flurry's events table).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.metrics import METRICS
from backend.training.config import TrainConfig
from backend.training.fit import TrainingResult, train
from backend.training.job_files import read_complete_lines

Emit = Callable[[str, list[dict[str, Any]]], None]


def trial_payloads(records: list[dict[str, Any]], metric_name: str, known: int) -> list[dict[str, Any]]:
    """The "trial" events for FLAML log records past the first `known` (trial number, family, score, best so far)."""
    metric = METRICS[metric_name]
    trials = [r for r in records if "validation_loss" in r]
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
    """Emits "trial" events for new lines of a FLAML log every `interval` seconds, in a background thread."""

    def __init__(self, log_path: Path, metric: str, emit: Emit, interval: float = 1.0) -> None:
        self._path, self._metric, self._emit, self._interval = log_path, metric, emit, interval
        self._sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flurry-log-tail", daemon=True)

    def flush(self) -> None:
        payloads = trial_payloads(read_complete_lines(self._path), self._metric, self._sent)
        if payloads:
            self._emit("trial", payloads)
            self._sent += len(payloads)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # progress is best effort; the training itself must go on
                continue

    def __enter__(self) -> LogTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()  # the last trials, after FLAML finished writing


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


def train_with_events(frame: Any, config: TrainConfig, log_path: Path, emit: Emit, *, interval: float = 1.0
                      ) -> TrainingResult:
    """`train`, emitting "trial" events as FLAML logs each trial (what a stored procedure runs)."""
    with LogTail(log_path, config.metric, emit, interval):
        return train(frame, config, log_path)
