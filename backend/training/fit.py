"""The FLAML fit itself: a pure function from a training frame to a model bundle, its blend and threshold,
then the report on the holdout (holdout_report), all within the run's deadline.

Used by the local worker process and the Snowflake stored procedure alike.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from backend.errors import InvalidTargetError
from backend.evaluation.thresholds import best_f1_threshold, cutoff_grid, threshold_table
from backend.metrics import METRICS
from backend.model_bundle import MemberRecipe, ModelBundle, clean_config, prepare_features, to_model_frame
from backend.task_detection import Task
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.ensemble import (
    BlendOutcome,
    HeldOut,
    blend_candidates,
    candidates_from_log,
    out_of_fold,
)
from backend.training.holdout_report import holdout_report, report_reserve
from backend.training.job_files import read_complete_lines
from backend.training.recipe import fit_kwargs
from backend.training.results import FittedModel, TrainingResult
from backend.version_records import Feature, LeaderboardEntry
from backend.warehouse.base import column_kind
from backend.weighted_ensemble import WeightedEnsemble

if TYPE_CHECKING:  # for the annotation only: FLAML itself is imported inside the functions that train
    from flaml.automl.model import BaseEstimator

logger = logging.getLogger(__name__)

# With blending on, the search gets this share of the budget and the blend the rest (measured on the
# quality benchmark: 60/40 beat 80/20 and a blanket FLAML `ensemble=True`, which stacks past the budget).
SEARCH_SHARE = 0.6
# LightGBM's own defaults as the search's first lgbm trial: FLAML's frugal start (4 trees of 4 leaves)
# can spend a short budget before it gets near a configuration this good.
LGBM_DEFAULTS = {"n_estimators": 100, "num_leaves": 31, "min_child_samples": 20, "learning_rate": 0.1,
                 "log_max_bin": 8, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1 / 1024}


# Without a blend, a yes/no model's validation predictions (for its decision threshold) get this share of the
# time after the search; when folds do not fit it, one validation split is fitted instead.
VALIDATION_SHARE = 0.25
MIN_SEARCH_S = 1.0
# FLAML refits its best configuration on every training row after the search, outside the search's own budget
# (retrain_full=True: a "budget" refit is skipped when time is short, leaving a model fitted on the search's
# split alone, which the recipe and reproduce.py would then not match). Its time is set aside before the
# search: about this long per training row × column (a boosted model's fit measured on run_wall's tables,
# rounded up), at most REFIT_MAX_SHARE of the time there is.
REFIT_S_PER_CELL = 1e-6
REFIT_MAX_SHARE = 0.25
# Past a very short budget the threshold's folds still get this long (their cost is known from the search's
# trials, so they are only started when they fit it): a threshold from one small split is much noisier.
VALIDATION_FLOOR_S = 2.0
def outcome_of_interest(classes: list[Any], y_train: pd.Series, chosen: str | None) -> Any:
    """The class named `chosen` (compared as text, as the Target step shows it), else the smaller class in
    the training rows (the last in sorted order on a tie)."""
    if chosen is not None:
        for value in classes:
            if str(value) == chosen:
                return value
        raise InvalidTargetError(f"The outcome of interest {chosen!r} is not among the target's values in the "
                                 f"training rows ({', '.join(map(str, classes))}).",
                                 hint="Choose the outcome again on the Target step.")
    counts = y_train.value_counts()
    # the smaller class; on a tie the first as text, as the Target step proposes it
    return min(classes, key=lambda value: (int(counts.get(value, 0)), str(value)))


def search_metric(metric: str, classes: list[Any], positive: Any) -> Any:
    """What FLAML optimises: its own metric by name, except F1 for an outcome of interest that is not the last
    class (FLAML's F1 scores its label 1, the class that sorts last), given as F1 of that class."""
    if metric != "f1" or positive is None or classes.index(positive) == len(classes) - 1:
        return metric
    encoded = classes.index(positive)  # FLAML label-encodes classification targets in sorted order

    def f1_of_the_outcome(x_val: Any, y_val: Any, estimator: Any, *args: Any, **kwargs: Any) -> tuple[float, dict]:
        from sklearn.metrics import f1_score

        score = float(f1_score(np.asarray(y_val) == encoded, np.asarray(estimator.predict(x_val)) == encoded))
        return 1.0 - score, {"f1": score}

    return f1_of_the_outcome


def feature_specs(config: TrainConfig) -> list[Feature]:
    """Each feature's name, SQL type and the kind the model treats it as (a text column read as numbers is
    numeric, one read as dates a datetime)."""
    def kind(name: str, sql_type: str) -> str:
        return "numeric" if name in config.casts else "datetime" if name in config.date_casts else column_kind(sql_type)

    return [Feature(n, t, kind(n, t)) for n, t in config.features]


def split_for_holdout(frame: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows the model learns from and the holdout it is judged on (time-ordered: the latest rows)."""
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
          on_iteration: Callable[[], None] | None = None, deadline: float | None = None) -> TrainingResult:
    """Fit FLAML on `frame` and report on a holdout kept aside, all by `deadline` (time.monotonic(); None: the
    config's budget from now); FLAML writes one JSON line per trial to `log_path`.

    The report's time is set aside before the search starts, so the search, the blend and the threshold share
    what is left. With `from_log`, no search runs: the best configuration already in `log_path` is retrained
    (what "stop and keep the best model so far" does after the search was interrupted). `on_iteration` is called
    in this thread as each search iteration starts (after the previous trial's line is in the log)."""
    deadline = time.monotonic() + config.time_budget_s if deadline is None else deadline
    train_frame, holdout = split_for_holdout(training_rows(frame, config), config)
    reserve = report_reserve(len(holdout), len(config.features), deadline - time.monotonic())
    fitted = fit_bundle(train_frame, config, log_path, from_log=from_log, on_iteration=on_iteration,
                        deadline=deadline - reserve)
    return holdout_report(fitted, config, train_frame, holdout, deadline)


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
               on_iteration: Callable[[], None] | None = None, deadline: float | None = None) -> FittedModel:
    """The search itself on rows already prepared (target present and typed): the fitted bundle, the
    leaderboard and (binary) the decision threshold chosen on validation rows, by `deadline` (time.monotonic();
    None: the config's budget from now). Used by `train` and by the quality benchmark, which keeps its own
    holdout."""
    from flaml import AutoML

    features = feature_specs(config)
    x_train, y_train = to_model_frame(prepare_features(train_frame, features)), train_frame[config.target]
    classes = sorted(pd.unique(y_train).tolist()) if config.task.is_classification else []
    binary = config.task is Task.BINARY and len(classes) == 2
    # resolved before the search, so a name that matches no class fails at once, not after the budget
    positive = outcome_of_interest(classes, y_train, config.positive_class) if binary else None

    started = time.monotonic()
    deadline = started + config.time_budget_s if deadline is None else deadline
    automl = AutoML()
    extra = fit_kwargs(config, y_train)
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
        # FLAML normalises a search range whose two ends meet (a small table shrinks some ranges to one value) by
        # dividing by its zero width and copes with the NaN; numpy's warning about it would tell no one anything.
        with _iteration_hook(on_iteration) as verbose, np.errstate(divide="ignore", invalid="ignore"):
            automl.fit(
                x_train, y_train, task=task,
                metric=search_metric(config.metric, classes, positive),
                time_budget=_search_budget(config, deadline - started, binary, len(x_train)),
                seed=config.seed,
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
    best = leaderboard[0].estimator if from_log and leaderboard else str(automl.best_estimator)
    estimator: BaseEstimator | WeightedEnsemble = automl._trained_estimator
    outcome = None if from_log or not config.ensemble else _blend(automl, x_train, y_train, config, log_path,
                                                                  deadline=deadline, fit_kwargs=extra,
                                                                  positive=positive)
    blended = outcome.result if outcome is not None else None
    recipe = _single_recipe(automl, log_path, len(x_train), from_log)
    families = dict(outcome.family_models) if outcome is not None else {}
    families[best] = [automl._trained_estimator]  # the search's best as the user would get it
    if blended is not None:
        estimator, best, recipe = blended.ensemble, "ensemble", blended.recipe
        leaderboard.insert(0, LeaderboardEntry("ensemble", blended.score, blended.ensemble.describe(),
                                               blended.best_single_score))
    bundle = ModelBundle(
        task=config.task.value, target=config.target, target_sql_type=config.target_sql_type, features=features,
        classes=classes, best_estimator=best, flaml_task=automl._state.task,
        transformer=automl._transformer, estimator=estimator,
        label_transformer=automl._label_transformer, config=config.to_dict(),
        positive_class=positive, recipe=recipe,
    )
    if not binary:
        return FittedModel(bundle, leaderboard, family_models=families)
    held = _validation_predictions(automl, x_train, y_train, config, log_path, outcome, fit_kwargs=extra,
                                   deadline=deadline)
    if held is None:
        return FittedModel(bundle, leaderboard, family_models=families)
    truth = (y_train.iloc[held.rows] == bundle.positive_class).to_numpy()
    probability = held.predictions[:, bundle.positive_index]
    table = threshold_table(truth, probability, cutoff_grid(probability))
    bundle.threshold = best_f1_threshold(table)
    return FittedModel(bundle, leaderboard, table, len(held.rows), families)


def _single_recipe(automl: Any, log_path: Path, rows: int, from_log: bool) -> tuple[MemberRecipe, ...]:
    """FLAML's final model as a recipe: its best configuration refitted on every training row."""
    if not from_log:
        return (MemberRecipe(str(automl.best_estimator), clean_config(automl.best_config)),)
    best = candidates_from_log(read_complete_lines(log_path), rows, fits_per_trial=1, limit=1)
    return (MemberRecipe(best[0].learner, clean_config(best[0].config)),) if best else ()


def _learner_data(automl: Any, x_train: pd.DataFrame, y_train: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows as FLAML's learners take them: transformed input, encoded labels."""
    x = automl._state.task.preprocess(x_train, automl._transformer)
    y = (np.asarray(automl._label_transformer.transform(y_train)) if automl._label_transformer is not None
         else y_train.to_numpy())
    return x, y


def _validation_predictions(automl: Any, x_train: pd.DataFrame, y_train: pd.Series, config: TrainConfig,
                            log_path: Path, outcome: BlendOutcome | None, *, fit_kwargs: dict[str, Any],
                            deadline: float) -> HeldOut | None:
    """Predictions of the chosen model for training rows it did not learn from: the blend's own held-out
    predictions, or the best model's that the blend made, else the best configuration refitted out-of-fold
    (folds if they fit before `deadline`, one split regardless). None (logged) when none can be made."""
    blended = outcome.result if outcome is not None else None
    if blended is not None and blended.held_out_rows is not None and blended.held_out_predictions is not None:
        return HeldOut(blended.held_out_rows, blended.held_out_predictions)
    if outcome is not None and outcome.best_held_out is not None:
        return outcome.best_held_out
    state = automl._state
    cv = getattr(state, "eval_method", "holdout") == "cv"
    candidates = candidates_from_log(read_complete_lines(log_path), len(x_train),
                                     fits_per_trial=config.cv_folds if cv else 1, limit=1)
    if not candidates:
        return None
    x, y = _learner_data(automl, x_train, y_train)
    try:
        return out_of_fold(state.learner_classes[candidates[0].learner], state.task, candidates[0], x, y,
                           config.task, deadline=max(deadline, time.monotonic() + VALIDATION_FLOOR_S),
                           seed=config.seed, folds=config.cv_folds, validation=config.validation,
                           split_ratio=config.split_ratio, time_ordered=config.time_column is not None,
                           fit_kwargs=fit_kwargs)
    except Exception:  # a threshold must never cost the user the model: it keeps the most probable class
        logger.exception("validation predictions failed; the model keeps the 0.5 threshold")
        return None


def _search_budget(config: TrainConfig, available_s: float, binary: bool, rows: int) -> float:
    """The search's share of the time there is once FLAML's refit of its best model on every row is set aside:
    the rest goes to the blend, or (yes/no models without one) to the validation predictions the decision
    threshold is chosen on."""
    refit = min(REFIT_S_PER_CELL * rows * max(1, len(config.features)), REFIT_MAX_SHARE * max(0.0, available_s))
    share = SEARCH_SHARE if config.ensemble else (1 - VALIDATION_SHARE) if binary else 1.0
    return max(MIN_SEARCH_S, (available_s - refit) * share)


def _blend(automl: Any, x_train: pd.DataFrame, y_train: pd.Series, config: TrainConfig, log_path: Path, *,
           deadline: float, fit_kwargs: dict[str, Any], positive: Any) -> BlendOutcome | None:
    """Blend the search's best models in the time left (no blend: FLAML's single best model stands)."""
    state = automl._state
    cv = getattr(state, "eval_method", "holdout") == "cv"
    candidates = candidates_from_log(read_complete_lines(log_path), len(x_train),
                                     fits_per_trial=config.cv_folds if cv else 1)
    x, y = _learner_data(automl, x_train, y_train)
    try:
        return blend_candidates(state.learner_classes, state.task, x, y, y_train.reset_index(drop=True), candidates,
                     config.task, config.metric, deadline=deadline, seed=config.seed, folds=config.cv_folds,
                     validation=config.validation, split_ratio=config.split_ratio,
                     time_ordered=config.time_column is not None, fit_kwargs=fit_kwargs, positive=positive)
    except Exception:  # a failed blend must never cost the user the model the search found
        logger.exception("blending failed; keeping the search's best model")
        return None


def leaderboard_from_log(log_path: Path, config: TrainConfig) -> list[LeaderboardEntry]:
    """Best validation score per model family, from FLAML's per-trial log, best first."""
    metric = METRICS[config.metric]
    best: dict[str, float] = {}
    for record in read_complete_lines(log_path):
        loss = record.get("validation_loss")
        if loss is None or not np.isfinite(float(loss)):
            continue
        learner = str(record.get("learner"))
        best[learner] = min(best.get(learner, float("inf")), float(loss))
    return sorted((LeaderboardEntry(name, metric.score_from_loss(loss)) for name, loss in best.items()),
                  key=lambda entry: entry.score, reverse=metric.greater_is_better)


