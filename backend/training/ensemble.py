"""Blending the search's best models: greedy ensemble selection (Caruana et al., 2004) on held-out predictions.

FLAML returns its single best configuration; the AutoML tools it competes with (H2O, AutoGluon) blend
several. After the search, the best configuration of each model family and the next-best overall are
refitted on folds, each candidate's out-of-fold predictions are kept, and models are added one at a time
(with replacement) to the average that most improves the chosen metric. Every step checks the clock: a
blend that cannot finish inside the budget is dropped and FLAML's own best model stands.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from backend.metrics import METRICS, metric_value
from backend.model_bundle import ALL_ROWS, SPLIT_ROWS, MemberRecipe, clean_config
from backend.task_detection import Task

# re-exported: bundles pickled before the class moved name it here
from backend.weighted_ensemble import WeightedEnsemble

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 8
SELECTION_ROUNDS = 40
CV_MAX_ROWS = 100_000  # beyond this a single validation split is both cheap and reliable enough


@dataclass(frozen=True)
class Candidate:
    learner: str
    config: dict[str, Any]
    loss: float
    seconds_per_full_fit: float  # estimated from the search's own trial time


def candidates_from_log(records: list[dict[str, Any]], n_rows: int, fits_per_trial: int,
                        limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The best configuration of each family, then the next-best overall, distinct, best first."""
    trials = sorted((r for r in records if _finite(r.get("validation_loss")) and r.get("learner")),
                    key=lambda r: float(r["validation_loss"]))
    best_per_family: dict[str, dict[str, Any]] = {}
    for record in trials:
        best_per_family.setdefault(record["learner"], record)
    ordered = list(best_per_family.values()) + [r for r in trials if r not in best_per_family.values()]
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for record in ordered:
        config = {k: v for k, v in record.get("config", {}).items() if k != "FLAML_sample_size"}
        key = f"{record['learner']}:{sorted(config.items())}"
        if key in seen:
            continue
        seen.add(key)
        rows_seen = max(1, int(record.get("sample_size") or n_rows))
        per_fit = float(record.get("trial_time") or 0.0) / max(1, fits_per_trial) * n_rows / rows_seen
        chosen.append(Candidate(record["learner"], config, float(record["validation_loss"]), per_fit))
        if len(chosen) == limit:
            break
    return chosen


