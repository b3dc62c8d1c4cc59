"""A forecast from prepared series: FLAML searches the regressor of the global lag model on the time-ordered
lag table, every method is backtested against the baselines, the best is refitted on the whole history and
forecasts the horizon with its intervals. Pure: frames in, a typed result out (the worker, the Snowflake
procedure and the benchmarks call it alike).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.forecasting.backtest import backtest_folds
from backend.forecasting.backtest_run import (
    NAIVE,
    SEASONAL_NAIVE,
    BacktestReport,
    Forecaster,
    baseline_forecaster,
    combination_backtest,
    first_fold_origin,
    interval_widths,
    run_backtest,
)
from backend.forecasting.frequency import Frequency
from backend.forecasting.lag_model import (
    FittedRegressor,
    LagPlan,
    Regressor,
    fit_lag_model,
    lag_forecaster,
    lag_plan,
    lightgbm_regressor,
    training_table,
)
from backend.forecasting.model import (
    COMBINED,
    LAG_MODEL,
    PER_SERIES,
    ForecastModel,
    averaged_methods,
    combination_name,
)
from backend.forecasting.per_series import affordable, per_series_forecaster, statsmodels_available
from backend.forecasting.series import PERIOD, SERIES_KEY, PreparedSeries

# The search's share of the budget; the backtests (every method on every fold) and the final refit share the rest.
SEARCH_SHARE = 0.6
# Averages of any two and any three single methods are candidates too (not only of the best-ranked: seasonal naive
# ranks last on most series, yet averaged with two others it damps their errors where they misjudge a season).
COMBINATION_SIZES = (2, 3)
# Each per-series method (exponential smoothing, theta) is tried when fitting every series on every fold fits
# in this share of the budget.
PER_SERIES_SHARE = 0.3
SEARCH_ESTIMATORS = ("lgbm", "rf", "extra_tree", "xgboost")


@dataclass(frozen=True)
class Driver:
    feature: str
    words: str  # "the same month last year"
    importance: float  # share of the model's own importance (LightGBM: splits; forests: impurity decrease)


@dataclass
class ForecastResult:
    model: ForecastModel  # the chosen method fitted on all history: what forecasts, now and on a schedule
    learner: str | None  # the lag model's regressor family, when it was searched
    backtest: BacktestReport
    forecasts: pd.DataFrame  # SERIES_KEY, PERIOD, forecast, lower_80, upper_80, lower_95, upper_95
    drivers: list[Driver] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def chosen(self) -> str:
        return self.model.method

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.backtest.mean(self.chosen) < self.backtest.mean(SEASONAL_NAIVE)


# Called as each method's backtest is scored: method, its mean score, seconds since the fit began.
MethodScored = Callable[[str, float, float], None]


def searched_regressor(features: pd.DataFrame, targets: np.ndarray, budget_s: float, seed: int,
                       trial_limit_s: float | None = None) -> tuple[Regressor, str]:
    """FLAML's best regressor for the lag table (validated on its latest fifth), as a refittable regressor,
    and its family; no configuration that trains for longer than `trial_limit_s` is kept."""
    from flaml import AutoML
    from sklearn.base import clone

    automl = AutoML()
    # FLAML normalises a search range whose two ends meet (a small table shrinks some ranges to one value) by
    # dividing by its zero width and copes with the NaN; numpy's warning about it would tell no one anything.
    with np.errstate(divide="ignore", invalid="ignore"):
        automl.fit(features, targets, task="regression", metric="mae", time_budget=max(1.0, budget_s), seed=seed,
                   estimator_list=list(SEARCH_ESTIMATORS), eval_method="holdout", split_type="time",
                   split_ratio=0.2, n_jobs=1, verbose=0, retrain_full=True, force_cancel=True,
                   train_time_limit=max(0.5, trial_limit_s) if trial_limit_s else None)
    template = automl.model.estimator

    def regressor(x: pd.DataFrame, y: np.ndarray) -> FittedRegressor:
        # FLAML imputed for its own trials; refitted alone, forests and extra trees refuse NaN (a known-in-advance
        # value missing in a gap, an average over periods before a series began): training medians stand in
        medians = x.median(numeric_only=True).reindex(x.columns).fillna(0.0)
        fill = tuple(float(v) for v in medians)
        return FittedRegressor(clone(template).fit(x.fillna(medians), y), tuple(x.columns), fill)

    return regressor, str(automl.best_estimator)


def fit_forecast(prepared: PreparedSeries, target: str, horizon: int, *, budget_s: float = 60.0, seed: int = 0,
                 folds: int | None = None, known_columns: tuple[str, ...] = (), search: bool = True,
                 metric: str = "mase",
                 on_scored: MethodScored | None = None) -> ForecastResult:
    """Backtest the baselines, exponential smoothing and theta (each when affordable), the lag model (its regressor searched
    within SEARCH_SHARE of the budget; LightGBM's defaults without `search`) and averages of them, on `folds`
    rolling origins (default: backtest_folds); refit the robust_choice by mean `metric` (a FORECAST_METRICS
    name) on all history and forecast `horizon` periods of every series with intervals. `on_scored` hears each
    method's score as it is known."""
    started = time.monotonic()
    history, frequency = prepared.history, prepared.frequency
    sizes = history.groupby(SERIES_KEY).size()
    shortest = int(sizes.min())
    plan: LagPlan = lag_plan(frequency, shortest)
    folds = folds or backtest_folds(len(sizes), shortest, horizon, frequency.frequency.season_length)

    def scored(part: BacktestReport) -> BacktestReport:
        for method in part.errors:
            if on_scored is not None:
                on_scored(method, part.mean(method, metric), time.monotonic() - started)
        return part

    baselines: dict[str, Forecaster] = {NAIVE: baseline_forecaster(frequency, target, seasonal=False),
                                        SEASONAL_NAIVE: baseline_forecaster(frequency, target, seasonal=True)}
    report = scored(run_backtest(history, frequency, target, horizon, baselines, folds=folds))
    for name, method in PER_SERIES.items() if search and statsmodels_available() else ():
        if affordable(history, target, frequency.frequency, method, PER_SERIES_SHARE * budget_s,
                      folds + 1):
            statistical = {name: per_series_forecaster(frequency, target, method)}
            report = report.merged(scored(run_backtest(history, frequency, target, horizon, statistical, folds=folds)))
    learner: str | None = None
    regressor: Regressor | None = None
    first_origin = first_fold_origin(history, horizon, folds)
    # the search sees only what precedes every fold (its own validation must not be the folds' test periods),
    # and the lag model is tried only when the earliest fold still leaves each series rows to learn from
    before_folds = history[history[PERIOD] < first_origin]
    features, targets, _ = training_table(before_folds, plan, frequency, target, known_columns)
    earliest = int(before_folds.groupby(SERIES_KEY).size().min())
    if len(features) >= 2 * horizon and earliest > plan.reach:
        if search:
            remaining = budget_s - (time.monotonic() - started)
            # each refit (one per fold, and the final one) must fit in what the search leaves, with as much
            # again for the lag tables and the recursive forecasts: no trial may train for longer than that
            refit_s = (1 - SEARCH_SHARE) * remaining / (folds + 1) / 2
            regressor, learner = searched_regressor(features, targets, SEARCH_SHARE * remaining, seed, refit_s)
        else:
            regressor, learner = lightgbm_regressor(), "lgbm"
        lagged = {LAG_MODEL: lag_forecaster(plan, frequency, target, regressor, known_columns)}
        report = report.merged(scored(run_backtest(history, frequency, target, horizon, lagged, folds=folds)))
        # its average with seasonal naive, from the fold forecasts both already made (the lag model not refitted)
        report = report.merged(scored(combination_backtest(report, averaged_methods(COMBINED), COMBINED, history,
                                                           frequency, target, horizon, folds=folds)))
    individual = [m for m in report.ranked(metric) if m not in (NAIVE, COMBINED)]
    for size in COMBINATION_SIZES:  # forecasts averaged are robust where one method alone misjudges a series
        for members in itertools.combinations(individual, size):  # each in rank order, so its name is stable
            if set(members) == set(averaged_methods(COMBINED)):
                continue  # that average is COMBINED, already backtested
            report = report.merged(scored(combination_backtest(report, members, combination_name(members), history,
                                                               frequency, target, horizon, folds=folds)))
    chosen = robust_choice(report, metric)
    lag_model = (fit_lag_model(history, plan, frequency, target, regressor, known_columns)
                 if LAG_MODEL in {chosen, *averaged_methods(chosen)} and regressor is not None else None)
    uses_lags = lag_model is not None
    model = ForecastModel(chosen, target, frequency, horizon, interval_widths(report.errors[chosen], horizon),
                          lag_model)
    forecasts = model.forecast(history, prepared.future)
    drivers = _drivers(plan, frequency.frequency, lag_model.predict_scaled.importances() if lag_model else {})
    return ForecastResult(model, learner if uses_lags else None, report, forecasts, drivers,
                          time.monotonic() - started)


def robust_choice(report: BacktestReport, metric: str = "mase") -> str:
    """The method to forecast with: of those within noise of the best backtest score (one standard error,
    BacktestReport.within_noise_of_best), the one averaging the most methods, the better score breaking ties.
    A few folds cannot rank close methods reliably, and an average of close methods holds up better on a future
    none of them has seen than whichever of them happened to score best (the one-standard-error rule, leaning
    to the average rather than the simplest). Nothing that fails to beat seasonal naive displaces it."""
    best = report.best(metric)
    baseline = report.mean(SEASONAL_NAIVE, metric)
    contenders = [m for m in report.within_noise_of_best(metric)
                  if m == best or not np.isfinite(baseline) or report.mean(m, metric) < baseline]
    return max(contenders, key=lambda m: len(averaged_methods(m)))  # the first of the largest: the better score


def _drivers(plan: LagPlan, frequency: Frequency, importances: dict[str, float]) -> list[Driver]:
    words = plan.feature_words(frequency)
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    return [Driver(name, words.get(name, name), share) for name, share in ranked if share > 0]
