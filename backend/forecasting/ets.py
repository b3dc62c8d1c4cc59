"""Exponential smoothing (Holt-Winters, from statsmodels) per series: a level, an optional damped trend and
an optional additive or multiplicative season, the form chosen by AICc on each series' own history. The
statistical counterpart of the lag model: strong on one or a few long, regular series, where a global model
has little to learn across. Optional: offered only where statsmodels is installed.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.forecasting.backtest_run import Forecaster
from backend.forecasting.baselines import naive
from backend.forecasting.frequency import DetectedFrequency
from backend.forecasting.series import PERIOD, SERIES_KEY

ETS = "exponential smoothing"
FASTEST_FIT_S = 0.02  # a series' forms are never fitted faster than this


def ets_available() -> bool:
    return importlib.util.find_spec("statsmodels") is not None


@dataclass(frozen=True)
class EtsForm:
    trend: str | None  # None or "add" (always damped: undamped trends overshoot over long horizons)
    seasonal: str | None  # None, "add" or "mul"


def candidate_forms(values: np.ndarray, season: int) -> list[EtsForm]:
    """The forms a series can support: a season only with two of them in its history, a multiplicative one only
    for positive values, a trend only with a few periods beyond the season."""
    seasonal: list[str | None] = [None]
    if season > 1 and len(values) >= 2 * season:
        seasonal += ["add", *(["mul"] if np.all(values > 0) else [])]
    trends: list[str | None] = [None, *(["add"] if len(values) >= max(10, season + 4) else [])]
    return [EtsForm(t, s) for t in trends for s in seasonal]


def ets_forecast(values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The forecast of the form with the lowest AICc (naive when no form fits)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values = np.asarray(values, dtype=float)
    best: tuple[float, np.ndarray] | None = None
    if len(values) >= 4 and np.nanstd(values) > 0:
        for form in candidate_forms(values, season):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and overflow warnings of hopeless forms
                try:
                    fitted = ExponentialSmoothing(values, trend=form.trend, damped_trend=form.trend is not None,
                                                  seasonal=form.seasonal,
                                                  seasonal_periods=season if form.seasonal else None,
                                                  initialization_method="estimated").fit()
                except (ValueError, np.linalg.LinAlgError):
                    continue
            forecast = np.asarray(fitted.forecast(horizon), dtype=float)
            if np.isfinite(fitted.aicc) and np.all(np.isfinite(forecast)) and (best is None or fitted.aicc < best[0]):
                best = (float(fitted.aicc), forecast)
    return best[1] if best is not None else naive(values, horizon)


def ets_forecaster(frequency: DetectedFrequency, target: str) -> Forecaster:
    """A backtestable forecaster: every series fitted on the history it is given."""
    season = frequency.frequency.season_length

    def forecast(history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        del future  # each series from its own past only
        parts = []
        for key, series in history.groupby(SERIES_KEY, sort=False):
            predicted = ets_forecast(series[target].to_numpy(float), horizon, season)
            parts.append(pd.DataFrame({SERIES_KEY: key, PERIOD: frequency.next_periods(series[PERIOD].iloc[-1], horizon),
                                       "forecast": predicted}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[SERIES_KEY, PERIOD, "forecast"])

    return forecast


def affordable(history: pd.DataFrame, target: str, season: int, seconds: float, runs: int) -> bool:
    """Whether fitting every series `runs` times (the backtest folds and the final fit) fits in `seconds`,
    judged by the time one series takes."""
    first = next(iter(history.groupby(SERIES_KEY, sort=False)[target]), None)
    if first is None or history[SERIES_KEY].nunique() * runs * FASTEST_FIT_S > seconds:
        return False  # hopeless even at the fastest fit: not worth timing one
    started = time.monotonic()
    ets_forecast(first[1].to_numpy(float), 1, season)
    per_series = time.monotonic() - started
    return per_series * history[SERIES_KEY].nunique() * runs <= seconds
