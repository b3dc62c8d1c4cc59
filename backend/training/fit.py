"""The FLAML fit itself: a pure function from a training frame to a model bundle and its report.

Used by the local worker process and (later) by the Snowflake stored procedure alike.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from backend.errors import InvalidTargetError
from backend.explain import explain_rows, global_importance
from backend.metrics import METRICS, evaluate
from backend.model_bundle import ModelBundle, prepare_features, to_model_frame
from backend.registry import sha256_bytes
from backend.task_detection import Task
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.ensemble import BlendResult, blend, candidates_from_log
from backend.training.job_files import BUNDLE, HOLDOUT, read_complete_lines
from backend.warehouse.base import column_kind

logger = logging.getLogger(__name__)

EXPLAIN_ROWS = 300
HOLDOUT_SAMPLE_ROWS = 1000
# With blending on, the search gets this share of the budget and the blend the rest (measured on the
# quality benchmark: 60/40 beat 80/20 and a blanket FLAML `ensemble=True`, which stacks past the budget).
SEARCH_SHARE = 0.6
# LightGBM's own defaults as the search's first lgbm trial: FLAML's frugal start (4 trees of 4 leaves)
# can spend a short budget before it gets near a configuration this good.
LGBM_DEFAULTS = {"n_estimators": 100, "num_leaves": 31, "min_child_samples": 20, "learning_rate": 0.1,
                 "log_max_bin": 8, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1 / 1024}


@dataclass
class TrainingResult:
    bundle: ModelBundle
    metrics: dict[str, dict[str, float]]
    leaderboard: list[dict[str, Any]]
    importance: list[dict[str, Any]]
    holdout_parquet: bytes
    train_rows: int
    holdout_rows: int


def result_summary(result: TrainingResult, bundle_bytes: bytes) -> dict[str, Any]:
    """What a finished run reports to the app (local worker and Snowflake procedure alike): metrics, leaderboard,
    importance, versions, row counts and the sha256 of the model and holdout files the app will verify."""
    return {"metrics": result.metrics, "leaderboard": result.leaderboard, "importance": result.importance,
            "best_estimator": result.bundle.best_estimator, "versions": result.bundle.versions,
            "train_rows": result.train_rows, "holdout_rows": result.holdout_rows,
            "sha256": {BUNDLE: sha256_bytes(bundle_bytes), HOLDOUT: sha256_bytes(result.holdout_parquet)}}


def feature_specs(config: TrainConfig) -> list[dict[str, str]]:
    """Each feature's name, SQL type and the kind the model treats it as (a cast text column is numeric)."""
    return [{"name": n, "sql_type": t, "kind": "numeric" if n in config.casts else column_kind(t)}
            for n, t in config.features]


