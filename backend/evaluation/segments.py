"""Performance by segment: the model's metric for each value (or quantile bin) of a column, on the holdout,
with the segments where it does much worse than overall called out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from backend.evaluation.report import Segment, SegmentView
from backend.task_detection import Task

logger = logging.getLogger(__name__)

TOP_VALUES = 10
NUMBER_BINS = 5
MAX_COLUMNS = 50
# A segment is called out only when it is big enough for its metric to mean something.
MIN_SEGMENT_ROWS = 30
MIN_SEGMENT_SHARE = 0.02
MIN_SEGMENT_CLASS_ROWS = 20  # and, for ROC AUC, this many rows of each class
# ... and only when the segment's 90% interval lies wholly on the worse side of the overall figure
INTERVAL_Z = 1.645
WORSE_BY = {"roc_auc": 0.10, "accuracy": 0.10}  # absolute drop; MAE: WORSE_MAE_RATIO times overall
WORSE_MAE_RATIO = 1.5
KEY_LIKE_SHARE = 0.9
ERROR_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SEGMENT_METRIC = {Task.BINARY: "roc_auc", Task.MULTICLASS: "accuracy", Task.REGRESSION: "mae"}


def segment_keys(column: pd.Series) -> tuple[pd.Series, list[str] | None]:
    """Each row's segment: its value among the column's TOP_VALUES most frequent (else "other"), or for
    numbers with more distinct values than that, its quantile bin ("18 – 25"); and, for bins, their order
    from low to high (None: order segments by size)."""
    missing = column.isna()
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > TOP_VALUES:
        keys, order = _labelled(pd.qcut(column, NUMBER_BINS, duplicates="drop"), float(column.min()), _short)
    elif pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.Series(column.to_numpy(dtype="datetime64[ns]").astype("int64"), index=column.index).where(~missing)
        keys, order = _labelled(pd.qcut(stamps, NUMBER_BINS, duplicates="drop"), float(stamps.min()),
                                lambda v: f"{pd.Timestamp(int(v)):%Y-%m-%d}")
    else:
        text = column.astype(str)
        top = text[~missing].value_counts().head(TOP_VALUES).index
        keys, order = text.where(text.isin(top), "other").astype(object), None
    return keys.where(~missing, "(missing)"), order


def _labelled(bins: pd.Series, low: float, show: Callable[[float], str]) -> tuple[pd.Series, list[str]]:
    """Quantile bins as text labels, the first starting at the column's own minimum (qcut nudges it lower);
    missing values stay missing."""
    labels = [f"{show(low if i == 0 else b.left)} – {show(b.right)}" for i, b in enumerate(bins.cat.categories)]
    named = bins.cat.rename_categories(labels)
    return named.astype(object).where(named.notna(), None), labels


def _short(value: float) -> str:
    return f"{value:,.4g}"


def _segment_metric(metric: str, truth: np.ndarray, predicted: np.ndarray, score: np.ndarray | None) -> float:
    if metric == "roc_auc":
        if score is None or len(np.unique(truth)) < 2:
            return float("nan")
        return float(skm.roc_auc_score(truth, score))
    if metric == "accuracy":
        return float(np.mean(truth == predicted))
    return float(np.mean(np.abs(predicted.astype(float) - truth.astype(float))))


def _error_quantiles(truth: np.ndarray, predicted: np.ndarray) -> list[float] | None:
    errors = predicted.astype(float) - truth.astype(float)
    errors = errors[np.isfinite(errors)]
    return [float(q) for q in np.quantile(errors, ERROR_QUANTILES)] if len(errors) else None


def _much_worse(metric: str, value: float, overall: float, scale: float = 1.0, overall_scale: float = 1.0,
                interval: tuple[float, float] | None = None) -> bool:
    """Whether a segment's metric is much worse than overall: by the margin, and (given its 90% `interval`) with
    the whole interval on the worse side of overall. MAE is compared relative to the size of the values
    (`scale`: the segment's mean |target|), or bigger targets would always look worse."""
    if not np.isfinite(value):
        return False
    if metric == "mae":
        relative, overall_relative = value / max(scale, 1e-12), overall / max(overall_scale, 1e-12)
        clear = interval is None or interval[0] / max(scale, 1e-12) > overall_relative
        return relative >= WORSE_MAE_RATIO * overall_relative and value > 0 and clear
    return value <= overall - WORSE_BY[metric] and (interval is None or interval[1] < overall)


def metric_interval(metric: str, value: float, truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float] | None:
    """A 90% interval of a segment's metric: Hanley and McNeil's standard error for ROC AUC, the normal
    approximation for accuracy (a share) and for MAE (a mean of absolute errors)."""
    if not np.isfinite(value) or len(truth) < 2:
        return None
    if metric == "roc_auc":
        n1, n2 = int(truth.sum()), int((~truth).sum())
        q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
        se = np.sqrt((value * (1 - value) + (n1 - 1) * (q1 - value**2) + (n2 - 1) * (q2 - value**2)) / (n1 * n2))
    elif metric == "accuracy":
        se = np.sqrt(value * (1 - value) / len(truth))
    else:
        se = float(np.std(np.abs(predicted.astype(float) - truth.astype(float)), ddof=1)) / np.sqrt(len(truth))
    return float(value - INTERVAL_Z * se), float(value + INTERVAL_Z * se)


def segment_views(task: Task, frame: pd.DataFrame, columns: list[str], y_true: pd.Series, labels: np.ndarray,
                  positive_probability: np.ndarray | None, positive: Any) -> list[SegmentView]:
    """One view per column of `frame` (at most MAX_COLUMNS, in the order given)."""
    metric = SEGMENT_METRIC[task]
    truth_raw = y_true.reset_index(drop=True)
    if task is Task.BINARY:
        truth = (truth_raw == positive).to_numpy()
        predicted = (np.asarray(labels, dtype=object) == positive)
    elif task is Task.MULTICLASS:
        truth, predicted = truth_raw.astype(str).to_numpy(), np.asarray(labels).astype(str)
    else:
        truth, predicted = truth_raw.to_numpy(dtype=float), np.asarray(labels, dtype=float)
    overall = _segment_metric(metric, truth, predicted, positive_probability)
    floor = max(MIN_SEGMENT_ROWS, MIN_SEGMENT_SHARE * len(truth))
    views = []
    for column in columns[:MAX_COLUMNS]:
        try:
            view = _segment_view(task, column, frame[column].reset_index(drop=True), metric, overall, floor, truth,
                                 predicted, positive_probability)
        except (TypeError, ValueError):  # values that cannot be grouped (lists, maps): no segments for them
            logger.info("no segments for column %s", column, exc_info=True)
            continue
        if view is not None:
            views.append(view)
    return views


def _segment_view(task: Task, column: str, values: pd.Series, metric: str, overall: float, floor: float,
                  truth: np.ndarray, predicted: np.ndarray, positive_probability: np.ndarray | None
                  ) -> SegmentView | None:
    """One column's segments, or None for a key-like column (one value per row)."""
    keyish = not pd.api.types.is_float_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values)
    if keyish and values.nunique() > KEY_LIKE_SHARE * len(values) and len(values) > TOP_VALUES:
        return None  # a key (one value per row) has no segments
    keyed, order = segment_keys(values)

    def scales(rows: np.ndarray) -> tuple[float, float]:
        if metric != "mae":
            return 1.0, 1.0
        return float(np.mean(np.abs(truth[rows]))), float(np.mean(np.abs(truth)))

    keys = keyed.to_numpy()
    segments = []
    for key in pd.unique(keys):
        rows = keys == key
        score = None if positive_probability is None else positive_probability[rows]
        value = _segment_metric(metric, truth[rows], predicted[rows], score)
        actual = float(np.mean(truth[rows])) if task is not Task.MULTICLASS else float(np.mean(
            truth[rows] == predicted[rows]))
        enough = rows.sum() >= floor and (task is not Task.BINARY or min(truth[rows].sum(), (~truth[rows]).sum())
                                           >= MIN_SEGMENT_CLASS_ROWS)
        interval = metric_interval(metric, value, truth[rows], predicted[rows])
        low, high = interval if interval is not None else (None, None)
        segments.append(Segment(str(key), int(rows.sum()), value, actual,
                                bool(enough and _much_worse(metric, value, overall, *scales(rows), interval=interval)),
                                _error_quantiles(truth[rows], predicted[rows]) if metric == "mae" else None,
                                low=low, high=high, positives=int(truth[rows].sum()) if task is Task.BINARY else None))
    rank = {label: i for i, label in enumerate(order or [])}
    segments.sort(key=lambda s: (rank.get(s.value, len(rank)), -s.rows) if order else (-s.rows,))
    return SegmentView(column, metric, overall, segments)
