"""What a fit hands on: the model the search produced, and the finished run with its report, as the local worker
and the Snowflake procedure report it to the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.digests import sha256_bytes
from backend.evaluation.report import HoldoutReport
from backend.evaluation.thresholds import ThresholdTable
from backend.model_bundle import ModelBundle
from backend.monitoring import MonitoringBaseline
from backend.training.job_files import BUNDLE, HOLDOUT
from backend.version_records import LeaderboardEntry, VersionMetrics


@dataclass
class FittedModel:
    """What the search produced: the bundle (its outcome of interest and threshold set, for binary models),
    the leaderboard, and the threshold table of the validation rows the threshold was chosen on."""

    bundle: ModelBundle
    leaderboard: list[LeaderboardEntry]
    validation: ThresholdTable | None = None
    validation_rows: int | None = None
    # each family's best model as fitted (the search's best refitted on every row; the others' fold models), to
    # score the leaderboard on the holdout; in this process only, never pickled
    family_models: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class TrainingResult:
    bundle: ModelBundle
    metrics: VersionMetrics  # with the rows trained on and judged on, and a forecast's report
    leaderboard: list[LeaderboardEntry]
    importance: list[dict[str, Any]]
    holdout_parquet: bytes
    report: HoldoutReport | None = None
    baseline: MonitoringBaseline | None = None  # what drift is measured against


def result_summary(result: TrainingResult, bundle_bytes: bytes) -> dict[str, Any]:
    """What a finished run reports to the app (local worker and Snowflake procedure alike): metrics, leaderboard,
    importance, the holdout report and threshold, versions, row counts and the sha256 of the model and holdout
    files the app will verify."""
    return {"metrics": result.metrics.to_dict(), "leaderboard": [e.to_dict() for e in result.leaderboard],
            "importance": result.importance,
            "best_estimator": result.bundle.best_estimator, "versions": result.bundle.versions,
            "report": result.report.to_dict() if result.report is not None else None,
            "baseline": result.baseline.to_dict() if result.baseline is not None else None,
            "threshold": result.bundle.threshold,
            "sha256": {BUNDLE: sha256_bytes(bundle_bytes), HOLDOUT: sha256_bytes(result.holdout_parquet)}}
