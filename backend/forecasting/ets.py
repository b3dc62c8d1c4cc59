"""Exponential smoothing per series (statsmodels' state-space ETS): a level, an optional trend (damped or
not) and an optional season, with additive or multiplicative errors, the form chosen by AICc on each series'
own history — the family statsforecast's AutoETS and R's ets() choose from.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from backend.forecasting.baselines import naive
from backend.forecasting.frequency import Frequency

ETS = "exponential smoothing"


@dataclass(frozen=True)
class EtsForm:
    error: str  # "add" or "mul"
    trend: str | None  # None or "add"
    damped: bool
    seasonal: str | None  # None, "add" or "mul"


def candidate_forms(values: np.ndarray, season: int) -> list[EtsForm]:
    """The forms a series can support: a season only with two of them in its history, multiplicative parts
    only for positive values, a trend only with a few periods beyond the season. Additive errors with a
    multiplicative season are left out, as AutoETS and ets() do: that form is numerically unstable."""
    positive = bool(np.all(values > 0))
    seasonal: list[str | None] = [None]
    if season > 1 and len(values) >= 2 * season:
        seasonal += ["add", *(["mul"] if positive else [])]
    trends: list[tuple[str | None, bool]] = [(None, False)]
    if len(values) >= max(10, season + 4):
        trends += [("add", True), ("add", False)]
    errors = ["add", *(["mul"] if positive else [])]
    return [EtsForm(e, t, d, s) for e in errors for t, d in trends for s in seasonal if not (e == "add" and s == "mul")]


def ets_forecast(values: np.ndarray, horizon: int, frequency: Frequency) -> np.ndarray:
    """The forecast of the form with the lowest AICc (naive when no form fits)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    season = frequency.season_length
    values = np.asarray(values, dtype=float)
    best: tuple[float, np.ndarray] | None = None
    if len(values) >= 4 and np.nanstd(values) > 0 and np.all(np.isfinite(values)):
        for form in candidate_forms(values, season):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and overflow warnings of hopeless forms
                try:
                    fitted = ETSModel(values, error=form.error, trend=form.trend, damped_trend=form.damped,
                                      seasonal=form.seasonal,
                                      seasonal_periods=season if form.seasonal else None).fit(disp=False)
                    forecast = np.asarray(fitted.forecast(horizon), dtype=float)
                except (ValueError, np.linalg.LinAlgError):
                    continue
            if np.isfinite(fitted.aicc) and np.all(np.isfinite(forecast)) and (best is None or fitted.aicc < best[0]):
                best = (float(fitted.aicc), forecast)
    return best[1] if best is not None else naive(values[np.isfinite(values)], horizon)
