"""Trial events emitted while FLAML runs (what the Snowflake stored procedure writes to the events table)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.job_files import read_complete_lines
from backend.training.progress import train_with_events, trial_payloads
from backend.warehouse.base import TableRef


def test_trial_payloads_number_trials_and_keep_the_best_so_far() -> None:
    records = [{"validation_loss": 0.3, "learner": "lgbm", "wall_clock_time": 1.0}, {"curr_best_record_id": 0},
               {"validation_loss": 0.4, "learner": "rf", "wall_clock_time": 2.0},
               {"validation_loss": 0.1, "learner": "rf", "wall_clock_time": 3.0}]
    payloads = trial_payloads(records, "roc_auc", known=1)
    assert [(p["trial"], p["estimator"]) for p in payloads] == [(2, "rf"), (3, "rf")]
    assert [round(p["best_score"], 3) for p in payloads] == [0.7, 0.9]
    assert [round(p["score"], 3) for p in payloads] == [0.6, 0.9]


def test_events_arrive_while_training_runs_not_only_at_the_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "z": rng.normal(size=2000)})
    frame["y"] = frame["x"] * 2 + np.sin(frame["z"] * 3) + rng.normal(0, 0.3, 2000)
    config = TrainConfig(table=TableRef("s", "t"), target="y", target_sql_type="DOUBLE", task=Task.REGRESSION,
                         features=(("x", "DOUBLE"), ("z", "DOUBLE")), metric="r2", time_budget_s=4)
    emitted: list[tuple[float, str, list[dict[str, Any]]]] = []
    threads: set[str] = set()
    before = set(threading.enumerate())

    def emit(kind: str, payloads: list[dict[str, Any]]) -> None:
        threads.add(threading.current_thread().name)
        emitted.append((time.monotonic(), kind, payloads))

    result = train_with_events(frame, config, tmp_path / "log.jsonl", emit, interval=0.2)
    # a Snowflake procedure may not query from a second thread: every event comes from the training thread
    assert threads == {threading.current_thread().name}
    assert not [t.name for t in set(threading.enumerate()) - before if t.name.startswith("flurry")]
    finished = time.monotonic()
    trials = [p for _, kind, payloads in emitted if kind == "trial" for p in payloads]
    logged = [r for r in read_complete_lines(tmp_path / "log.jsonl") if "validation_loss" in r]
    assert [p["trial"] for p in trials] == list(range(1, len(logged) + 1))  # each trial once, in order
    # several deliveries, the first well before the end: trials are reported while the search still runs
    assert len(emitted) >= 2 and emitted[0][0] < finished - 0.2
    best = [p["best_score"] for p in trials]
    assert best == sorted(best)  # R²: the best so far only improves
    assert (result.metrics.model_score("r2") or 0) > 0.8


def test_the_best_trial_so_far_can_be_retrained_from_its_events_alone(tmp_path: Path) -> None:
    """How a run whose FLAML log is out of reach (inside Snowflake) keeps its best model when stopped."""
    from backend.training.fit import train
    from backend.training.progress import best_trial_log

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=600), "kind": rng.choice(["a", "b"], 600)})
    frame["y"] = np.where(frame["x"] + (frame["kind"] == "a") > 0.5, "yes", "no")
    config = TrainConfig(table=TableRef("s", "t"), target="y", target_sql_type="VARCHAR", task=Task.BINARY,
                         features=(("x", "DOUBLE"), ("kind", "VARCHAR")), metric="log_loss", time_budget_s=3,
                         ensemble=False)
    events: list[dict[str, Any]] = []
    train_with_events(frame, config, tmp_path / "search.jsonl", lambda kind, payloads: events.extend(payloads))
    best = min(events, key=lambda e: e["loss"])
    (tmp_path / "best.jsonl").write_text(best_trial_log(events), encoding="utf-8")
    kept = train(frame, config, tmp_path / "best.jsonl", from_log=True)
    assert kept.bundle.best_estimator == best["estimator"]
    assert [(e.estimator, e.score) for e in kept.leaderboard] == [(best["estimator"], best["score"])]
    assert kept.leaderboard[0].holdout_score is not None  # and scored on the holdout like any other run
    log_loss = kept.metrics.scores["log_loss"]
    assert log_loss.model is not None and log_loss.baseline is not None and log_loss.model < log_loss.baseline
