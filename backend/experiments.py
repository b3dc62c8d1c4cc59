"""The experiments view: every run in a line, and runs side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from backend.metrics import METRICS
from backend.registry import ModelVersion, Registry, Run
from backend.task_detection import Task


@dataclass(frozen=True)
class RunSummary:
    run: Run
    version: ModelVersion | None
    duration_s: float | None
    trials: int

    @property
    def holdout_score(self) -> float | None:
        if self.version is None:
            return None
        value = self.version.metrics.model_score(self.run.metric)
        if value is None:  # the optimised metric is not in the holdout report: use the headline one
            headline = self.version.metrics.headline
            value = headline[1].model if headline else None
        return value


def _is_forecast(run: Run) -> bool:
    return run.task is Task.FORECAST


def _scored_on(run: Run) -> str:
    """Where a run's scores come from: rows held out, or (forecasts) time-ordered backtests."""
    return "backtest" if _is_forecast(run) else "holdout"


def _duration(registry: Registry, run: Run) -> float | None:
    states = registry.events(run.run_id, "state")
    started = next((e.at for e in states if e.payload.get("state") == "RUNNING"), None)
    ended = next((e.at for e in reversed(states) if e.payload.get("state") not in ("QUEUED", "RUNNING")), None)
    return (ended - started).total_seconds() if started and ended else None


def summarize_runs(registry: Registry) -> list[RunSummary]:
    """Every run, newest first, with its model version (if any), duration and trial count."""
    return [RunSummary(run=r, version=registry.model_for_run(r.run_id), duration_s=_duration(registry, r),
                       trials=len(registry.events(r.run_id, "trial"))) for r in registry.list_runs()]


def runs_table(summaries: list[RunSummary]) -> pd.DataFrame:
    return pd.DataFrame([{
        "run": s.run.run_id, "started": s.run.created_at, "state": s.run.state.value, "table": str(s.run.table),
        "target": s.run.target, "task": s.run.task.value, "metric": METRICS[s.run.metric].label,
        "score": s.holdout_score, "scored on": _scored_on(s.run), "best model": s.version.best_estimator if s.version else None,
        "trials": s.trials, "seconds": s.duration_s, "budget (s)": s.run.time_budget,
    } for s in summaries])


_CONFIG_ROWS = [("time budget (s)", "time_budget_s"), ("metric", "metric"), ("seed", "seed"),
                ("validation", "validation"), ("model families", "estimators"), ("class weighting", "class_weight"),
                ("distinct rows only", "deduplicate"), ("read as numbers", "casts"),
               ("outcome of interest", "positive_class"), ("time column", "time_column")]
_FORECAST_ROWS = [("series per", "series_columns"), ("horizon (periods)", "horizon")]
_FORECAST_OPTIONS = ("time_budget_s", "metric", "seed", "time_column")  # the options a forecast run has


def compare_runs(summaries: list[RunSummary]) -> pd.DataFrame:
    """One column per run: holdout metrics, configuration, duration and the leaderboard, side by side."""
    columns: dict[str, dict[str, Any]] = {}
    for s in summaries:
        config = s.run.config
        seconds = round(s.duration_s, 1) if s.duration_s is not None else None
        column: dict[str, Any] = {"table": str(s.run.table), "target": s.run.target, "state": s.run.state.value,
                                  "rows used": s.run.rows_used, "seconds": seconds, "trials": s.trials,
                                  "features": len(config.get("features", []))}
        rows = ([r for r in _CONFIG_ROWS if r[1] in _FORECAST_OPTIONS] + _FORECAST_ROWS) if _is_forecast(s.run) \
            else _CONFIG_ROWS
        for label, key in rows:
            value = config.get(key)
            column[label] = ", ".join(map(str, value)) if isinstance(value, list) else value
        if s.version is not None:
            column["best model"] = s.version.best_estimator
            for name, score in s.version.metrics.scores.items():
                column[f"{_scored_on(s.run)} {METRICS[name].label}"] = score.model
            for entry in s.version.leaderboard:
                column[f"{'backtest' if _is_forecast(s.run) else 'validation'} · {entry.estimator}"] = entry.score
        columns[s.run.run_id] = column
    # one column per run mixes numbers and text: shown as text, so Arrow takes it as it is
    return pd.DataFrame(columns).astype(object).where(lambda f: f.notna(), "—").astype(str)