def _finite(value: object) -> bool:
    try:
        return bool(np.isfinite(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def select_weights(predictions: list[np.ndarray], loss: Any, rounds: int = SELECTION_ROUNDS) -> np.ndarray:
    """Greedy forward selection with replacement: each round adds the candidate whose inclusion in the running
    average lowers `loss` most. Returns one weight per candidate (summing to 1)."""
    counts = np.zeros(len(predictions))
    blend: np.ndarray | None = None
    for step in range(rounds):
        trials = [(loss(p if blend is None else (blend * step + p) / (step + 1)), i) for i, p in enumerate(predictions)]
        _, best = min(trials)
        counts[best] += 1
        blend = predictions[best] if blend is None else (blend * step + predictions[best]) / (step + 1)
    return counts / counts.sum()


@dataclass
class BlendResult:
    ensemble: WeightedEnsemble
    score: float  # the chosen metric on the held-out predictions, as users read it
    best_single_score: float
    held_out_rows: np.ndarray | None = None  # positions in the training rows of the blend's held-out predictions
    held_out_predictions: np.ndarray | None = None  # the blend's own predictions for those rows
    recipe: tuple[MemberRecipe, ...] = ()  # how to fit the members again


@dataclass(frozen=True)
class HeldOut:
    """A model's predictions for training rows it was not fitted on (out-of-fold, or one validation split)."""

    rows: np.ndarray  # positions in the training rows
    predictions: np.ndarray  # class probabilities (classification) or values, one row per position


class OutOfTime(Exception):
    pass


def _uses_cv(validation: str, rows: int, time_ordered: bool) -> bool:
    return validation == "cv" or (validation == "auto" and rows <= CV_MAX_ROWS and not time_ordered)


def out_of_fold(learner_class: type, flaml_task: Any, candidate: Candidate, x: pd.DataFrame, y: np.ndarray,
                task: Task, *, deadline: float, seed: int, folds: int, validation: str, split_ratio: float,
                time_ordered: bool, fit_kwargs: dict[str, Any]) -> HeldOut:
    """`candidate`'s predictions for every training row from fits that did not see it (the search's own
    validation scheme: folds, or one split). When folds do not fit before `deadline`, one validation split is
    fitted regardless: a decision threshold must come from rows the model did not learn from."""
    use_cv = _uses_cv(validation, len(x), time_ordered)
    for cv, limit in ((use_cv, deadline), (False, float("inf"))):
        splits = _splits(x, y, task, cv, folds, split_ratio, time_ordered, seed)
        try:
            predictions, _ = _held_out_predictions(learner_class, flaml_task, candidate, x, y, splits, task, limit,
                                                   fit_kwargs)
        except OutOfTime:
            logger.info("validation predictions: folds do not fit the time left; using one split")
            continue
        rows = np.concatenate([valid for _, valid in splits])
        return HeldOut(rows, predictions[rows])
    raise AssertionError("unreachable: the last attempt has no deadline")


@dataclass(frozen=True)
class BlendOutcome:
    """The blend, if one beat the search's best model alone; and that best model's held-out predictions, which
    the blend had to make anyway (a decision threshold is chosen on them when no blend stands)."""

    result: BlendResult | None
    best_held_out: HeldOut | None
    # each family's best configuration as the blend fitted it (its fold models, or its one split's model), to be
    # scored on the holdout beside the chosen model
    family_models: dict[str, list[Any]] = field(default_factory=dict)
    not_better: bool = False  # a blend was formed but did not beat the best single model by more than noise


def blend(learner_classes: dict[str, type], flaml_task: Any, x: pd.DataFrame, y: np.ndarray, y_original: pd.Series,
          candidates: list[Candidate], task: Task, metric: str, *, deadline: float, seed: int, folds: int,
          validation: str, split_ratio: float, time_ordered: bool, fit_kwargs: dict[str, Any],
          positive: object = None, judge_gain: bool = True) -> BlendResult | None:
    """Fit candidates on folds, choose weights on their held-out predictions, return the blend.

    `x` is already transformed for the learners and `y` encoded as they expect; `y_original` holds the labels
    the metric reads. None when fewer than two candidates fit the time left, the blend is a single model, or
    (with `judge_gain`) it does not beat the best single model by more than noise.
    """
    return blend_candidates(learner_classes, flaml_task, x, y, y_original, candidates, task, metric,
                            deadline=deadline, seed=seed, folds=folds, validation=validation, split_ratio=split_ratio,
                            time_ordered=time_ordered, fit_kwargs=fit_kwargs, positive=positive,
                            judge_gain=judge_gain).result


def blend_candidates(learner_classes: dict[str, type], flaml_task: Any, x: pd.DataFrame, y: np.ndarray,
                     y_original: pd.Series, candidates: list[Candidate], task: Task, metric: str, *, deadline: float,
                     seed: int, folds: int, validation: str, split_ratio: float, time_ordered: bool,
                     fit_kwargs: dict[str, Any], positive: object = None, judge_gain: bool = True) -> BlendOutcome:
    """`blend`, with the best candidate's held-out predictions kept whether or not a blend stands. Without
    `judge_gain` any blend the selection forms is kept (for callers that judge it themselves, and for tests of
    the blend's own workings)."""
    use_cv = _uses_cv(validation, len(x), time_ordered)
    splits = _splits(x, y, task, use_cv, folds, split_ratio, time_ordered, seed)
    fits = len(splits) + (1 if use_cv else 0)  # CV refits each chosen member on every row; holdout keeps its fit
    affordable = _affordable(candidates, fits, deadline)
    if not affordable or affordable[0] is not candidates[0]:
        return BlendOutcome(None, None)  # without the search's best model, a blend of the rest can be much worse
    classes = sorted(pd.unique(y_original).tolist()) if task.is_classification else []
    held_out = np.concatenate([valid for _, valid in splits])
    truth = y_original.iloc[held_out]
    predictions: list[np.ndarray] = []
    fitted: list[list[Any]] = []
    kept: list[Candidate] = []
    for candidate in affordable:
        try:
            preds, models = _held_out_predictions(learner_classes[candidate.learner], flaml_task, candidate, x, y,
                                                  splits, task, deadline, fit_kwargs)
        except OutOfTime:
            logger.info("ensemble: out of time after %d candidates", len(predictions))
            break
        except Exception:  # one learner failing on a fold must not cost the blend (nor the model)
            logger.exception("ensemble: candidate %s failed", candidate.learner)
            continue
        if task.is_classification and preds.shape[1] != len(classes):
            continue  # a fold missed a class: its probabilities do not line up
        predictions.append(preds[held_out])
        fitted.append(models)
        kept.append(candidate)
    best = HeldOut(held_out, predictions[0]) if kept and kept[0] is candidates[0] else None
    families: dict[str, list[Any]] = {}
    for candidate, models in zip(kept, fitted, strict=True):
        families.setdefault(candidate.learner, models)  # candidates come best first: each family's best
    if len(predictions) < 2 or best is None:
        return BlendOutcome(None, best, families)
    affordable = kept
    metric_info = METRICS[metric]

    def loss(pred: np.ndarray) -> float:
        value = score_predictions(metric, task, truth, pred, classes, positive)
        return -value if metric_info.greater_is_better else value

    weights = select_weights(predictions, loss)
    chosen = [i for i, w in enumerate(weights) if w > 0]
    if len(chosen) < 2:
        return BlendOutcome(None, best, families)
    blended = sum(weights[i] * predictions[i] for i in chosen)
    if judge_gain and not _blending_helps(predictions, truth, metric, task, classes, positive, seed):
        logger.info("ensemble: the blend does not beat the best single model by more than noise")
        return BlendOutcome(None, best, families, not_better=True)
    members = []
    try:
        for i in chosen:
            if use_cv:
                members.append(_fit(learner_classes[affordable[i].learner], flaml_task, affordable[i], x, y,
                                    np.arange(len(x)), deadline, fit_kwargs))
            else:
                members.append(fitted[i][0])
    except OutOfTime:
        logger.info("ensemble: out of time refitting members")
        return BlendOutcome(None, best, families)
    ensemble = WeightedEnsemble(members, [float(weights[i]) for i in chosen], [affordable[i].learner for i in chosen],
                                task.is_classification)
    best_single = min(loss(p) for p in predictions)
    sign = -1 if metric_info.greater_is_better else 1
    recipe = tuple(MemberRecipe(affordable[i].learner, clean_config(affordable[i].config), float(weights[i]),
                                ALL_ROWS if use_cv else SPLIT_ROWS) for i in chosen)
    return BlendOutcome(BlendResult(ensemble, sign * loss(blended), sign * best_single, held_out, blended, recipe),
                        best, families)


def _blending_helps(predictions: list[np.ndarray], truth: pd.Series, metric: str, task: Task, classes: list[object],
                    positive: object, seed: int) -> bool:
    """Whether blending beats the best single model (predictions[0]) on rows its weights were not chosen on:
    weights chosen on one half of the held-out rows, the blend judged against the best model on the other (on
    the rows it was tuned on, a blend always looks a little better than it is)."""
    order = np.random.default_rng(seed).permutation(len(truth))
    tune, judge = order[: len(order) // 2], order[len(order) // 2:]
    sign = -1.0 if METRICS[metric].greater_is_better else 1.0

    def loss_on_tune(pred: np.ndarray) -> float:
        return sign * score_predictions(metric, task, truth.iloc[tune], pred, classes, positive)

    try:
        weights = select_weights([p[tune] for p in predictions], loss_on_tune)
    except ValueError:  # a half without a class the metric needs: too few rows to tell
        return False
    blended = sum(w * p[judge] for w, p in zip(weights, predictions, strict=True))
    judged = truth.iloc[judge].reset_index(drop=True)
    return clearly_better(np.asarray(blended), predictions[0][judge], judged, metric, task, classes, positive, seed)


NOISE_ROWS = 20_000  # held-out rows the noise check resamples (a random subset of more)
NOISE_ROUNDS = 100
NOISE_QUANTILE = 0.1  # the blend must be better in at least 90% of the resamples


def clearly_better(blended: np.ndarray, single: np.ndarray, truth: pd.Series, metric: str, task: Task,
                   classes: list[object], positive: object, seed: int) -> bool:
    """Whether the blend's predictions beat the best single model's by more than noise on the same held-out
    rows: in a paired bootstrap of those rows, the blend's metric is better in at least 90% of resamples."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(truth))
    if len(rows) > NOISE_ROWS:
        rows = rng.choice(rows, NOISE_ROWS, replace=False)
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    gains = []
    for _ in range(NOISE_ROUNDS):
        pick = rng.choice(rows, len(rows), replace=True)
        sample = truth.iloc[pick]
        if task.is_classification and sample.nunique() < 2:
            continue
        try:
            gain = sign * (score_predictions(metric, task, sample, blended[pick], classes, positive)
                           - score_predictions(metric, task, sample, single[pick], classes, positive))
        except ValueError:  # a resample without a class the metric needs
            continue
        if np.isfinite(gain):
            gains.append(gain)
    return len(gains) >= NOISE_ROUNDS // 2 and float(np.quantile(gains, NOISE_QUANTILE)) > 0


def score_predictions(metric: str, task: Task, truth: pd.Series, pred: np.ndarray, classes: list[object],
                      positive: object = None) -> float:
    """`metric` of predictions (class probabilities, labelled by the most probable class; or values)."""
    if task.is_classification:
        proba = np.clip(pred, 1e-15, 1.0)
        labels = np.asarray(classes, dtype=object)[pred.argmax(axis=1)]
        return metric_value(metric, truth, labels, proba, classes, positive)
    return metric_value(metric, truth, pred, None, classes)


def _splits(x: pd.DataFrame, y: np.ndarray, task: Task, use_cv: bool, folds: int, split_ratio: float,
            time_ordered: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(x)
    if use_cv:
        splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed)
                    if task.is_classification and pd.Series(y).value_counts().min() >= folds
                    else KFold(folds, shuffle=True, random_state=seed))
        return [(train, valid) for train, valid in splitter.split(x, y)]
    train = split_rows(n, split_ratio, time_ordered, seed)
    return [(train, np.setdiff1d(np.arange(n), train))]


def split_rows(n: int, split_ratio: float, time_ordered: bool, seed: int) -> np.ndarray:
    """The training positions of a blend's single validation split (the rest validate), sorted."""
    cut = round(n * (1 - split_ratio))
    order = np.arange(n) if time_ordered else np.random.default_rng(seed).permutation(n)
    return np.sort(order[:cut])


def _affordable(candidates: list[Candidate], fits: int, deadline: float) -> list[Candidate]:
    """Candidates in order whose estimated cost still fits the time left (leaving a fifth spare)."""
    left = (deadline - time.monotonic()) * 0.8
    chosen = []
    for candidate in candidates:
        cost = candidate.seconds_per_full_fit * fits
        if cost <= left:
            chosen.append(candidate)
            left -= cost
    return chosen


def _fit(learner_class: type, flaml_task: Any, candidate: Candidate, x: pd.DataFrame, y: np.ndarray,
         rows: np.ndarray, deadline: float, fit_kwargs: dict[str, Any]) -> Any:
    """Fit one member on `rows`, in full. A fit the clock cannot afford is not started (OutOfTime), rather
    than cut short: a member stopped early (FLAML's `budget`) would not be the model its held-out predictions
    were scored with, and a blend of such members can be much worse than any one of them."""
    expected = candidate.seconds_per_full_fit * len(rows) / max(1, len(x))
    if time.monotonic() + expected > deadline:
        raise OutOfTime
    model = learner_class(task=flaml_task, n_jobs=-1, **candidate.config)
    kwargs = {k: v[rows] for k, v in fit_kwargs.items()}
    model.fit(x.iloc[rows], y[rows], **kwargs)
    if time.monotonic() > deadline:
        raise OutOfTime
    return model


def _held_out_predictions(learner_class: type, flaml_task: Any, candidate: Candidate, x: pd.DataFrame,
                          y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], task: Task, deadline: float,
                          fit_kwargs: dict[str, Any]) -> tuple[np.ndarray, list[Any]]:
    out: np.ndarray | None = None
    models = []
    for train, valid in splits:
        model = _fit(learner_class, flaml_task, candidate, x, y, train, deadline, fit_kwargs)
        pred = np.asarray(model.predict_proba(x.iloc[valid]) if task.is_classification
                          else model.predict(x.iloc[valid]), dtype=float)
        if out is None:
            out = np.zeros((len(x), *pred.shape[1:]))
        out[valid] = pred
        models.append(model)
    assert out is not None
    return out, models
