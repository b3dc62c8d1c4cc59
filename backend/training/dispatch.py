"""One entry point for every kind of run: a forecast trains its series, anything else the tabular search."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from backend.training.config import TrainConfig
from backend.training.fit import train
from backend.training.forecast_fit import train_forecast
from backend.training.results import TrainingResult


def train_run(frame: pd.DataFrame, config: TrainConfig, log_path: Path, *, from_log: bool = False,
              on_iteration: Callable[[], None] | None = None, deadline: float | None = None) -> TrainingResult:
    """`deadline` (time.monotonic()) is when the whole run must be done, its report included; None: the budget
    from now."""
    if config.is_forecast:
        return train_forecast(frame, config, log_path, from_log=from_log, on_iteration=on_iteration)
    return train(frame, config, log_path, from_log=from_log, on_iteration=on_iteration, deadline=deadline)