def _split(frame: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    if config.time_column is not None:
        # time-ordered: learn from the past, judge on the latest rows, as the model will be used
        cut = round(len(frame) * (1 - config.holdout_ratio))
        return frame.iloc[:cut], frame.iloc[cut:]
    y = frame[config.target]
    stratify = None
    if config.task.is_classification and y.value_counts().min() >= 2:
        stratify = y
    train, holdout = train_test_split(frame, test_size=config.holdout_ratio, random_state=config.seed,
                                      stratify=stratify)
    return train, holdout


def _target_series(frame: pd.DataFrame, config: TrainConfig) -> pd.Series:
    y = frame[config.target]
    if config.task is Task.REGRESSION:
        return pd.to_numeric(y, errors="coerce").astype(float)
    if column_kind(config.target_sql_type) == "text":
        return y.astype(object)
    return y


def check_training_frame(frame: pd.DataFrame, config: TrainConfig) -> None:
    """Raise InvalidTargetError when the rows cannot support the task."""
    y = frame[config.target].dropna()
    if len(y) < MIN_TRAINING_ROWS:
        raise InvalidTargetError(
            f"Only {len(y)} rows have a value for {config.target!r}; Flurry needs at least {MIN_TRAINING_ROWS}.",
            hint="Pick a table with more rows or a target with fewer missing values.")
    if y.nunique() < 2:
        raise InvalidTargetError(f"{config.target!r} has a single value in the rows with a value.",
                                 hint="Pick a target whose values vary.")


def train(frame: pd.DataFrame, config: TrainConfig, log_path: Path, *, from_log: bool = False,
          on_iteration: Callable[[], None] | None = None) -> TrainingResult:
    """Fit FLAML on `frame` within the config's budget and report on a holdout kept aside; FLAML writes one
    JSON line per trial to `log_path`.

    With `from_log`, no search runs: the best configuration already in `log_path` is retrained (what
    "stop and keep the best model so far" does after the search was interrupted). `on_iteration` is called in
    this thread as each search iteration starts (after the previous trial's line is in the log)."""
    train_frame, holdout = _split(training_rows(frame, config), config)
    bundle, leaderboard = fit_bundle(train_frame, config, log_path, from_log=from_log, on_iteration=on_iteration)
    return _report(bundle, leaderboard, config, train_frame, holdout)


def training_rows(frame: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """Rows with a target, in time order when asked, the target typed for the task. Raises InvalidTargetError."""
    frame = frame[frame[config.target].notna()]
    if config.time_column is not None:
        order = pd.to_datetime(frame[config.time_column], errors="coerce")
        frame = frame.assign(__order=order).sort_values("__order", kind="stable").drop(columns="__order")
    frame = frame.reset_index(drop=True)
    check_training_frame(frame, config)
    return frame.assign(**{config.target: _target_series(frame, config)})


class _IterationHandler(logging.Handler):
    """Calls back on FLAML's "iteration N, current learner …" record, which FLAML logs in the searching
    thread as each iteration starts."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.INFO)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("iteration "):
            self._callback()


@contextlib.contextmanager
def _iteration_hook(callback: Callable[[], None] | None) -> Iterator[int]:
    """FLAML's verbosity for the search: silent, or (with a callback) INFO records delivered to our handler
    only. FLAML adds its own console handler only to a logger that has none."""
    if callback is None:
        yield 0
        return
    flaml_logger = logging.getLogger("flaml.automl.logger")
    handler, propagate = _IterationHandler(callback), flaml_logger.propagate
    flaml_logger.addHandler(handler)
    flaml_logger.propagate = False
    try:
        yield 3
    finally:
        flaml_logger.removeHandler(handler)
        flaml_logger.propagate = propagate


def fit_bundle(train_frame: pd.DataFrame, config: TrainConfig, log_path: Path, *, from_log: bool = False,
               on_iteration: Callable[[], None] | None = None) -> tuple[ModelBundle, list[dict[str, Any]]]:
    """The search itself on rows already prepared (target present and typed): the fitted bundle and the
    leaderboard. Used by `train` and by the quality benchmark, which keeps its own holdout."""
    from flaml import AutoML

    features = feature_specs(config)
    x_train, y_train = to_model_frame(prepare_features(train_frame, features)), train_frame[config.target]

    started = time.monotonic()
    automl = AutoML()
    extra: dict[str, Any] = {}
    if config.class_weight == "balanced":
        shares = y_train.value_counts(normalize=True)
        # only passed when set: FLAML 2.7's holdout split breaks on an explicit sample_weight=None
        extra["sample_weight"] = (1.0 / (len(shares) * y_train.map(shares))).to_numpy()
    task = "regression" if config.task is Task.REGRESSION else "classification"
    split_type = "time" if config.time_column else None
    if from_log:
        automl.retrain_from_log(log_file_name=str(log_path), X_train=x_train, y_train=y_train, task=task,
                                eval_method=config.validation, n_splits=config.cv_folds, n_jobs=-1,
                                split_ratio=config.split_ratio, split_type=split_type,
                                train_full=True, train_best=True, **extra)
    else:
        estimators = list(config.estimators) if config.estimators else "auto"
        starts = {"lgbm": LGBM_DEFAULTS} if estimators == "auto" or "lgbm" in estimators else {}
        with _iteration_hook(on_iteration) as verbose:
            automl.fit(
                x_train, y_train, task=task,
                metric=config.metric, time_budget=_search_budget(config), seed=config.seed,
                log_file_name=str(log_path), log_type="all", verbose=verbose,
                n_jobs=-1, retrain_full=True, force_cancel=True, estimator_list=estimators, starting_points=starts,
                eval_method=config.validation, n_splits=config.cv_folds, split_ratio=config.split_ratio,
                split_type=split_type or "auto", **extra,
            )
    if getattr(automl, "_trained_estimator", None) is None:
        raise InvalidTargetError("No model could be trained within the time budget.",
                                 hint="Give training more time, or use fewer rows.")
    leaderboard = leaderboard_from_log(log_path, config)
    # retrain_from_log leaves AutoML.best_estimator unset; the log's best record names the family
    best = leaderboard[0]["estimator"] if from_log and leaderboard else str(automl.best_estimator)
    estimator = automl._trained_estimator
    blended = None if from_log or not config.ensemble else _blend(automl, x_train, y_train, config, log_path,
                                                                  deadline=started + config.time_budget_s,
                                                                  fit_kwargs=extra)
    if blended is not None:
        estimator, best = blended.ensemble, "ensemble"
        leaderboard.insert(0, {"estimator": "ensemble", "score": blended.score, "blend": blended.ensemble.describe(),
                               "best_single_same_rows": blended.best_single_score})
    classes = sorted(pd.unique(y_train).tolist()) if config.task.is_classification else []
    bundle = ModelBundle(
        task=config.task.value, target=config.target, target_sql_type=config.target_sql_type, features=features,
        classes=classes, best_estimator=best, flaml_task=automl._state.task,
        transformer=automl._transformer, estimator=estimator,
        label_transformer=automl._label_transformer, config=config.to_dict(),
    )
    return bundle, leaderboard


def _search_budget(config: TrainConfig) -> float:
    return config.time_budget_s * SEARCH_SHARE if config.ensemble else config.time_budget_s


def _blend(automl: Any, x_train: pd.DataFrame, y_train: pd.Series, config: TrainConfig, log_path: Path, *,
           deadline: float, fit_kwargs: dict[str, Any]) -> BlendResult | None:
    """Blend the search's best models in the time left, or None (FLAML's single best model stands)."""
    state = automl._state
    cv = getattr(state, "eval_method", "holdout") == "cv"
    candidates = candidates_from_log(read_complete_lines(log_path), len(x_train),
                                     fits_per_trial=config.cv_folds if cv else 1)
    x = state.task.preprocess(x_train, automl._transformer)
    y = (np.asarray(automl._label_transformer.transform(y_train)) if automl._label_transformer is not None
         else y_train.to_numpy())
    try:
        return blend(state.learner_classes, state.task, x, y, y_train.reset_index(drop=True), candidates,
                     config.task, config.metric, deadline=deadline, seed=config.seed, folds=config.cv_folds,
                     validation=config.validation, split_ratio=config.split_ratio,
                     time_ordered=config.time_column is not None, fit_kwargs=fit_kwargs)
    except Exception:  # a failed blend must never cost the user the model the search found
        logger.exception("blending failed; keeping the search's best model")
        return None


def leaderboard_from_log(log_path: Path, config: TrainConfig) -> list[dict[str, Any]]:
    """Best validation score per model family, from FLAML's per-trial log, best first."""
    metric = METRICS[config.metric]
    best: dict[str, float] = {}
    for record in read_complete_lines(log_path):
        loss = record.get("validation_loss")
        if loss is None or not np.isfinite(float(loss)):
            continue
        learner = str(record.get("learner"))
        best[learner] = min(best.get(learner, float("inf")), float(loss))
    return sorted(({"estimator": name, "score": metric.score_from_loss(loss)} for name, loss in best.items()),
                  key=lambda row: row["score"], reverse=metric.greater_is_better)


def _report(bundle: ModelBundle, leaderboard: list[dict[str, Any]], config: TrainConfig,
            train_frame: pd.DataFrame, holdout: pd.DataFrame) -> TrainingResult:
    y_holdout = holdout[config.target]
    proba = bundle.predict_proba(holdout) if bundle.is_classification else None
    scores = evaluate(config.task, y_holdout, bundle.predict(holdout), proba, train_frame[config.target],
                      bundle.classes)
    sample = holdout.sample(min(len(holdout), EXPLAIN_ROWS), random_state=config.seed)
    try:
        importance = global_importance(explain_rows(bundle, sample, background=train_frame)).to_dict("records")
    except Exception:  # explanations must never cost the user a trained model
        logger.exception("global SHAP importance failed")
        importance = []
    buffer = io.BytesIO()
    holdout.head(HOLDOUT_SAMPLE_ROWS).to_parquet(buffer, index=False)
    return TrainingResult(bundle=bundle, metrics=scores, leaderboard=leaderboard, importance=importance,
                          holdout_parquet=buffer.getvalue(), train_rows=len(train_frame), holdout_rows=len(holdout))
