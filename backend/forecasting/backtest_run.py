"""Backtesting forecasters on prepared series, choosing one, and its prediction intervals.

Folds are cut on the panel's common calendar (backend.forecasting.backtest): at each origin every series
learns from its periods before it and is judged on the `horizon` periods from it. Methods are ranked by their
mean MASE over folds and series (fit.py chooses among those within noise of the best), and must beat seasonal
naive to be called a model at all.
Intervals come from the chosen method's own backtest errors at each step ahead (scaled by each series'
level), so a forecast 12 months out is as uncertain as that method's 12-month-ahead errors were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.forecasting.backtest import rolling_origin_folds
from backend.forecasting.baselines import naive, seasonal_naive
from backend.forecasting.frequency import DetectedFrequency
from backend.forecasting.scores import FORECAST_METRICS, forecast_score
from backend.forecasting.series import PERIOD, SERIES_KEY

# (history: rows before the origin, horizon, future: the known-in-advance columns of the periods ahead, or None)
# → forecasts: SERIES_KEY, PERIOD, forecast for `horizon` periods per series
Forecaster = Callable[[pd.DataFrame, int, pd.DataFrame | None], pd.DataFrame]
INTERVAL_LEVELS = (0.8, 0.95)
SEASONAL_NAIVE = "seasonal naive"
NAIVE = "naive"


def baseline_forecaster(frequency: DetectedFrequency, target: str, *, seasonal: bool) -> Forecaster:
    season = frequency.frequency.season_length

    def forecast(history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        del future  # a baseline knows nothing of the future
        keys, values, ahead = [], [], {}
        for key, series in history.groupby(SERIES_KEY, sort=False):
            past = series[target].to_numpy(float)
            last = series[PERIOD].iloc[-1]
            if last not in ahead:
                ahead[last] = frequency.next_periods(last, horizon).to_numpy()
            keys.append((key, last))
            values.append(seasonal_naive(past, horizon, season) if seasonal else naive(past, horizon))
        if not keys:
            return pd.DataFrame(columns=[SERIES_KEY, PERIOD, "forecast"])
        return pd.DataFrame({SERIES_KEY: np.repeat(np.asarray([k for k, _ in keys], dtype=object), horizon),
                             PERIOD: np.concatenate([ahead[last] for _, last in keys]),
                             "forecast": np.concatenate(values)})

    return forecast


@dataclass(frozen=True)
class FoldScore:
    method: str
    fold: int
    series: str
    scores: dict[str, float]  # by metric name (backend.forecasting.scores)


@dataclass
class BacktestReport:
    scores: list[FoldScore]
    # per method: scaled errors (actual − forecast) / series level, one row per judged period, by step ahead
    errors: dict[str, pd.DataFrame] = field(default_factory=dict)
    # per method: its forecasts on the folds (fold, SERIES_KEY, PERIOD, forecast), to score combinations
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    def mean(self, method: str, metric: str = "mase") -> float:
        values = [s.scores[metric] for s in self.scores if s.method == method and np.isfinite(s.scores[metric])]
        return float(np.mean(values)) if values else float("nan")

    def by_fold(self, method: str, metric: str = "mase") -> dict[int, float]:
        folds = sorted({s.fold for s in self.scores if s.method == method})
        return {f: float(np.nanmean([s.scores[metric] for s in self.scores if s.method == method and s.fold == f]))
                for f in folds}

    def by_series(self, method: str, metric: str = "mase") -> pd.Series:
        """Mean error per series over the folds, worst first."""
        frame = pd.DataFrame([(s.series, s.scores[metric]) for s in self.scores if s.method == method],
                             columns=["series", metric])
        return frame.groupby("series")[metric].mean().sort_values(ascending=False)

    def merged(self, other: BacktestReport) -> BacktestReport:
        """This report and `other`'s methods together (the same folds and series)."""
        return BacktestReport([*self.scores, *other.scores], {**self.errors, **other.errors},
                              {**self.predictions, **other.predictions})

    def ranked(self, metric: str = "mase") -> list[str]:
        """The methods, best first (ties go to seasonal naive, the simplest honest forecast)."""
        return sorted(self.errors, key=lambda m: (np.nan_to_num(self.mean(m, metric), nan=np.inf), m != SEASONAL_NAIVE))

    def best(self, metric: str = "mase") -> str:
        return self.ranked(metric)[0]

    def within_noise_of_best(self, metric: str = "mase") -> list[str]:
        """The methods whose mean score is within one standard error of the best's, best first. Two methods are
        compared on the same forecasts: the paired difference of their scores, averaged within each fold, and
        its standard error over the folds. Series judged on the same periods share that period's shocks (a bad
        quarter for every region), so their differences are not independent draws: counting each series as one
        would make a large panel's error look small and its ranking look sure when it rests on a few folds.
        With few folds the error is wide, and ranking inside it is mostly chance."""
        ranked = self.ranked(metric)
        best = ranked[0]
        by_method: dict[str, dict[tuple[int, str], float]] = {}
        for s in self.scores:
            if np.isfinite(s.scores[metric]):
                by_method.setdefault(s.method, {})[(s.fold, s.series)] = s.scores[metric]
        reference = by_method.get(best, {})
        close = []
        for method in ranked:
            differences: dict[int, list[float]] = {}
            for (fold, series), score in by_method.get(method, {}).items():
                if (fold, series) in reference:
                    differences.setdefault(fold, []).append(score - reference[(fold, series)])
            if len(differences) < 2:
                if method == best:
                    close.append(method)
                continue
            per_fold = np.asarray([np.mean(d) for d in differences.values()])
            if per_fold.mean() <= per_fold.std(ddof=1) / np.sqrt(len(per_fold)):
                close.append(method)
        return close


