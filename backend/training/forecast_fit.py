"""A forecasting run: from the table's rows to a forecast bundle, its backtest report and the chart rows the
Evaluate step draws. The same worker, procedure, job files and registry records as a tabular run; FLAML's
log is replaced by one line per backtested method (its score in the run's metric as the loss), so the live view and leaderboard
show the methods a forecast chooses between.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from backend.forecasting.bundle import FORECAST_COLUMNS, ForecastBundle
from backend.forecasting.fit import fit_forecast
from backend.forecasting.report import build_report
from backend.forecasting.scores import FORECAST_METRICS
from backend.forecasting.series import PERIOD, SERIES_KEY, Duplicates, Gaps, PreparedSeries, SeriesSpec, prepare_series
from backend.training.config import TrainConfig
from backend.training.fit import leaderboard_from_log
from backend.training.results import TrainingResult
from backend.version_records import Score, VersionMetrics

# History periods per series kept for the chart besides the forecast (the Evaluate step's view of the past).
CHART_HISTORY_SEASONS = 3
CHART_HISTORY_MIN = 36


def series_spec(config: TrainConfig) -> SeriesSpec:
    assert config.time_column is not None  # TrainConfig.validate requires it for a forecast
    return SeriesSpec(time_column=config.time_column, target=config.target, series_columns=config.series_columns,
                      horizon=config.horizon, known_columns=tuple(name for name, _ in config.features),
                      duplicates=Duplicates(config.duplicates), gaps=Gaps(config.gaps))


def train_forecast(frame: pd.DataFrame, config: TrainConfig, log_path: Path, *, from_log: bool = False,
                   on_iteration: Callable[[], None] | None = None) -> TrainingResult:
    """Prepare the series, backtest and fit within the budget, forecast. With `from_log` (a stopped run kept
    as it is) the lag model's regressor is not searched: LightGBM's defaults stand in."""
    started = time.time()
    spec = series_spec(config)
    prepared = prepare_series(frame, spec)
    log_path.write_text("", encoding="utf-8")

    def scored(method: str, score: float, seconds: float) -> None:
        if not math.isfinite(score):  # e.g. MASE of a series that repeats exactly: no trial to show
            return
        record = {"record_id": sum(1 for _ in log_path.open(encoding="utf-8")), "learner": method,
                  "validation_loss": score, "config": {}, "wall_clock_time": seconds, "logged_at": started + seconds}
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if on_iteration is not None:
            on_iteration()

    result = fit_forecast(prepared, config.target, config.horizon, budget_s=config.time_budget_s, seed=config.seed,
                          known_columns=tuple(name for name, _ in config.features),
                          search=not from_log, metric=config.metric, on_scored=scored)
    report = build_report(result, prepared, config.metric)
    bundle = ForecastBundle(spec, config.target_sql_type, result.model, result.learner)
    judged = len(result.backtest.errors.get(result.chosen, ()))
    return TrainingResult(
        bundle=bundle,  # type: ignore[arg-type]  # a forecast bundle: its own scorers load it
        metrics=VersionMetrics({name: Score(_finite(s["model"]), _finite(s["seasonal_naive"]))
                                for name, s in report.scores.items() if name in FORECAST_METRICS},
                               len(prepared.history), judged, _json_safe(report.to_dict())),
        leaderboard=leaderboard_from_log(log_path, config),
        importance=[{"feature": d["words"], "importance": d["importance"]} for d in report.drivers],
        holdout_parquet=chart_rows(prepared, result.forecasts, config.target))


def chart_rows(prepared: PreparedSeries, forecasts: pd.DataFrame, target: str) -> bytes:
    """The recent history and the forecast of every series, as Parquet: SERIES_KEY, PERIOD, actual and the
    FORECAST_COLUMNS (empty on history rows)."""
    season = prepared.frequency.frequency.season_length
    keep = max(CHART_HISTORY_MIN, CHART_HISTORY_SEASONS * season)
    history = prepared.history.groupby(SERIES_KEY, sort=False).tail(keep)
    rows = pd.concat([history[[SERIES_KEY, PERIOD]].assign(actual=history[target].to_numpy(float)),
                      forecasts[[SERIES_KEY, PERIOD, *FORECAST_COLUMNS]]], ignore_index=True)
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
