"""How far off a forecast is: MASE (the default), sMAPE, MAPE and RMSE, each with a line that says what it
means. MASE divides the forecast's mean absolute error by that of the seasonal-naive forecast on the
training history (Hyndman & Koehler, 2006), so 1.0 is "as good as repeating last season" and it compares
across series of any scale; it is defined for series with zeros, where MAPE is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ForecastMetric:
    name: str
    label: str
    explanation: str


FORECAST_METRICS: dict[str, ForecastMetric] = {m.name: m for m in [
    ForecastMetric("mase", "MASE", "Average error relative to repeating last season's value on the history: "
                                   "below 1 beats it, 0.5 is half its error."),
    ForecastMetric("smape", "sMAPE", "Average error as a share of the mean of forecast and actual (0–200%): "
                                     "symmetric, and defined when actuals are zero."),
    ForecastMetric("mape", "MAPE", "Average error as a share of the actual value; undefined where actuals are "
                                   "zero (those periods are left out)."),
    ForecastMetric("rmse", "RMSE", "Typical size of an error in the target's own units; big misses weigh more."),
]}
DEFAULT_FORECAST_METRIC = "mase"


def seasonal_naive_scale(history: np.ndarray, season_length: int) -> float:
    """The in-sample mean absolute error of the seasonal-naive forecast (the naive one for a history shorter
    than two seasons); NaN for a history too short or perfectly repeating."""
    history = np.asarray(history, dtype=float)
    m = season_length if len(history) > season_length else 1
    if len(history) <= m:
        return float("nan")
    scale = float(np.nanmean(np.abs(history[m:] - history[:-m])))
    return scale if scale > 0 else float("nan")


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season_length: int) -> float:
    scale = seasonal_naive_scale(history, season_length)
    return float(np.nanmean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float))) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    denominator = (np.abs(actual) + np.abs(forecast)) / 2
    ratio = np.divide(np.abs(actual - forecast), denominator, out=np.zeros_like(actual), where=denominator > 0)
    return float(100 * np.nanmean(ratio))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    defined = actual != 0
    if not defined.any():
        return float("nan")
    return float(100 * np.nanmean(np.abs((actual[defined] - forecast[defined]) / actual[defined])))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(actual, float) - np.asarray(forecast, float)) ** 2)))


def forecast_score(name: str, actual: np.ndarray, forecast: np.ndarray, history: np.ndarray,
                   season_length: int) -> float:
    """One metric by name (see FORECAST_METRICS)."""
    if name == "mase":
        return mase(actual, forecast, history, season_length)
    if name == "smape":
        return smape(actual, forecast)
    if name == "mape":
        return mape(actual, forecast)
    if name == "rmse":
        return rmse(actual, forecast)
    raise KeyError(name)
