"""The holdout report: everything the Evaluate page, the dashboard and the model card show about a model's
quality, computed once on the whole holdout where the model is trained and stored with its version.

Typed records with `to_dict` / `from_dict`, so the record survives JSON in Flurry's registry table and a
page reads attributes, not magic keys. What is computed on a sample says so (`sampled_rows`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from backend.evaluation.thresholds import ThresholdRow, ThresholdTable, threshold_table
from backend.metrics import REPORTED, metric_value
from backend.task_detection import Task

BINS = 10
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_ROUNDS_LARGE = 100  # holdouts above BOOTSTRAP_LARGE_ROWS: each round re-scores every row
BOOTSTRAP_LARGE_ROWS = 50_000
CURVE_POINTS = 200
SCATTER_ROWS = 2_000


@dataclass(frozen=True)
class MetricScore:
    name: str
    model: float
    baseline: float
    low: float | None  # 95% bootstrap interval on the holdout
    high: float | None
    baseline_rule: str  # what the naive baseline does for this metric

    @property
    def interval_width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low


@dataclass(frozen=True)
class Curve:
    x: list[float]
    y: list[float]
    thresholds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class GainBin:
    """One tenth of the holdout, highest probabilities first."""

    decile: int  # 1 = the tenth the model ranks highest
    rows: int
    positive_rate: float  # share of the outcome of interest in this tenth
    cumulative_found: float  # share of all positives found in the tenths up to this one
    lift: float  # positive_rate / overall rate


@dataclass(frozen=True)
class CalibrationBin:
    mean_predicted: float
    observed_rate: float
    rows: int


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class Segment:
    value: str  # the column's value, or a bin such as "18 – 25"
    rows: int
    metric: float  # the segment metric (see SegmentView.metric)
    actual: float  # share of the outcome of interest / mean of the target / share predicted right
    much_worse: bool
    # regression: predicted − actual in this segment at the 5th, 25th, 50th, 75th and 95th percentile
    error_quantiles: list[float] | None = None
    low: float | None = None  # the metric's 90% interval in this segment (None: not estimated)
    high: float | None = None
    positives: int | None = None  # yes/no models: rows of the outcome of interest in the segment


@dataclass(frozen=True)
class SegmentView:
    column: str
    metric: str  # "roc_auc", "accuracy" or "mae"
    overall: float
    segments: list[Segment]

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SegmentView:
        return SegmentView(data["column"], data["metric"], data["overall"], [Segment(**s) for s in data["segments"]])


@dataclass(frozen=True)
class FeatureEffect:
    """One column's SHAP values on the explained sample (the beeswarm and dependence views)."""

    feature: str
    mean_abs: float
    direction: str  # in words: "higher values push toward 'Yes'"
    shap: list[float]
    values: list[Any]  # the column's own values (numbers, or text), aligned with `shap`
    numeric: bool


@dataclass(frozen=True)
class ShapSummary:
    method: str  # "exact TreeSHAP, LightGBM's own", "exact SHAP of each blended model, …", "Kernel SHAP, …"
    explained: str  # what the values explain: "the log-odds of 'Yes'", "the predicted price"
    rows: int  # holdout rows explained (all of them, or EXPLAIN_ROWS drawn at random)
    base_value: float
    effects: list[FeatureEffect]

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ShapSummary:
        return ShapSummary(data["method"], data["explained"], data["rows"], data["base_value"],
                           [FeatureEffect(**e) for e in data["effects"]])


