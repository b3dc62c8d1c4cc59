"""A global lag-feature model: one regressor learns every series at once from their recent values (the last
periods, the same period a season ago, recent averages), the calendar and the known-in-advance columns, each
series scaled by its own level so that big and small series teach the same shapes. It forecasts recursively:
each forecast period's prediction becomes the next period's latest value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.forecasting.frequency import DetectedFrequency, Frequency
from backend.forecasting.series import PERIOD, SERIES_KEY


@dataclass(frozen=True)
class FittedRegressor:
    """A fitted scikit-learn-style regressor and the columns it reads (picklable, unlike a closure: a saved
    forecast model keeps one)."""

    model: object
    columns: tuple[str, ...]

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(rows[list(self.columns)]), dtype=float)  # type: ignore[attr-defined]

    def importances(self) -> dict[str, float]:
        """Each column's share of the model's importance (empty when the model has none)."""
        values = getattr(self.model, "feature_importances_", None)
        if values is None:
            return {}
        total = float(np.sum(values)) or 1.0
        return {c: float(v) / total for c, v in zip(self.columns, values, strict=True)}


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

    def feature_words(self, frequency: Frequency) -> dict[str, str]:
        """What each feature is, in words, for drivers ("the same month last year")."""
        words = {}
        for lag in self.lags:
            words[f"lag_{lag}"] = (frequency.season_words if lag == self.season_length and lag > 1 else
                                   f"the previous {frequency.period_word}" if lag == 1 else
                                   f"{lag} {frequency.period_word}s before")
        for window in self.windows:
            words[f"mean_{window}"] = f"the average of the last {window} {frequency.period_word}s"
        words["season_position"] = f"the time of {'year' if frequency.season_length >= 4 else 'cycle'}"
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


def _features_at(values: np.ndarray, position: int, plan: LagPlan) -> tuple[dict[str, float], float]:
    """Features for the period at `position`, from the values before it, relative to their recent level (the
    mean of the last season, or three periods): the scale they were divided by comes back with them. Relative
    values let trees follow a trend they have never seen the height of."""
    window = values[max(0, position - max(plan.season_length, 3)):position]
    scale = float(np.mean(np.abs(window))) if len(window) else 1.0
    scale = scale if scale > 0 else 1.0
    row = {f"lag_{lag}": values[position - lag] / scale if position - lag >= 0 else np.nan for lag in plan.lags}
    for width in plan.windows:
        recent = values[max(0, position - width):position]
        row[f"mean_{width}"] = float(np.mean(recent)) / scale if len(recent) else np.nan
    return row, scale


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
        """`horizon` periods after each series' history: SERIES_KEY, PERIOD, forecast."""
        rows = []
        for key, series in history.groupby(SERIES_KEY, sort=False):
            level = self.levels.get(str(key)) or _level(series[self.target].to_numpy(float))
            values = list(series[self.target].to_numpy(float) / level)
            periods = self.frequency.next_periods(series[PERIOD].iloc[-1], horizon)
            known = _known_rows(future, key, periods, self.known_columns)
            for step, period in enumerate(periods):
                features, scale = _features_at(np.asarray(values), len(values), self.plan)
                features["season_position"] = float(_season_position(pd.Series([period]), self.frequency.frequency)[0])
                for column in self.known_columns:
                    features[column] = known[column].iloc[step]
                predicted = float(self.predict_scaled(pd.DataFrame([features]))[0]) * scale
                values.append(predicted)
                rows.append({SERIES_KEY: key, PERIOD: period, "forecast": predicted * level})
        return pd.DataFrame(rows, columns=[SERIES_KEY, PERIOD, "forecast"])


def _known_rows(future: pd.DataFrame | None, key: object, periods: pd.DatetimeIndex,
                columns: tuple[str, ...]) -> pd.DataFrame:
    if not columns:
        return pd.DataFrame(index=range(len(periods)))
    if future is None or future.empty:
        return pd.DataFrame({c: [np.nan] * len(periods) for c in columns})
    mine = future[future[SERIES_KEY] == key].set_index(PERIOD)
    return mine.reindex(periods)[list(columns)].reset_index(drop=True)


def training_table(history: pd.DataFrame, plan: LagPlan, frequency: DetectedFrequency, target: str,
                   known_columns: tuple[str, ...] = ()) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    """Every (series, period) with a full reach of history before it, in time order (so a time-ordered split
    validates on the latest periods): features, scaled target, series levels."""
    frames, levels = [], {}
    for key, series in history.groupby(SERIES_KEY, sort=False):
        raw = series[target].to_numpy(float)
        level = levels[str(key)] = _level(raw)
        values = raw / level
        positions = range(plan.reach, len(values))
        if not len(positions):
            continue
        made = [_features_at(values, p, plan) for p in positions]
        table = pd.DataFrame([features for features, _ in made])
        scales = np.array([scale for _, scale in made])
        table["season_position"] = _season_position(series[PERIOD].iloc[plan.reach:], frequency.frequency)
        for column in known_columns:
            table[column] = series[column].iloc[plan.reach:].to_numpy()
        table[PERIOD] = series[PERIOD].iloc[plan.reach:].to_numpy()
        table["__target"] = values[plan.reach:] / scales
        frames.append(table)
    if not frames:
        return pd.DataFrame(), np.zeros(0), levels
    ordered = pd.concat(frames, ignore_index=True).sort_values(PERIOD, kind="stable", ignore_index=True)
    return ordered.drop(columns=[PERIOD, "__target"]), ordered["__target"].to_numpy(float), levels


def fit_lag_model(history: pd.DataFrame, plan: LagPlan, frequency: DetectedFrequency, target: str,
                  regressor: Regressor, known_columns: tuple[str, ...] = ()) -> LagModel:
    """Fit `regressor` (features, scaled targets → a predict function) on every series' lag table."""
    features, targets, levels = training_table(history, plan, frequency, target, known_columns)
    return LagModel(plan, frequency, target, known_columns, levels, regressor(features, targets))


def lightgbm_regressor(**params: object) -> Regressor:
    """A LightGBM regressor on the lag table (small and quick by default; FLAML's search picks better ones)."""
    def fit(features: pd.DataFrame, targets: np.ndarray) -> FittedRegressor:
        from lightgbm import LGBMRegressor

        settings = {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 10,
                    "verbose": -1, "random_state": 0, "n_jobs": 1, **params}  # tiny fits: one thread
        return FittedRegressor(LGBMRegressor(**settings).fit(features, targets), tuple(features.columns))

    return fit


def lag_forecaster(plan: LagPlan, frequency: DetectedFrequency, target: str, regressor: Regressor,
                   known_columns: tuple[str, ...] = ()) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    """A backtestable forecaster: fitted on the history it is given, then forecasting onward."""
    def forecast(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        model = fit_lag_model(history, plan, frequency, target, regressor, known_columns)
        return model.forecast(history, horizon)

    return forecast
