"""What a model is worth, in words built only from its computed numbers: one sentence per view, the headline
summary, and the warnings a user must read before deploying."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from backend.evaluation.report import HoldoutReport, MetricScore, Segment, SegmentView, ShapSummary
from backend.evaluation.thresholds import ThresholdRow
from backend.metrics import METRICS

# Barely better than the naive baseline: below these the model is not worth deploying.
USELESS_ROC_AUC = 0.60
USELESS_GAIN = 0.02  # accuracy over the majority class (multiclass)
USELESS_R2 = 0.05
DOMINANT_SHARE = 0.6  # one column's share of all SHAP importance
FEW_HOLDOUT_ROWS = 100
FEW_POSITIVES = 20
WIDE_INTERVAL = 0.10


class Severity(enum.StrEnum):
    BLOCKER = "blocker"  # do not deploy as it is
    CAUTION = "caution"


@dataclass(frozen=True)
class ModelWarning:
    kind: str  # "useless", "dominant_column", "few_rows", "wide_interval", "weak_segment"
    severity: Severity
    text: str


def _per_100(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{round(100 * value):,}"


def _pct(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "—"


def _outcome(report: HoldoutReport) -> str:
    return repr(report.positive_class)


def headline_metric(report: HoldoutReport) -> MetricScore:
    return report.metrics[0]


def interval_words(score: MetricScore) -> str:
    label = METRICS[score.name].label
    if score.low is None or score.high is None:
        return f"{label} {score.model:.3f}"
    return f"{label} {score.model:.3f} (95% interval {score.low:.3f}–{score.high:.3f})"


# --- binary ----------------------------------------------------------------------------------------------
def worth_sentence(report: HoldoutReport, row: ThresholdRow) -> str:
    """E.g. "Of every 100 rows it flags, 64 are 'Yes'; it finds 62 of every 100 'Yes' rows; flagging at
    random, 27 of every 100 flagged would be 'Yes'."""
    outcome = _outcome(report)
    if row.flagged == 0:
        return (f"At this threshold the model flags no rows, so it finds none of the {outcome} rows; lower the "
                "threshold to act on its predictions.")
    return (f"Of every 100 rows it flags, {_per_100(row.precision)} are {outcome}; it finds {_per_100(row.recall)} "
            f"of every 100 {outcome} rows; flagging at random, {_per_100(report.base_rate or 0.0)} of every 100 "
            f"flagged would be {outcome}.")


def confusion_sentence(report: HoldoutReport, row: ThresholdRow) -> str:
    return (f"On {row.rows:,} holdout rows at threshold {row.threshold:.3g}: {row.tp:,} {_outcome(report)} rows caught, "
            f"{row.fn:,} missed, {row.fp:,} false alarms and {row.tn:,} correctly passed.")


def roc_sentence(report: HoldoutReport) -> str:
    auc = report.metric("roc_auc")
    if auc is None or not np.isfinite(auc.model):
        return "The holdout has a single class, so the ranking cannot be judged."
    return (f"Picking one {_outcome(report)} row and one other at random, the model ranks the {_outcome(report)} "
            f"row higher {auc.model:.0%} of the time (a coin flip: 50%).")


def pr_sentence(report: HoldoutReport, row: ThresholdRow) -> str:
    return (f"At the current threshold, precision is {_pct(row.precision)} and recall {_pct(row.recall)}; a model "
            f"guessing at random keeps precision at {_pct(report.base_rate or 0.0)}, the share of {_outcome(report)} rows.")


def gain_sentence(report: HoldoutReport) -> str:
    if not report.gain:
        return ""
    first = report.gain[0]
    top3 = report.gain[min(2, len(report.gain) - 1)]
    return (f"The tenth of rows the model ranks highest holds {_pct(first.cumulative_found)} of all {_outcome(report)} "
            f"rows ({first.lift:.1f}× the average rate); the top three tenths hold {_pct(top3.cumulative_found)}.")


def calibration_sentence(report: HoldoutReport) -> str:
    if not report.calibration or report.brier is None:
        return ""
    gaps = [abs(b.mean_predicted - b.observed_rate) * b.rows for b in report.calibration]
    gap = sum(gaps) / max(1, sum(b.rows for b in report.calibration))
    quality = "close to" if gap < 0.05 else "off from"
    return (f"Predicted probabilities are {quality} what happens: on average {gap:.1%} away from the observed "
            f"share (Brier score {report.brier:.3f}; always predicting the base rate would score "
            f"{(report.base_rate or 0.0) * (1 - (report.base_rate or 0.0)):.3f}).")


# --- multiclass ------------------------------------------------------------------------------------------
def multiclass_confusion_sentence(report: HoldoutReport) -> str:
    matrix = np.asarray(report.confusion)
    if matrix.size == 0:
        return ""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    correct = np.trace(matrix) / max(1, matrix.sum())
    if off.sum() == 0:
        return f"Every holdout row is predicted correctly ({matrix.sum():,} rows)."
    i, j = np.unravel_index(off.argmax(), off.shape)
    return (f"{correct:.0%} of holdout rows are predicted correctly; the commonest mistake is {report.classes[i]!r} "
            f"taken for {report.classes[j]!r} ({off[i, j]:,} rows).")


def class_scores_sentence(report: HoldoutReport) -> str:
    if not report.class_scores:
        return ""
    worst = min(report.class_scores, key=lambda c: c.f1)
    best = max(report.class_scores, key=lambda c: c.f1)
    return (f"{best.label!r} is recognised best (F1 {best.f1:.2f}); {worst.label!r} worst (F1 {worst.f1:.2f}: it finds "
            f"{_per_100(worst.recall)} of every 100 {worst.label!r} rows).")


# --- regression ------------------------------------------------------------------------------------------
def regression_sentence(report: HoldoutReport, target: str) -> str:
    mae, r2 = report.metric("mae"), report.metric("r2")
    if mae is None or r2 is None:
        return ""
    return (f"Predictions of {target} are off by {mae.model:,.4g} on average (always predicting the training average: "
            f"{mae.baseline:,.4g}); the model explains {max(0.0, r2.model):.0%} of its variation.")


def residual_sentence(report: HoldoutReport) -> str:
    if report.errors is None or not report.errors.counts:
        return ""
    predicted, actual = np.asarray(report.predicted_sample), np.asarray(report.actual_sample)
    bias = float(np.mean(predicted - actual)) if len(actual) else 0.0
    over = float(np.mean(predicted > actual)) if len(actual) else 0.0
    return (f"The model over-predicts {over:.0%} of rows; on average it is {abs(bias):,.4g} too "
            f"{'high' if bias > 0 else 'low'}.")


def column_error_sentence(view: SegmentView) -> str:
    """Where the typical (median) error of a regression model is lowest and highest across a column's values."""
    spread = [(s.error_quantiles[2], s) for s in view.segments if s.error_quantiles]
    if not spread:
        return ""
    (low, low_at), (high, high_at) = min(spread, key=lambda p: p[0]), max(spread, key=lambda p: p[0])
    if len(spread) == 1:
        return f"Where {view.column} is {low_at.value}, the typical error is {low:+,.4g}."
    return (f"The typical (median) error runs from {low:+,.4g} where {view.column} is {low_at.value} to {high:+,.4g} "
            f"where it is {high_at.value}; the boxes hold the middle half of the errors, the whiskers 90%.")


