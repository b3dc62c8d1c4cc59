"""What a forecast version says about itself: its backtest against the baselines (overall, per fold, per
series worst first), its drivers in words, what was found in the data, and a plain summary. Plain data,
kept with the version (JSON), so the Evaluate step and the dashboard draw it without training again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from backend.forecasting.backtest_run import NAIVE, SEASONAL_NAIVE
from backend.forecasting.fit import ForecastResult
from backend.forecasting.model import METHOD_WORDS, method_words
from backend.forecasting.scores import FORECAST_METRICS
from backend.forecasting.series import PreparedSeries
from backend.version_records import VersionMetrics

MAX_SERIES_ROWS = 1000  # per-series errors kept (worst first)


@dataclass(frozen=True)
class SeriesError:
    series: str
    mase: float
    seasonal_naive_mase: float
    smape: float


@dataclass(frozen=True)
class ForecastReport:
    method: str
    learner: str | None
    frequency_words: str
    period_word: str
    season_words: str
    horizon: int
    series: int
    left_out: list[str]
    findings: list[dict[str, str]]  # kind, message, remedy
    scores: dict[str, dict[str, float]]  # metric → {"model", "seasonal_naive", "naive"}
    by_fold: list[dict[str, float]]  # fold, mase of the model, mase of seasonal naive
    by_series: list[SeriesError]  # worst first
    methods: list[dict[str, Any]]  # every method tried: method, words, mase, smape
    drivers: list[dict[str, Any]] = field(default_factory=list)  # feature, words, importance
    metric: str = "mase"  # what the method was chosen by
    # the method with the best backtest score, when an average within noise of it was chosen instead (fit.py)
    best_alone: str | None = None

    @property
    def metric_label(self) -> str:
        return FORECAST_METRICS[self.metric].label

    @property
    def chosen_score(self) -> float:
        return next(m[self.metric] for m in self.methods if m["method"] == self.method)

    @property
    def best_score(self) -> float:
        return next(m[self.metric] for m in self.methods if m["method"] == self.best_alone)

    @property
    def method_words(self) -> str:
        return method_words(self.method)

    @property
    def beats_seasonal_naive(self) -> bool:
        mase = self.scores["mase"]
        return _finite(mase["model"]) and _finite(mase["seasonal_naive"]) and mase["model"] < mase["seasonal_naive"]

    def summary(self, target: str) -> list[str]:
        """The forecast in a few plain sentences."""
        mase = self.scores["mase"]
        which = "mape" if _finite(self.scores["mape"]["model"]) and _finite(self.scores["mape"]["seasonal_naive"]) \
            else "smape"
        typical, baseline = self.scores[which]["model"], self.scores[which]["seasonal_naive"]
        many = f"each of {self.series:,} series" if self.series > 1 else "the series"
        lines = [f"Forecasts {target} for the next {self.horizon} {self.period_word}s of {many}, by "
                 f"{self.method_words}."]
        if _finite(typical) and _finite(baseline):
            lines.append(f"In backtests it was typically off by {typical:.1f}%, against {baseline:.1f}% for "
                         f"{METHOD_WORDS[SEASONAL_NAIVE]} ({self.season_words}).")
        if self.beats_seasonal_naive:
            lines.append(f"Its errors were {1 - mase['model'] / mase['seasonal_naive']:.0%} smaller than "
                         "repeating last season's values (MASE "
                         f"{mase['model']:.2f} against {mase['seasonal_naive']:.2f}).")
        elif self.method == SEASONAL_NAIVE:
            lines.append("No method beat repeating last season's values here, so Flurry forecasts that way. A "
                         "longer history or columns known in advance may help.")
        elif not (_finite(mase["model"]) and _finite(mase["seasonal_naive"])):
            lines.append("MASE is undefined here (a series repeats exactly, so repeating last season makes no "
                         "error in its history); the other scores compare the methods.")
        else:
            lines.append(f"It was chosen by {self.metric_label}; by MASE it was no better than repeating last "
                         f"season (MASE {mase['model']:.2f} against {mase['seasonal_naive']:.2f}).")
        if self.best_alone:
            best, chosen = self.best_score, self.chosen_score
            digits = 2 if round(best, 2) != round(chosen, 2) else 4  # never "0.81 against 0.81"
            unit = "%" if self.metric in ("smape", "mape") else ""
            lines.append(f"It was chosen over {method_words(self.best_alone)}, whose backtest score was better "
                         f"on these folds ({self.metric_label} {best:.{digits}f}{unit} against {chosen:.{digits}f}"
                         f"{unit}) but within their noise: an average of close methods holds up better on periods "
                         "none of them has seen.")
        if self.left_out:
            lines.append(f"{len(self.left_out):,} series were left out (too short, or no values yet); the checks "
                         "below name them.")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def of(metrics: VersionMetrics) -> ForecastReport | None:
        """The report kept in a version's metrics (None for a version that is not a forecast)."""
        data = metrics.forecast_report
        return ForecastReport.from_dict(data) if data else None

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ForecastReport:
        return ForecastReport(**{**data, "by_series": [SeriesError(**row) for row in data["by_series"]]})


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def build_report(result: ForecastResult, prepared: PreparedSeries, metric: str = "mase") -> ForecastReport:
    backtest, chosen = result.backtest, result.chosen
    scores = {metric: {"model": backtest.mean(chosen, metric), "seasonal_naive": backtest.mean(SEASONAL_NAIVE, metric),
                       "naive": backtest.mean(NAIVE, metric)} for metric in FORECAST_METRICS}
    model_folds, baseline_folds = backtest.by_fold(chosen), backtest.by_fold(SEASONAL_NAIVE)
    by_fold = [{"fold": fold, "mase": value, "seasonal_naive_mase": baseline_folds.get(fold, math.nan)}
               for fold, value in model_folds.items()]
    mase, baseline = backtest.by_series(chosen), backtest.by_series(SEASONAL_NAIVE)
    smape = backtest.by_series(chosen, "smape")
    by_series = [SeriesError(str(key), float(value), float(baseline.get(key, math.nan)), float(smape.get(key, math.nan)))
                 for key, value in mase.head(MAX_SERIES_ROWS).items()]
    methods = [{"method": m, "words": method_words(m), **{k: backtest.mean(m, k) for k in FORECAST_METRICS}}
               for m in backtest.errors]
    best = backtest.best(metric)
    frequency = prepared.frequency
    return ForecastReport(
        method=chosen, learner=result.learner, frequency_words=frequency.words,
        period_word=frequency.frequency.period_word, season_words=frequency.frequency.season_words,
        horizon=result.model.horizon, series=len(prepared.series), left_out=list(prepared.left_out),
        findings=[{"kind": f.kind, "message": f.message, "remedy": f.remedy} for f in prepared.findings],
        scores=scores, by_fold=by_fold, by_series=by_series,
        methods=sorted(methods, key=lambda m: m["mase"] if _finite(m["mase"]) else math.inf),
        drivers=[{"feature": d.feature, "words": d.words, "importance": d.importance} for d in result.drivers],
        metric=metric, best_alone=best if best != chosen else None)
