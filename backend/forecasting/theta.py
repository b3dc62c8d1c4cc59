"""The theta method per series (statsmodels): the series deseasonalised where it has a season, its long-run
trend and simple exponential smoothing averaged — simple, fast, and hard to beat on short business series
(it won the M3 competition).
"""

from __future__ import annotations

import warnings

import numpy as np

from backend.forecasting.baselines import naive

THETA = "theta method"


def theta_forecast(values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The theta forecast (naive when the series is too short, constant or not finite)."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    values = np.asarray(values, dtype=float)
    if len(values) < 4 or not np.all(np.isfinite(values)) or np.nanstd(values) == 0:
        return naive(values[np.isfinite(values)], horizon)
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