# --- segments --------------------------------------------------------------------------------------------
def segment_sentence(view: SegmentView) -> str:
    label = METRICS[view.metric].label if view.metric in METRICS else view.metric
    worse = [s for s in view.segments if s.much_worse]
    unjudged = [s.value for s in view.segments if not np.isfinite(s.metric)]
    note = (f" No {label} for {', '.join(unjudged[:3])}: those rows hold a single class." if unjudged else "")
    if not worse:
        return f"No value of {view.column} has a much worse {label} than overall ({view.overall:.3f}).{note}"
    names = "; ".join(_segment_evidence(s) for s in worse[:3])
    return f"Much worse {label} than overall ({view.overall:.3f}) where {view.column} is {names}.{note}"


def _segment_evidence(segment: Segment) -> str:
    """"east: 0.612, 90% interval 0.55–0.67, on 480 rows, 130 of them the outcome" — what the call rests on."""
    interval = (f", 90% interval {segment.low:.3f}–{segment.high:.3f}" if segment.low is not None
                and segment.high is not None else "")
    positives = (f", {segment.positives:,} of them the outcome of interest" if segment.positives is not None else "")
    return f"{segment.value}: {segment.metric:.3f}{interval}, on {segment.rows:,} rows{positives}"


# --- the headline and warnings ---------------------------------------------------------------------------
def shap_caption(shap: ShapSummary, holdout_rows: int) -> str:
    """What the drivers rest on: "How the SHAP values were found: exact TreeSHAP, LightGBM's own; from all 1,409
    holdout rows. They explain the log-odds of 'Yes'." """
    rows = (f"all {shap.rows:,} holdout rows" if shap.rows >= holdout_rows
            else f"{shap.rows:,} of the {holdout_rows:,} holdout rows, drawn at random")
    return f"How the SHAP values were found: {shap.method}; from {rows}. They explain {shap.explained}."


def accuracy_note(report: HoldoutReport) -> str:
    """Why a yes/no model's accuracy is below the majority baseline, when its decision threshold is the cause:
    a low cut-off flags rows with a small chance of the rare outcome to find more of them."""
    accuracy = report.metric("accuracy")
    threshold = report.default_threshold
    if (report.task != "binary" or accuracy is None or threshold is None or report.holdout_table is None
            or accuracy.model >= accuracy.baseline):
        return ""
    at_threshold, at_half = report.holdout_table.at(threshold), report.holdout_table.at(0.5)
    if threshold >= 0.5 or at_half.accuracy <= accuracy.model:
        return ""
    outcome = repr(report.positive_class)
    return (f"Accuracy ({accuracy.model:.3f}) is below the majority baseline ({accuracy.baseline:.3f}) because the "
            f"decision threshold, {threshold:.2f}, also flags rows with a small chance of {outcome} to find more of "
            f"them: it trades accuracy for catching {outcome} ({at_threshold.recall:.0%} of them found). Labelling "
            f"by the most probable class would give accuracy {at_half.accuracy:.3f} and find "
            f"{at_half.recall:.0%} of them.")


