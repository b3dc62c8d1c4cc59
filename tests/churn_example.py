"""A small churn model with an awkward feature name, shared by the hosting tests and the scripts they run
under the side virtualenvs (which import it through PYTHONPATH)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from backend.model_bundle import ModelBundle
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.fit import fit_bundle, training_rows
from backend.warehouse.base import TableRef


def churn_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure months": rng.integers(1, 70, 400).astype(float),
                          "plan": rng.choice(["basic", "pro"], 400)})
    frame["churned"] = np.where((frame["tenure months"] < 20) ^ (rng.random(400) < 0.1), "yes", "no")
    return frame


def churn_model(frame: pd.DataFrame, directory: Path) -> ModelBundle:
    """A real 2-second FLAML fit predicting `churned`."""
    config = TrainConfig(table=TableRef("s", "t"), target="churned", target_sql_type="VARCHAR", task=Task.BINARY,
                         features=(("tenure months", "DOUBLE"), ("plan", "VARCHAR")), metric="roc_auc",
                         time_budget_s=2, ensemble=False)
    bundle = fit_bundle(training_rows(frame, config), config, directory / "log.jsonl").bundle
    return bundle
