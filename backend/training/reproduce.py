"""Repeat a training run from its recipe: the same training sample (drawn by the same warehouse query), the same
split, the recorded configuration(s) refitted with the same seed, scored on the same holdout rows with the
recorded decision threshold. What the exported `reproduce.py` runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from backend.metrics import METRICS, REPORTED, metric_value
from backend.model_bundle import MemberRecipe, ModelBundle, prepare_features, to_model_frame
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.fit import feature_specs, outcome_of_interest, split_for_holdout, training_rows
from backend.training.recipe import refit
from backend.warehouse.base import Warehouse


@dataclass(frozen=True)
class ReproducedMetric:
    name: str
    label: str
    value: float


@dataclass(frozen=True)
class Reproduction:
    metrics: list[ReproducedMetric]
    train_rows: int
    holdout_rows: int
    sample_sha256: str  # of the sample file drawn now; equal to the run's when the table has not changed


def training_sample(warehouse: Warehouse, config: TrainConfig, destination: Path) -> str:
    """Draw the run's training sample again into `destination` (Parquet); return its sha256."""
    spec = config.sample_spec()
    warehouse.export_training_sample(spec, destination)
    digest = hashlib.sha256()
    with open(destination, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reproduce_run(frame: pd.DataFrame, config: TrainConfig, recipe: tuple[MemberRecipe, ...],
                  threshold: float | None, sample_sha256: str = "") -> Reproduction:
    """Refit the recipe on the run's training rows and score the run's holdout rows."""
    train_frame, holdout = split_for_holdout(training_rows(frame, config), config)
    features = feature_specs(config)
    x_train, y_train = to_model_frame(prepare_features(train_frame, features)), train_frame[config.target]
    automl = refit(x_train, y_train, config, recipe)
    classes = sorted(pd.unique(y_train).tolist()) if config.task.is_classification else []
    binary = config.task is Task.BINARY and len(classes) == 2
    bundle = ModelBundle(
        task=config.task.value, target=config.target, target_sql_type=config.target_sql_type, features=features,
        classes=classes, best_estimator=recipe[0].learner, flaml_task=automl._state.task,
        transformer=automl._transformer, estimator=automl._trained_estimator,
        label_transformer=automl._label_transformer, config=config.to_dict(),
        positive_class=outcome_of_interest(classes, y_train, config.positive_class) if binary else None,
        threshold=threshold if binary else None, recipe=recipe)
    y_holdout = holdout[config.target]
    proba = bundle.predict_proba(holdout) if bundle.is_classification else None
    labels = bundle.predict(holdout)
    positive = bundle.outcome_of_interest if bundle.is_binary else None
    metrics = [ReproducedMetric(name, METRICS[name].label,
                                metric_value(name, y_holdout, labels, proba, classes, positive))
               for name in REPORTED[config.task]]
    return Reproduction(metrics, len(train_frame), len(holdout), sample_sha256)
