"""The forecasts every model must beat: naive (the last value, repeated) and seasonal naive (the last season,
repeated: the same month last year for monthly data)."""

from __future__ import annotations

import numpy as np


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    history = np.asarray(history, dtype=float)
    return np.full(horizon, history[-1] if len(history) else np.nan)


def seasonal_naive(history: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """The value one season before each forecast period; naive when the history is shorter than a season."""
    history = np.asarray(history, dtype=float)
    if season_length <= 1 or len(history) < season_length:
        return naive(history, horizon)
    last_season = history[-season_length:]
    return np.resize(last_season, horizon)  # repeats the season as often as the horizon needs
