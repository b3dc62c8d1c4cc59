"""A global lag-feature model: one regressor learns every series at once from their recent values (the last
periods, the same period a season ago, recent averages), the calendar and the known-in-advance columns, each
series scaled by its own level so that big and small series teach the same shapes. It forecasts recursively:
each forecast period's prediction becomes the next period's latest value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from backend.forecasting.frequency import DetectedFrequency, Frequency
from backend.forecasting.series import PERIOD, SERIES_KEY


@dataclass(frozen=True)
class FittedRegressor:
    """A fitted scikit-learn-style regressor and the columns it reads (picklable, unlike a closure: a saved
    forecast model keeps one)."""

    model: object
    columns: tuple[str, ...]
    fill: tuple[float, ...] = ()  # per column, what a missing value reads as (for learners that refuse NaN)

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        x = rows[list(self.columns)]
        if self.fill:
            x = x.fillna(dict(zip(self.columns, self.fill, strict=True)))
        return np.asarray(self.model.predict(x), dtype=float)  # type: ignore[attr-defined]

    def importances(self) -> dict[str, float]:
        """Each column's share of the model's importance (empty when the model has none)."""
        values = getattr(self.model, "feature_importances_", None)
        if values is None:
            return {}
        total = float(np.sum(values)) or 1.0
        return {c: float(v) / total for c, v in zip(self.columns, values, strict=True)}


# The lag model learns from the latest this many (series, period) rows: enough for any pattern a lag table
# holds, and it keeps a thousand daily series' fits within a two-minute budget.
MAX_LAG_ROWS = 300_000

Regressor = Callable[[pd.DataFrame, np.ndarray], FittedRegressor]  # fit on (features, scaled targets)


@dataclass(frozen=True)
class LagPlan:
    lags: tuple[int, ...]  # how many periods back each lag feature looks
    windows: tuple[int, ...]  # rolling means over the last w periods
    season_length: int

    @property
    def reach(self) -> int:
        """The periods of history the features need."""
        return max((*self.lags, *self.windows, 1))

    @property
    def scale_window(self) -> int:
        """The periods whose mean absolute value the features are relative to."""
        return max(self.season_length, 3)

    @property
    def width(self) -> int:
        """The latest values a row of features is made from."""
        return max(self.reach, self.scale_window)

    def feature_words(self, frequency: Frequency) -> dict[str, str]:
        """What each feature is, in words, for drivers ("the same month last year")."""
        words = {}
        for lag in self.lags:
            words[f"lag_{lag}"] = (frequency.season_words if lag == self.season_length and lag > 1 else
                                   f"the previous {frequency.period_word}" if lag == 1 else
                                   f"{lag} {frequency.period_word}s before")
        for window in self.windows:
            words[f"mean_{window}"] = f"the average of the last {window} {frequency.period_word}s"
        words["season_position"] = {Frequency.HOURLY: "the hour of the day", Frequency.DAILY: "the day of the week",
                                    Frequency.WEEKLY: "the week of the year", Frequency.MONTHLY: "the month of the year",
                                    Frequency.QUARTERLY: "the quarter of the year",
                                    Frequency.YEARLY: "the year"}[frequency]
        return words


def lag_plan(frequency: DetectedFrequency, shortest_history: int) -> LagPlan:
    """Lags 1–3 and the season (when the shortest series holds two seasons), and averages over a few periods
    and a season."""
    season = frequency.frequency.season_length
    room = max(1, shortest_history // 2)
    lags = sorted({lag for lag in (1, 2, 3, season) if lag <= room})
    windows = sorted({w for w in (3, season) if 1 < w <= room})
    return LagPlan(tuple(lags), tuple(windows), season)


def _level(values: np.ndarray) -> float:
    """A series' scale: its mean absolute value (1 for an all-zero series)."""
    level = float(np.nanmean(np.abs(values))) if len(values) else 0.0
    return level if level > 0 else 1.0


def _windows(values: np.ndarray, width: int) -> np.ndarray:
    """Row p holds the `width` values before position p (NaN before the series began), for p = 0 … len."""
    return sliding_window_view(np.concatenate([np.full(width, np.nan), values]), width)


