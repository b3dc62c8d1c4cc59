"""What a model card says: gathered from the registry in one record (the rendering lives with the charts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.evaluation import summary as words
from backend.evaluation.summary import ModelWarning
from backend.evaluation.thresholds import DecisionThreshold, ThresholdRow
from backend.registry import ModelNotes, ModelVersion, Registry, Run, now


@dataclass(frozen=True)
class ModelCardData:
    version: ModelVersion
    run: Run
    threshold: DecisionThreshold | None
    threshold_row: ThresholdRow | None  # the holdout outcome at the threshold in force
    notes: ModelNotes
    fingerprint: dict[str, Any]
    summary: list[str]
    warnings: list[ModelWarning]
    remedies: list[str]
    generated_at: datetime


def _remedies(config: dict[str, Any]) -> list[str]:
    """The data remedies the run applied, in words."""
    applied = []
    if config.get("casts"):
        applied.append("read as numbers: " + ", ".join(config["casts"]))
    if config.get("date_casts"):
        applied.append("read as dates: " + ", ".join(config["date_casts"]))
    if config.get("deduplicate"):
        applied.append("trained on distinct rows only (exact duplicates removed)")
    if config.get("drop_classes"):
        applied.append("rows of classes too rare to learn left out: " + ", ".join(map(str, config["drop_classes"])))
    if config.get("class_weight") == "balanced":
        applied.append("classes weighted so each counts alike")
    if config.get("time_column"):
        applied.append(f"validated and judged on the latest rows by {config['time_column']}")
    return applied


def model_card_data(registry: Registry, model_id: str) -> ModelCardData:
    """Everything a model card shows for `model_id`. Raises ModelNotFoundError."""
    version = registry.get_model_version(model_id)
    run = registry.get_run(version.run_id)
    threshold = registry.threshold(model_id)
    report = version.report
    row = report.outcome_at(threshold.threshold if threshold is not None else None) if report is not None else None
    fingerprints = registry.events(version.run_id, "fingerprint")
    return ModelCardData(
        version=version, run=run, threshold=threshold, threshold_row=row, notes=registry.notes(model_id),
        fingerprint=fingerprints[-1].payload if fingerprints else {},
        summary=words.summary(report, row, version.target) if report is not None else [],
        warnings=words.warnings(report) if report is not None else [],
        remedies=_remedies(run.config), generated_at=now())
