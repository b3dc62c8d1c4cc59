"""The fitted forecaster a forecast version keeps: the chosen method, fitted on the history it learnt from (the
lag model on all of it; each series' statistical methods refitted at every forecast), and the interval widths its
backtest earned. It forecasts onward from whatever history it is given, so a scheduled
re-forecast starts from the newest periods without training again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from backend.forecasting.backtest_run import NAIVE, SEASONAL_NAIVE, baseline_forecaster, with_intervals
from backend.forecasting.ets import ETS, ets_forecast
from backend.forecasting.frequency import DetectedFrequency
from backend.forecasting.lag_model import LagModel
from backend.forecasting.per_series import SeriesForecast, per_series_forecaster
from backend.forecasting.series import PERIOD, SERIES_KEY
from backend.forecasting.theta import THETA, theta_forecast

LAG_MODEL = "lag model"
COMBINED = "lag model and seasonal naive, averaged"
METHODS = (NAIVE, SEASONAL_NAIVE, ETS, THETA, LAG_MODEL, COMBINED)
# the methods that fit each series alone, by name
PER_SERIES: dict[str, SeriesForecast] = {ETS: ets_forecast, THETA: theta_forecast}
METHOD_WORDS = {NAIVE: "repeating the last value", SEASONAL_NAIVE: "repeating last season",
                ETS: "exponential smoothing (each series' own level, trend and season)",
                THETA: "the theta method (each series' trend and level over its last ten years, with its season)",
                LAG_MODEL: "a model of recent values and the calendar, learnt across every series",
                COMBINED: "the average of that model and repeating last season"}


AVERAGE_OF = "average of "


def combination_name(members: tuple[str, ...]) -> str:
    return AVERAGE_OF + " + ".join(members)


def combination_members(method: str) -> tuple[str, ...]:
    """The methods a combination averages (empty for a single method)."""
    return tuple(method[len(AVERAGE_OF):].split(" + ")) if method.startswith(AVERAGE_OF) else ()


def averaged_methods(method: str) -> tuple[str, ...]:
    """The methods whose forecasts `method` averages: a combination's members, or COMBINED's two (empty for a
    single method)."""
    return (LAG_MODEL, SEASONAL_NAIVE) if method == COMBINED else combination_members(method)


def method_words(method: str) -> str:
    """A method in words, a combination as the average of its members'."""
    members = combination_members(method)
    if not members:
        return METHOD_WORDS.get(method, method)
    words = [METHOD_WORDS.get(m, m) for m in members]
    return "the average of " + (", ".join(words[:-1]) + " and " + words[-1])


@dataclass(frozen=True)
class ForecastModel:
    method: str  # one of METHODS
    target: str
    frequency: DetectedFrequency
    horizon: int
    widths: dict[float, np.ndarray]  # interval half-widths per step ahead, in series levels (backtest_run)
    lag_model: LagModel | None = None  # for LAG_MODEL, COMBINED and combinations with the lag model

    def point_forecast(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """`horizon` periods after each series' history: SERIES_KEY, PERIOD, forecast."""
        members = averaged_methods(self.method)
        if members:
            parts = [replace(self, method=m).point_forecast(history, future) for m in members]
            stacked = pd.concat(parts, ignore_index=True)
            return stacked.groupby([SERIES_KEY, PERIOD], as_index=False, sort=False)["forecast"].mean()
        if self.method in (NAIVE, SEASONAL_NAIVE):
            return baseline_forecaster(self.frequency, self.target, seasonal=self.method == SEASONAL_NAIVE)(
                history, self.horizon, None)
        if self.method in PER_SERIES:  # refitted on the history it is given: it keeps no state between forecasts
            return per_series_forecaster(self.frequency, self.target, PER_SERIES[self.method])(
                history, self.horizon, None)
        if self.lag_model is None:
            raise ValueError(f"The {self.method} forecaster has no fitted model.")
        return self.lag_model.forecast(history, self.horizon, future)

    def forecast(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The point forecast with its 80% and 95% intervals (lower_80, upper_80, lower_95, upper_95)."""
        return with_intervals(self.point_forecast(history, future), history, self.target, self.widths)
