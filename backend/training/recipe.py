"""The recipe of a trained model: which configuration(s) of which learners were fitted on which rows, with what
weights. Recorded in the bundle when the model is trained, so the run can be repeated without its time-bound
search — the exported `reproduce.py` refits the recipe on the same sample and split and gets the same holdout
figures (FLAML's learners are seeded; the search, which stops on the clock, is not repeated).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidTargetError
from backend.model_bundle import ALL_ROWS, MemberRecipe
from backend.training.config import TrainConfig
from backend.training.ensemble import split_rows
from backend.weighted_ensemble import WeightedEnsemble


def fit_kwargs(config: TrainConfig, y_train: pd.Series) -> dict[str, Any]:
    """Per-row fit arguments: balanced class weights when asked (only passed when set: FLAML 2.7's holdout split
    breaks on an explicit sample_weight=None)."""
    if config.class_weight != "balanced":
        return {}
    shares = y_train.value_counts(normalize=True)
    return {"sample_weight": (1.0 / (len(shares) * y_train.map(shares))).to_numpy()}


def _one_record_log(member: MemberRecipe, rows: int, directory: Path) -> Path:
    """A FLAML training log of one trial: what `AutoML.retrain_from_log` refits (with FLAML's own data
    preparation, so the transformer and label encoding are the ones the search used)."""
    path = directory / "recipe.jsonl"
    record = {"record_id": 0, "iter_per_learner": 1, "logged_metric": None, "trial_time": 1.0,
              "wall_clock_time": 1.0, "validation_loss": 0.0, "config": member.config, "learner": member.learner,
              "sample_size": rows}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def refit(x_train: pd.DataFrame, y_train: pd.Series, config: TrainConfig, recipe: tuple[MemberRecipe, ...]) -> Any:
    """A FLAML AutoML whose `_trained_estimator` is the recipe fitted on these rows (a WeightedEnsemble for a
    blend); its transformer and label encoder as the original search made them."""
    from flaml import AutoML

    if not recipe:
        raise InvalidTargetError("This model was trained before Flurry recorded how to repeat it.",
                                 hint="Retrain it (same settings) to export code that reproduces the run.")
    extra = fit_kwargs(config, y_train)
    task = "regression" if not config.task.is_classification else "classification"
    automl = AutoML()
    with tempfile.TemporaryDirectory() as tmp:
        automl.retrain_from_log(log_file_name=str(_one_record_log(recipe[0], len(x_train), Path(tmp))),
                                X_train=x_train, y_train=y_train, task=task, eval_method=config.validation,
                                n_splits=config.cv_folds, n_jobs=-1, split_ratio=config.split_ratio,
                                split_type="time" if config.time_column else None, train_full=True, train_best=True,
                                **extra)
    if len(recipe) == 1 and recipe[0].rows == ALL_ROWS:
        return automl
    state = automl._state
    x = state.task.preprocess(x_train, automl._transformer)
    y = (np.asarray(automl._label_transformer.transform(y_train)) if automl._label_transformer is not None
         else y_train.to_numpy())
    split = split_rows(len(x), config.split_ratio, config.time_column is not None, config.seed)
    members = []
    for position, member in enumerate(recipe):
        if position == 0 and member.rows == ALL_ROWS:  # retrain_from_log has just fitted it on every row
            members.append(automl._trained_estimator)
            continue
        rows = np.arange(len(x)) if member.rows == ALL_ROWS else split
        learner = state.task.estimator_class_from_str(member.learner)
        model = learner(task=state.task, n_jobs=-1, **member.config)
        model.fit(x.iloc[rows], y[rows], **{k: v[rows] for k, v in extra.items()})
        members.append(model)
    # FLAML types its private attribute as its own BaseEstimator; the bundle reads the blend in its place duck-typed
    automl._trained_estimator = WeightedEnsemble(  # type: ignore[assignment]
        members, [m.weight for m in recipe], [m.learner for m in recipe], config.task.is_classification)
    return automl
