"""Statistical methods fitted on each series alone (exponential smoothing, theta): the counterpart of the
global lag model, strong on one or a few long, regular series, where a global model has little to learn
across. Each is a function of one series' values; this module makes it a backtestable forecaster and judges
whether fitting every series on every fold fits a budget. Optional: offered only where statsmodels is installed.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from backend.forecasting.backtest_run import Forecaster
from backend.forecasting.frequency import DetectedFrequency, Frequency
from backend.forecasting.series import PERIOD, SERIES_KEY

# (a series' values, oldest first; horizon; how often it has a value) → the next `horizon` values
SeriesForecast = Callable[[np.ndarray, int, Frequency], np.ndarray]
FASTEST_FIT_S = 0.005  # a series is never fitted faster than this (theta: ~7 ms)


def statsmodels_available() -> bool:
    return importlib.util.find_spec("statsmodels") is not None


def per_series_forecaster(frequency: DetectedFrequency, target: str, method: SeriesForecast) -> Forecaster:
    """A backtestable forecaster: every series fitted on the history it is given (it keeps no state between
    forecasts, so a re-forecast refits on the newest history)."""
    def forecast(history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        del future  # each series from its own past only
        parts = []
        for key, series in history.groupby(SERIES_KEY, sort=False):
            predicted = method(series[target].to_numpy(float), horizon, frequency.frequency)
            parts.append(pd.DataFrame({SERIES_KEY: key, PERIOD: frequency.next_periods(series[PERIOD].iloc[-1], horizon),
                                       "forecast": predicted}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[SERIES_KEY, PERIOD, "forecast"])

    return forecast


def affordable(history: pd.DataFrame, target: str, frequency: Frequency, method: SeriesForecast, seconds: float,
               runs: int) -> bool:
    """Whether fitting every series `runs` times (the backtest folds and the final fit) fits in `seconds`,
    judged by the time the longest series takes (two seasons of it first: a method far too slow is not timed on
    all of it). Near the line the fit is timed twice and the quicker counts."""
    count = history[SERIES_KEY].nunique()
    if count == 0 or count * runs * FASTEST_FIT_S > seconds:
        return False  # hopeless even at the fastest fit: not worth timing one
    sizes = history.groupby(SERIES_KEY, sort=False).size()
    longest = history.loc[history[SERIES_KEY] == sizes.idxmax(), target].to_numpy(float)
    recent = longest[-max(8, 2 * frequency.season_length + 2):]
    method(recent, 1, frequency)  # untimed: the library's first imports and calls are not the cost of a fit
    if _fit_seconds(method, recent, frequency) * count * runs > 2 * seconds:
        return False  # hopeless: even two seasons cost twice what the budget allows
    cost = _fit_seconds(method, longest, frequency) * count * runs
    if seconds < cost <= 2 * seconds:  # near the line, one slow call is not the cost: timed once more
        cost = min(cost, _fit_seconds(method, longest, frequency) * count * runs)
    return cost <= seconds


def _fit_seconds(method: SeriesForecast, values: np.ndarray, frequency: Frequency) -> float:
    """This thread's CPU time for one fit, not wall time (nor the process's: idle BLAS threads spin): a fit
    descheduled by a busy machine (a browser drawing, another job) must not rule out a method that costs
    milliseconds."""
    started = time.thread_time()
    method(values, 1, frequency)
    return time.thread_time() - started