def _feature_block(windows: np.ndarray, plan: LagPlan) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of the period after each row of `windows` (its latest values, newest last), relative to their
    recent level (the mean of the last season, or three periods); the scale they were divided by comes back
    with them. Relative values let trees follow a trend they have never seen the height of."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window (a series' first period) is NaN
        scale = np.nanmean(np.abs(windows[:, -plan.scale_window:]), axis=1)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        features = {f"lag_{lag}": windows[:, -lag] / scale for lag in plan.lags}
        for width in plan.windows:
            features[f"mean_{width}"] = np.nanmean(windows[:, -width:], axis=1) / scale
    return features, scale


def _season_position(periods: pd.Series, frequency: Frequency) -> np.ndarray:
    times = pd.DatetimeIndex(periods)
    return {Frequency.HOURLY: times.hour, Frequency.DAILY: times.dayofweek,
            Frequency.WEEKLY: times.isocalendar().week.to_numpy() if len(times) else times.day,
            Frequency.MONTHLY: times.month, Frequency.QUARTERLY: times.quarter,
            Frequency.YEARLY: np.zeros(len(times), dtype=int)}[frequency].astype(float)


@dataclass
class LagModel:
    """A fitted global model: what it needs to forecast any of its series onward."""

    plan: LagPlan
    frequency: DetectedFrequency
    target: str
    known_columns: tuple[str, ...]
    levels: dict[str, float]
    predict_scaled: FittedRegressor

    def forecast(self, history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """`horizon` periods after each series' history: SERIES_KEY, PERIOD, forecast. Every series steps
        forward together: one prediction per step for all of them, each step's forecast becoming the next
        step's latest value."""
        keys, tails, levels, lasts = [], [], [], []
        for key, series in history.groupby(SERIES_KEY, sort=False):
            raw = series[self.target].to_numpy(float)
            level = self.levels.get(str(key)) or _level(raw)
            keys.append(key)
            levels.append(level)
            tails.append(_windows(raw / level, self.plan.width)[-1])
            lasts.append(series[PERIOD].iloc[-1])
        if not keys:
            return pd.DataFrame(columns=[SERIES_KEY, PERIOD, "forecast"])
        recent, series_levels = np.vstack(tails), np.asarray(levels)
        periods = _following(self.frequency, lasts, horizon)  # [series, step]
        known = _known_values(future, keys, periods, self.known_columns)
        predicted = np.empty((len(keys), horizon))
        for step in range(horizon):
            features, scale = _feature_block(recent, self.plan)
            features["season_position"] = _season_position(pd.Series(periods[:, step]), self.frequency.frequency)
            for column in self.known_columns:
                features[column] = known[column][:, step]
            value = self.predict_scaled(pd.DataFrame(features)) * scale
            predicted[:, step] = value
            recent = np.hstack([recent[:, 1:], value[:, None]])
        return pd.DataFrame({SERIES_KEY: np.repeat(np.asarray(keys, dtype=object), horizon),
                             PERIOD: periods.ravel(), "forecast": (predicted * series_levels[:, None]).ravel()})


def _following(frequency: DetectedFrequency, lasts: list[pd.Timestamp], horizon: int) -> np.ndarray:
    """The `horizon` periods after each series' last one (computed once per distinct last period)."""
    ahead = {last: frequency.next_periods(last, horizon).to_numpy() for last in set(lasts)}
    return np.vstack([ahead[last] for last in lasts])


def _known_values(future: pd.DataFrame | None, keys: list[object], periods: np.ndarray,
                  columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each known-in-advance column's value for every series and forecast period ([series, step]; NaN where
    the table has no row for it)."""
    if not columns:
        return {}
    cells = pd.DataFrame({SERIES_KEY: np.repeat(np.asarray(keys, dtype=object), periods.shape[1]),
                          PERIOD: periods.ravel()})
    if future is not None and not future.empty:
        cells = cells.merge(future[[SERIES_KEY, PERIOD, *columns]].drop_duplicates([SERIES_KEY, PERIOD]),
                            on=[SERIES_KEY, PERIOD], how="left")
    return {c: (pd.to_numeric(cells[c], errors="coerce").to_numpy(float) if c in cells else
                np.full(len(cells), np.nan)).reshape(periods.shape) for c in columns}


def training_table(history: pd.DataFrame, plan: LagPlan, frequency: DetectedFrequency, target: str,
                   known_columns: tuple[str, ...] = ()) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    """Every (series, period) with a full reach of history before it, in time order (so a time-ordered split
    validates on the latest periods), the latest MAX_LAG_ROWS of them: features, scaled target, series levels.
    Each series' rows are taken in the order `history` holds them (oldest first)."""
    codes, keys = pd.factorize(history[SERIES_KEY], sort=False)
    order = np.argsort(codes, kind="stable")  # each series' rows together, in their own order
    rows = history.iloc[order]
    codes = codes[order]
    raw = rows[target].to_numpy(float)
    per_series = pd.Series(np.abs(raw)).groupby(codes).mean().to_numpy()
    level_of = np.where(np.isfinite(per_series) & (per_series > 0), per_series, 1.0)
    levels = {str(key): float(level_of[i]) for i, key in enumerate(keys)}
    values = raw / level_of[codes]
    sizes = np.bincount(codes, minlength=len(keys))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(len(rows)) - starts[codes]  # each row's place in its own series
    # one array for every series, each preceded by `width` NaNs: a row's window never reaches into another series
    width = plan.width
    padded_at = np.arange(len(rows)) + (codes + 1) * width
    padded = np.full(len(rows) + len(keys) * width, np.nan)
    padded[padded_at] = values
    kept = np.flatnonzero(position >= plan.reach)
    if not len(kept):
        return pd.DataFrame(), np.zeros(0), levels
    windows = sliding_window_view(padded, width)[padded_at[kept] - width]
    features, scales = _feature_block(windows, plan)
    table = pd.DataFrame(features)
    table["season_position"] = _season_position(rows[PERIOD].iloc[kept], frequency.frequency)
    for column in known_columns:
        table[column] = pd.to_numeric(rows[column].iloc[kept], errors="coerce").to_numpy(float)
    targets = values[kept] / scales
    by_time = np.argsort(rows[PERIOD].to_numpy()[kept], kind="stable")[-MAX_LAG_ROWS:]
    return table.iloc[by_time].reset_index(drop=True), targets[by_time], levels


def fit_lag_model(history: pd.DataFrame, plan: LagPlan, frequency: DetectedFrequency, target: str,
                  regressor: Regressor, known_columns: tuple[str, ...] = ()) -> LagModel:
    """Fit `regressor` (features, scaled targets → a predict function) on every series' lag table."""
    features, targets, levels = training_table(history, plan, frequency, target, known_columns)
    return LagModel(plan, frequency, target, known_columns, levels, regressor(features, targets))


def lightgbm_regressor(**params: object) -> Regressor:
    """A LightGBM regressor on the lag table (small and quick by default; FLAML's search picks better ones)."""
    def fit(features: pd.DataFrame, targets: np.ndarray) -> FittedRegressor:
        from lightgbm import LGBMRegressor

        # Any: LightGBM's keywords take values of many types, and `params` adds whichever the caller chose
        settings: dict[str, Any] = {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.05,
                                    "min_child_samples": 10, "verbose": -1, "random_state": 0,
                                    "n_jobs": 1, **params}  # tiny fits: one thread
        return FittedRegressor(LGBMRegressor(**settings).fit(features, targets), tuple(features.columns))

    return fit


def lag_forecaster(plan: LagPlan, frequency: DetectedFrequency, target: str, regressor: Regressor,
                   known_columns: tuple[str, ...] = ()
                   ) -> Callable[[pd.DataFrame, int, pd.DataFrame | None], pd.DataFrame]:
    """A backtestable forecaster: fitted on the history it is given, then forecasting onward with the known
    columns of the periods ahead."""
    def forecast(history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        model = fit_lag_model(history, plan, frequency, target, regressor, known_columns)
        return model.forecast(history, horizon, future)

    return forecast
