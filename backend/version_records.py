"""The typed parts of a trained model: the columns it reads, its scores with the rows they were measured on,
and the leaderboard of its search. They cross the worker's result file and the registry as JSON (in the form
registries have always stored); everything else reads these records, so no caller knows a key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from backend.warehouse.base import column_kind

_ROWS = "_rows"  # the stored metrics' entry for the row counts
_FORECAST = "_forecast"  # and for a forecast's report


@dataclass(frozen=True)
class Feature:
    """One input column: its name, its SQL type in the source table, and the kind the model reads it as (a text
    column cast to numbers is numeric)."""

    name: str
    sql_type: str
    kind: str  # "numeric", "text", "boolean" or "datetime" (backend.warehouse.base.column_kind)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "sql_type": self.sql_type, "kind": self.kind}

    @staticmethod
    def from_dict(data: dict[str, str]) -> Feature:
        # models trained before the kind was kept read their SQL type's own kind
        return Feature(str(data["name"]), str(data["sql_type"]), data.get("kind") or column_kind(data["sql_type"]))


def features_from_dicts(data: list[dict[str, str]]) -> list[Feature]:
    return [Feature.from_dict(f) for f in data]


@dataclass(frozen=True)
class Score:
    """One metric of a version: the model's value and the baseline's it is judged against (None where a
    forecast metric has no finite value)."""

    model: float | None
    baseline: float | None


@dataclass(frozen=True)
class VersionMetrics:
    """A version's scores by metric name (holdout rows; forecasts: backtests), the rows it learned from and
    was judged on, and a forecast's report (backend.forecasting.report.ForecastReport, as stored)."""

    scores: dict[str, Score] = field(default_factory=dict)
    train_rows: int | None = None  # None: recorded before row counts were kept
    holdout_rows: int | None = None
    forecast_report: dict[str, Any] | None = None

    def model_score(self, name: str) -> float | None:
        score = self.scores.get(name)
        return score.model if score is not None else None

    def finite_scores(self) -> dict[str, float]:
        """The model's score per metric, where it has a finite one (roc_auc 0.91 and baseline 0.5 → 0.91)."""
        return {name: float(s.model) for name, s in self.scores.items() if s.model is not None and math.isfinite(s.model)}

    @property
    def headline(self) -> tuple[str, Score] | None:
        """The first metric reported (the run's own, by construction), with its score."""
        return next(iter(self.scores.items()), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: {"model": s.model, "baseline": s.baseline} for name, s in self.scores.items()}
        if self.train_rows is not None or self.holdout_rows is not None:
            data[_ROWS] = {"train": self.train_rows, "holdout": self.holdout_rows}
        if self.forecast_report is not None:
            data[_FORECAST] = self.forecast_report
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> VersionMetrics:
        rows = data.get(_ROWS) or {}
        scores = {name: Score(_number(value.get("model")), _number(value.get("baseline")))
                  for name, value in data.items() if not name.startswith("_") and isinstance(value, dict)}
        return VersionMetrics(scores, _count(rows.get("train")), _count(rows.get("holdout")), data.get(_FORECAST))


@dataclass(frozen=True)
class LeaderboardEntry:
    """One model family in a run: its best validation (forecasts: backtest) score in the search, which the search
    tuned on, and its score on the holdout, which nothing was tuned on (None when it was not fitted there)."""

    estimator: str
    score: float
    blend: str | None = None  # an ensemble: its members and weights, in words
    best_single_same_rows: float | None = None  # an ensemble: the best single model's score on the same rows
    holdout_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"estimator": self.estimator, "score": self.score}
        if self.blend is not None:
            data.update(blend=self.blend, best_single_same_rows=self.best_single_same_rows)
        if self.holdout_score is not None:
            data["holdout_score"] = self.holdout_score
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LeaderboardEntry:
        return LeaderboardEntry(str(data["estimator"]), float(data["score"]), data.get("blend"),
                                _number(data.get("best_single_same_rows")), _number(data.get("holdout_score")))


def leaderboard_from_dicts(data: list[dict[str, Any]]) -> list[LeaderboardEntry]:
    return [LeaderboardEntry.from_dict(e) for e in data]


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _count(value: Any) -> int | None:
    return None if value is None else int(value)