def _folds(history: pd.DataFrame, horizon: int, folds: int) -> list[tuple[int, pd.Timestamp, pd.DatetimeIndex]]:
    """Each fold's number, origin and judged periods, on the panel's common calendar."""
    calendar = pd.DatetimeIndex(sorted(history[PERIOD].unique()))
    return [(fold.number, calendar[fold.origin], calendar[list(fold.test)])
            for fold in rolling_origin_folds(len(calendar), horizon, folds=folds, min_train=2)]


def first_fold_origin(history: pd.DataFrame, horizon: int, folds: int) -> pd.Timestamp:
    """Where the earliest fold's judged periods begin: everything before it is history to every fold."""
    return _folds(history, horizon, folds)[0][1]


def _record(report: BacktestReport, name: str, fold: int, predicted: pd.DataFrame, pasts: dict[object, np.ndarray],
            target: str, season: int) -> None:
    """Score one method's forecasts of one fold (`predicted`: SERIES_KEY, PERIOD, forecast and the actual)."""
    for key, rows in predicted.groupby(SERIES_KEY, sort=False):
        actual, forecast = rows[target].to_numpy(float), rows["forecast"].to_numpy(float)
        report.scores.append(FoldScore(name, fold, str(key), {
            m: forecast_score(m, actual, forecast, pasts[key], season) for m in FORECAST_METRICS}))
    if len(predicted):
        levels = predicted[SERIES_KEY].map({k: float(np.nanmean(np.abs(p))) or 1.0 for k, p in pasts.items()})
        errors = pd.DataFrame({"step": predicted.groupby(SERIES_KEY, sort=False).cumcount().to_numpy() + 1,
                               "error": ((predicted[target] - predicted["forecast"]) / levels).to_numpy(float)})
        report.errors[name] = pd.concat([report.errors.get(name, pd.DataFrame()), errors], ignore_index=True)
    kept = predicted[[SERIES_KEY, PERIOD, "forecast"]].assign(fold=fold)
    report.predictions[name] = pd.concat([report.predictions.get(name, pd.DataFrame()), kept], ignore_index=True)


