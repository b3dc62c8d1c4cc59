"""Metrics Flurry optimises and reports, with the baseline a model must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from backend.forecasting.scores import FORECAST_METRICS
from backend.task_detection import Task


@dataclass(frozen=True)
class Metric:
    name: str  # FLAML's name for it
    label: str
    greater_is_better: bool
    explanation: str

    def score_from_loss(self, loss: float) -> float:
        """FLAML minimises a loss; turn it back into the metric users read."""
        return 1.0 - loss if self.greater_is_better else loss


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("roc_auc", "ROC AUC", True, "How well the model ranks positives above negatives (1 is perfect, 0.5 is chance)."),
    Metric("log_loss", "Log loss", False, "Penalises confident wrong probabilities (lower is better)."),
    Metric("accuracy", "Accuracy", True, "Share of rows predicted correctly."),
    Metric("f1", "F1", True, "Balance of precision and recall for the positive class."),
    Metric("macro_f1", "Macro F1", True, "F1 averaged over classes, so small classes count as much as big ones."),
    Metric("roc_auc_ovr", "ROC AUC (one-vs-rest)", True, "Ranking quality averaged over classes."),
    Metric("r2", "R²", True, "Share of the target's variation the model explains (1 is perfect, 0 is the mean)."),
    Metric("rmse", "RMSE", False, "Typical size of an error, in the target's units; big errors weigh more."),
    Metric("mae", "MAE", False, "Average size of an error, in the target's units."),
    # forecasting: computed on time-ordered backtests (backend.forecasting.scores, which words them)
    *(Metric(m.name, m.label, False, m.explanation) for m in FORECAST_METRICS.values() if m.name != "rmse"),
]}

METRICS_BY_TASK: dict[Task, list[str]] = {
    Task.BINARY: ["roc_auc", "log_loss", "accuracy", "f1"],
    Task.MULTICLASS: ["log_loss", "accuracy", "macro_f1", "roc_auc_ovr"],
    Task.REGRESSION: ["r2", "rmse", "mae"],
    Task.FORECAST: ["mase", "smape", "mape", "rmse"],
}

# What the holdout report shows per task (first one headlines).
REPORTED: dict[Task, list[str]] = {
    Task.BINARY: ["roc_auc", "accuracy", "log_loss", "f1"],
    Task.MULTICLASS: ["accuracy", "log_loss", "macro_f1"],
    Task.REGRESSION: ["r2", "rmse", "mae"],
    Task.FORECAST: ["mase", "smape", "mape", "rmse"],
}


def default_metric(task: Task) -> str:
    return METRICS_BY_TASK[task][0]


def metric_value(name: str, y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray | None,
                 classes: list[object], positive: object = None) -> float:
    """One metric; binary metrics (F1, ROC AUC) are about `positive` (default: the last class)."""
    positive = positive_class(classes) if positive is None and classes else positive
    if name == "r2":
        return float(skm.r2_score(y_true, y_pred))
    if name == "rmse":
        return float(np.sqrt(skm.mean_squared_error(y_true, y_pred)))
    if name == "mae":
        return float(skm.mean_absolute_error(y_true, y_pred))
    if name in ("accuracy", "macro_f1"):
        # compared as text: labels may arrive as numpy bools/ints or as objects holding them
        truth, predicted = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
        if name == "accuracy":
            return float(skm.accuracy_score(truth, predicted))
        return float(skm.f1_score(truth, predicted, average="macro", labels=[str(c) for c in classes] or None))
    if name == "f1":
        return float(skm.f1_score(np.asarray(y_true == positive, dtype=bool),
                                  np.asarray(np.asarray(y_pred, dtype=object) == positive, dtype=bool)))
    assert proba is not None
    if name == "log_loss":
        # a blend's weighted probabilities sum to 1 only up to rounding, which sklearn warns about
        proba = np.asarray(proba, dtype=float)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return float(skm.log_loss(y_true, proba, labels=classes))
    if name == "roc_auc":
        if y_true.nunique() < 2:
            return float("nan")
        return float(skm.roc_auc_score((y_true == positive).astype(int), proba[:, classes.index(positive)]))
    if name == "roc_auc_ovr":
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
    raise KeyError(name)


def positive_class(classes: list[object]) -> object:
    """The class binary metrics treat as positive when none was chosen: the last in sorted order, as FLAML
    does (models trained before the outcome of interest was asked for)."""
    return classes[-1]


def evaluate(task: Task, y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray | None,
             y_train: pd.Series, classes: list[object], positive: object = None) -> dict[str, dict[str, float]]:
    """Holdout metrics for the model and for the naive baseline (majority class / training mean).

    Returns {metric name: {"model": value, "baseline": value}}.
    """
    n = len(y_true)
    if task is Task.REGRESSION:
        base_pred = np.full(n, float(y_train.mean()))
        base_proba = None
    else:
        freq = y_train.value_counts(normalize=True).reindex(classes).fillna(0.0).to_numpy()
        base_pred = np.full(n, y_train.value_counts().idxmax())
        base_proba = np.tile(freq, (n, 1))
    report: dict[str, dict[str, float]] = {}
    for name in REPORTED[task]:
        report[name] = {
            "model": metric_value(name, y_true, y_pred, proba, classes, positive),
            "baseline": metric_value(name, y_true, base_pred, base_proba, classes, positive),
        }
    return report
