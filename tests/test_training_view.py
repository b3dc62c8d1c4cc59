"""The sentence that tells users how many rows trained their model."""

from __future__ import annotations

from datetime import datetime

from backend.registry import Run, RunState
from backend.warehouse.base import TableRef
from components.training_view import rows_sentence


def run(used: int, eligible: int, dropped: int) -> Run:
    now = datetime(2026, 1, 1)
    return Run(run_id="r", state=RunState.RUNNING, table=TableRef("s", "t"), target="y", task="binary",
               metric="roc_auc", time_budget=60, config={}, created_at=now, updated_at=now, worker_pid=None,
               job_dir="", message="", rows_used=used, rows_dropped=dropped, rows_eligible=eligible)


def test_sampled_runs_say_so() -> None:
    assert rows_sentence(run(1_000_000, 48_000_000, 0)) == "Training on a 1,000,000-row sample of 48,000,000 rows."


def test_full_runs_and_left_out_rows() -> None:
    sentence = rows_sentence(run(175, 175, 25))
    assert sentence.startswith("Training on 175 rows; 25 rows left out")