def importance_sentence(report: HoldoutReport) -> str:
    """How concentrated the explanations are: "income and debt carry 71% of the model's explanations"."""
    if report.shap is None or not report.shap.effects:
        return ""
    effects = report.shap.effects
    total = sum(e.mean_abs for e in effects) or 1.0
    top = effects[:2]
    names = " and ".join(e.feature for e in top)
    return f"{names} carry {sum(e.mean_abs for e in top) / total:.0%} of the model's explanations on the explained holdout rows."


def drivers_sentence(report: HoldoutReport, top: int = 3) -> str:
    if report.shap is None or not report.shap.effects:
        return ""
    drivers = "; ".join(e.direction for e in report.shap.effects[:top]) + "."
    if is_useless(report):
        return f"{USELESS_DRIVERS} Its top drivers: {drivers}"
    return "Top drivers: " + drivers


USELESS_DRIVERS = ("This model is barely better than guessing, so its drivers describe what it happened to pick up, "
                   "not what decides the outcome.")
USELESS_THRESHOLD = ("No cut-off is worth using: the model ranks rows barely better than chance, so any threshold "
                     "flags rows about as well as picking them at random.")


def summary(report: HoldoutReport, row: ThresholdRow | None, target: str) -> list[str]:
    """The plain-language summary: what the model is worth, then its top drivers."""
    lines = []
    if report.task == "binary" and row is not None:
        lines.append(worth_sentence(report, row))
    elif report.task == "multiclass":
        lines.append(multiclass_confusion_sentence(report))
    elif report.task == "regression":
        lines.append(regression_sentence(report, target))
    lines.append(drivers_sentence(report))
    return [line for line in lines if line]


def is_useless(report: HoldoutReport) -> bool:
    head = headline_metric(report)
    if report.task == "binary":
        auc = report.metric("roc_auc")
        return auc is not None and np.isfinite(auc.model) and auc.model < USELESS_ROC_AUC
    if report.task == "multiclass":
        accuracy = report.metric("accuracy")
        return accuracy is not None and accuracy.model - accuracy.baseline < USELESS_GAIN
    return head.name == "r2" and head.model < USELESS_R2


def warnings(report: HoldoutReport) -> list[ModelWarning]:
    """Everything a user should know before deploying, most serious first."""
    found: list[ModelWarning] = []
    head = headline_metric(report)
    if is_useless(report):
        found.append(ModelWarning("useless", Severity.BLOCKER,
                                  f"This model is barely better than the naive baseline: {interval_words(head)}, where "
                                  f"a baseline that {head.baseline_rule} scores {head.baseline:.3f}. Its columns may "
                                  "not hold what decides the target; do not rely on it or deploy it as it is."))
    if report.shap is not None and len(report.shap.effects) >= 2:
        total = sum(e.mean_abs for e in report.shap.effects)
        top = report.shap.effects[0]
        if total > 0 and top.mean_abs / total > DOMINANT_SHARE:
            found.append(ModelWarning("dominant_column", Severity.CAUTION,
                                      f"{top.feature} alone carries {top.mean_abs / total:.0%} of the model's explanations. "
                                      "If its value is only known after the outcome (or is a copy of it), the model "
                                      "will do far worse on new rows: check that column."))
    positives = round((report.base_rate or 0.0) * report.rows) if report.task == "binary" else None
    if report.rows < FEW_HOLDOUT_ROWS or (positives is not None and positives < FEW_POSITIVES):
        what = f"{report.rows:,} holdout rows" + (f", {positives:,} of them {report.positive_class!r}"
                                                   if positives is not None else "")
        found.append(ModelWarning("few_rows", Severity.CAUTION,
                                  f"Judged on only {what}: the figures can move a lot on new data. More rows would "
                                  "make them firmer."))
    if head.interval_width is not None and head.interval_width > WIDE_INTERVAL and head.name in ("roc_auc", "accuracy", "r2"):
        found.append(ModelWarning("wide_interval", Severity.CAUTION,
                                  f"The {METRICS[head.name].label} is uncertain: {interval_words(head)}."))
    weak = [(v, s) for v in report.segments for s in v.segments if s.much_worse]
    if weak:
        named = "; ".join(f"{v.column} = {s.value}" for v, s in weak[:3])
        found.append(ModelWarning("weak_segment", Severity.CAUTION,
                                  f"The model does much worse for some groups of rows ({named}); see Performance by "
                                  "segment before using it for them."))
    return found
