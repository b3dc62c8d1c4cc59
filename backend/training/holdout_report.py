"""The report on the holdout kept aside: predictions, intervals, segments, explanations, the leaderboard on the
holdout and the monitoring baseline, within the time set aside for them before the search."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import ExplanationRefusedError
from backend.evaluation.report import ShapSummary, build_report
from backend.evaluation.segments import segment_views
from backend.evaluation.shap_summary import shap_summary
from backend.explain import explain_in_chunks, global_importance
from backend.metrics import METRICS
from backend.model_bundle import ModelBundle
from backend.monitoring import MonitoringBaseline, baseline_of
from backend.training.config import TrainConfig
from backend.training.ensemble import score_predictions
from backend.training.results import FittedModel, TrainingResult
from backend.version_records import LeaderboardEntry, Score, VersionMetrics

logger = logging.getLogger(__name__)

# The global explanations (importance, beeswarm, directions) come from the whole holdout up to this many rows.
EXPLAIN_ROWS = 1000
# The holdout rows kept for the Evaluate step's one-row explanations (all of them, up to this many).
HOLDOUT_SAMPLE_ROWS = 20_000
# The holdout report's time, set aside before the search (see report_reserve; measured on run_wall's tables).
REPORT_BASE_S = 1.0
REPORT_S_PER_CELL = 4.5e-6
REPORT_MAX_SHARE = 0.3


def report_reserve(holdout_rows: int, features: int, available_s: float) -> float:
    """Seconds set aside for the holdout report (predictions, intervals, segments, explanations, the monitoring
    baseline) and writing the results: measured at about REPORT_BASE_S plus REPORT_S_PER_CELL per holdout
    row × column, and never more than REPORT_MAX_SHARE of the time there is."""
    estimate = REPORT_BASE_S + REPORT_S_PER_CELL * holdout_rows * max(1, features)
    return max(0.0, min(estimate, REPORT_MAX_SHARE * available_s))


def holdout_report(fitted: FittedModel, config: TrainConfig, train_frame: pd.DataFrame,
            holdout: pd.DataFrame, deadline: float | None = None) -> TrainingResult:
    bundle = fitted.bundle
    y_holdout = holdout[config.target]
    proba = bundle.predict_proba(holdout) if bundle.is_classification else None
    positive = bundle.outcome_of_interest if bundle.is_binary else None
    if bundle.is_binary and proba is not None:
        positive_probability = proba[:, bundle.positive_index]
        labels = bundle.labels_from_probability(positive_probability)
    else:
        positive_probability, labels = None, bundle.predict(holdout)
    # explanations may take half of the time left: the other half is the rest of the report
    shap_deadline = None if deadline is None else time.monotonic() + 0.5 * max(0.0, deadline - time.monotonic())
    importance, summary, shap_note = _explain_holdout(bundle, holdout, train_frame, config.seed, shap_deadline)
    by_importance = [row["feature"] for row in importance]
    columns = by_importance + [f for f in bundle.feature_names if f not in by_importance]
    columns += [c for c in config.extra_columns if c in holdout.columns and c not in columns]
    segments = segment_views(config.task, holdout, columns, y_holdout, labels, positive_probability, positive)
    report = build_report(config.task, y_true=y_holdout, labels=labels, proba=proba, y_train=train_frame[config.target],
                          classes=bundle.classes, positive=positive, train_rows=len(train_frame),
                          validation=fitted.validation, validation_rows=fitted.validation_rows,
                          threshold=bundle.threshold, segments=segments, shap=summary, seed=config.seed,
                          shap_note=shap_note)
    scores = VersionMetrics({m.name: Score(m.model, m.baseline) for m in report.metrics}, len(train_frame),
                            len(holdout))
    buffer = io.BytesIO()
    holdout.head(HOLDOUT_SAMPLE_ROWS).to_parquet(buffer, index=False)
    leaderboard = holdout_leaderboard(fitted, holdout, config)
    return TrainingResult(bundle=bundle, metrics=scores, leaderboard=leaderboard, importance=importance,
                          holdout_parquet=buffer.getvalue(),
                          report=report, baseline=_monitoring_baseline(bundle, train_frame, holdout, labels,
                                                                       positive_probability))


def holdout_leaderboard(fitted: FittedModel, holdout: pd.DataFrame, config: TrainConfig) -> list[LeaderboardEntry]:
    """The leaderboard with each family's score on the holdout (the chosen model's, and each family's best as
    the search and the blend fitted it), best first; families not fitted outside the search keep none and
    follow. Labels by the most probable class, so every row is scored alike."""
    bundle = fitted.bundle
    truth = holdout[config.target].reset_index(drop=True)
    positive = bundle.outcome_of_interest if bundle.is_binary else None
    model_input = bundle.model_input(holdout)

    def predictions(models: list[Any]) -> np.ndarray:
        return np.mean([np.asarray(m.predict_proba(model_input) if bundle.is_classification else m.predict(model_input),
                                   dtype=float) for m in models], axis=0)

    scored = []
    for entry in fitted.leaderboard:
        models = [bundle.estimator] if entry.estimator == bundle.best_estimator else fitted.family_models.get(
            entry.estimator, [])
        holdout_score = None
        if models and len(truth):
            try:
                holdout_score = score_predictions(config.metric, config.task, truth, predictions(models),
                                                  bundle.classes, positive)
            except Exception:  # a leaderboard figure must never cost the user the model
                logger.exception("holdout score of %s failed", entry.estimator)
        scored.append(replace(entry, holdout_score=holdout_score if holdout_score is None or
                              np.isfinite(holdout_score) else None))
    sign = -1.0 if METRICS[config.metric].greater_is_better else 1.0
    return sorted(scored, key=lambda e: (e.holdout_score is None, sign * (e.holdout_score or 0.0)))


def _explain_holdout(bundle: ModelBundle, holdout: pd.DataFrame, train_frame: pd.DataFrame, seed: int,
                     deadline: float | None = None) -> tuple[list[dict[str, Any]], ShapSummary | None, str]:
    """Global importance and the SHAP summary from the whole holdout, or EXPLAIN_ROWS of it drawn at random, in
    chunks while `deadline` allows (a forest of deep trees explains slowly; the summary says how many rows it
    rests on); when there are none, why (a failed explanation must never cost the user a trained model)."""
    sample = holdout if len(holdout) <= EXPLAIN_ROWS else holdout.sample(EXPLAIN_ROWS, random_state=seed)
    try:
        explanation = explain_in_chunks(bundle, sample, train_frame, deadline)
    except ExplanationRefusedError as exc:
        logger.warning("SHAP values refused: %s", exc.message)
        return [], None, f"Explanations were not stored: {exc.message}"
    except Exception:
        logger.exception("SHAP explanations failed")
        return [], None, "SHAP explanations could not be computed for this model."
    return (global_importance(explanation).to_dict("records"), shap_summary(bundle, explanation, sample), "")


def _monitoring_baseline(bundle: ModelBundle, train_frame: pd.DataFrame, holdout: pd.DataFrame, labels: Any,
                         positive_probability: np.ndarray | None) -> MonitoringBaseline | None:
    """Inputs binned over every training-sample row; the prediction over the holdout's (the model's honest
    output: on its own training rows it is more confident than on new ones)."""
    try:
        rows = pd.concat([train_frame[bundle.feature_names], holdout[bundle.feature_names]], ignore_index=True)
        predicted = pd.Series(positive_probability if positive_probability is not None else labels)
        return baseline_of(rows, bundle.feature_names, predicted, f"the model's predictions for {len(holdout):,} "
                                                                  "holdout rows")
    except Exception:  # monitoring must never cost the user a trained model
        logger.exception("the monitoring baseline could not be computed")
        return None
