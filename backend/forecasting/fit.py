"""A forecast from prepared series: FLAML searches the regressor of the global lag model on the time-ordered
lag table, every method is backtested against the baselines, the best is refitted on the whole history and
forecasts the horizon with its intervals. Pure: frames in, a typed result out (the worker, the Snowflake
procedure and the benchmarks call it alike).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.forecasting.backtest_run import (
    NAIVE,
    SEASONAL_NAIVE,
    BacktestReport,
    Forecaster,
    baseline_forecaster,
    combined_forecaster,
    interval_widths,
    run_backtest,
    with_intervals,
)
from backend.forecasting.frequency import Frequency
from backend.forecasting.lag_model import LagPlan, Regressor, lag_forecaster, lag_plan, training_table
from backend.forecasting.series import SERIES_KEY, PreparedSeries

LAG_MODEL = "lag model"
COMBINED = "lag model and seasonal naive, averaged"
# The search's share of the budget; the backtests (every method on every fold) and the final refit share the rest.
SEARCH_SHARE = 0.6
SEARCH_ESTIMATORS = ("lgbm", "rf", "extra_tree", "xgboost")


@dataclass(frozen=True)
class Driver:
    feature: str
    words: str  # "the same month last year"
    importance: float  # share of the model's total split gain


@dataclass
class ForecastResult:
    chosen: str  # the method that forecasts (LAG_MODEL, COMBINED, SEASONAL_NAIVE or NAIVE)
    learner: str | None  # the lag model's regressor family, when it was searched
    backtest: BacktestReport
    forecasts: pd.DataFrame  # SERIES_KEY, PERIOD, forecast, lower_80, upper_80, lower_95, upper_95
    drivers: list[Driver] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.backtest.mean(self.chosen) < self.backtest.mean(SEASONAL_NAIVE)


def searched_regressor(features: pd.DataFrame, targets: np.ndarray, budget_s: float, seed: int
                       ) -> tuple[Regressor, str, Callable[[], dict[str, float]]]:
    """FLAML's best regressor for the lag table (validated on its latest fifth), as a refittable regressor;
    its family; and its feature importances (by name) once refitted."""
    from flaml import AutoML
    from sklearn.base import clone

    automl = AutoML()
    automl.fit(features, targets, task="regression", metric="mae", time_budget=max(1.0, budget_s), seed=seed,
               estimator_list=list(SEARCH_ESTIMATORS), eval_method="holdout", split_type="time",
               split_ratio=0.2, n_jobs=1, verbose=0, retrain_full=True, force_cancel=True)
    template = automl.model.estimator
    fitted: dict[str, object] = {}

    def regressor(x: pd.DataFrame, y: np.ndarray) -> Callable[[pd.DataFrame], np.ndarray]:
        model = clone(template).fit(x, y)
        fitted["model"], fitted["columns"] = model, list(x.columns)
        columns = list(x.columns)
        return lambda rows: np.asarray(model.predict(rows[columns]), dtype=float)

    def importances() -> dict[str, float]:
        model, columns = fitted.get("model"), fitted.get("columns")
        values = getattr(model, "feature_importances_", None)
        if values is None or columns is None:
            return {}
        total = float(np.sum(values)) or 1.0
        return {str(c): float(v) / total for c, v in zip(columns, values, strict=True)}

    return regressor, str(automl.best_estimator), importances


def fit_forecast(prepared: PreparedSeries, target: str, horizon: int, *, budget_s: float = 60.0, seed: int = 0,
                 folds: int = 3, known_columns: tuple[str, ...] = ()) -> ForecastResult:
    """Backtest the lag model (its regressor searched within SEARCH_SHARE of the budget) and the baselines,
    refit the best on all history, and forecast `horizon` periods of every series with intervals."""
    started = time.monotonic()
    history, frequency = prepared.history, prepared.frequency
    shortest = int(history.groupby(SERIES_KEY).size().min())
    plan: LagPlan = lag_plan(frequency, shortest)
    methods: dict[str, Forecaster] = {NAIVE: baseline_forecaster(frequency, target, seasonal=False),
                                      SEASONAL_NAIVE: baseline_forecaster(frequency, target, seasonal=True)}
    learner: str | None = None
    importances: Callable[[], dict[str, float]] | None = None
    features, targets, _ = training_table(history, plan, frequency, target, known_columns)
    if len(features) >= 2 * horizon:
        regressor, learner, importances = searched_regressor(features, targets, SEARCH_SHARE * budget_s, seed)
        methods[LAG_MODEL] = lag_forecaster(plan, frequency, target, regressor, known_columns)
        methods[COMBINED] = combined_forecaster(methods[LAG_MODEL], methods[SEASONAL_NAIVE])
    report = run_backtest(history, frequency, target, horizon, methods, folds=folds)
    chosen = report.best()
    forecasts = methods[chosen](history, horizon)  # the lag model refits on every period here
    forecasts = with_intervals(forecasts, history, target, interval_widths(report.errors[chosen], horizon))
    uses_lags = chosen in (LAG_MODEL, COMBINED)
    drivers = _drivers(plan, frequency.frequency, importances() if uses_lags and importances else {})
    return ForecastResult(chosen, learner if uses_lags else None, report, forecasts, drivers,
                          time.monotonic() - started)


def _drivers(plan: LagPlan, frequency: Frequency, importances: dict[str, float]) -> list[Driver]:
    words = plan.feature_words(frequency)
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    return [Driver(name, words.get(name, name), share) for name, share in ranked if share > 0]
