"""The fitted forecaster a forecast version keeps: the chosen method, fitted on the whole history, and the
interval widths its backtest earned. It forecasts onward from whatever history it is given, so a scheduled
re-forecast starts from the newest periods without training again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.forecasting.backtest_run import NAIVE, SEASONAL_NAIVE, baseline_forecaster, with_intervals
from backend.forecasting.frequency import DetectedFrequency
from backend.forecasting.lag_model import LagModel
from backend.forecasting.series import PERIOD, SERIES_KEY

LAG_MODEL = "lag model"
COMBINED = "lag model and seasonal naive, averaged"
METHODS = (NAIVE, SEASONAL_NAIVE, LAG_MODEL, COMBINED)
METHOD_WORDS = {NAIVE: "repeating the last value", SEASONAL_NAIVE: "repeating last season",
                LAG_MODEL: "a model of recent values and the calendar, learnt across every series",
                COMBINED: "the average of that model and repeating last season"}


@dataclass(frozen=True)
class ForecastModel:
    method: str  # one of METHODS
    target: str
    frequency: DetectedFrequency
    horizon: int
    widths: dict[float, np.ndarray]  # interval half-widths per step ahead, in series levels (backtest_run)
    lag_model: LagModel | None = None  # for LAG_MODEL and COMBINED

    def point_forecast(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """`horizon` periods after each series' history: SERIES_KEY, PERIOD, forecast."""
        if self.method in (NAIVE, SEASONAL_NAIVE):
            return baseline_forecaster(self.frequency, self.target, seasonal=self.method == SEASONAL_NAIVE)(
                history, self.horizon)
        if self.lag_model is None:
            raise ValueError(f"The {self.method} forecaster has no fitted model.")
        lagged = self.lag_model.forecast(history, self.horizon, future)
        if self.method == LAG_MODEL:
            return lagged
        seasonal = baseline_forecaster(self.frequency, self.target, seasonal=True)(history, self.horizon)
        both = lagged.merge(seasonal, on=[SERIES_KEY, PERIOD], suffixes=("_lag", "_seasonal"))
        return both.assign(forecast=(both["forecast_lag"] + both["forecast_seasonal"]) / 2)[
            [SERIES_KEY, PERIOD, "forecast"]]

    def forecast(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The point forecast with its 80% and 95% intervals (lower_80, upper_80, lower_95, upper_95)."""
        return with_intervals(self.point_forecast(history, future), history, self.target, self.widths)