def run_backtest(history: pd.DataFrame, frequency: DetectedFrequency, target: str, horizon: int,
                 methods: dict[str, Forecaster], *, folds: int = 3) -> BacktestReport:
    """Every method on every fold of the common calendar."""
    season = frequency.frequency.season_length
    report = BacktestReport([], {})
    for number, origin, judged_periods in _folds(history, horizon, folds):
        train = history[history[PERIOD] < origin]
        judged = history[(history[PERIOD] >= origin) & history[PERIOD].isin(judged_periods)]
        pasts = {key: values.to_numpy(float) for key, values in train.groupby(SERIES_KEY, sort=False)[target]}
        known = judged.drop(columns=[target])  # what is known in advance of the judged periods
        for name, forecaster in methods.items():
            predicted = forecaster(train, horizon, known).merge(judged[[SERIES_KEY, PERIOD, target]],
                                                               on=[SERIES_KEY, PERIOD], how="inner")
            _record(report, name, number, predicted, pasts, target, season)
    return report


def combination_backtest(report: BacktestReport, members: tuple[str, ...], name: str, history: pd.DataFrame,
                         frequency: DetectedFrequency, target: str, horizon: int, *, folds: int = 3
                         ) -> BacktestReport:
    """The backtest of the average of `members`' forecasts, from their fold forecasts (nothing is refitted)."""
    season = frequency.frequency.season_length
    combined = BacktestReport([], {})
    stacked = pd.concat([report.predictions[m] for m in members], ignore_index=True)
    average = stacked.groupby(["fold", SERIES_KEY, PERIOD], as_index=False, sort=False)["forecast"].mean()
    for number, origin, judged_periods in _folds(history, horizon, folds):
        train = history[history[PERIOD] < origin]
        judged = history[(history[PERIOD] >= origin) & history[PERIOD].isin(judged_periods)]
        pasts = {key: values.to_numpy(float) for key, values in train.groupby(SERIES_KEY, sort=False)[target]}
        predicted = average[average["fold"] == number].drop(columns="fold").merge(
            judged[[SERIES_KEY, PERIOD, target]], on=[SERIES_KEY, PERIOD], how="inner")
        _record(combined, name, number, predicted, pasts, target, season)
    return combined


def interval_widths(errors: pd.DataFrame, horizon: int) -> dict[float, np.ndarray]:
    """Half-widths (in series levels) per step ahead at each INTERVAL_LEVELS level: the quantile of the
    absolute backtest errors at that step, never narrower than an earlier step's."""
    widths = {}
    for level in INTERVAL_LEVELS:
        per_step = [float(np.nanquantile(np.abs(errors.loc[errors["step"] == step, "error"]), level))
                    if (errors["step"] == step).any() else np.nan for step in range(1, horizon + 1)]
        filled = pd.Series(per_step).ffill().fillna(float(np.nanquantile(np.abs(errors["error"]), level)))
        widths[level] = np.maximum.accumulate(filled.to_numpy())
    return widths


def with_intervals(forecasts: pd.DataFrame, history: pd.DataFrame, target: str,
                   widths: dict[float, np.ndarray]) -> pd.DataFrame:
    """`forecasts` with lower_80 / upper_80 / lower_95 / upper_95 columns, each series scaled by its level."""
    out = forecasts.copy()
    levels = history.groupby(SERIES_KEY)[target].apply(lambda v: float(np.nanmean(np.abs(v))) or 1.0)
    scale = out[SERIES_KEY].map(levels).fillna(1.0).to_numpy()
    step = out.groupby(SERIES_KEY).cumcount().to_numpy()
    for level, width in widths.items():
        half = width[np.minimum(step, len(width) - 1)] * scale
        suffix = round(level * 100)
        out[f"lower_{suffix}"] = out["forecast"] - half
        out[f"upper_{suffix}"] = out["forecast"] + half
    return out