@dataclass(frozen=True)
class HoldoutReport:
    task: str
    rows: int
    train_rows: int
    classes: list[str]
    positive_class: str | None  # binary: the outcome of interest
    metrics: list[MetricScore]
    # binary
    base_rate: float | None = None
    validation_table: ThresholdTable | None = None  # where thresholds are chosen
    holdout_table: ThresholdTable | None = None  # the same cut-offs counted on the holdout
    default_threshold: float | None = None
    validation_rows: int | None = None
    roc: Curve | None = None
    pr: Curve | None = None
    gain: list[GainBin] = field(default_factory=list)
    calibration: list[CalibrationBin] = field(default_factory=list)
    brier: float | None = None
    # multiclass
    confusion: list[list[int]] = field(default_factory=list)  # rows: actual class, columns: predicted
    class_scores: list[ClassScores] = field(default_factory=list)
    # regression
    actual_sample: list[float] = field(default_factory=list)
    predicted_sample: list[float] = field(default_factory=list)
    sampled_rows: int = 0  # rows in the scatter views (a sample when the holdout is larger)
    errors: Histogram | None = None  # predicted − actual, every holdout row
    # every task
    segments: list[SegmentView] = field(default_factory=list)
    shap: ShapSummary | None = None
    shap_note: str = ""  # why there are no explanations, when there are none

    def outcome_at(self, threshold: float | None) -> ThresholdRow | None:
        """The holdout counts at `threshold` (yes/no models), or None."""
        if threshold is None or self.holdout_table is None:
            return None
        return self.holdout_table.at(threshold)

    def metric(self, name: str) -> MetricScore | None:
        return next((m for m in self.metrics if m.name == name), None)

    def segment_view(self, column: str) -> SegmentView | None:
        return next((s for s in self.segments if s.column == column), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> HoldoutReport:
        def table(key: str) -> ThresholdTable | None:
            return ThresholdTable.from_dict(data[key]) if data.get(key) else None

        def curve(key: str) -> Curve | None:
            return Curve(**data[key]) if data.get(key) else None

        return HoldoutReport(
            task=data["task"], rows=data["rows"], train_rows=data["train_rows"], classes=data["classes"],
            positive_class=data.get("positive_class"), metrics=[MetricScore(**m) for m in data["metrics"]],
            base_rate=data.get("base_rate"), validation_table=table("validation_table"),
            holdout_table=table("holdout_table"), default_threshold=data.get("default_threshold"),
            validation_rows=data.get("validation_rows"), roc=curve("roc"), pr=curve("pr"),
            gain=[GainBin(**b) for b in data.get("gain", [])],
            calibration=[CalibrationBin(**b) for b in data.get("calibration", [])], brier=data.get("brier"),
            confusion=data.get("confusion", []), class_scores=[ClassScores(**c) for c in data.get("class_scores", [])],
            actual_sample=data.get("actual_sample", []), predicted_sample=data.get("predicted_sample", []),
            sampled_rows=data.get("sampled_rows", 0),
            errors=Histogram(**data["errors"]) if data.get("errors") else None,
            segments=[SegmentView.from_dict(s) for s in data.get("segments", [])],
            shap=ShapSummary.from_dict(data["shap"]) if data.get("shap") else None,
            shap_note=data.get("shap_note", ""))


# --- metrics with intervals ------------------------------------------------------------------------------
BASELINE_RULES = {
    "roc_auc": "ranks rows at random (0.5)",
    "log_loss": "gives every row the training share of each class",
    "accuracy": "always predicts the most frequent class",
    "f1": "flags every row",
    "macro_f1": "always predicts the most frequent class",
    "r2": "always predicts the training average (0)",
    "rmse": "always predicts the training average",
    "mae": "always predicts the training average",
}


def _baseline_predictions(task: Task, n: int, y_train: pd.Series, classes: list[Any], positive: Any
                          ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per metric, the naive baseline's labels/values and probabilities."""
    if task is Task.REGRESSION:
        mean = np.full(n, float(y_train.mean()))
        return {name: (mean, None) for name in REPORTED[task]}
    freq = y_train.value_counts(normalize=True).reindex(classes).fillna(0.0).to_numpy()
    majority = np.full(n, y_train.value_counts().idxmax(), dtype=object)
    prior = np.tile(freq, (n, 1))
    plan: dict[str, tuple[np.ndarray, np.ndarray | None]] = {name: (majority, prior) for name in REPORTED[task]}
    if task is Task.BINARY:
        plan["f1"] = (np.full(n, positive, dtype=object), prior)
    return plan


def _row_arrays(task: Task, y_true: pd.Series, labels: np.ndarray, proba: np.ndarray | None, classes: list[Any],
                positive: Any) -> tuple[np.ndarray, ...]:
    """Per-row arrays the bootstrap resamples together: what every reported metric is computed from."""
    if task is Task.REGRESSION:
        return y_true.to_numpy(dtype=float), np.asarray(labels, dtype=float)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.asarray([index.get(v, -1) for v in y_true], dtype=float)
    predicted = np.asarray([index.get(v, -1) for v in labels], dtype=float)
    assert proba is not None
    p_true = np.clip(proba[np.arange(len(truth)), np.clip(truth.astype(int), 0, None)], 1e-15, 1.0)
    if task is Task.BINARY:
        k = classes.index(positive)
        return (truth == k).astype(float), (predicted == k).astype(float), p_true, proba[:, k]
    return truth, predicted, p_true


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def _batched_statistic(task: Task, name: str, classes: int) -> Any:
    """`name` as a statistic over the row arrays with a leading batch axis (scipy.stats.bootstrap's vectorised
    form); it agrees with sklearn's metric on a single sample."""
    from scipy.stats import rankdata

    def binary(truth: np.ndarray, flagged: np.ndarray, p_true: np.ndarray, p_pos: np.ndarray, axis: int = -1) -> Any:
        if name == "accuracy":
            return np.mean(truth == flagged, axis=axis)
        if name == "log_loss":
            return np.mean(-np.log(p_true), axis=axis)
        if name == "f1":
            return _f1(np.sum(truth * flagged, axis=axis), np.sum((1 - truth) * flagged, axis=axis),
                       np.sum(truth * (1 - flagged), axis=axis))
        ranks = rankdata(p_pos, axis=axis)  # roc_auc by Mann–Whitney, ties counting a half
        n_pos = np.sum(truth, axis=axis)
        n_neg = truth.shape[axis] - n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.sum(ranks * truth, axis=axis) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

    def multiclass(truth: np.ndarray, predicted: np.ndarray, p_true: np.ndarray, axis: int = -1) -> Any:
        if name == "accuracy":
            return np.mean(truth == predicted, axis=axis)
        if name == "log_loss":
            return np.mean(-np.log(p_true), axis=axis)
        scores = [_f1(np.sum((truth == k) & (predicted == k), axis=axis), np.sum((truth != k) & (predicted == k), axis=axis),
                      np.sum((truth == k) & (predicted != k), axis=axis)) for k in range(classes)]
        return np.mean(scores, axis=0)  # macro F1 over every class (sklearn's, with all labels present)

    def regression(actual: np.ndarray, predicted: np.ndarray, axis: int = -1) -> Any:
        error = predicted - actual
        if name == "mae":
            return np.mean(np.abs(error), axis=axis)
        if name == "rmse":
            return np.sqrt(np.mean(error ** 2, axis=axis))
        spread = np.sum((actual - np.mean(actual, axis=axis, keepdims=True)) ** 2, axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1 - np.sum(error ** 2, axis=axis) / spread

    return {Task.BINARY: binary, Task.MULTICLASS: multiclass, Task.REGRESSION: regression}[task]


def _interval(task: Task, name: str, arrays: tuple[np.ndarray, ...], classes: int, seed: int
              ) -> tuple[float | None, float | None]:
    """The 95% percentile bootstrap interval of `name` on the holdout (rows resampled with replacement)."""
    from scipy.stats import bootstrap

    rows = len(arrays[0])
    if rows < 10:
        return None, None
    rounds = BOOTSTRAP_ROUNDS if rows <= BOOTSTRAP_LARGE_ROWS else BOOTSTRAP_ROUNDS_LARGE
    result = bootstrap(arrays, _batched_statistic(task, name, classes), paired=True, vectorized=True,
                       n_resamples=rounds, method="percentile", random_state=seed,
                       batch=max(1, min(rounds, 4_000_000 // rows)))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (low, high) if np.isfinite(low) and np.isfinite(high) else (None, None)


def scored_metrics(task: Task, y_true: pd.Series, labels: np.ndarray, proba: np.ndarray | None,
                   y_train: pd.Series, classes: list[Any], positive: Any, *, seed: int = 0) -> list[MetricScore]:
    """Each reported metric for the model on the whole holdout, its 95% bootstrap interval and the naive
    baseline's value."""
    y_true = y_true.reset_index(drop=True)
    labels = np.asarray(labels, dtype=object if task.is_classification else float)
    baselines = _baseline_predictions(task, len(y_true), y_train, classes, positive)
    arrays = _row_arrays(task, y_true, labels, proba, classes, positive)
    scores = []
    for name in REPORTED[task]:
        model = metric_value(name, y_true, labels, proba, classes, positive)
        base_labels, base_proba = baselines[name]
        baseline = (0.5 if name == "roc_auc" else
                    metric_value(name, y_true, base_labels, base_proba, classes, positive))
        low, high = _interval(task, name, arrays, len(classes), seed)
        scores.append(MetricScore(name, float(model), float(baseline), low, high, BASELINE_RULES.get(name, "")))
    return scores


# --- binary views ----------------------------------------------------------------------------------------
def _thin(values: list[np.ndarray], points: int = CURVE_POINTS) -> list[list[float]]:
    n = len(values[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int)) if n else np.array([], dtype=int)
    return [[float(v) for v in np.asarray(arr)[keep]] for arr in values]


def roc_curve(is_positive: np.ndarray, probability: np.ndarray) -> Curve:
    fpr, tpr, cuts = skm.roc_curve(is_positive, probability)
    x, y, t = _thin([fpr, tpr, np.clip(cuts, 0.0, 1.0)])
    return Curve(x, y, t)


def pr_curve(is_positive: np.ndarray, probability: np.ndarray) -> Curve:
    precision, recall, cuts = skm.precision_recall_curve(is_positive, probability)
    x, y, t = _thin([recall[:-1], precision[:-1], cuts])
    return Curve(x, y, t)


def gain_bins(is_positive: np.ndarray, probability: np.ndarray, bins: int = BINS) -> list[GainBin]:
    """Rows sorted by probability, highest first, cut into `bins` equal groups."""
    order = np.argsort(-probability, kind="stable")
    truth = np.asarray(is_positive, dtype=float)[order]
    total, rate = truth.sum(), truth.mean() if len(truth) else 0.0
    out, found = [], 0.0
    for decile, group in enumerate(np.array_split(truth, bins), start=1):
        if not len(group):
            continue
        found += group.sum()
        group_rate = float(group.mean())
        out.append(GainBin(decile, len(group), group_rate, float(found / total) if total else 0.0,
                           group_rate / rate if rate else 0.0))
    return out


def calibration_bins(is_positive: np.ndarray, probability: np.ndarray, bins: int = BINS) -> list[CalibrationBin]:
    """Rows grouped by predicted probability in equal-width bins; empty bins left out."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    truth = np.asarray(is_positive, dtype=float)
    return [CalibrationBin(float(probability[which == b].mean()), float(truth[which == b].mean()),
                           int((which == b).sum())) for b in range(bins) if (which == b).any()]


# --- multiclass views ------------------------------------------------------------------------------------
def class_views(y_true: pd.Series, labels: np.ndarray, classes: list[Any]) -> tuple[list[list[int]], list[ClassScores]]:
    truth, predicted = np.asarray(y_true, dtype=object), np.asarray(labels, dtype=object)
    matrix = skm.confusion_matrix(truth, predicted, labels=np.asarray(classes, dtype=object))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, predicted, labels=np.asarray(classes, dtype=object), zero_division=0)
    scores = [ClassScores(str(c), float(p), float(r), float(f), int(s))
              for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)]
    return matrix.astype(int).tolist(), scores


# --- regression views ------------------------------------------------------------------------------------
def error_histogram(errors: np.ndarray, bins: int = 30) -> Histogram:
    finite = errors[np.isfinite(errors)]
    counts, edges = np.histogram(finite, bins=bins) if len(finite) else (np.zeros(0), np.zeros(0))
    return Histogram([float(e) for e in edges], [int(c) for c in counts])


def build_report(task: Task, *, y_true: pd.Series, labels: np.ndarray, proba: np.ndarray | None,
                 y_train: pd.Series, classes: list[Any], positive: Any, train_rows: int,
                 validation: ThresholdTable | None, validation_rows: int | None, threshold: float | None,
                 segments: list[SegmentView], shap: ShapSummary | None, seed: int = 0,
                 shap_note: str = "") -> HoldoutReport:
    """The holdout report of a model whose holdout labels (at its threshold) and probabilities are given."""
    y_true = y_true.reset_index(drop=True)
    metrics = scored_metrics(task, y_true, labels, proba, y_train, classes, positive, seed=seed)
    common: dict[str, Any] = {"task": task.value, "rows": len(y_true), "train_rows": train_rows,
                              "classes": [str(c) for c in classes],
                              "positive_class": None if positive is None else str(positive), "metrics": metrics,
                              "segments": segments, "shap": shap, "shap_note": shap_note}
    if task is Task.BINARY and proba is not None:
        p = proba[:, classes.index(positive)]
        truth = (y_true == positive).to_numpy()
        cutoffs = validation.thresholds if validation is not None else sorted({round(float(v), 4) for v in
                                                                               np.linspace(0, 1, 101)})
        return HoldoutReport(
            **common, base_rate=float(truth.mean()), validation_table=validation,
            holdout_table=threshold_table(truth, p, cutoffs), default_threshold=threshold,
            validation_rows=validation_rows, roc=roc_curve(truth, p) if 0 < truth.sum() < len(truth) else None,
            pr=pr_curve(truth, p) if truth.any() else None, gain=gain_bins(truth, p),
            calibration=calibration_bins(truth, p), brier=float(skm.brier_score_loss(truth, p)))
    if task is Task.MULTICLASS:
        confusion, scores = class_views(y_true, labels, classes)
        return HoldoutReport(**common, confusion=confusion, class_scores=scores)
    if task is Task.REGRESSION:
        actual, predicted = y_true.to_numpy(dtype=float), np.asarray(labels, dtype=float)
        keep = np.random.default_rng(seed).permutation(len(actual))[:SCATTER_ROWS]
        return HoldoutReport(**common, actual_sample=actual[keep].tolist(), predicted_sample=predicted[keep].tolist(),
                             sampled_rows=len(keep), errors=error_histogram(predicted - actual))
    return HoldoutReport(**common)
