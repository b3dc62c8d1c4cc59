"""Shared by the benchmarks: run one side of a comparison in a fresh process, so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.training.config import TrainConfig
    from backend.warehouse.base import TableRef
    from backend.workspace import Workspace


def measure_in_fresh_process(module: str, db: Path, what: str) -> dict[str, float]:
    """Run `python -m <module> --measure <db> <what>` and return the JSON object it prints last."""
    done = subprocess.run([sys.executable, "-m", module, "--measure", str(db), what],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_config(ws: Workspace, table: TableRef, target: str, budget_s: int) -> TrainConfig:
    """The configuration the wizard proposes for `target` (detected task, suggested features, default metric)."""
    from backend.metrics import default_metric

    summary, choices = ws.target_summary(table, target)
    return ws.train_config(table, target, summary.detected_task, [c.name for c in choices if c.include],
                           default_metric(summary.detected_task), budget_s)
